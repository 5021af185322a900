"""The placement predictor: agreement with the real compiler on the shared corpus, the
single-segment partitioning, version-aware op tables, MACs, memory and root causes.

Models no converter emits are built with tests/helpers/tflite_builder.py through `Net`
(tests/helpers/nets.py).
"""

from __future__ import annotations

import inspect
import re
import time
from collections import Counter
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from conftest import CORPUS, FIXTURES
from helpers.agreement import agreement
from helpers.nets import Net

from coralcheck.analyze.cost import op_macs
from coralcheck.analyze.placement import predict
from coralcheck.analyze.verdicts import verdict
from coralcheck.edgetpu.constraints import CONSTRAINT_CHECKS, READS_CONSTANT_DATA
from coralcheck.edgetpu.opview import OpView, OpViews, op_signatures
from coralcheck.edgetpu.statuses import (
    DATA_TYPE,
    MORE_THAN_ONE_SUBGRAPH,
    NOT_SUPPORTED,
    RANK,
    UNSPECIFIED,
    VERSION,
)
from coralcheck.edgetpu.statuses import MAPPED_STATUS as MAPPED
from coralcheck.edgetpu.target import target
from coralcheck.errors import UsageError
from coralcheck.model import Model, Operator, Quantization, Subgraph, Tensor, load
from coralcheck.options import Options
from coralcheck.pipeline.source import analyze

# The compiler's status for non-constant FULLY_CONNECTED parameters (google-coral/edgetpu#25).
NOT_CONSTANT = "Filter, bias, or other param is not constant at compile-time"


def placements(model: Model, compiler: str = "16.0") -> list[tuple[str, str]]:
    return [(p.placement, p.status) for p in predict(model, target(compiler)).ops]


# --- the real compiler on the shared corpus ------------------------------------------------


def _pairs() -> list[tuple[str, dict]]:
    if not (CORPUS / "groundtruth.json").exists():
        return []
    return agreement.usable_pairs(CORPUS)


@pytest.mark.parametrize("compiled,entry", _pairs(), ids=[p[0] for p in _pairs()])
def test_every_op_agrees_with_the_real_compiler(corpus_dir, compiled: str, entry: dict) -> None:
    result = agreement.compare(compiled, entry, corpus_dir)
    assert result["disagreements"] == [], result["disagreements"]
    assert result["agree"] == len(entry["per_op"])
    assert result["segments_predicted"] == entry["segments"]


def test_status_counts_match_the_compiler_logs(corpus_dir) -> None:
    logged = [
        (c, e) for c, e in agreement.usable_pairs(corpus_dir) if agreement.log_for(c, corpus_dir)
    ]
    assert logged  # every pair whose compiler log the corpus has (corpus/pairs.csv)
    for compiled, entry in logged:
        result = agreement.compare(compiled, entry, corpus_dir)
        assert result["status_mismatches"] == {}, (compiled, result["status_mismatches"])


def test_yolov8_head_limits_are_reported_in_the_compilers_words(corpus_dir) -> None:
    model = load(corpus_dir / "models/goalbuddy/yolov8n_full_integer_quant.tflite")
    ops = predict(model, target("16.0")).ops
    # The first op off the Edge TPU is the 230400-element TRANSPOSE; the later ones point to it.
    assert (ops[233].opcode, ops[233].status) == ("TRANSPOSE", UNSPECIFIED)
    assert "230400" in ops[233].reason
    assert ops[199].placement == ops[216].placement == "tpu"  # 14400 and 57600 elements
    assert ops[240].status == MORE_THAN_ONE_SUBGRAPH and ops[240].blamed_on == 233


def test_branches_that_do_not_depend_on_the_cpu_op_still_map(corpus_dir) -> None:
    # movenet: ARG_MAX (op 89) is off the TPU, but the heads after it in file order (ops 100-111)
    # only depend on op 82 and map; the CAST/QUANTIZE before the segment do not split it.
    model = load(
        corpus_dir / "models/coral_test_data_grouper/movenet_single_pose_lightning_ptq.tflite"
    )
    ops = predict(model, target("16.0")).ops
    assert ops[89].placement == "cpu" and ops[89].blamed_on is None
    assert all(ops[i].placement == "tpu" for i in range(100, 112) if i != 105)
    assert [ops[0].placement, ops[1].placement, ops[2].placement] == ["cpu", "cpu", "tpu"]
    assert ops[115].status == MORE_THAN_ONE_SUBGRAPH and ops[115].blamed_on == 89


def test_placement_of_a_compiled_model_does_not_fail(corpus_dir) -> None:
    compiled = load(corpus_dir / "models/coral_test_data_grouper/split_concat_edgetpu.tflite")
    report = analyze(compiled, Options())
    assert report.kind == "compiled"
    assert [op.opcode for op in report.ops] == ["CUSTOM:edgetpu-custom-op"]
    assert report.ops[0].placement == "cpu"


# The parameter estimator (rules/compilers.toml [memory], and compiler 1.0's own channel padding
# and per-channel bytes) was fitted on compiles of models with constant filters; below 64 KiB the
# padding of a few small filters dominates.
_FITTED_MIN_BYTES = 64 * 1024
_FILTER_OPS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1}


def _constant_filters(model: Model) -> bool:
    sg = model.main
    for op in sg.operators:
        at = _FILTER_OPS.get(op.opcode)
        if at is not None and at < len(op.inputs) and not sg.tensors[op.inputs[at]].is_constant:
            return False
    return True


def test_memory_estimate_is_close_to_the_compiled_parameters(corpus_dir) -> None:
    from coralcheck.analyze.compiled import segment_parameter_bytes
    from coralcheck.analyze.memory import parameter_bytes
    from coralcheck.model.edgetpu import decode_segments

    errors: dict[bool, list[float]] = {True: [], False: []}  # by "compiled by 2.0 or newer"
    for compiled, entry in agreement.usable_pairs(corpus_dir):
        tgt = target(agreement.compiler_for(entry, corpus_dir))
        source = load(corpus_dir / entry["source"])
        real = sum(
            on + (off or 0)
            for on, off in map(
                segment_parameter_bytes, decode_segments(load(corpus_dir / compiled))
            )
        )
        if not _constant_filters(source) or real < _FITTED_MIN_BYTES:
            continue
        on_tpu = [placement == "tpu" for _, _, placement in entry["per_op"]]
        since_2 = tgt.release.version[:2] >= (2, 0)
        errors[since_2].append(parameter_bytes(source, on_tpu, tgt) / real - 1)
    later, first = errors[True], errors[False]
    assert len(later) > 20 and len(first) >= 6
    assert max(abs(e) for e in later) < 0.10
    assert max(abs(e) for e in first) < 0.12  # compiler 1.0 (its own padding: 16, not 64)
    every = later + first
    assert abs(sum(every) / len(every)) < 0.03


# --- partitioning on built models -----------------------------------------------------------


def test_an_unsupported_op_blocks_only_what_depends_on_it() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4])
    a = net.conv(x, [1, 8, 8, 4], 4)
    idx = net.const(np.array([3, 2, 1, 0], np.int32))
    g = net.op("GATHER", [a, idx], [1, 8, 8, 4], options={"axis": 3})
    after = net.conv(g, [1, 8, 8, 4], 4)
    side = net.conv(a, [1, 8, 8, 4], 4)
    ops = predict(net.model([after, side]), target("16.0")).ops
    assert [op.placement for op in ops] == ["tpu", "cpu", "cpu", "tpu"]
    assert ops[1].status == NOT_SUPPORTED and ops[1].blamed_on is None
    assert ops[2].status == MORE_THAN_ONE_SUBGRAPH and ops[2].blamed_on == 1
    assert "op 1 (GATHER" in ops[2].reason


def test_cpu_ops_that_only_feed_the_segment_do_not_split_it() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4], "FLOAT32")
    q = net.op("QUANTIZE", [x], [1, 8, 8, 4])
    y = net.conv(q, [1, 8, 8, 4], 4)
    ops = predict(net.model([y]), target("16.0")).ops
    assert [(op.placement, op.status) for op in ops] == [("cpu", UNSPECIFIED), ("tpu", MAPPED)]
    assert "FLOAT32" in ops[0].reason


def test_a_cpu_op_on_a_second_input_splits_the_segment_after_op_0_mapped() -> None:
    # TFLite's delegate partitioning: subsets alternate starting with op 0's kind; the GATHER
    # on the second input lands in the second (CPU) subset, so the ADD joining both inputs needs
    # a second Edge TPU subset.
    net = Net()
    x = net.input([1, 8, 8, 4])
    y = net.input([1, 8, 8, 4])
    a = net.conv(x, [1, 8, 8, 4], 4)
    g = net.op("GATHER", [y, net.const(np.array([3, 2, 1, 0], np.int32))], [1, 8, 8, 4])
    s = net.op("ADD", [a, g], [1, 8, 8, 4])
    ops = predict(net.model([s]), target("16.0")).ops
    assert [op.status for op in ops] == [MAPPED, NOT_SUPPORTED, MORE_THAN_ONE_SUBGRAPH]
    assert ops[2].blamed_on == 1


def test_output_quantize_after_the_cpu_is_otherwise_supported_but_not_mapped() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4], "UINT8")
    q = net.op("QUANTIZE", [x], [1, 8, 8, 4])
    g = net.op("GATHER", [q, net.const(np.array([3, 2, 1, 0], np.int32))], [1, 8, 8, 4])
    mid = net.op("QUANTIZE", [g], [1, 8, 8, 4])
    out = net.op("QUANTIZE", [mid], [1, 8, 8, 4], "UINT8")
    ops = predict(net.model([out]), target("16.0")).ops
    assert [op.status for op in ops] == [MAPPED, NOT_SUPPORTED, MORE_THAN_ONE_SUBGRAPH, UNSPECIFIED]
    assert ops[3].blamed_on == 1 and "graph output" in ops[3].reason


def _conv_gather_conv(net: Net, x: int) -> int:
    """conv -> GATHER (CPU) -> conv: a CPU op between two runs of mappable ops."""
    a = net.conv(x, [1, 8, 8, 4], 4)
    g = net.op("GATHER", [a, net.const(np.array([3, 2, 1, 0], np.int32))], [1, 8, 8, 4])
    return net.conv(g, [1, 8, 8, 4], 4)


def test_with_multiple_subgraphs_every_run_of_mappable_ops_is_a_segment() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4])
    y = _conv_gather_conv(net, x)
    z = net.op("ADD", [y, y], [1, 8, 8, 4])
    model = net.model([z])
    single = predict(model, target("16.0"))
    assert [op.status for op in single.ops] == [
        MAPPED,
        NOT_SUPPORTED,
        MORE_THAN_ONE_SUBGRAPH,
        MORE_THAN_ONE_SUBGRAPH,
    ]
    assert [(s.number, s.ops, s.cpu_after) for s in single.segments] == [(1, (0,), (1, 2, 3))]
    multiple = predict(model, target("16.0"), multiple_subgraphs=True)
    assert [op.placement for op in multiple.ops] == ["tpu", "cpu", "tpu", "tpu"]
    assert [op.status for op in multiple.ops] == [MAPPED, NOT_SUPPORTED, MAPPED, MAPPED]
    assert multiple.tpu_segments == 2
    first, second = multiple.segments
    assert (first.ops, first.cpu_after, second.ops, second.cpu_after) == ((0,), (1,), (2, 3), ())
    # The tensors that cross to and from the CPU: the GATHER's input and output.
    gather = model.main.operators[1]
    assert first.inputs == (x,) and first.outputs == (gather.inputs[0],)
    assert second.inputs == (gather.outputs[0],) and second.outputs == (z,)
    assert first.macs == multiple.macs[0] and second.macs == multiple.macs[2] + multiple.macs[3]
    # Fixing the GATHER would bring it alone (the rest maps already).
    assert [(r.op, r.ops_recovered) for r in multiple.root_causes] == [(1, 1)]


def test_multiple_subgraphs_change_nothing_where_everything_maps(corpus_dir) -> None:
    model = load(corpus_dir / "models/coral_test_data_grouper/mobilenet_v1_0.25_128_quant.tflite")
    single = predict(model, target("16.0"))
    multiple = predict(model, target("16.0"), multiple_subgraphs=True)
    assert single.ops == multiple.ops and single.segments == multiple.segments
    assert single.tpu_segments == 1 and single.segments[0].ops == tuple(range(len(single.ops)))


def test_an_output_quantize_fed_by_the_cpu_is_never_a_segment_of_its_own() -> None:
    # issue 11: it was on the CPU when a segment came before it, but a 1-op "Edge TPU segment"
    # when it was the first mappable op (and with -a it would always be one). The real compiler
    # leaves it on the CPU ("otherwise supported, but not mapped": yolov5n's log, compiler-logs/03
    # and /21), as tests/test_placement.py's corpus agreement shows for yolov5n.
    net = Net()
    x = net.input([1, 8, 8, 4])
    g = net.op("GATHER", [x, net.const(np.array([3, 2, 1, 0], np.int32))], [1, 8, 8, 4])
    out = net.op("QUANTIZE", [g], [1, 8, 8, 4], "UINT8")
    model = net.model([out])
    for multiple in (False, True):
        p = predict(model, target("16.0"), multiple_subgraphs=multiple)
        assert [(op.placement, op.status) for op in p.ops] == [
            ("cpu", NOT_SUPPORTED),
            ("cpu", UNSPECIFIED),
        ]
        assert p.tpu_segments == 0 and "graph output" in p.ops[1].reason
    net = Net()
    y = _conv_gather_conv(net, net.input([1, 8, 8, 4]))
    g = net.op("GATHER", [y, net.const(np.array([3, 2, 1, 0], np.int32))], [1, 8, 8, 4])
    out = net.op("QUANTIZE", [g], [1, 8, 8, 4], "UINT8")
    p = predict(net.model([out]), target("16.0"), multiple_subgraphs=True)
    assert [op.placement for op in p.ops] == ["tpu", "cpu", "tpu", "cpu", "cpu"]
    assert p.ops[4].status == UNSPECIFIED and p.tpu_segments == 2
    assert p.segments[1].cpu_after == (3, 4)


def test_fixing_a_root_cause_counts_only_the_output_quantizes_it_frees() -> None:
    # Two GATHER -> output QUANTIZE branches: fixing one GATHER frees its own QUANTIZE only.
    net = Net()
    x = net.input([1, 8, 8, 4])
    outs = []
    for _ in range(2):
        g = net.op("GATHER", [x, net.const(np.array([3, 2, 1, 0], np.int32))], [1, 8, 8, 4])
        outs.append(net.op("QUANTIZE", [g], [1, 8, 8, 4], "UINT8"))
    p = predict(net.model(outs), target("16.0"), multiple_subgraphs=True)
    assert [op.placement for op in p.ops] == ["cpu"] * 4
    assert sorted((r.op, r.ops_recovered) for r in p.root_causes) == [(0, 2), (2, 2)]


def _matrix_product(constant_first: bool, rows: int) -> Model:
    """FULLY_CONNECTED of a constant and an activation: out = input x weights^T."""
    net = Net()
    x = net.input([rows, 8])
    c = net.const(np.ones((4, 8), np.int8))
    inputs = [c, x, -1] if constant_first else [x, c, -1]
    shape = [4, rows] if constant_first else [rows, 4]
    return net.model([net.op("FULLY_CONNECTED", inputs, shape, version=4)])


@pytest.mark.parametrize(
    "constant_first,rows,compiler,status",
    [
        (True, 1, "16.0", MAPPED),  # R-e-d-a-X: constant input, activation "weights"
        (True, 1000, "16.0", MAPPED),  # ... with a 2-D output ([4, 1000])
        (True, 1, "15.0", NOT_CONSTANT),  # no evidence before 16.0: the documented rule
        (False, 1, "15.0", MAPPED),  # the ordinary form
        (False, 16, "16.0", "For example, a fully-connected or softmax layer with 2D output"),
    ],
)
def test_a_constant_times_an_activation_maps_from_compiler_16(
    constant_first: bool, rows: int, compiler: str, status: str
) -> None:
    (op,) = predict(_matrix_product(constant_first, rows), target(compiler)).ops
    assert op.status == status


@pytest.mark.parametrize(
    "shape,axis,status",
    [
        ([8, 48, 1], 0, "For example, a fully-connected or softmax layer with 2D output"),
        ([8, 48], 0, "For example, a fully-connected or softmax layer with 2D output"),
        ([1, 48, 8], 0, MAPPED),  # a size-1 axis 0 (as yamnet's SPLIT, which maps)
        ([8, 48, 1], 1, MAPPED),
    ],
)
def test_split_along_axis_0_stays_on_the_cpu_at_any_rank(
    shape: list[int], axis: int, status: str
) -> None:
    # R-e-d-a-X (16.0 logs): SPLITs of [8, 48, 1] along axis 0 stay on the CPU with this status.
    net = Net()
    x = net.input(shape)
    parts = shape[axis]
    part = [1 if i == axis else d for i, d in enumerate(shape)]
    at = net.const(np.array(axis, np.int32))
    first = net.op("SPLIT", [at, x], part, options={"num_splits": parts}, outputs=parts)
    assert placements(net.model([first]))[0][1] == status


@pytest.mark.parametrize(
    "data_type,index_constant,status",
    [
        ("INT8", False, NOT_SUPPORTED),  # int64 indices computed at run time are not data
        ("INT8", True, NOT_SUPPORTED),
        ("INT64", False, DATA_TYPE),  # R-e-d-a-X tt log: 54 of these, 38 of the first kind
    ],
)
def test_gather_is_judged_on_its_data_not_its_indices(
    data_type: str, index_constant: bool, status: str
) -> None:
    net = Net()
    x = net.input([1, 8], data_type)
    constant = net.const(np.array([3, 2, 1], np.int64)) if index_constant else None
    index = constant if constant is not None else net.input([3], "INT64")
    out = net.op("GATHER", [x, index], [1, 3], data_type, options={"axis": 1})
    assert placements(net.model([out])) == [("cpu", status)]


def test_dequantize_and_float_ops_work_on_an_unsupported_data_type() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4])
    d = net.op("DEQUANTIZE", [x], [1, 8, 8, 4], "FLOAT32")
    r = net.op("RELU", [d], [1, 8, 8, 4], "FLOAT32")
    ops = predict(net.model([r]), target("16.0")).ops
    assert [op.status for op in ops] == [DATA_TYPE, DATA_TYPE]
    assert "FLOAT32" in ops[1].reason


def test_variable_state_tensors_may_be_int16_but_activations_may_not() -> None:
    # keras_lstm_mnist_ptq in the corpus maps with an INT16 cell state (a variable tensor).
    for variable, status in ((True, MAPPED), (False, DATA_TYPE)):
        net = Net()
        x = net.input([1, 8, 4])
        state = net.tensor([1, 8, 4], "INT16", variable=variable)
        if not variable:
            net.inputs.append(state)
        out = net.op("ADD", [x, state], [1, 8, 4])
        assert placements(net.model([out]))[0][1] == status


def test_more_than_3_non_singleton_dimensions_is_an_unsupported_rank() -> None:
    model = load(FIXTURES / "rank5_int8.tflite")
    ops = predict(model, target("16.0")).ops
    assert [ops[i].status for i in (2, 3, 4, 5)] == [RANK] * 4
    assert "[1, 2, 8, 16, 8]" in ops[2].reason
    assert ops[6].blamed_on == 2


# --- the target compiler ---------------------------------------------------------------------


def _transpose_model() -> Model:
    net = Net()
    x = net.input([1, 8, 8, 4])
    perm = net.const(np.array([0, 2, 1, 3], np.int32))
    return net.model([net.op("TRANSPOSE", [x, perm], [1, 8, 8, 4], version=2)])


@pytest.mark.parametrize(
    "compiler,status",
    [
        ("14.1", NOT_SUPPORTED),
        ("15.0", NOT_SUPPORTED),
        ("16.0", MAPPED),
        ("16.0.384591198", MAPPED),
    ],
)
def test_transpose_arrived_with_compiler_16(compiler: str, status: str) -> None:
    (placement,) = predict(_transpose_model(), target(compiler)).ops
    assert placement.status == status
    if status == NOT_SUPPORTED:
        assert "from compiler 16.0" in placement.reason


def test_quantize_arrived_with_the_january_2020_build_of_2_0() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4], "UINT8")
    model = net.model([net.op("QUANTIZE", [x], [1, 8, 8, 4])])
    assert placements(model, "1.0") == [("cpu", NOT_SUPPORTED)]
    assert placements(model, "2.0.267685300") == [("cpu", NOT_SUPPORTED)]
    assert placements(model, "2.0.291256449") == [("tpu", MAPPED)]
    assert placements(model, "2.0") == [("tpu", MAPPED)]  # the newest 2.0 build
    # Builds of one major.minor are named in full where they differ.
    (op,) = predict(model, target("2.0.267685300")).ops
    assert "from compiler 2.0.291256449 on (target: 2.0.267685300)" in op.reason
    assert placements(model, "2.1") == [("tpu", MAPPED)]


def test_half_pixel_resize_maps_only_from_compiler_16() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4])
    size = net.const(np.array([16, 16], np.int32))
    options = {"align_corners": False, "half_pixel_centers": True}
    model = net.model(
        [net.op("RESIZE_NEAREST_NEIGHBOR", [x, size], [1, 16, 16, 4], options=options, version=3)]
    )
    assert placements(model, "15.0") == [("cpu", VERSION)]
    assert placements(model, "16.0") == [("tpu", MAPPED)]


def test_a_lower_target_runtime_unmaps_newer_ops() -> None:
    model = _transpose_model()
    assert predict(model, target("16.0", 13)).ops[0].status == NOT_SUPPORTED
    assert "runtime 14" in predict(model, target("16.0", 13)).ops[0].reason


@pytest.mark.parametrize("version", ["3.7", "16.x", "", "17.0", "2.2", "0.9"])
def test_unknown_compiler_versions_are_usage_errors(version: str) -> None:
    with pytest.raises(UsageError) as e:
        target(version)
    assert "16.0" in e.value.problem


# --- MACs, summary, root causes, speed -------------------------------------------------------


def test_macs_of_conv_depthwise_fc_and_transpose_conv() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4])
    c = net.conv(x, [1, 8, 8, 16], 4, kernel=3)  # 8*8*16 outputs x 3*3*4
    w = net.const(np.ones((1, 3, 3, 16), np.int8))
    d = net.op("DEPTHWISE_CONV_2D", [c, w, net.const(np.zeros(16, np.int32))], [1, 8, 8, 16])
    flat = net.op("RESHAPE", [d, net.const(np.array([1, 1024], np.int32))], [1, 1024])
    fc_w = net.const(np.ones((10, 1024), np.int8))
    fc = net.op("FULLY_CONNECTED", [flat, fc_w, net.const(np.zeros(10, np.int32))], [1, 10])
    tw = net.const(np.ones((2, 3, 3, 16), np.int8))
    shape = net.const(np.array([1, 16, 16, 2], np.int32))
    t = net.op("TRANSPOSE_CONV", [shape, tw, d], [1, 16, 16, 2])
    report = analyze(net.model([fc, t]), Options())
    macs = [op.macs for op in report.ops]
    assert macs == [8 * 8 * 16 * 9 * 4, 8 * 8 * 16 * 9, 0, 10 * 1024, 8 * 8 * 16 * 9 * 2]
    assert report.summary.macs_total == sum(macs)
    assert report.summary.macs_tpu == sum(macs)
    assert report.summary.tpu_mac_share == 1.0


def test_summary_counts_match_the_placements(corpus_dir) -> None:
    model = load(corpus_dir / "models/sandhya_modelnew/yolov5n-int8.tflite")
    report = analyze(model, Options())
    s = report.summary
    cpu = [op for op in report.ops if op.placement == "cpu"]
    assert (s.ops_total, s.ops_cpu, s.ops_tpu, s.tpu_segments) == (256, len(cpu), 256 - len(cpu), 1)
    assert Counter(op.opcode for op in cpu)["RESHAPE"] == 3


def test_root_causes_rank_by_what_fixing_them_brings_back() -> None:
    net = Net()
    x = net.input([1, 8, 8, 4])
    a = net.conv(x, [1, 8, 8, 4], 4)
    perm = net.const(np.array([3, 2, 1, 0], np.int32))
    late = net.op("GATHER", [a, perm], [1, 8, 8, 4])  # blocks 1 op
    b = net.conv(a, [1, 8, 8, 4], 4)
    early = net.op("GATHER", [b, perm], [1, 8, 8, 4])  # blocks 3 ops
    c = net.conv(early, [1, 8, 8, 4], 4)
    d = net.conv(c, [1, 8, 8, 4], 4)
    e = net.op("ADD", [d, d], [1, 8, 8, 4])
    tail = net.conv(late, [1, 8, 8, 4], 4)
    report = analyze(net.model([e, tail]), Options())
    causes = [(r.opcode, r.op, r.ops_recovered) for r in report.root_causes]
    assert causes == [("GATHER", 3, 4), ("GATHER", 1, 2)]
    assert report.root_causes[0].macs_recovered == 2 * 8 * 8 * 4 * 4
    assert [report.ops[i].blamed_on for i in (4, 5, 6, 7)] == [3, 3, 3, 1]


def test_a_3500_op_model_is_analyzed_well_under_a_second() -> None:
    net = Net()
    x = net.input([1, 16, 16, 8])
    for i in range(3500):
        if i % 500 == 250:
            x = net.op("LEAKY_RELU", [x], [1, 16, 16, 8], options={"alpha": 0.1})
        elif i % 2:
            x = net.op("ADD", [x, x], [1, 16, 16, 8])
        else:
            x = net.conv(x, [1, 16, 16, 8], 8)
    model = net.model([x])
    analyze(model, Options())  # warm the knowledge cache
    started = time.perf_counter()
    report = analyze(model, Options())
    assert time.perf_counter() - started < 0.8
    assert report.summary.ops_tpu == 250
    assert len(report.root_causes) == 7


def test_what_the_knowledge_cannot_settle_is_said_in_the_reason() -> None:
    net = Net()
    x = net.input([1, 32, 32, 64])
    w = net.const(np.ones((64, 3, 3, 64), np.int8))
    shape = net.const(np.array([1, 128, 128, 64], np.int32))
    t = net.op("TRANSPOSE_CONV", [shape, w, x], [1, 128, 128, 64])  # 1 Mi outputs
    axes = net.const(np.array([1, 2], np.int32))
    m = net.op("REDUCE_MAX", [t, axes], [1, 1, 1, 64], options={"keep_dims": True})
    conv, reduce_max = predict(net.model([m]), target("16.0")).ops
    assert conv.status == reduce_max.status == MAPPED
    assert (
        "limit is not known" in conv.reason
        and "Only the compiler can tell whether it maps." in conv.reason
    )
    assert "no real compiler output confirms it" in reduce_max.reason


# --- ops of one signature share their verdict --------------------------------------------------


def _tensor(index: int, dtype: str = "INT8", shape: tuple[int, ...] = (1, 8), **kw: Any) -> Tensor:
    fields: dict[str, Any] = {
        "index": index,
        "name": f"t{index}",
        "dtype": dtype,
        "shape": shape,
        "shape_signature": None,
        "buffer": 0,
        "is_variable": False,
        "quantization": None,
    }
    return Tensor(**{**fields, **kw})  # type: ignore[arg-type]


def _signatures(tensors: dict[int, dict[str, Any]] | None = None, **op: Any) -> tuple:
    """The op_signatures entries of ADD(t0, constant t1) -> t2 and of a second ADD over copies
    t3, t4 -> t5 with tensor and op fields changed, from one subgraph (signatures number the
    tensor descriptions and options they meet: they compare within one call)."""
    base: dict[int, dict[str, Any]] = {0: {}, 1: {"data_offset": 64, "data_size": 8}, 2: {}}
    changed = {i + 3: {**kw, **(tensors or {}).get(i, {})} for i, kw in base.items()}
    ts = tuple(_tensor(i, **kw) for i, kw in {**base, **changed}.items())
    fields: dict[str, Any] = {
        "index": 0,
        "opcode": "ADD",
        "builtin_code": 0,
        "version": 1,
        "inputs": (0, 1),
        "outputs": (2,),
        "options": MappingProxyType({"fused_activation_function": "NONE"}),
    }
    other = {**fields, "index": 1, **op}
    for name in ("inputs", "outputs"):  # the second op's tensors are the copies
        other[name] = tuple(i + 3 if i >= 0 else i for i in other[name])
    sg = Subgraph(
        index=0,
        name="main",
        tensors=ts,
        operators=(Operator(**fields), Operator(**other)),
        inputs=(0, 3),
        outputs=(2, 5),
        producers=(None, None, 0, None, None, 1),
        consumers=((0,), (0,), (), (1,), (1,), ()),
    )
    first, second = op_signatures(sg)
    return second, first


@pytest.mark.parametrize(
    "tensors,op",
    [
        ({}, {"opcode": "SUB"}),
        ({}, {"builtin_code": 41}),
        ({}, {"custom_code": "custom"}),
        ({}, {"version": 2}),
        ({}, {"options": MappingProxyType({"fused_activation_function": "RELU"})}),
        ({}, {"options": MappingProxyType({"pot_scale_int16": False})}),
        ({0: {"dtype": "UINT8"}}, {}),
        ({0: {"shape": (1, 16)}}, {}),
        ({1: {"data_size": 0}}, {}),  # the second input no longer constant
        ({0: {"is_variable": True}}, {}),
        ({}, {"inputs": (0, -1)}),  # an omitted input
        ({}, {"inputs": (1, 0)}),  # the same inputs in other positions
        ({2: {"dtype": "INT16"}}, {}),
        ({2: {"shape": (1, 16)}}, {}),
        ({2: {"is_variable": True}}, {}),
        ({2: {"data_offset": 64, "data_size": 8}}, {}),
        ({}, {"outputs": (0,)}),  # writes its own input (same dtype and shape as t2)
    ],
)
def test_op_signatures_differ_in_everything_a_constraint_reads(
    tensors: dict[int, dict[str, Any]], op: dict[str, Any]
) -> None:
    changed, base = _signatures(tensors, **op)
    assert changed != base


@pytest.mark.parametrize(
    "tensors,op",
    [
        ({}, {}),
        ({0: {"name": "other"}, 2: {"name": "another"}}, {}),
        ({1: {"data_offset": 128}}, {}),  # other constant values
        ({0: {"quantization": Quantization((0.5,), (3,))}}, {}),
        ({0: {"shape_signature": (-1, 8)}}, {}),
        ({0: {"buffer": 7}}, {}),
        ({}, {"index": 5}),
        # Equal options in a mapping of their own (options with vectors are not shared).
        ({}, {"options": MappingProxyType({"fused_activation_function": "NONE"})}),
    ],
)
def test_op_signatures_leave_out_identity_values_and_quantization(
    tensors: dict[int, dict[str, Any]], op: dict[str, Any]
) -> None:
    changed, base = _signatures(tensors, **op)
    assert changed == base and hash(changed) == hash(base)


def test_unhashable_options_group_only_ops_of_the_same_mapping() -> None:
    """Option values that cannot be hashed (a list) are told apart by their mapping: ops that
    share one mapping share a signature, equal values in another mapping do not."""
    shared = MappingProxyType({"new_shape": [1, 8]})
    sg = Subgraph(
        index=0,
        name="main",
        tensors=(_tensor(0), _tensor(1)),
        operators=tuple(
            Operator(i, "RESHAPE", 22, 1, (0,), (1,), options=options)
            for i, options in enumerate([shared, shared, MappingProxyType({"new_shape": [1, 8]})])
        ),
        inputs=(0,),
        outputs=(1,),
        producers=(None, 2),
        consumers=((0, 1, 2), ()),
    )
    first, second, third = op_signatures(sg)
    assert first == second != third
    assert len({first, second, third}) == 2  # (hashable: the predictor groups by them)


def _model_files(corpus_dir: Path) -> list[Path]:
    return [*sorted(FIXTURES.glob("*.tflite")), *sorted((corpus_dir / "models").glob("*/*.tflite"))]


@pytest.mark.parametrize("compiler", ["2.0", "15.0", "16.0"])
def test_shared_verdicts_and_macs_equal_those_of_each_op_on_its_own(corpus_dir, compiler) -> None:
    tgt = target(compiler)
    shared = total = 0
    for path in _model_files(corpus_dir):
        model = load(path)
        sg = model.main
        p = predict(model, tgt)
        views = [OpView(model, sg, op) for op in sg.operators]
        assert p.verdicts == [verdict(v, tgt) for v in views], path
        assert p.macs == [op_macs(v) for v in views], path
        assert sorted(i for g in p.groups for i in g.members) == list(range(len(views)))
        shared += len(views) - len(p.groups)
        total += len(views)
    assert shared > total / 4  # the corpus repeats op signatures (yolov8n: 129 in 256 ops)


def test_ops_of_one_signature_with_other_constant_values_get_their_own_verdicts() -> None:
    # unit-strides reads the strides' values, which signatures leave out (READS_CONSTANT_DATA).
    net = Net()
    x = net.input([1, 8, 8, 4])
    outs = []
    for strides in ([1, 1, 1, 1], [1, 2, 1, 1]):
        begin = net.const(np.zeros(4, np.int32))
        end = net.const(np.array([1, 4, 4, 4], np.int32))
        step = net.const(np.array(strides, np.int32))
        outs.append(net.op("STRIDED_SLICE", [x, begin, end, step], [1, 4, 4, 4]))
    model = net.model(outs)
    p = predict(model, target("16.0"))
    assert len(p.groups) == 1
    assert [op.status for op in p.ops] == [MAPPED, UNSPECIFIED]
    assert "strides [1, 2, 1, 1]" in p.ops[1].reason


def test_a_failed_verdict_is_never_shared_between_ops_of_one_signature() -> None:
    # Two SOFTMAXes over a too-long axis: both fail max-innermost, each naming its own tensor.
    net = Net()
    x = net.input([1, 20000])
    a = net.op("SOFTMAX", [x], [1, 20000], options={"beta": 1.0})
    b = net.op("SOFTMAX", [x], [1, 20000], options={"beta": 1.0})
    p = predict(net.model([a, b]), target("16.0"))
    assert len(p.groups) == 1 and p.groups[0].verdict is None
    assert [op.status for op in p.ops] == [UNSPECIFIED, UNSPECIFIED]
    assert "'t0'" in p.ops[0].reason and "'t0'" in p.ops[1].reason
    assert p.verdicts[0] is not p.verdicts[1]
    assert p.rejected == [0, 1]


def _mapped_then_changed(change: str) -> list[str]:
    """Statuses of a mapped op followed by the same op with one thing changed."""
    net = Net()
    x = net.input([1, 8, 8, 4])
    outs = []
    for changed in (False, True):
        if change == "option":  # same-dilation
            w = net.const(np.ones((4, 1, 1, 4), np.int8))
            b = net.const(np.zeros(4, np.int32))
            options = {"padding": "SAME", "dilation_w_factor": 2 if changed else 1}
            outs.append(net.op("CONV_2D", [x, w, b], [1, 8, 8, 4], options=options))
        elif change == "constness":  # constant-weights
            flat = net.input([1, 16])
            w = net.input([4, 16]) if changed else net.const(np.ones((4, 16), np.int8))
            outs.append(net.op("FULLY_CONNECTED", [flat, w, -1], [1, 4]))
        elif change == "omitted":  # constant-weights: an omitted bias is fine, a runtime one not
            flat = net.input([1, 16])
            w = net.const(np.ones((4, 16), np.int8))
            bias = net.input([4]) if changed else -1
            outs.append(net.op("FULLY_CONNECTED", [flat, w, bias], [1, 4]))
        elif change == "version":  # FULLY_CONNECTED v5 (keep_num_dims)
            flat = net.input([1, 16])
            w = net.const(np.ones((4, 16), np.int8))
            outs.append(
                net.op("FULLY_CONNECTED", [flat, w, -1], [1, 4], version=5 if changed else 4)
            )
        elif change == "shape":  # max-innermost
            shape = [1, 20000] if changed else [1, 8]
            outs.append(net.op("SOFTMAX", [net.input(shape)], shape, options={"beta": 1.0}))
        elif change == "dtype":
            y = net.input([1, 8, 8, 4], "INT16" if changed else "INT8")
            outs.append(net.op("RELU", [y], [1, 8, 8, 4]))
        elif change == "variable":  # an INT16 state tensor may be variable, an activation not
            state = net.tensor([1, 8, 8, 4], "INT16", variable=not changed)
            if changed:
                net.inputs.append(state)
            outs.append(net.op("ADD", [x, state], [1, 8, 8, 4]))
    return [status for _, status in placements(net.model(outs))]


@pytest.mark.parametrize(
    "change,status",
    [
        ("option", UNSPECIFIED),
        ("constness", NOT_CONSTANT),
        ("omitted", NOT_CONSTANT),
        ("version", VERSION),
        ("shape", UNSPECIFIED),
        ("dtype", DATA_TYPE),
        ("variable", DATA_TYPE),
    ],
)
def test_an_op_differing_in_what_a_constraint_reads_does_not_get_the_shared_verdict(
    change: str, status: str
) -> None:
    assert _mapped_then_changed(change) == [MAPPED, status]


def test_only_the_declared_constraints_read_constant_data() -> None:
    # What op signatures leave out (values, quantization) is read through OpView.values,
    # Tensor.quantization or the model: a constraint that does so must be in READS_CONSTANT_DATA.
    reads = re.compile(r"\.values\(|\.quantization|\.model\b|read_bytes|tensor_data")
    for name, fn in CONSTRAINT_CHECKS.items():
        source = inspect.getsource(fn)
        assert bool(reads.search(source)) == (name in READS_CONSTANT_DATA), name


def test_op_views_are_made_when_first_read_and_then_kept() -> None:
    model = load(FIXTURES / "demo_int8.tflite")
    sg = model.main
    views = OpViews(model, sg)
    assert len(views) == len(sg.operators) > 3
    assert views[3] is views[3] and views[-1] is views[len(views) - 1]
    eager = [OpView(model, sg, op) for op in sg.operators]
    for lazy, made in zip(views, eager, strict=True):
        assert (lazy.op, lazy.inputs, lazy.outputs) == (made.op, made.inputs, made.outputs)
        assert lazy.activations == made.activations
    assert [v.op.index for v in views[1:3]] == [1, 2]
