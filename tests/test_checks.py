"""Every rule on converter-made fixtures (fixtures/, TF 2.21), the real corpus, and built edge
cases: the code, the op or tensor it locates, and the placement it explains."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
from conftest import CORPUS
from helpers.findings import codes, found, source_report
from helpers.nets import Net

from coralcheck import registry
from coralcheck.checks import SOURCE_FAMILIES
from coralcheck.checks.catalogue import all_rules
from coralcheck.edgetpu.knowledge import knowledge
from coralcheck.model import Model, load


def rule_of(code: str) -> registry.Rule:
    return registry.describe(code)


def source_rules() -> list[registry.Rule]:
    return [r for r in all_rules() if r.code[0] in SOURCE_FAMILIES]


# --- the registry ----------------------------------------------------------------------------


def test_registry_has_every_family_and_stable_fields() -> None:
    rules = all_rules()
    by_code = {r.code: r for r in rules}
    assert len(by_code) == len(rules)
    families = knowledge().families
    for r in source_rules():
        assert re.fullmatch(r"[QSOGIAM]\d{3}", r.code)
        assert r.family == families[r.code[0]]
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", r.name)
        assert r.severity in ("error", "warning", "info")
        assert r.title and r.fix and r.example and r.explanation
    assert {r.code[0] for r in rules} >= set("QSOGIAMC")
    assert len({r.name for r in rules}) == len(rules)


def test_explanation_is_the_check_functions_docstring() -> None:
    from coralcheck.checks import quantization

    rule = rule_of("Q001")
    first_sentence = inspect.getdoc(quantization.not_integer_quantized).split("\n")[0]
    assert rule.explanation.startswith(first_sentence)
    assert "\n\n" in rule.explanation  # paragraphs kept


def test_every_catalogue_entry_has_a_check_and_every_check_an_entry() -> None:
    all_rules()  # imports every rule module
    assert set(registry.functions()) == set(knowledge().rule_texts)


def test_findings_carry_the_rules_severity_and_a_fix() -> None:
    report = source_report("unsupported_op_int8.tflite")
    for f in report.findings:
        assert f.severity == rule_of(f.code).severity
        assert f.fix


# --- Q: quantization -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["float32.tflite", "float16.tflite", "dynamic_range.tflite"])
def test_q001_float_models_are_not_integer_quantized(name: str) -> None:
    report = source_report(name)
    (f,) = found(report, "Q001")
    assert f.severity == "error" and f.tensor == "input"
    assert report.ops[f.op].opcode == "CONV_2D"
    assert report.summary.ops_tpu == 0


def test_q001_silent_on_integer_models() -> None:
    for name in ("demo_int8.tflite", "float_io_int8.tflite", "while_loop.tflite"):
        assert "Q001" not in codes(source_report(name))


def test_q002_names_the_float_island_and_its_ops() -> None:
    report = source_report("while_loop.tflite")
    (f,) = found(report, "Q002")
    assert f.op == 3 and f.opcode == "WHILE"
    assert "DEQUANTIZE (op 2) -> WHILE (op 3) -> QUANTIZE (op 4)" in f.message
    assert f.tensor == "tfl.dequantize"


def test_q002_not_for_the_float_io_boundary() -> None:
    assert "Q002" not in codes(source_report("float_io_int8.tflite"))


def test_q002_finds_movenets_float_maths(corpus_dir) -> None:
    model = load(
        corpus_dir / "models/coral_test_data_grouper/movenet_single_pose_lightning_ptq.tflite"
    )
    messages = [f.message for f in found(source_report(model), "Q002")]
    assert any("SQRT (op 123)" in m for m in messages)
    assert any("DIV (op 127)" in m for m in messages)


def test_q003_dynamic_range_names_the_hybrid_ops() -> None:
    (f,) = found(source_report("dynamic_range.tflite"), "Q003")
    assert "CONV_2D (op 2)" in f.message and "FULLY_CONNECTED (op 6)" in f.message
    assert f.op == 2 and f.tensor == "fixture_cnn_1/conv2_1/convolution"


def test_q004_float16_weights() -> None:
    report = source_report("float16.tflite")
    (f,) = found(report, "Q004")
    assert "6 FLOAT16 constants" in f.message
    assert report.ops[f.op].opcode == "DEQUANTIZE"
    assert "Q007" not in codes(report)  # the DEQUANTIZEd weights are Q004's, not Q007's


def test_q005_int16_activations() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4], "INT16")
    y = net.op("ADD", [x, x], [1, 8, 8, 4], "INT16")
    (f,) = found(source_report(net.model([y])), "Q005")
    assert f.op == 0 and f.tensor == "t0"


def test_q006_bias_must_be_int32() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4])
    w = net.const(np.ones((4, 1, 1, 4), np.int8))
    b = net.const(np.zeros(4, np.int64), name="bias64")
    y = net.op("CONV_2D", [x, w, b], [1, 8, 8, 4])
    (f,) = found(source_report(net.model([y])), "Q006")
    assert (f.op, f.tensor) == (0, "bias64") and "INT64" in f.message


def test_q007_weights_from_another_op_are_not_constant() -> None:
    net = Net()
    x = net.input([1, 16])
    w = net.input([4, 16], name="runtime_weights")
    y = net.op("FULLY_CONNECTED", [x, w, -1], [1, 4])
    report = source_report(net.model([y]))
    (f,) = found(report, "Q007")
    assert (f.op, f.tensor) == (0, "runtime_weights") and "graph input" in f.message
    assert report.ops[0].placement == "cpu"


def test_q006_and_q007_name_each_op_of_one_signature_on_its_own() -> None:
    # Ops that look alike are selected together, but what signatures leave out (tensor names,
    # producers) is still read op by op: only the FC fed runtime weights is Q007's.
    net = Net()
    x = net.input([1, 16])
    outs = []
    for i in range(2):
        bias = net.const(np.zeros(4, np.int64), name=f"bias64_{i}")
        outs.append(
            net.op("FULLY_CONNECTED", [x, net.const(np.ones((4, 16), np.int8)), bias], [1, 4])
        )
    half = net.const(np.ones((4, 16), np.float16))
    expanded = net.op("DEQUANTIZE", [half], [4, 16], "FLOAT32")
    fx = net.input([1, 16], "FLOAT32")
    runtime = net.input([4, 16], "FLOAT32", name="runtime_weights")
    for w in (expanded, runtime):
        outs.append(net.op("FULLY_CONNECTED", [fx, w, -1], [1, 4], "FLOAT32"))
    report = source_report(net.model(outs))
    assert [(f.op, f.tensor) for f in found(report, "Q006")] == [(0, "bias64_0"), (1, "bias64_1")]
    assert [(f.op, f.tensor) for f in found(report, "Q007")] == [(4, "runtime_weights")]


def test_q008_int32_shape_arithmetic() -> None:
    (f,) = found(source_report("dynamic_batch_int8.tflite"), "Q008")
    assert "STRIDED_SLICE (op 7) -> PACK (op 8) -> RESHAPE (op 9)" in f.message
    assert f.op == 7


# --- S: shapes -------------------------------------------------------------------------------


def test_s001_dynamic_batch_names_the_input_and_the_shape_chain() -> None:
    report = source_report("dynamic_batch_int8.tflite")
    (f,) = found(report, "S001")
    assert f.severity == "error" and f.tensor == "input"
    assert "[-1, 32, 32, 3]" in f.message
    assert "SHAPE (op 6) -> STRIDED_SLICE (op 7) -> PACK (op 8) -> RESHAPE (op 9)" in f.message


def test_s004_an_open_batch_made_inside_the_graph_is_a_warning() -> None:
    net = Net()
    x = net.input([1, 8])
    y = net.op("RELU", [x], [1, 8])
    net.tensors[y].shape_signature = [-1, 8]
    report = source_report(net.model([y]))
    (f,) = found(report, "S004")
    assert f.op == 0 and f.tensor == net.tensors[y].name and f.severity == "warning"
    assert "S001" not in codes(report)


def test_s001_an_unknown_size_beyond_the_batch_is_an_error() -> None:
    net = Net()
    x = net.input([1, 1, 1, 3], signature=[-1, -1, -1, 3])
    y = net.op("RELU", [x], [1, 1, 1, 3])
    net.tensors[y].shape_signature = [-1, -1, -1, 3]
    report = source_report(net.model([y]))
    (f,) = found(report, "S001")
    assert f.severity == "error" and "placeholder size [1, 1, 1, 3]" in f.message
    assert "S004" not in codes(report)


def test_s001_a_size_computed_at_run_time_is_an_error_even_with_batch_only() -> None:
    net = Net()
    x = net.input([1, 8], signature=[-1, 8])
    shape = net.op("SHAPE", [x], [2], "INT32")
    y = net.op("RESHAPE", [x, shape], [1, 8])
    net.tensors[y].shape_signature = [-1, 8]
    report = source_report(net.model([y]))
    (f,) = found(report, "S001")
    assert "shapes computed at run time: SHAPE (op 0) -> RESHAPE (op 1)" in f.message
    assert "S004" not in codes(report)


def test_s002_rank5_reshape_chain() -> None:
    report = source_report("rank5_int8.tflite")
    located = [(f.op, f.opcode) for f in found(report, "S002")]
    assert located == [(2, "RESHAPE"), (3, "MUL"), (4, "ADD"), (5, "RESHAPE")]
    assert all(report.ops[op].placement == "cpu" for op, _ in located)


def test_s003_batch_4_reported_once_on_the_input() -> None:
    report = source_report("batch4_int8.tflite")
    (f,) = found(report, "S003")
    assert f.tensor == "input" and "batch 4" in f.message
    assert "S002" not in codes(report)  # the batch dimension is S003's


# --- O: ops ----------------------------------------------------------------------------------


def test_o001_gather_is_unsupported_and_the_root_cause() -> None:
    report = source_report("unsupported_op_int8.tflite")
    (f,) = found(report, "O001")
    assert (f.op, f.opcode) == (2, "GATHER")
    assert "1x1 CONV_2D" in f.fix  # the data's advice for GATHER
    assert [op.placement for op in report.ops[:3]] == ["tpu", "tpu", "cpu"]
    assert report.root_causes[0].op == 2 and report.root_causes[0].ops_recovered == 9


@pytest.mark.parametrize("opcode", ["EQUAL", "LESS_EQUAL"])
def test_o001_comparisons_advise_int8_arithmetic(opcode: str) -> None:
    # The corpus's random forests: comparisons (BOOL) stay on the CPU, the SUB -> LOGISTIC ->
    # MUL variants of the same trees map (rules/ops.toml [unsupported]).
    net = Net()
    x = net.input([1, 8])
    y = net.op(opcode, [x, net.const(np.zeros((1, 8), np.int8))], [1, 8], "BOOL")
    (f,) = found(source_report(net.model([y])), "O001")
    assert f.opcode == opcode and "LOGISTIC" in f.fix and "BOOL" in f.fix


def test_o001_transpose_before_compiler_16() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4])
    y = net.op("TRANSPOSE", [x, net.const(np.array([0, 2, 1, 3], np.int32))], [1, 8, 8, 4])
    model = net.model([y])
    (f,) = found(source_report(model, "14.1"), "O001")
    assert "from compiler 16.0" in f.message
    assert "O001" not in codes(source_report(model, "16.0"))


def test_o002_strided_slice_with_stride_2() -> None:
    report = source_report("stridedslice_int8.tflite")
    (f,) = found(report, "O002")
    assert f.op == 2 and "[1, 2, 2, 1]" in f.message
    assert "SPACE_TO_DEPTH" in f.fix


def test_o002_concat_with_a_non_zero_constant() -> None:
    report = source_report("concat_const_int8.tflite")
    (f,) = found(report, "O002")
    assert f.op == 2 and f.tensor == "fixture_cnn_1/Const"
    assert "zero point -128" in f.message


def test_o002_concat_with_zero_padding_maps() -> None:
    # The all-zero constant is stored as -128 (its zero point): the check dequantizes.
    report = source_report("concat_zero_int8.tflite")
    assert "O002" not in codes(report)
    assert report.summary.ops_cpu == 0


def test_o002_pooling_with_a_fused_activation() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4])
    options = {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
               "filter_height": 2, "fused_activation_function": "RELU"}  # fmt: skip
    y = net.op("MAX_POOL_2D", [x], [1, 4, 4, 4], options=options)
    (f,) = found(source_report(net.model([y])), "O002")
    assert f.op == 0 and "RELU" in f.message


def test_o002_softmax_1d_rule_is_version_aware() -> None:
    net = Net()
    x = net.input([1, 4, 16])
    model = net.model([net.op("SOFTMAX", [x], [1, 4, 16], options={"beta": 1.0})])
    (f,) = found(source_report(model, "15.0"), "O002")
    assert "not 1-D" in f.message
    assert "O002" not in codes(source_report(model, "16.0"))  # yolov8n's N-D softmax is supported


def test_o003_yolov8_head(corpus_dir) -> None:
    report = source_report(load(corpus_dir / "models/goalbuddy/yolov8n_full_integer_quant.tflite"))
    located = [(f.op, f.opcode) for f in found(report, "O003")]
    assert located == [
        (233, "TRANSPOSE"),
        (234, "RESHAPE"),
        (235, "CONCATENATION"),
        (236, "STRIDED_SLICE"),
        (238, "TRANSPOSE"),
        (239, "TRANSPOSE"),
        (252, "STRIDED_SLICE"),
    ]
    assert "did not map in real compiles" in found(report, "O003")[0].message


def test_o003_deeplab_resize(corpus_dir) -> None:
    model = load(corpus_dir / "models/coral_test_data_grouper/deeplabv3_mnv2_pascal_quant.tflite")
    report = source_report(model)
    located = {f.op: f.message for f in found(report, "O003")}
    assert sorted(located) == [64, 70]
    assert "1x1 to 33x33" in located[64]
    assert "TILE" in found(report, "O003")[0].fix


def test_o004_resize_version_3_at_compiler_15() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4])
    size = net.const(np.array([16, 16], np.int32))
    options = {"align_corners": False, "half_pixel_centers": True}
    y = net.op("RESIZE_BILINEAR", [x, size], [1, 16, 16, 4], options=options, version=3)
    model = net.model([y])
    (f,) = found(source_report(model, "15.0"), "O004")
    assert f.op == 0 and "version 3" in f.message
    assert "O004" not in codes(source_report(model, "16.0"))


def test_o005_exp_version_2_cannot_be_parsed_by_compiler_16() -> None:
    net = Net()
    x = net.input([1, 8])
    y = net.op("EXP", [x], [1, 8], version=2)
    report = source_report(net.model([y]))
    (f,) = found(report, "O005")
    assert f.severity == "error" and f.op == 0 and "could not be parsed" in f.message


def test_o006_posenet_decoder(corpus_dir) -> None:
    model = load(
        corpus_dir
        / "models/coral_test_data_grouper/posenet_mobilenet_v1_075_353_481_16_quant_decoder.tflite"
    )
    report = source_report(model)
    (f,) = found(report, "O006")
    assert (f.op, f.opcode) == (37, "CUSTOM:PosenetDecoderOp")
    assert {"I001", "Q002"}.isdisjoint(codes(report))  # the decoder's float results are by design


# --- G: graph --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,op,blocked",
    [
        ("unsupported_op_int8.tflite", 2, 8),
        ("hardswish_int8.tflite", 2, 8),
        ("stridedslice_int8.tflite", 2, 8),
        # The WHILE, not its DEQUANTIZE, is the cause of the float island DEQUANTIZE -> WHILE
        # -> QUANTIZE (ops 2-4).
        ("while_loop.tflite", 3, 8),
    ],
)
def test_g001_the_first_cpu_op_drags_the_rest(name: str, op: int, blocked: int) -> None:
    report = source_report(name)
    (f,) = found(report, "G001")
    assert f.op == op and f.severity == "error"
    assert f"{blocked} supported ops after it run on the CPU too" in f.message
    assert sum(1 for p in report.ops if p.blamed_on == op) == blocked


def test_g001_silent_when_nothing_is_blocked() -> None:
    for name in ("demo_int8.tflite", "float_io_int8.tflite", "silu_int8.tflite"):
        assert "G001" not in codes(source_report(name))


def test_g002_while_loop_subgraphs() -> None:
    (f,) = found(source_report("while_loop.tflite"), "G002")
    assert f.op == 3 and "3 TFLite subgraphs" in f.message
    assert "while_cond" in f.message and "while_body" in f.message


# --- I: inputs and outputs -------------------------------------------------------------------


def test_i001_float_input_and_output() -> None:
    report = source_report("float_io_int8.tflite")
    located = [(f.op, f.tensor) for f in found(report, "I001")]
    assert located == [(0, "input"), (9, "Identity")]
    assert report.ops[0].placement == report.ops[9].placement == "cpu"
    assert all(p.placement == "tpu" for p in report.ops[1:9])


def test_i002_int8_io(corpus_dir) -> None:
    report = source_report(load(corpus_dir / "models/goalbuddy/yolov8n_full_integer_quant.tflite"))
    assert [f.tensor for f in found(report, "I002")] == [
        "serving_default_images:0",
        "PartitionedCall:0",
    ]
    assert "I002" not in codes(source_report("demo_int8.tflite"))  # uint8 I/O


# --- A: activations --------------------------------------------------------------------------


def test_a001_silu_maps_but_relu_is_advised() -> None:
    report = source_report("silu_int8.tflite")
    (f,) = found(report, "A001")
    assert f.severity == "info" and f.op == 2 and "2 SiLU activations" in f.message
    assert report.summary.ops_cpu == 0


@pytest.mark.parametrize(
    "name,code,opcode,hint",
    [
        ("hardswish_int8.tflite", "A002", "HARD_SWISH", "keras.ops.relu6"),
        ("leakyrelu_int8.tflite", "A003", "LEAKY_RELU", "MAXIMUM"),
        ("gelu_int8.tflite", "A004", "GELU", "sigmoid"),
    ],
)
def test_unsupported_activation_fixtures(name: str, code: str, opcode: str, hint: str) -> None:
    report = source_report(name)
    first, second = found(report, code)
    assert (first.op, second.op) == (2, 4) and first.opcode == opcode
    (cut,) = found(report, "G001")  # what the first one keeps off the Edge TPU
    assert cut.op == 2 and "8 supported ops after it" in cut.message
    assert hint in first.fix
    assert "O001" not in codes(report)  # the activation rule is the one that explains it


def test_a005_elu() -> None:
    net = Net()
    x = net.input([1, 8])
    (f,) = found(source_report(net.model([net.op("ELU", [x], [1, 8])])), "A005")
    assert f.op == 0 and "PReLU" in f.fix


def test_a006_mish_pattern() -> None:
    net = Net()
    x = net.input([1, 8])
    e = net.op("EXP", [x], [1, 8])
    one = net.const(np.ones((1,), np.int8))
    a = net.op("ADD", [e, one], [1, 8])
    lg = net.op("LOG", [a], [1, 8])
    t = net.op("TANH", [lg], [1, 8])
    m = net.op("MUL", [x, t], [1, 8])
    report = source_report(net.model([m]))
    (f,) = found(report, "A006")
    assert (
        f.op == 0
        and "EXP (op 0) -> ADD (op 1) -> LOG (op 2) -> TANH (op 3) -> MUL (op 4)" in f.message
    )
    assert "O001" not in codes(report)


# --- M: memory -------------------------------------------------------------------------------


def _fc_model(units: int, depth: int) -> Model:
    net = Net()
    x = net.input([1, depth])
    w = net.const(np.zeros((units, depth), np.int8))
    b = net.const(np.zeros(units, np.int32))
    return net.model([net.op("FULLY_CONNECTED", [x, w, b], [1, units])])


def test_m001_parameters_streamed_off_chip() -> None:
    report = source_report(_fc_model(4096, 2304))  # 9 MiB of weights
    (f,) = found(report, "M001")
    assert report.memory.off_chip_bytes > 0
    assert (
        report.memory.parameter_bytes == report.memory.on_chip_bytes + report.memory.off_chip_bytes
    )
    assert "streamed every inference" in f.message


def test_m002_parameters_near_the_cache() -> None:
    report = source_report(_fc_model(4096, 1856))  # ~7.3 MiB
    assert codes(report) & {"M001", "M002"} == {"M002"}
    assert report.memory.off_chip_bytes == 0


def test_memory_counts_only_ops_on_the_edge_tpu() -> None:
    report = source_report("float32.tflite")
    assert report.memory.parameter_bytes == 0 and not codes(report) & {"M001", "M002"}


# --- the whole report on the fixtures --------------------------------------------------------


EXPECTED_ROOT_CAUSE = {
    "hardswish_int8.tflite": 2,
    "leakyrelu_int8.tflite": 2,
    "gelu_int8.tflite": 2,
    "unsupported_op_int8.tflite": 2,
    "stridedslice_int8.tflite": 2,
    "concat_const_int8.tflite": 2,
    "rank5_int8.tflite": 2,
}


@pytest.mark.parametrize("name,op", sorted(EXPECTED_ROOT_CAUSE.items()))
def test_fixture_root_cause_and_blame(name: str, op: int) -> None:
    report = source_report(name)
    assert report.root_causes[0].op == op
    assert [p.placement for p in report.ops[:op]] == ["tpu"] * op
    later = [p for p in report.ops[op + 1 :]]
    assert all(p.placement == "cpu" for p in later)
    assert all(p.blamed_on == op for p in later if p.status.startswith("More than one"))


def test_clean_fixtures_map_fully_without_problems() -> None:
    for name in ("demo_int8.tflite", "concat_zero_int8.tflite", "silu_int8.tflite"):
        report = source_report(name)
        assert report.summary.ops_cpu == 0 and report.summary.tpu_segments == 1
        assert not [f for f in report.findings if f.severity != "info"], name


def test_corpus_models_analyze_without_internal_errors() -> None:
    if not (CORPUS / "summary.csv").exists():
        pytest.skip("the shared corpus (../shared/corpus) is not here")
    for path in sorted((CORPUS / "models").glob("*/*.tflite")):
        report = source_report(load(path))
        assert len(report.ops) == len(load(path).main.operators)


def test_messages_stay_short_for_hostile_names_and_shapes() -> None:
    # Names and shapes come from the file: a corrupt or hostile one can be megabytes long.
    net = Net()
    x = net.input([2] * 40, name="x" * 100_000)
    y = net.op("GATHER", [x, net.const(np.array([1, 0], np.int32))], [2] * 40)
    report = source_report(net.model([y]))
    texts = [f.message for f in report.findings] + [op.reason for op in report.ops]
    assert texts and max(map(len, texts)) < 1000
    assert any("(40 dims)" in t for t in texts)


@pytest.mark.parametrize(
    "shape,maps",
    [
        ([1, 256, 128, 3], False),  # google-coral/edgetpu#461: did not map
        ([1, 64, 128, 3], True),  # a quarter of it (#461's fix) mapped
        ([1, 7, 7, 2048], True),  # a global average pool: 49 values per output
    ],
)
def test_o003_large_mean_reductions(shape: list[int], maps: bool) -> None:
    net = Net()
    x = net.input(shape)
    axes = net.const(np.array([1, 2], np.int32))
    m = net.op("MEAN", [x, axes], [1, 1, 1, shape[-1]], options={"keep_dims": True})
    report = source_report(net.model([m]))
    assert (report.ops[0].placement == "tpu") is maps
    assert ("O003" not in codes(report)) is maps
