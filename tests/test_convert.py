"""`coralcheck convert`: real TensorFlow conversions of tiny Keras models
(tests/helpers/keras_toys.py).

What is checked on the converted files is read back with coralcheck's reader and, where it
matters, with TensorFlow's own interpreter; nothing is compared against output pasted from an
earlier run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.keras_toys import (
    CALIBRATION_SAMPLES,
    Toys,
    keras_module,
    run_without_ml_libraries,
    toys,
)

from coralcheck import load
from coralcheck.cli import main
from coralcheck.convert.files import write_atomically
from coralcheck.convert.source import DeclaredInput, static_inputs
from coralcheck.errors import UsageError

INTEGER_TYPES = {"INT8", "UINT8", "INT32"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Toys:
    pytest.importorskip("tensorflow")
    return toys(tmp_path_factory.getbasetemp() / "keras_toys")


def convert(*args: str | Path) -> int:
    return main(["convert", *map(str, args)])


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The CLI's stderr, checked to be exactly one `coralcheck: error:` line."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("coralcheck: error: "), err
    return lines[0]


def activation_tensors_are_integer(path: Path) -> list[str]:
    """Names of non-constant tensors of the main subgraph that are not 8/32-bit integers."""
    sg = load(path).main
    return [t.name for t in sg.tensors if not t.is_constant and t.dtype not in INTEGER_TYPES]


# -- what the conversion produces -----------------------------------------------------------------


@pytest.mark.tensorflow
def test_relu_toy_becomes_full_integer_with_uint8_io_and_lints_clean(built: Toys) -> None:
    from coralcheck.api import check

    path = built.int8["relu"]
    model = load(path)
    sg = model.main
    assert activation_tensors_are_integer(path) == []
    for index in (*sg.inputs, *sg.outputs):
        tensor = sg.tensors[index]
        assert tensor.dtype == "UINT8"
        assert tensor.shape[0] == 1 and tensor.shape_signature in (None, tensor.shape)
    opcodes = {op.opcode for op in sg.operators}
    assert "LOGISTIC" not in opcodes and "DEQUANTIZE" not in opcodes
    report = check(path).models[0]
    assert [f for f in report.findings if f.severity == "error"] == []


@pytest.mark.tensorflow
def test_silu_toy_keeps_logistic_mul_and_gets_the_silu_advice(built: Toys) -> None:
    from coralcheck.api import check

    path = built.int8["silu"]
    assert activation_tensors_are_integer(path) == []
    opcodes = [op.opcode for op in load(path).main.operators]
    assert opcodes.count("LOGISTIC") == 2 and opcodes.count("MUL") == 2
    report = check(path).models[0]
    assert [f for f in report.findings if f.severity == "error"] == []
    advice = [f for f in report.findings if "silu" in f"{f.message} {f.fix}".lower()]
    assert advice, [f.code for f in report.findings]


@pytest.mark.tensorflow
def test_converted_model_matches_keras_within_quantization_error(built: Toys) -> None:
    """The int8 model, fed through its own scale/zero point, agrees with Keras itself."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    keras = keras_module()
    images = np.load(built.calibration)[:8]
    expected = keras.saving.load_model(built.keras["relu"], safe_mode=True)(images).numpy()
    interpreter = litert.Interpreter(model_path=str(built.int8["relu"]))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    got = []
    for image in images:
        q = np.clip(np.round(image / in_scale) + in_zero, 0, 255).astype(np.uint8)
        interpreter.set_tensor(inp["index"], q[None])
        interpreter.invoke()
        got.append(
            (interpreter.get_tensor(out["index"])[0].astype(np.float32) - out_zero) * out_scale
        )
    assert np.abs(np.array(got) - expected).max() < 0.05


@pytest.mark.tensorflow
def test_float_reference_is_float32(built: Toys) -> None:
    sg = load(built.float["relu"]).main
    assert sg.tensors[sg.inputs[0]].dtype == "FLOAT32"
    assert not any(t.is_quantized for t in sg.tensors)


@pytest.mark.tensorflow
def test_prints_the_normal_lint_report_of_the_result(
    built: Toys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coralcheck.api import check
    from coralcheck.render import render

    out = tmp_path / "m.tflite"
    assert convert(built.keras["relu"], "-o", out, "--calibration", built.calibration) == 0
    captured = capsys.readouterr()
    assert captured.out == render(check(out), "text")
    assert f"calibrated on {CALIBRATION_SAMPLES} samples" in captured.err


@pytest.mark.tensorflow
def test_int8_io_type(built: Toys, tmp_path: Path) -> None:
    out = tmp_path / "int8_io.tflite"
    args = ("-o", out, "--calibration", built.calibration, "--io-type", "int8")
    assert convert(built.keras["relu"], *args) == 0
    sg = load(out).main
    assert {sg.tensors[i].dtype for i in (*sg.inputs, *sg.outputs)} == {"INT8"}


@pytest.mark.tensorflow
def test_samples_limits_what_calibration_reads(
    built: Toys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "few.tflite"
    assert (
        convert(
            built.keras["relu"], "-o", out, "--calibration", built.calibration, "--samples", "5"
        )
        == 0
    )
    assert "calibrated on 5 samples" in capsys.readouterr().err


@pytest.mark.tensorflow
def test_saved_model_directory(built: Toys, tmp_path: Path) -> None:
    keras = keras_module()
    exported = tmp_path / "saved"
    keras.saving.load_model(built.keras["relu"], safe_mode=True).export(
        str(exported), verbose=False
    )
    out = tmp_path / "from_saved_model.tflite"
    assert convert(exported, "-o", out, "--calibration", built.calibration) == 0
    assert activation_tensors_are_integer(out) == []
    sg = load(out).main
    assert sg.tensors[sg.inputs[0]].shape == (1, 16, 16, 3)


@pytest.mark.tensorflow
def test_swap_activations_flag_converts_the_relu_variant(
    built: Toys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "swapped.tflite"
    args = ("-o", out, "--calibration", built.calibration, "--swap-activations", "silu=relu")
    assert convert(built.keras["silu"], *args) == 0
    opcodes = {op.opcode for op in load(out).main.operators}
    assert "LOGISTIC" not in opcodes and "MUL" not in opcodes
    err = capsys.readouterr().err
    assert "swapped 2 activation(s)" in err and "fine-tune" in err


@pytest.mark.tensorflow
def test_unknown_dimensions_need_input_shape(
    tmp_path: Path, built: Toys, capsys: pytest.CaptureFixture[str]
) -> None:
    keras = keras_module()
    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path / "any_size.keras"
    model.save(path)
    out = tmp_path / "any_size.tflite"
    assert convert(path, "-o", out, "--calibration", built.calibration) == 2
    assert "--input-shape image=1," in one_line_error(capsys)
    assert not out.exists()
    assert (
        convert(path, "-o", out, "--calibration", built.calibration, "--input-shape", "1,16,16,3")
        == 0
    )
    tensor = load(out).main.tensors[load(out).main.inputs[0]]
    assert tensor.shape == (1, 16, 16, 3)
    assert tensor.shape_signature in (None, (1, 16, 16, 3))


# -- refusing, in one line ------------------------------------------------------------------------


def _save_functional(tmp_path: Path, name: str, body: Any) -> Path:
    keras = keras_module()
    inputs = keras.Input((8, 8, 3), name="image")
    path = tmp_path / f"{name}.keras"
    keras.Model(inputs, body(keras, keras.layers.Conv2D(4, 3)(inputs))).save(path)
    return path


@pytest.mark.tensorflow
def test_op_without_int8_kernel_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The converter silently leaves SIN in float; convert must refuse, naming it."""
    path = _save_functional(tmp_path, "sine", lambda keras, x: keras.ops.sin(x))
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32))
    out = tmp_path / "sine.tflite"
    assert convert(path, "-o", out, "--calibration", data) == 2
    line = one_line_error(capsys)
    assert "cannot become fully integer" in line and "SIN (op" in line
    assert not out.exists()


@pytest.mark.tensorflow
def test_converter_error_is_summarised_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save_functional(
        tmp_path, "erfinv", lambda keras, x: keras.ops.erfinv(keras.ops.tanh(x))
    )
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32))
    out = tmp_path / "erfinv.tflite"
    assert convert(path, "-o", out, "--calibration", data) == 2
    line = one_line_error(capsys)
    assert "the converter refused it" in line and "Erfinv" in line
    assert "note:" not in line and "tracing_compilation" not in line
    assert not out.exists()


@pytest.mark.tensorflow
def test_lambda_layer_is_refused_by_safe_mode(
    tmp_path: Path, built: Toys, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Lambda's code is never run: loading stops in safe mode before any call."""
    keras = keras_module()
    marker = tmp_path / "lambda_ran"

    def leaves_a_mark(t: Any) -> Any:
        marker.touch()
        return t * 2.0

    inputs = keras.Input((16, 16, 3), name="image")
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, keras.layers.Lambda(leaves_a_mark)(inputs)).save(path)
    marker.unlink()  # building the model ran it once, symbolically
    out = tmp_path / "lambda.tflite"
    assert convert(path, "-o", out, "--calibration", built.calibration) == 2
    assert "safe mode" in one_line_error(capsys)
    assert not out.exists() and not marker.exists()


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("make_data", "expected"),
    [
        (lambda d: np.save(d / "wrong.npy", np.zeros((3, 8, 8, 3), np.float32)), "needs 1x16x16x3"),
        (lambda d: np.save(d / "nan.npy", np.full((3, 16, 16, 3), np.nan, np.float32)), "NaN"),
        (lambda d: np.save(d / "empty.npy", np.zeros((0, 16, 16, 3), np.float32)), "no samples"),
        (lambda d: (d / "noimages").mkdir(), "holds no images"),
    ],
    ids=["wrong-shape", "nan", "empty", "no-images"],
)
def test_bad_calibration_data_is_one_line_exit_2(
    built: Toys, tmp_path: Path, capsys: pytest.CaptureFixture[str], make_data: Any, expected: str
) -> None:
    make_data(tmp_path)
    data = next(p for p in tmp_path.iterdir())
    out = tmp_path / "never.tflite"
    assert convert(built.keras["relu"], "-o", out, "--calibration", data) == 2
    line = one_line_error(capsys)
    assert expected in line and str(data) in line
    assert sorted(tmp_path.iterdir()) == [data]


@pytest.mark.parametrize(
    ("calibration", "expected"),
    [
        ("missing.npy", "no such file"),
        ("notes.txt", "expected a directory of images"),
        ("no module here", "no such file"),
    ],
)
def test_calibration_argument_checked_before_tensorflow(
    tmp_path: Path, calibration: str, expected: str
) -> None:
    (tmp_path / "model.keras").write_bytes(b"not opened: the data argument fails first")
    (tmp_path / "notes.txt").write_text("x")
    result = run_without_ml_libraries(
        "convert", "model.keras", "-o", "out.tflite", "--calibration", calibration, cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert expected in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "notes.txt"]


@pytest.mark.tensorflow
def test_module_function_calibration(
    built: Toys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "toy_samples.py").write_text(
        "import numpy as np\n"
        "def samples():\n"
        "    rng = np.random.default_rng(3)\n"
        "    while True:  # endless: --samples decides\n"
        "        yield {'image': rng.random((16, 16, 3), dtype=np.float32)}\n"
    )
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "fn.tflite"
    args = ("-o", out, "--calibration", "toy_samples:samples", "--samples", "7")
    assert convert(built.keras["relu"], *args) == 0
    assert "calibrated on 7 samples" in capsys.readouterr().err


@pytest.mark.tensorflow
def test_image_directory_calibration(
    built: Toys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tensorflow as tf

    images = tmp_path / "images" / "cats"
    images.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(4):  # other sizes than the model's: they are resized
        pixels = rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)
        (images / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    out = tmp_path / "images.tflite"
    args = ("-o", out, "--calibration", tmp_path / "images", "--image-range", "0,1")
    assert convert(built.keras["relu"], *args) == 0
    assert "calibrated on 4 samples" in capsys.readouterr().err
    assert activation_tensors_are_integer(out) == []


# -- exit code and crashes: convert behaves like the lint -----------------------------------------


@pytest.mark.tensorflow
def test_exit_code_is_the_lints_on_the_result(
    built: Toys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The SiLU toy has an info finding (A001): it passes by default and fails --fail-on info,
    exactly as `coralcheck OUT --fail-on info` does on the written model."""
    out = tmp_path / "silu.tflite"
    args = ("-o", out, "--calibration", built.calibration, "--samples", "4")
    assert convert(built.keras["silu"], *args) == 0
    assert "A001" in capsys.readouterr().out
    assert convert(built.keras["silu"], *args, "--force", "--fail-on", "info") == 1
    captured = capsys.readouterr()
    assert "A001" in captured.out and f"wrote {out}" in captured.err
    assert main([str(out), "--fail-on", "info"]) == 1
    assert convert(built.keras["relu"], *args, "--force", "--fail-on", "info") == 0


def _recurrent_model(tmp_path: Path) -> tuple[Path, Path]:
    """A Keras 3 LSTM (8 steps of 4 features) and 4 calibration samples."""
    keras = keras_module()
    inputs = keras.Input((8, 4), name="sequence")
    x = keras.layers.LSTM(8, name="lstm")(inputs)
    path = tmp_path / "lstm.keras"
    keras.Model(inputs, keras.layers.Dense(3)(x)).save(path)
    data = tmp_path / "sequences.npy"
    np.save(data, np.random.default_rng(0).random((4, 8, 4), dtype=np.float32))
    return path, data


@pytest.mark.tensorflow
def test_converter_crash_on_a_keras3_lstm_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """TF 2.21 dies with SIGSEGV calibrating a Keras 3 LSTM (a WHILE loop): one line, exit 2,
    naming the signal, the layer and the phase, and what to try; nothing written."""
    path, data = _recurrent_model(tmp_path)
    out = tmp_path / "lstm.tflite"
    assert convert(path, "-o", out, "--calibration", data) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"coralcheck: error: {path}: the TensorFlow converter crashed (signal ")
    assert "on LSTM layer 'lstm' while calibrating" in line
    assert "tf_keras" in line and "G002" in line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lstm.keras", "sequences.npy"]


def test_child_killed_by_a_signal_becomes_a_crash_message() -> None:
    """The parent's side on a child that really dies by a signal (no TensorFlow needed)."""
    from coralcheck.convert.child import crash_message, run_child

    dies = (
        "import os, pickle, signal, sys\n"
        "pipe = os.fdopen(int(sys.argv[1]), 'wb')\n"
        "pickle.dump(('phase', 'converting'), pipe); pipe.flush()\n"
        "os.kill(os.getpid(), signal.SIGABRT)\n"
    )
    seen: list[tuple] = []
    outcome = run_child(dies, {"model": "m.keras"}, seen.append)
    assert outcome.returncode == -6 and seen == [("phase", "converting")]
    message = crash_message(outcome, {"model": "m.keras"})
    crashed = "the TensorFlow converter crashed (signal 6, SIGABRT) while converting"
    assert message.startswith(crashed)
    assert ": try " in message


def _unwritable_directory(tmp_path: Path) -> Path:
    """A directory this process cannot create files in (root ignores permission bits)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    for candidate in (locked, Path("/sys"), Path("/proc")):
        try:
            (candidate / ".coralcheck-probe").touch()
        except OSError:
            return candidate
        (candidate / ".coralcheck-probe").unlink()
    pytest.skip("no unwritable directory here")


def test_unwritable_output_directory_is_refused_before_converting(tmp_path: Path) -> None:
    """Checked before TensorFlow is imported: TF is blocked here, and the error is ours."""
    directory = _unwritable_directory(tmp_path)
    model = tmp_path / "model.keras"
    model.write_bytes(b"never read: the output is checked first")
    np.save(tmp_path / "data.npy", np.zeros((2, 4), np.float32))
    out = directory / "out.tflite"
    result = run_without_ml_libraries(
        "convert", str(model), "-o", str(out), "--calibration", "data.npy", cwd=tmp_path
    )
    assert result.returncode == 2
    expected = f"coralcheck: error: {out}: cannot write to the output directory {directory}"
    assert result.stderr.startswith(expected)
    assert result.stderr.count("\n") == 1 and "TensorFlow" not in result.stderr
    assert not out.exists()


# -- files: atomic, never over anything without --force -------------------------------------------


@pytest.mark.tensorflow
def test_never_overwrites_without_force(
    built: Toys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "taken.tflite"
    out.write_bytes(b"precious")
    assert convert(built.keras["relu"], "-o", out, "--calibration", built.calibration) == 2
    assert "--force" in one_line_error(capsys)
    assert out.read_bytes() == b"precious"
    assert (
        convert(built.keras["relu"], "-o", out, "--calibration", built.calibration, "--force") == 0
    )
    assert load(out).main.operators


@pytest.mark.tensorflow
def test_writes_nothing_else_next_to_the_users_files(built: Toys, tmp_path: Path) -> None:
    model = tmp_path / "model.keras"
    model.write_bytes(built.keras["relu"].read_bytes())
    data = tmp_path / "data.npy"
    data.write_bytes(built.calibration.read_bytes())
    assert convert(model, "-o", tmp_path / "out.tflite", "--calibration", data) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npy", "model.keras", "out.tflite"]
    assert (tmp_path / "out.tflite").stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_refuses_to_write_over_its_input(tmp_path: Path) -> None:
    model = tmp_path / "model.keras"
    model.write_bytes(b"the user's model")
    result = run_without_ml_libraries(
        "convert", str(model), "-o", str(model), "--force", "--calibration", "x:y"
    )
    assert result.returncode == 2 and "never overwrites its input" in result.stderr
    assert model.read_bytes() == b"the user's model"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_atomic_write_failure_leaves_target_and_directory_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.tflite"
    target.write_bytes(b"old")
    renames: list[tuple[str, str]] = []

    def failing_replace(src: str, dst: str) -> None:
        renames.append((src, dst))
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(UsageError, match="cannot write it: disk full"):
        write_atomically(str(target), b"new model", force=True)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tflite"]
    ((src, dst),) = renames
    assert Path(src).parent == tmp_path and Path(dst) == target  # temp file in the same dir


def test_atomic_write_refuses_a_file_that_appeared_meanwhile(tmp_path: Path) -> None:
    target = tmp_path / "out.tflite"
    target.write_bytes(b"someone else's")
    with pytest.raises(UsageError, match="already exists"):
        write_atomically(str(target), b"new model", force=False)
    assert target.read_bytes() == b"someone else's"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tflite"]


# -- input shapes (no TensorFlow needed) ----------------------------------------------------------


def test_static_inputs_batch_one_and_named_or_positional_shapes() -> None:
    declared = [
        DeclaredInput("image", (None, None, None, 3), "float32"),
        DeclaredInput("mask", (None, 8), "float32"),
    ]
    specs = static_inputs(declared, ["image=1x32x48x3"])
    assert [s.shape for s in specs] == [(1, 32, 48, 3), (1, 8)]
    assert [s.shape for s in static_inputs(declared, ["1,4,4,3", "1,8"])] == [(1, 4, 4, 3), (1, 8)]


@pytest.mark.parametrize(
    ("shapes", "expected"),
    [
        ([], "unknown dimensions"),
        (["1,32,32"], "rank 4"),
        (["2,32,32,3"], "batch dimension must be 1"),
        (["1,32,32,4"], "has 3 at axis 3"),
        (["other=1,32,32,3"], "no input named 'other'"),
        (["1,32,32,3", "1,2"], "given 2 times for 1 inputs"),
        (["1,a,3"], "expected [NAME=]1,H,W,C"),
    ],
)
def test_static_inputs_refuses_wrong_shapes(shapes: list[str], expected: str) -> None:
    declared = [DeclaredInput("image", (None, None, None, 3), "float32")]
    with pytest.raises(UsageError) as error:
        static_inputs(declared, shapes)
    assert expected in error.value.problem


# -- the extra is optional ------------------------------------------------------------------------


def test_without_tensorflow_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(b"never read: TensorFlow is missing")
    np.save(tmp_path / "data.npy", np.zeros((2, 4), np.float32))
    result = run_without_ml_libraries(
        "convert", "model.keras", "-o", "out.tflite", "--calibration", "data.npy", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr == (
        "coralcheck: error: convert: needs TensorFlow: pip install 'coralcheck[convert]'\n"
    )
    assert not (tmp_path / "out.tflite").exists()


def test_cli_modules_import_without_tensorflow_or_litert() -> None:
    """Building every parser (what the CLI does first) imports neither TF, Keras nor LiteRT."""
    for command in ("convert", "quant", "compare"):
        result = run_without_ml_libraries(command, "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: coralcheck {command}")


def test_lint_works_without_tensorflow_or_litert() -> None:
    result = run_without_ml_libraries("fixtures/demo_int8.tflite")
    assert result.returncode in (0, 1), result.stderr
    assert "demo_int8.tflite" in result.stdout
