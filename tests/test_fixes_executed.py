"""Every fix text that holds code or a converter setting, executed with the installed TensorFlow.

For each fix: a small Keras model that shows the problem is converted the usual way
(`tf.lite.TFLiteConverter.from_keras_model`, the full-integer settings of Q001 unless the problem
is another setting) and linted; the finding is there. Then the fix is applied *as its text
says*: each code fragment is first asserted to be in the fix text users see (the finding's
`fix`), then run with `exec`/`eval`. The result is converted, linted: the finding is gone and
the ops map to the Edge TPU.

`CODE_IN_FIXES` names, for every fix text with code (rules/catalogue.toml, activations.toml,
ops.toml, the compiler-failure rules), the test that executes it; a test without TensorFlow
checks that no such text is missing from it. Texts with code that cannot run here (a compiler
flag: there is no edgetpu_compiler) are listed in `NOT_EXECUTABLE` with the reason.

Models are tiny and calibrated on 4 samples: each conversion takes well under a second.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coralcheck.report import ModelReport

CALIBRATION_SAMPLES = 4

# Q001's settings, statement by statement: the Edge TPU conversion every other fix builds on.
FULL_INTEGER = (
    "converter.optimizations = [tf.lite.Optimize.DEFAULT]",
    "converter.representative_dataset = representative_dataset",
    "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]",
    "converter.inference_input_type = tf.uint8",
    "converter.inference_output_type = tf.uint8",
)

# fix text (kind:key) -> the test in this module that executes it
CODE_IN_FIXES = {
    "rule:Q001": "test_q001_full_integer_settings",
    "failure:C031": "test_q001_full_integer_settings",
    "rule:Q002": "test_q002_int8_only_ops_do_not_stop_the_converter_replacing_elu_does",
    "rule:Q003": "test_q003_hybrid_model_becomes_full_integer_with_a_representative_dataset",
    "rule:Q004": "test_q004_float16_setting_dropped",
    "rule:Q005": "test_q005_int16_activations_replaced_by_int8",
    "rule:Q008": "test_s001_q008_batch_none_fixed_by_clone_model_with_batch_1",
    "rule:S001": "test_s001_q008_batch_none_fixed_by_clone_model_with_batch_1",
    "failure:C036": "test_s001_q008_batch_none_fixed_by_clone_model_with_batch_1",
    "unsupported:SHAPE": "test_s001_q008_batch_none_fixed_by_clone_model_with_batch_1",
    "rule:S003": "test_s003_batch_4_fixed_by_clone_model_with_batch_1",
    "rule:S004": "test_s004_clone_works_with_tf_keras_too",
    "rule:G002": "test_g002_lstm_with_tf_keras_is_one_fused_op_unroll_is_not",
    "unsupported:WHILE": "test_g002_lstm_with_tf_keras_is_one_fused_op_unroll_is_not",
    "rule:I001": "test_i001_float_io_becomes_uint8",
    "unsupported:DEQUANTIZE": "test_i001_float_io_becomes_uint8",
    "constraint:QUANTIZE:integer-input": "test_i001_float_io_becomes_uint8",
    "rule:I002": "test_i002_int8_input_becomes_uint8_and_its_quantize_maps",
    "activation:SILU": "test_a001_relu6_fuses_into_the_convolution",
    "rule:A002": "test_a002_hardswish_with_the_sixth_first_maps",
    "activation:HARD_SWISH": "test_a002_hardswish_with_the_sixth_first_maps",
    "rule:A003": "test_a003_leaky_relu_as_maximum_or_prelu",
    "activation:LEAKY_RELU": "test_a003_leaky_relu_as_maximum_or_prelu",
    "constraint:PRELU:constant-alpha": "test_a003_leaky_relu_as_maximum_or_prelu",
    "rule:A004": "test_a004_gelu_sigmoid_approximation",
    "activation:GELU": "test_a004_gelu_sigmoid_approximation",
    "rule:A005": "test_a005_a006_elu_and_mish_become_prelu",
    "activation:ELU": "test_a005_a006_elu_and_mish_become_prelu",
    "activation:MISH": "test_a005_a006_elu_and_mish_become_prelu",
    "unsupported:SPACE_TO_BATCH_ND": "test_dilated_convolution_is_one_conv_2d_at_batch_1",
    "unsupported:BATCH_TO_SPACE_ND": "test_dilated_convolution_is_one_conv_2d_at_batch_1",
    "constraint:STRIDED_SLICE:zero-masks": "test_strided_slice_masks_are_lowered_by_tf2",
}
NOT_EXECUTABLE = {
    "rule:G001": "`-a` is an edgetpu_compiler flag: there is no compiler here",
    "failure:C035": "--compiler-flag=-d is an edgetpu_compiler flag: there is no compiler here",
    "rule:C003": "edgetpu_compiler -m N: there is no compiler here",
}

# What marks a fix text as holding code: an API name, a converter setting, or a call.
CODE = re.compile(
    r"\b(?:tf|keras|tf_keras|converter)\.|inference_(?:in|out)put_type|supported_(?:ops|types)"
    r"|representative_dataset|set_shape|\b[a-z_][a-z0-9_]*\("
)


def fix_texts() -> Iterator[tuple[str, str]]:
    """(kind:key, text) of every fix text coralcheck can print."""
    from coralcheck.checks.catalogue import all_rules
    from coralcheck.edgetpu.knowledge import knowledge

    kb = knowledge()
    failures = {code for code, text in kb.rule_texts.items() if "failure_kind" in text}
    for rule in all_rules():
        yield (f"failure:{rule.code}" if rule.code in failures else f"rule:{rule.code}"), rule.fix
    for key, facts in kb.activations.items():
        yield f"activation:{key}", facts["replacement"]
    for name, spec in kb.ops.items():
        for c in spec.constraints:
            yield f"constraint:{name}:{c.check}", c.fix
    for c in kb.common_constraints:
        yield f"constraint:*:{c.check}", c.fix
    for name, advice in kb.unsupported_advice.items():
        yield f"unsupported:{name}", advice


def test_every_fix_with_code_is_executed_by_a_test() -> None:
    with_code = {key for key, text in fix_texts() if CODE.search(text or "")}
    missing = with_code - CODE_IN_FIXES.keys() - NOT_EXECUTABLE.keys()
    assert not missing, f"fix texts with code that no test executes: {sorted(missing)}"
    stale = (CODE_IN_FIXES.keys() | NOT_EXECUTABLE.keys()) - {key for key, _ in fix_texts()}
    assert not stale, f"listed but no such fix text: {sorted(stale)}"
    assert set(CODE_IN_FIXES.values()) <= set(globals()), "a listed test does not exist"


def test_compiler_failure_fixes_repeat_the_executed_texts() -> None:
    """C031 and C036 say what Q001 and S001 say (executed there)."""
    from coralcheck.registry import entry, failure_code

    not_quantized = entry(failure_code("model_not_quantized"))["fix"]
    assert all(statement in not_quantized for statement in FULL_INTEGER)
    dynamic = entry(failure_code("dynamic_sized_tensors"))["fix"]
    assert CLONE_WITH_BATCH_1 in dynamic and "set_shape(" not in dynamic


# --- converting and linting ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tf() -> Any:
    pytest.importorskip("tensorflow")
    from coralcheck.convert import import_tensorflow

    return import_tensorflow()


@pytest.fixture(scope="module")
def keras(tf: Any) -> Any:
    import keras

    return keras


def representative(shape: tuple[int, ...]) -> Callable[[], Iterator[list[np.ndarray]]]:
    """A representative_dataset: CALIBRATION_SAMPLES random inputs of `shape` in [0, 1)."""

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        rng = np.random.default_rng(0)
        for _ in range(CALIBRATION_SAMPLES):
            yield [rng.random(shape, dtype=np.float32)]

    return representative_dataset


class Converted:
    """A converted model, linted."""

    def __init__(self, path: Path, report: ModelReport) -> None:
        self.path = path
        self.report = report

    @property
    def opcodes(self) -> list[str]:
        return [op.opcode for op in self.report.ops]

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.report.findings}

    def fix(self, code: str) -> str:
        """The fix text the user sees on the first finding of `code` (asserted to exist)."""
        found = [f for f in self.report.findings if f.code == code]
        assert found, f"{code} not reported; findings: {sorted(self.codes)}; ops: {self.opcodes}"
        return found[0].fix

    @property
    def all_on_tpu(self) -> bool:
        return bool(self.report.ops) and all(p.placement == "tpu" for p in self.report.ops)

    def assert_maps(self, gone: str) -> None:
        """`gone` is no longer reported and every op is on the Edge TPU."""
        assert gone not in self.codes, self.report.findings
        cpu = [f"{p.opcode} ({p.index})" for p in self.report.ops if p.placement != "tpu"]
        assert not cpu and self.report.ops, f"on the CPU: {cpu}"


def convert(
    tf: Any,
    model: Any,
    tmp_path: Path,
    name: str,
    settings: tuple[str, ...] = FULL_INTEGER,
    *,
    converter: Any = None,
    sample_shape: tuple[int, ...] | None = None,
) -> Converted:
    """Convert `model` the usual way (from_keras_model, then `settings` executed), lint it."""
    from coralcheck.api import check
    from coralcheck.convert.ptq import native_stderr_silenced

    if converter is None:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    shape = sample_shape or (1, *tuple(model.inputs[0].shape)[1:])
    namespace = {
        "tf": tf,
        "converter": converter,
        "representative_dataset": representative(shape),
    }
    for statement in settings:
        exec(statement, namespace)
    with native_stderr_silenced():
        data = converter.convert()
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    return Converted(path, check(path).models[0])


def run_fix(fix: str, code: str, **names: Any) -> dict[str, Any]:
    """Assert `code` is in the `fix` text, then execute it with `names`; the namespace after."""
    assert code in fix, f"the fix text does not say {code!r}: {fix}"
    exec(code, names)
    return names


def eval_fix(fix: str, expression: str, **names: Any) -> Any:
    """Assert `expression` is in the `fix` text, then evaluate it with `names`."""
    assert expression in fix, f"the fix text does not say {expression!r}: {fix}"
    return eval(expression, names)


def small_cnn(keras: Any, activation: Callable[[Any], Any] | None = None) -> Any:
    """Conv 3x3 -> activation -> Conv 3x3 -> global average -> Dense 2, on 1x8x8x3."""
    layers = keras.layers
    inputs = keras.Input((8, 8, 3), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same")(inputs)
    if activation is not None:
        x = activation(x)
    x = layers.Conv2D(8, 3, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(2)(x))


# --- Q: quantization -------------------------------------------------------------------------


@pytest.mark.tensorflow
def test_q001_full_integer_settings(tf: Any, keras: Any, tmp_path: Path) -> None:
    model = small_cnn(keras, keras.layers.ReLU())
    before = convert(tf, model, tmp_path, "float", settings=())
    fix = before.fix("Q001")
    for statement in FULL_INTEGER:
        assert statement in fix
    after = convert(tf, model, tmp_path, "int8", FULL_INTEGER)
    after.assert_maps("Q001")


@pytest.mark.tensorflow
def test_q002_int8_only_ops_do_not_stop_the_converter_replacing_elu_does(
    tf: Any, keras: Any, tmp_path: Path
) -> None:
    """What Q002 says of the converter is true (ELU and CONV_3D convert, in float, with
    TFLITE_BUILTINS_INT8 only and no error), and its fix (ELU -> ReLU) works."""
    int8_only = "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]"
    assert int8_only in FULL_INTEGER
    elu = convert(tf, small_cnn(keras, keras.layers.ELU()), tmp_path, "elu")
    fix = elu.fix("Q002")
    assert int8_only in fix and "ELU, CONV_3D and WHILE in float without an error" in fix
    assert "ELU" in elu.opcodes

    layers = keras.layers
    inputs = keras.Input((4, 8, 8, 3), batch_size=1)
    x = layers.GlobalAveragePooling3D()(layers.Conv3D(4, 3, padding="same")(inputs))
    conv3d = convert(tf, keras.Model(inputs, layers.Dense(2)(x)), tmp_path, "conv3d")
    assert "Q002" in conv3d.codes and "CONV_3D" in conv3d.opcodes

    class Halving(keras.layers.Layer):
        """A loop whose trip count depends on the data: a WHILE op."""

        def call(self, x: Any) -> Any:
            steps = tf.cast(tf.reduce_sum(x) > 0, tf.int32) + 2
            _, y = tf.while_loop(
                lambda i, y: i < steps, lambda i, y: (i + 1, y * 0.5 + 0.1), [tf.constant(0), x]
            )
            return y

    loop = convert(tf, small_cnn(keras, Halving()), tmp_path, "while")
    assert "Q002" in loop.codes and "WHILE" in loop.opcodes

    assert "ReLU or PReLU for ELU" in fix
    relu = convert(tf, small_cnn(keras, keras.layers.ReLU()), tmp_path, "relu")
    relu.assert_maps("Q002")


def _wide_cnn(keras: Any) -> Any:
    """Weights large enough (> 1024 elements) for dynamic-range quantization to touch them."""
    layers = keras.layers
    inputs = keras.Input((12, 12, 3), batch_size=1)
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(16)(layers.Flatten()(x)))


@pytest.mark.tensorflow
def test_q003_hybrid_model_becomes_full_integer_with_a_representative_dataset(
    tf: Any, keras: Any, tmp_path: Path
) -> None:
    model = _wide_cnn(keras)
    dynamic_range = ("converter.optimizations = [tf.lite.Optimize.DEFAULT]",)
    before = convert(tf, model, tmp_path, "hybrid", dynamic_range)
    fix = before.fix("Q003")
    assert "converter.representative_dataset = representative_dataset" in fix
    assert "supported_ops TFLITE_BUILTINS_INT8, uint8 input and output" in fix
    after = convert(tf, model, tmp_path, "full_integer", FULL_INTEGER)
    after.assert_maps("Q003")


@pytest.mark.tensorflow
def test_q004_float16_setting_dropped(tf: Any, keras: Any, tmp_path: Path) -> None:
    model = small_cnn(keras, keras.layers.ReLU())
    float16 = "converter.target_spec.supported_types = [tf.float16]"
    before = convert(
        tf,
        model,
        tmp_path,
        "float16",
        ("converter.optimizations = [tf.lite.Optimize.DEFAULT]", float16),
    )
    fix = before.fix("Q004")
    assert float16 in fix and "drop that setting" in fix and "settings of Q001" in fix
    after = convert(tf, model, tmp_path, "int8", FULL_INTEGER)
    after.assert_maps("Q004")


@pytest.mark.tensorflow
def test_q005_int16_activations_replaced_by_int8(tf: Any, keras: Any, tmp_path: Path) -> None:
    model = small_cnn(keras, keras.layers.ReLU())
    sixteen_by_eight = (
        "converter.optimizations = [tf.lite.Optimize.DEFAULT]",
        "converter.representative_dataset = representative_dataset",
        "converter.target_spec.supported_ops = "
        "[tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]",
    )
    before = convert(tf, model, tmp_path, "16x8", sixteen_by_eight)
    fix = before.fix("Q005")
    assert "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8" in fix
    settings = (
        *sixteen_by_eight[:2],
        "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]",
        "converter.inference_input_type = tf.uint8",
        "converter.inference_output_type = tf.uint8",
    )
    assert settings[2] in fix and "uint8 input and output" in fix
    after = convert(tf, model, tmp_path, "int8", settings)
    after.assert_maps("Q005")


# --- S: shapes -------------------------------------------------------------------------------

CLONE_WITH_BATCH_1 = (
    "clone = keras.models.clone_model(model, input_tensors=keras.Input(shape=(H, W, C), "
    "batch_size=1)); clone.set_weights(model.get_weights())"
)
EXPORT_WITH_BATCH_1 = (
    "model.export(path, input_signature=[tf.TensorSpec([1, H, W, C], tf.float32)])"
)


def _flattening_cnn(keras: Any, shape: tuple[Any, ...], batch: int | None) -> Any:
    """Conv -> Flatten -> Dense: with an unknown batch, Flatten computes its shape at run time."""
    layers = keras.layers
    inputs = keras.Input(shape, batch_size=batch)
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    x = layers.GlobalAveragePooling2D()(x) if shape[0] is None else layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(4)(x))


@pytest.mark.tensorflow
def test_s001_q008_batch_none_fixed_by_clone_model_with_batch_1(
    tf: Any, keras: Any, tmp_path: Path
) -> None:
    """Keras's default (batch None): SHAPE/STRIDED_SLICE/PACK before the FC, S001, Q008.
    The clone with batch 1, and the export with a fixed signature, both map completely."""
    model = _flattening_cnn(keras, (16, 16, 3), None)
    with pytest.raises(AttributeError):  # what the old S001 fix said: gone in Keras 3
        model.input.set_shape((1, *model.input.shape[1:]))
    before = convert(tf, model, tmp_path, "batch_none", sample_shape=(1, 16, 16, 3))
    fix = before.fix("S001")
    assert "SHAPE" in before.opcodes and "Q008" in before.codes
    assert "static shapes (batch 1, see S001)" in before.fix("Q008")
    shape_advice = [
        f.fix for f in before.report.findings if f.opcode == "SHAPE" and f.code == "O001"
    ]
    assert shape_advice and "static shapes (batch 1, see S001)" in shape_advice[0]

    names = run_fix(fix, CLONE_WITH_BATCH_1, keras=keras, model=model, H=16, W=16, C=3)
    after = convert(tf, names["clone"], tmp_path, "clone")
    after.assert_maps("S001")
    assert "Q008" not in after.codes and "SHAPE" not in after.opcodes

    exported = tmp_path / "exported"
    assert "tf.lite.TFLiteConverter.from_saved_model(path)" in fix
    run_fix(fix, EXPORT_WITH_BATCH_1, tf=tf, model=model, path=str(exported), H=16, W=16, C=3)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(exported))
    from_export = convert(
        tf, model, tmp_path, "export", converter=converter, sample_shape=(1, 16, 16, 3)
    )
    from_export.assert_maps("S001")


@pytest.mark.tensorflow
def test_s001_unknown_height_and_width_fixed_by_the_same_clone(
    tf: Any, keras: Any, tmp_path: Path
) -> None:
    """Input((None, None, 3)): the converter itself refuses no size; the clone fixes all."""
    model = _flattening_cnn(keras, (None, None, 3), None)
    fix = convert(tf, model, tmp_path, "any_size", sample_shape=(1, 16, 16, 3)).fix("S001")
    names = run_fix(fix, CLONE_WITH_BATCH_1, keras=keras, model=model, H=16, W=16, C=3)
    convert(tf, names["clone"], tmp_path, "fixed_size").assert_maps("S001")


@pytest.mark.tensorflow
def test_s004_clone_works_with_tf_keras_too(tf: Any, tmp_path: Path) -> None:
    """ "the same works with tf.keras in TF 2.15 and older": tf_keras is that Keras 2. Its
    Flatten on an open batch is a constant reshape: only the open batch is left (S004)."""
    tf_keras = pytest.importorskip("tf_keras")
    model = _flattening_cnn(tf_keras, (16, 16, 3), None)
    before = convert(tf, model, tmp_path, "k2_batch_none", sample_shape=(1, 16, 16, 3))
    assert "S001" not in before.codes
    fix = before.fix("S004")
    assert "the same works with tf.keras in TF 2.15 and older" in fix
    names = run_fix(fix, CLONE_WITH_BATCH_1, keras=tf_keras, model=model, H=16, W=16, C=3)
    convert(tf, names["clone"], tmp_path, "k2_clone").assert_maps("S004")


@pytest.mark.tensorflow
def test_s003_batch_4_fixed_by_clone_model_with_batch_1(
    tf: Any, keras: Any, tmp_path: Path
) -> None:
    model = _flattening_cnn(keras, (16, 16, 3), 4)
    before = convert(tf, model, tmp_path, "batch4", sample_shape=(4, 16, 16, 3))
    fix = before.fix("S003")
    names = run_fix(fix, CLONE_WITH_BATCH_1, keras=keras, model=model, H=16, W=16, C=3)
    convert(tf, names["clone"], tmp_path, "batch1").assert_maps("S003")


@pytest.mark.tensorflow
def test_dilated_convolution_is_one_conv_2d_at_batch_1(tf: Any, keras: Any, tmp_path: Path) -> None:
    def dilated(batch: int | None) -> Any:
        inputs = keras.Input((16, 16, 3), batch_size=batch)
        return keras.Model(inputs, keras.layers.Conv2D(4, 3, dilation_rate=2)(inputs))

    before = convert(tf, dilated(None), tmp_path, "dilated_none", sample_shape=(1, 16, 16, 3))
    assert {"SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"} <= set(before.opcodes)
    advice = {f.opcode: f.fix for f in before.report.findings if f.code == "O001"}
    assert "with batch 1 (see S001)" in advice["SPACE_TO_BATCH_ND"]
    assert "with batch 1 (see S001)" in advice["BATCH_TO_SPACE_ND"]
    after = convert(tf, dilated(1), tmp_path, "dilated_1")
    after.assert_maps("O001")
    assert after.opcodes.count("CONV_2D") == 1 and "SPACE_TO_BATCH_ND" not in after.opcodes


# --- G: control flow -------------------------------------------------------------------------


@pytest.mark.tensorflow
def test_g002_lstm_with_tf_keras_is_one_fused_op_unroll_is_not(
    tf: Any, keras: Any, tmp_path: Path
) -> None:
    """Keras 3's LSTM is a WHILE loop (float: G002; int8 calibration crashes, see
    test_convert); tf_keras's converts to UNIDIRECTIONAL_SEQUENCE_LSTM, int8, all mapped."""
    tf_keras = pytest.importorskip("tf_keras")

    def lstm_model(k: Any, **lstm_args: Any) -> Any:
        inputs = k.Input((8, 4), batch_size=1)
        return k.Model(inputs, k.layers.Dense(3)(k.layers.LSTM(8, **lstm_args)(inputs)))

    keras3 = convert(tf, lstm_model(keras), tmp_path, "keras3_lstm", settings=())
    assert "WHILE" in keras3.opcodes
    fix = keras3.fix("G002")

    unrolled = convert(tf, lstm_model(keras, unroll=True), tmp_path, "unrolled")
    assert "unroll=True is no way out: its UNPACK stays on the CPU, and everything after it" in fix
    unpack = unrolled.opcodes.index("UNPACK")
    assert [p.placement for p in unrolled.report.ops[unpack:]] == ["cpu"] * (
        len(unrolled.opcodes) - unpack
    )

    assert "tf_keras.layers.LSTM converts to the fused UNIDIRECTIONAL_SEQUENCE_LSTM" in fix
    fused = convert(tf, lstm_model(tf_keras), tmp_path, "tf_keras_lstm")
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in fused.opcodes and "WHILE" not in fused.opcodes
    fused.assert_maps("G002")
    from coralcheck.edgetpu.knowledge import knowledge

    assert "tf_keras.layers.LSTM converts to" in knowledge().unsupported_advice["WHILE"]


# --- I: inputs and outputs -------------------------------------------------------------------


@pytest.mark.tensorflow
def test_i001_float_io_becomes_uint8(tf: Any, keras: Any, tmp_path: Path) -> None:
    model = small_cnn(keras, keras.layers.ReLU())
    float_io = FULL_INTEGER[:3]
    before = convert(tf, model, tmp_path, "float_io", float_io)
    fix = before.fix("I001")
    assert not before.all_on_tpu  # the float QUANTIZE and DEQUANTIZE at the ends
    # The input QUANTIZE's own root-cause fix says the same, since its input is the model's.
    quantize = [c for c in before.report.root_causes if c.opcode == "QUANTIZE"]
    assert quantize and "converter.inference_input_type = tf.uint8" in quantize[0].fix
    for statement in FULL_INTEGER[3:]:
        assert statement in fix
    settings = float_io + FULL_INTEGER[3:]
    convert(tf, model, tmp_path, "uint8_io", settings).assert_maps("I001")


@pytest.mark.tensorflow
def test_internal_float_quantize_is_not_told_to_change_the_input_type(
    tf: Any, keras: Any, tmp_path: Path
) -> None:
    """uint8 input already; the float QUANTIZE after ELU needs the ELU fixed, not the I/O. The
    float island (DEQUANTIZE -> ELU -> QUANTIZE) is one root cause, named by the ELU."""
    elu = convert(tf, small_cnn(keras, keras.layers.ELU()), tmp_path, "elu")
    (island,) = [c for c in elu.report.root_causes if c.opcode == "ELU"]
    assert "ELU" in island.fix and "int8 kernel" in island.fix
    for cause in elu.report.root_causes:
        assert "inference_input_type" not in cause.fix
    everything = " ".join(f.fix for f in elu.report.findings)
    assert "inference_input_type" not in everything


@pytest.mark.tensorflow
def test_i002_int8_input_becomes_uint8_and_its_quantize_maps(
    tf: Any, keras: Any, tmp_path: Path
) -> None:
    model = small_cnn(keras, keras.layers.ReLU())
    int8_io = (
        *FULL_INTEGER[:3],
        "converter.inference_input_type = tf.int8",
        "converter.inference_output_type = tf.int8",
    )
    before = convert(tf, model, tmp_path, "int8_io", int8_io)
    fixes = {f.tensor: f.fix for f in before.report.findings if f.code == "I002"}
    input_fix, output_fix = fixes.values()
    assert "converter.inference_input_type = tf.uint8" in input_fix
    assert "converter.inference_output_type = tf.uint8" in output_fix
    after = convert(tf, model, tmp_path, "uint8_io", FULL_INTEGER)
    after.assert_maps("I002")
    assert after.opcodes[0] == "QUANTIZE"  # the uint8 -> int8 requantization, on the TPU


# --- A: activations --------------------------------------------------------------------------


@pytest.mark.tensorflow
def test_a001_relu6_fuses_into_the_convolution(tf: Any, keras: Any, tmp_path: Path) -> None:
    silu = convert(tf, small_cnn(keras, keras.layers.Activation("silu")), tmp_path, "silu")
    assert "ReLU6 (fused into the preceding CONV_2D: no extra op)" in silu.fix("A001")
    relu6 = convert(tf, small_cnn(keras, keras.layers.ReLU(6.0)), tmp_path, "relu6")
    relu6.assert_maps("A001")
    assert len(relu6.opcodes) == len(silu.opcodes) - 2  # no LOGISTIC, no MUL, no RELU6 op


HARD_SWISH_SIXTH_FIRST = "x * (1 / 6) * keras.ops.relu6(x + 3)"


@pytest.mark.tensorflow
def test_a002_hardswish_with_the_sixth_first_maps(tf: Any, keras: Any, tmp_path: Path) -> None:
    """The formulations the text says the converter fuses are fused (HARD_SWISH), the one it
    recommends is not and maps; MobileNetV3 minimalistic has no HardSwish and maps."""
    ops = keras.ops
    fused = {
        "layer": lambda x: keras.layers.Activation("hard_swish")(x),
        "divided": lambda x: x * ops.relu6(x + 3) / 6,
        "times_sixth": lambda x: x * ops.relu6(x + 3) * (1 / 6),
    }
    fix = ""
    for name, activation in fused.items():
        before = convert(tf, small_cnn(keras, activation), tmp_path, name)
        assert "HARD_SWISH" in before.opcodes, name
        fix = before.fix("A002")
    assert "fuses the usual x * relu6(x + 3) / 6 back into HARD_SWISH" in fix

    def sixth_first(x: Any) -> Any:
        return eval_fix(fix, HARD_SWISH_SIXTH_FIRST, keras=keras, x=x)

    after = convert(tf, small_cnn(keras, sixth_first), tmp_path, "sixth_first")
    after.assert_maps("A002")
    assert {"ADD", "MUL"} <= set(after.opcodes) and "HARD_SWISH" not in after.opcodes

    minimalistic = "keras.applications.MobileNetV3Small(minimalistic=True)"
    assert minimalistic in fix
    # The call of the text, sized for a test: 32x32 input, batch 1, no weights to download.
    test_size = {
        "input_tensor": keras.Input((32, 32, 3), batch_size=1),
        "weights": None,
        "alpha": 0.75,
        "classes": 4,
    }
    sized = minimalistic.replace(")", ", **test_size)")
    model = eval(sized, {"keras": keras, "test_size": test_size})
    mobilenet = convert(tf, model, tmp_path, "mobilenet_v3_minimalistic")
    mobilenet.assert_maps("A002")


@pytest.mark.tensorflow
def test_a003_leaky_relu_as_maximum_or_prelu(tf: Any, keras: Any, tmp_path: Path) -> None:
    alpha = 0.1
    leaky = convert(tf, small_cnn(keras, keras.layers.LeakyReLU(alpha)), tmp_path, "leaky")
    fix = leaky.fix("A003")

    def maximum(x: Any) -> Any:
        return eval_fix(fix, "keras.ops.maximum(x, alpha * x)", keras=keras, x=x, alpha=alpha)

    after = convert(tf, small_cnn(keras, maximum), tmp_path, "maximum")
    after.assert_maps("A003")
    assert {"MUL", "MAXIMUM"} <= set(after.opcodes)

    # The order the text warns about is fused back into LEAKY_RELU.
    assert "maximum(alpha * x, x) back into LEAKY_RELU" in fix

    def swapped(x: Any) -> Any:
        return keras.ops.maximum(alpha * x, x)

    assert "LEAKY_RELU" in convert(tf, small_cnn(keras, swapped), tmp_path, "sw").opcodes

    def prelu(x: Any) -> Any:
        return eval_fix(fix, "keras.layers.PReLU(shared_axes=[1, 2])", keras=keras)(x)

    with_prelu = convert(tf, small_cnn(keras, prelu), tmp_path, "prelu")
    with_prelu.assert_maps("A003")
    assert "PRELU" in with_prelu.opcodes
    from coralcheck.edgetpu.knowledge import knowledge

    (constant_alpha,) = [
        c for c in knowledge().ops["PRELU"].constraints if c.check == "constant-alpha"
    ]
    assert "keras.layers.PReLU(shared_axes=[1, 2])" in constant_alpha.fix


@pytest.mark.tensorflow
def test_a004_gelu_sigmoid_approximation(tf: Any, keras: Any, tmp_path: Path) -> None:
    gelu = convert(tf, small_cnn(keras, keras.layers.Activation("gelu")), tmp_path, "gelu")
    fix = gelu.fix("A004")

    def approximation(x: Any) -> Any:
        return eval_fix(fix, "x * keras.ops.sigmoid(1.702 * x)", keras=keras, x=x)

    after = convert(tf, small_cnn(keras, approximation), tmp_path, "approximation")
    after.assert_maps("A004")
    assert "LOGISTIC" in after.opcodes and "GELU" not in after.opcodes


@pytest.mark.tensorflow
def test_a005_a006_elu_and_mish_become_prelu(tf: Any, keras: Any, tmp_path: Path) -> None:
    prelu = "keras.layers.PReLU(shared_axes=[1, 2])"
    for code, activation in (
        ("A005", keras.layers.ELU()),
        ("A006", keras.layers.Activation("mish")),
    ):
        before = convert(tf, small_cnn(keras, activation), tmp_path, code)
        fix = before.fix(code)

        def replacement(x: Any, fix: str = fix) -> Any:
            return eval_fix(fix, prelu, keras=keras)(x)

        after = convert(tf, small_cnn(keras, replacement), tmp_path, f"{code}_prelu")
        after.assert_maps(code)


# --- O: ops, and advice that depends on the target compiler ----------------------------------


@pytest.mark.tensorflow
def test_strided_slice_masks_are_lowered_by_tf2(tf: Any, keras: Any, tmp_path: Path) -> None:
    """What the zero-masks fix says of TF 2.x is what TF 2.21 does: `...` becomes a plain
    slice that maps, a new axis becomes a RESHAPE; no STRIDED_SLICE keeps a mask."""
    from coralcheck.edgetpu.knowledge import knowledge

    (masks,) = [c for c in knowledge().ops["STRIDED_SLICE"].constraints if c.check == "zero-masks"]
    assert (
        "x[..., a:b] to a plain slice" in masks.fix
        and "x[..., tf.newaxis] to a RESHAPE" in masks.fix
    )

    def model(index: Callable[[Any], Any]) -> Any:
        inputs = keras.Input((8, 8, 3), batch_size=1)
        return keras.Model(inputs, index(keras.layers.Conv2D(4, 1)(inputs)))

    ellipsis = convert(tf, model(lambda x: x[..., 1:3]), tmp_path, "ellipsis")
    assert "STRIDED_SLICE" in ellipsis.opcodes
    ellipsis.assert_maps("O002")
    new_axis = convert(tf, model(lambda x: x[..., None]), tmp_path, "new_axis")
    assert "RESHAPE" in new_axis.opcodes
    assert not [f for f in new_axis.report.findings if f.code == "O002"]


def _version_finding(report: ModelReport, code: str, opcode: str) -> str:
    found = [f for f in report.findings if f.code == code and f.opcode == opcode]
    assert found, report.findings
    return found[0].fix


@pytest.mark.tensorflow
def test_op_version_advice_names_a_newer_compiler_only_where_one_maps_it(
    tf: Any, keras: Any, tmp_path: Path
) -> None:
    """Keras's bilinear upsampling is RESIZE_BILINEAR version 3 (half_pixel_centers): 15.0
    does not map it, 16.0 does. The 15.0 finding says so; at 16.0 it is gone."""
    from coralcheck.api import check

    inputs = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.UpSampling2D(2, interpolation="bilinear")(keras.layers.Conv2D(4, 3)(inputs))
    converted = convert(tf, keras.Model(inputs, x), tmp_path, "resize")
    at_15 = check(converted.path, compiler_version="15.0").models[0]
    fix = _version_finding(at_15, "O004", "RESIZE_BILINEAR")
    assert (
        "Compiler 16.0 maps RESIZE_BILINEAR version 3: target it (--compiler-version 16.0)" in fix
    )
    at_16 = check(converted.path, compiler_version="16.0").models[0]
    assert "O004" not in {f.code for f in at_16.findings}


@pytest.mark.tensorflow
def test_unparseable_op_advice_never_offers_a_compiler_that_cannot_parse_it(
    tf: Any, keras: Any, tmp_path: Path
) -> None:
    """Mish's EXP is version 2, which no compiler release parses (16.0 included): no
    "use a newer compiler", at 16.0 or at 15.0."""
    from coralcheck.api import check

    mish = convert(tf, small_cnn(keras, keras.layers.Activation("mish")), tmp_path, "mish")
    for version in ("15.0", "16.0"):
        report = check(mish.path, compiler_version=version).models[0]
        fix = _version_finding(report, "O005", "EXP")
        assert "Compiler 1" not in fix and "--compiler-version" not in fix, (version, fix)


def test_unparseable_op_advice_names_the_release_that_parses_it() -> None:
    """REVERSE_V2 version 3: 15.0 cannot parse it (compiler-logs/13), 16.0 can."""
    from helpers.tflite_builder import OpSpec, TensorSpec, build_model

    from coralcheck.api import check

    data = build_model(
        tensors=[
            TensorSpec("x", [1, 8, 8, 4], "INT8", scale=[0.5], zero_point=[0]),
            TensorSpec("axis", [1], "INT32", data=np.array([2], np.int32)),
            TensorSpec("y", [1, 8, 8, 4], "INT8", scale=[0.5], zero_point=[0]),
        ],
        ops=[OpSpec("REVERSE_V2", [0, 1], [2], version=3)],
        inputs=[0],
        outputs=[2],
    )
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "reverse.tflite"
        path.write_bytes(data)
        at_15 = check(path, compiler_version="15.0").models[0]
        fix = _version_finding(at_15, "O005", "REVERSE_V2")
        assert "Compiler 16.0 parses REVERSE_V2 version 3" in fix
        at_16 = check(path, compiler_version="16.0").models[0]
        assert "O005" not in {f.code for f in at_16.findings}


@pytest.mark.parametrize(
    ("message", "compiler", "offered"),
    [
        # EXP v2: no release parses it (compiler-logs/14, 16.0): never "use 16.0"
        ("Didn't find op for builtin opcode 'EXP' version '2'", "16.0.384591198", None),
        ("Didn't find op for builtin opcode 'EXP' version '2'", "15.0.340273435", None),
        # REVERSE_V2 v3: 15.0 cannot (compiler-logs/13), 16.0 can
        ("Didn't find op for builtin opcode 'REVERSE_V2' version '3'", "15.0.340273435", "16.0"),
        ("Didn't find op for builtin opcode 'REVERSE_V2' version '3'", "16.0.384591198", None),
        ("Didn't find op for builtin opcode 'REVERSE_V2' version '3'", None, "16.0"),
    ],
)
def test_c032_offers_a_newer_compiler_only_when_it_parses_the_op(
    message: str, compiler: str | None, offered: str | None
) -> None:
    from coralcheck.checks.compiler import compiler_failure

    fix = compiler_failure("op_version_not_found", message, None, compiler).fix
    if offered is None:
        assert "Compiler 1" not in fix and "compiler 16.0" not in fix.lower(), fix
    else:
        assert f"Compiler {offered} parses" in fix
        if compiler is None:
            assert "If your compiler is older than 16.0" in fix


def test_c038_says_use_16_only_to_older_compilers() -> None:
    from coralcheck.checks.compiler import compiler_failure

    message = "Edge TPU Compiler version 15.0.340273435"
    assert (
        "Use compiler 16.0" in compiler_failure("version_only", message, None, "15.0.340273435").fix
    )
    assert (
        "Use compiler 16.0"
        not in compiler_failure("version_only", message, None, "16.0.384591198").fix
    )
