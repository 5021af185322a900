"""`coralcheck quant`: the error of an int8 model against its float original.

Metrics are checked on known vectors; the command on real conversions (the Keras toys of
tests/helpers/keras_toys.py, and the fixture pair float32.tflite / demo_int8.tflite, converted from
the same model); the printed formulas are executed and fed to the real interpreter.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, run_cli
from helpers.keras_toys import CALIBRATION_SAMPLES, Toys, run_without_ml_libraries, toys
from hypothesis import given, settings
from hypothesis import strategies as st

from coralcheck.cli import main
from coralcheck.errors import UsageError
from coralcheck.numeric.metrics import ErrorStats, TopOneAgreement
from coralcheck.numeric.runner import TensorInfo, dequantize, quantize
from coralcheck.numeric.samples import InputSpec, image_files, load_samples


def needs_interpreter() -> None:
    """Skip unless LiteRT or TensorFlow (the fallback) can run models."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Toys:
    pytest.importorskip("tensorflow")
    return toys(tmp_path_factory.getbasetemp() / "keras_toys")


def quant_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> dict:
    assert main(["quant", *map(str, args), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


# -- metrics --------------------------------------------------------------------------------------


def test_error_stats_on_known_vectors() -> None:
    stats = ErrorStats()
    reference = np.array([3.0, -4.0])
    stats.update(reference, 0.9 * reference)  # error = 10 % of the signal: SNR 20 dB
    assert stats.cosine == pytest.approx(1.0)
    assert stats.snr_db == pytest.approx(20.0)
    assert stats.abs_error_max == pytest.approx(0.4)
    assert stats.mean_abs_error == pytest.approx(0.35)
    orthogonal = ErrorStats()
    orthogonal.update(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert orthogonal.cosine == pytest.approx(0.0)
    exact = ErrorStats()
    exact.update(reference, reference)
    assert exact.snr_db == math.inf and exact.to_dict()["snr_db"] is None


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_error_stats_accumulate_like_one_big_sample(size: int, chunks: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(chunks, size))
    test = reference + rng.normal(scale=0.1, size=reference.shape)
    whole, parts = ErrorStats(), ErrorStats()
    whole.update(reference, test)
    for r, t in zip(reference, test, strict=True):
        parts.update(r, t)
    assert parts.cosine == pytest.approx(whole.cosine)
    assert parts.snr_db == pytest.approx(whole.snr_db)
    assert parts.abs_error_max == pytest.approx(whole.abs_error_max)
    assert parts.mean_abs_error == pytest.approx(whole.mean_abs_error)
    expected = float(reference.ravel() @ test.ravel()) / (
        np.linalg.norm(reference) * np.linalg.norm(test)
    )
    assert whole.cosine == pytest.approx(expected)


def test_top1_agreement() -> None:
    top1 = TopOneAgreement()
    top1.update(np.array([0.1, 0.9]), np.array([0.2, 0.8]))
    top1.update(np.array([0.1, 0.9]), np.array([0.7, 0.3]))
    assert top1.rate == 0.5


def test_quantize_dequantize_round_trip_and_clipping() -> None:
    info = TensorInfo(0, "x", (1, 4), "uint8", scales=(0.5,), zero_points=(10,))
    values = np.array([[-5.0, 0.0, 1.26, 200.0]])
    q = quantize(values, info)
    assert q.dtype == np.uint8 and q.tolist() == [[0, 10, 13, 255]]
    back = dequantize(q, info)
    assert back[0, 1:3] == pytest.approx([0.0, 1.5])
    q = np.array([[2, 2], [4, 4]], np.int8)
    for axis, expected in ((0, [[2.0, 2.0], [2.0, 2.0]]), (1, [[2.0, 1.0], [4.0, 2.0]])):
        per_axis = TensorInfo(0, "w", (2, 2), "int8", (1.0, 0.5), (0, 0), quantized_dimension=axis)
        assert dequantize(q, per_axis).tolist() == expected


# -- samples --------------------------------------------------------------------------------------


def test_samples_from_npy_with_or_without_batch_axis(tmp_path: Path) -> None:
    spec = [InputSpec("x", (1, 2, 3))]
    np.save(tmp_path / "plain.npy", np.arange(24, dtype=np.float64).reshape(4, 2, 3))
    np.save(tmp_path / "batched.npy", np.arange(24, dtype=np.float64).reshape(4, 1, 2, 3))
    plain = load_samples(str(tmp_path / "plain.npy"), spec, limit=3)
    batched = load_samples(str(tmp_path / "batched.npy"), spec, limit=10)
    assert len(plain) == 3 and len(batched) == 4
    assert plain[1][0].shape == (1, 2, 3) and plain[1][0].dtype == np.float32
    assert np.array_equal(plain[1][0], batched[1][0])


def test_samples_from_npz_by_name_and_by_order(tmp_path: Path) -> None:
    specs = [InputSpec("a", (1, 2)), InputSpec("b", (1, 3))]
    a, b = np.ones((5, 2)), np.zeros((5, 3))
    np.savez(tmp_path / "named.npz", b=b, a=a)  # names win over order
    np.savez(tmp_path / "ordered.npz", a, b)
    for name in ("named.npz", "ordered.npz"):
        samples = load_samples(str(tmp_path / name), specs)
        assert len(samples) == 5
        assert samples[0][0].shape == (1, 2) and samples[0][0].sum() == 2
        assert samples[0][1].shape == (1, 3) and samples[0][1].sum() == 0


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"a": np.ones((2, 2)), "b": np.ones((3, 3))}, "different numbers of samples"),
        ({"a": np.ones((2, 2))}, "one array per input"),
    ],
)
def test_npz_mismatches_are_usage_errors(tmp_path: Path, arrays: dict, expected: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UsageError, match=expected):
        load_samples(str(tmp_path / "bad.npz"), [InputSpec("a", (1, 2)), InputSpec("b", (1, 3))])


def test_not_a_npy_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "fake.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(UsageError, match=r"not a readable \.npy"):
        load_samples(str(tmp_path / "fake.npy"), [InputSpec("x", (1, 2))])


def test_function_samples_as_lists_and_dicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_data.py").write_text(
        "import numpy as np\n"
        "def as_lists():\n"
        "    return [[np.zeros(2), np.ones((1, 3))] for _ in range(3)]\n"
        "def as_dicts():\n"
        "    yield {'b': np.ones(3), 'a': np.zeros(2)}\n"
        "def broken():\n"
        "    raise RuntimeError('no data today')\n"
    )
    monkeypatch.chdir(tmp_path)
    specs = [InputSpec("a", (1, 2)), InputSpec("b", (1, 3))]
    assert len(load_samples("my_data:as_lists", specs)) == 3
    (sample,) = load_samples("my_data:as_dicts", specs)
    assert sample[1].tolist() == [[1.0, 1.0, 1.0]]
    with pytest.raises(UsageError, match="no data today"):
        load_samples("my_data:broken", specs)
    with pytest.raises(UsageError, match="has no function"):
        load_samples("my_data:missing", specs)
    with pytest.raises(UsageError, match="cannot import"):
        load_samples("no_such_module_here:f", specs)


def test_image_files_are_spread_over_all_class_folders(tmp_path: Path) -> None:
    for label in ("a_cat", "b_dog"):
        (tmp_path / label).mkdir()
        for i in range(10):
            (tmp_path / label / f"{i}.JPG").touch()
    (tmp_path / "a_cat" / "notes.txt").touch()
    picked = image_files(str(tmp_path), 4)
    assert len(picked) == 4
    assert {Path(p).parent.name for p in picked} == {"a_cat", "b_dog"}
    assert len(image_files(str(tmp_path), 100)) == 20


# -- the command on real models -------------------------------------------------------------------


@pytest.mark.tensorflow
def test_relu_toy_metrics_are_finite_and_close(
    built: Toys, capsys: pytest.CaptureFixture[str]
) -> None:
    report = quant_json(
        capsys, built.float["relu"], built.int8["relu"], "--data", built.calibration
    )
    assert report["samples"] == CALIBRATION_SAMPLES
    (output,) = report["outputs"]
    assert output["cosine"] > 0.9
    assert math.isfinite(output["snr_db"]) and output["snr_db"] > 10
    assert 0 <= output["mean_abs_error"] <= output["max_abs_error"] < 1
    assert 0.0 <= output["top1_agreement"] <= 1.0  # a 1x4 softmax: a classifier
    assert output["dtype"] == "uint8" and output["scale"] > 0
    layers = report["layers"]
    assert layers[0]["opcode"] == "input" and layers[0]["tensor"] == "image"
    assert {"CONV_2D", "FULLY_CONNECTED"} <= {row["opcode"] for row in layers}
    assert all(row["cosine"] > 0.9 for row in layers)
    assert [row["op"] for row in layers[1:]] == sorted(row["op"] for row in layers[1:])
    assert not any(row["activation"] for row in layers)


@pytest.mark.tensorflow
def test_silu_toy_layers_after_silu_are_flagged(
    built: Toys, capsys: pytest.CaptureFixture[str]
) -> None:
    report = quant_json(
        capsys, built.float["silu"], built.int8["silu"], "--data", built.calibration
    )
    labelled = {(row["opcode"], row["activation"]) for row in report["layers"] if row["activation"]}
    assert ("LOGISTIC", "SiLU") in labelled and ("MUL", "SiLU") in labelled
    assert ("CONV_2D", "after SiLU") in labelled  # c2 reads c1's SiLU
    assert ("MEAN", "after SiLU") in labelled  # the pooling reads c2's SiLU
    for row in report["layers"]:
        if row["jump"]:
            assert row["snr_drop_db"] >= 6.0


@pytest.mark.tensorflow
def test_text_report_shows_outputs_flags_and_the_snippet(
    built: Toys, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(built.float["silu"]), str(built.int8["silu"]), "--data", str(built.calibration)]
    assert main(["quant", *args]) == 0
    out = capsys.readouterr().out
    assert "cosine" in out and "SNR dB" in out and "after SiLU" in out
    assert "def quantize_input(x):" in out and "def dequantize_output(q):" in out


@pytest.mark.tensorflow
def test_printed_formulas_run_the_quantized_model_correctly(
    built: Toys, capsys: pytest.CaptureFixture[str]
) -> None:
    """Execute the printed snippet and use it to run the int8 model by hand."""
    from ai_edge_litert.interpreter import Interpreter

    report = quant_json(
        capsys, built.float["relu"], built.int8["relu"], "--data", built.calibration
    )
    namespace: dict = {}
    exec(report["snippet"], namespace)
    images = np.load(built.calibration)[:6]
    runs = {}
    for kind in ("float", "int8"):
        interpreter = Interpreter(model_path=str(getattr(built, kind)["relu"]))
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        results = []
        for image in images:
            feed = namespace["quantize_input"](image[None]) if kind == "int8" else image[None]
            interpreter.set_tensor(inp["index"], feed)
            interpreter.invoke()
            result = interpreter.get_tensor(out["index"])
            results.append(namespace["dequantize_output"](result) if kind == "int8" else result)
        runs[kind] = np.concatenate(results)
    assert runs["int8"].dtype == np.float32
    assert np.abs(runs["int8"] - runs["float"]).max() < 0.05


def test_fixture_pair_float32_vs_demo_int8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two converter-made fixtures from the same model: names match, errors are small."""
    needs_interpreter()
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(0).random((12, 32, 32, 3), dtype=np.float32))
    report = quant_json(
        capsys, FIXTURES / "float32.tflite", FIXTURES / "demo_int8.tflite", "--data", data
    )
    (output,) = report["outputs"]
    assert output["cosine"] > 0.99 and output["top1_agreement"] is not None
    opcodes = [row["opcode"] for row in report["layers"]]
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= set(opcodes)
    assert report["inputs"][0]["dtype"] == "uint8"


def test_same_model_twice_is_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    needs_interpreter()
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(1).random((3, 32, 32, 3), dtype=np.float32))
    model = FIXTURES / "float32.tflite"
    report = quant_json(capsys, model, model, "--data", data)
    (output,) = report["outputs"]
    assert output["snr_db"] is None and output["max_abs_error"] == 0.0
    assert output["cosine"] == pytest.approx(1.0) and output["top1_agreement"] == 1.0
    assert all(row["snr_db"] is None for row in report["layers"])


# -- refusing, in one line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "data_shape", "expected"),
    [
        (("float32.tflite", "demo_int8.tflite"), (3, 16, 16, 3), "needs 1x32x32x3"),
        (("float32.tflite", "not_a_model.tflite"), (3, 32, 32, 3), "not_a_model.tflite"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    models: tuple[str, str],
    data_shape: tuple[int, ...],
    expected: str,
) -> None:
    needs_interpreter()
    (tmp_path / "not_a_model.tflite").write_bytes(b"definitely not a flatbuffer")
    paths = [FIXTURES / m if (FIXTURES / m).exists() else tmp_path / m for m in models]
    np.save(tmp_path / "data.npy", np.zeros(data_shape, np.float32))
    assert main(["quant", *map(str, paths), "--data", str(tmp_path / "data.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("coralcheck: error: ") and expected in err


def test_without_litert_or_tensorflow_names_the_extra(tmp_path: Path) -> None:
    np.save(tmp_path / "data.npy", np.zeros((2, 32, 32, 3), np.float32))
    result = run_without_ml_libraries(
        "quant",
        str(FIXTURES / "float32.tflite"),
        str(FIXTURES / "demo_int8.tflite"),
        "--data",
        str(tmp_path / "data.npy"),
    )
    assert result.returncode == 2
    assert result.stderr == (
        "coralcheck: error: quant: needs LiteRT to run models: pip install 'coralcheck[numeric]'\n"
    )


# -- different models, progress -------------------------------------------------------------------


def test_unrelated_models_are_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A SiLU model is not a conversion of the ReLU float32 fixture: the numbers come with a
    warning (stderr, JSON, text) naming why; the real pair gets none."""
    needs_interpreter()
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32))
    reference = FIXTURES / "float32.tflite"
    assert (
        main(
            [
                "quant",
                str(reference),
                str(FIXTURES / "silu_int8.tflite"),
                "--data",
                str(data),
                "--format",
                "json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    (warning,) = captured.err.splitlines()
    assert (
        warning.startswith("coralcheck: warning: ") and "does not look like a conversion" in warning
    )
    report = json.loads(captured.out)
    assert any(
        "ops differ" in reason and "LOGISTIC" in reason for reason in report["different_models"]
    )
    assert (
        main(["quant", str(reference), str(FIXTURES / "silu_int8.tflite"), "--data", str(data)])
        == 0
    )
    assert "warning: these look like different models" in capsys.readouterr().out

    same = quant_json(capsys, reference, FIXTURES / "demo_int8.tflite", "--data", data)
    assert same["different_models"] == []
    assert capsys.readouterr().err == ""


def test_different_models_reasons_on_converted_toys(built: Toys) -> None:
    """The issue's case: two unrelated conversions that share a name or two."""
    from coralcheck.model import load
    from coralcheck.numeric.quant import different_models

    relu_float, silu_int8 = load(built.float["relu"]), load(built.int8["silu"])
    reasons = different_models(relu_float, silu_int8, matched=2)
    assert any("only 2 of QUANT's" in r for r in reasons)
    assert different_models(relu_float, load(built.int8["relu"]), matched=6) == []


def _run_with_terminal_stderr(*args: str) -> tuple[int, str]:
    """`coralcheck ARGS` with stderr on a pseudo-terminal (stdout a pipe): (exit code, stderr)."""
    import os
    import pty
    import subprocess
    import sys

    from conftest import REPO, cli_env

    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "coralcheck", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=cli_env() | {"TERM": "xterm", "COLUMNS": "100"},
        cwd=REPO,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the child is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.stdout.read()
    code = process.wait(timeout=120)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_progress_on_a_terminal_only(tmp_path: Path) -> None:
    needs_interpreter()
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32))
    args = (
        "quant",
        str(FIXTURES / "float32.tflite"),
        str(FIXTURES / "demo_int8.tflite"),
        "--data",
        str(data),
    )
    code, terminal = _run_with_terminal_stderr(*args)
    assert code == 0
    assert "reading samples" in terminal and "comparing the models" in terminal
    piped = run_cli(*args, timeout=120)
    assert piped.returncode == 0 and piped.stderr == ""
