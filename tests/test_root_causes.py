"""Root causes as users act on them: the op a finding blames, the biggest wins, and what a fix
is promised to bring (coralcheck/analyze/causes.py, analyze/placement.py rank_root_causes).

Models are built with tests/helpers/tflite_builder.py (through `Net`), where a converter would not
write the case on its own or the real conversion is in tests/test_verdicts.py.
"""

from __future__ import annotations

import numpy as np
from helpers.findings import codes, found, source_report
from helpers.nets import Net
from helpers.tflite_builder import OpSpec, TensorSpec, build_model

from coralcheck.model import load
from coralcheck.report import ModelReport


def float_island_model() -> ModelReport:
    """conv → DEQUANTIZE → ELU (float) → QUANTIZE → conv → conv, all 1x8x8x8."""
    net = Net()
    x = net.input([1, 8, 8, 8])
    a = net.conv(x, [1, 8, 8, 8], 8)
    f = net.op("DEQUANTIZE", [a], [1, 8, 8, 8], "FLOAT32")
    e = net.op("ELU", [f], [1, 8, 8, 8], "FLOAT32")
    q = net.op("QUANTIZE", [e], [1, 8, 8, 8])
    b = net.conv(q, [1, 8, 8, 8], 8)
    c = net.conv(b, [1, 8, 8, 8], 8)
    return source_report(net.model([c]))


def test_a_float_island_is_blamed_on_its_float_op_not_its_dequantize() -> None:
    report = float_island_model()
    dequantize, elu = 1, 2
    (g001,) = found(report, "G001")
    assert (g001.op, g001.opcode) == (elu, "ELU")
    assert "was left in float by the converter" in g001.message
    assert all(p.blamed_on == elu for p in report.ops if p.blamed_on is not None)
    assert dequantize not in {c.op for c in report.root_causes}


def test_a_float_island_is_one_win_that_brings_back_everything_after_it() -> None:
    report = float_island_model()
    (win,) = [c for c in report.root_causes if c.opcode == "ELU"]
    # Fixing the island (DEQUANTIZE, ELU, QUANTIZE) maps all 6 ops; 1 (the first conv) maps now.
    assert win.ops_recovered == 5
    assert "ELU" in win.fix and "int8 kernel" in win.fix
    assert win == report.root_causes[0]


def test_a_batch_larger_than_1_is_one_win_named_by_the_batch() -> None:
    net = Net()
    x = net.input([4, 8, 8, 3], name="images")
    a = net.conv(x, [4, 8, 8, 8], 3)
    b = net.conv(a, [4, 8, 8, 8], 8)
    flat = net.op("RESHAPE", [b, net.const(np.array([4, 512], np.int32))], [4, 512])
    w = net.const(np.ones((10, 512), np.int8))
    fc = net.op("FULLY_CONNECTED", [flat, w, -1], [4, 10])
    report = source_report(net.model([fc]))
    first = report.root_causes[0]
    assert "batch 4" in first.reason and "batch 1" in first.fix
    assert first.ops_recovered == len(report.ops)
    # The FC's own constraint ("output not one-dimensional") is the batch's too: no second win.
    assert not [c for c in report.root_causes if "Flatten" in c.fix]
    assert "S003" in codes(report) and "G001" not in codes(report)


def test_a_custom_op_is_never_promised_to_move_to_the_edge_tpu() -> None:
    net = Net()
    x = net.input([1, 8, 8, 8])
    a = net.conv(x, [1, 8, 8, 8], 8)
    net.ops.append(OpSpec("CUSTOM:MyPostProcess", [a], [net.tensor([1, 8, 8, 8])]))
    custom_out = len(net.tensors) - 1
    b = net.conv(custom_out, [1, 8, 8, 8], 8)
    report = source_report(net.model([b]))
    (cause,) = [c for c in report.root_causes if c.opcode.startswith("CUSTOM:")]
    assert cause.ops_recovered == 1  # the conv after it, not the custom op itself
    assert "never runs on the Edge TPU" in cause.fix


def dispatch_model(stamp: bytes | None) -> bytes:
    """A LiteRT-style precompiled model: one DISPATCH_OP between float input and output."""
    metadata = {"LiteRtStamp": stamp + b"\0" * (250 - len(stamp))} if stamp else None
    return build_model(
        tensors=[TensorSpec("arg0", [2], "FLOAT32"), TensorSpec("out", [2], "FLOAT32")],
        ops=[OpSpec("CUSTOM:DISPATCH_OP", [0], [1], custom_options=b"bytecode_size\0...")],
        inputs=[0],
        outputs=[1],
        metadata=metadata,
    )


def test_a_model_precompiled_for_a_phone_npu_is_named_and_fails(tmp_path) -> None:
    path = tmp_path / "simple_model_qualcomm_precompiled.tflite"
    path.write_bytes(dispatch_model(b"Qualcomm"))
    report = source_report(load(path))
    (o007,) = found(report, "O007")
    assert o007.severity == "error" and "'Qualcomm'" in o007.message
    assert "nothing in it can run on the Edge TPU" in o007.message
    assert "source model" in o007.fix
    assert "O006" not in codes(report)  # not "a custom op that runs on the CPU": a package
    assert not [c for c in report.root_causes if c.ops_recovered]  # no promise of any win
    assert "G003" in codes(report)


def test_foreign_accelerator_ops_are_recognised_without_a_stamp(tmp_path) -> None:
    for code in ("DISPATCH_OP", "ethos-u", "MTKEXT_CONV_2D"):
        data = build_model(
            tensors=[
                TensorSpec("x", [1, 4], "INT8", scale=[0.1], zero_point=[0]),
                TensorSpec("y", [1, 4], "INT8", scale=[0.1], zero_point=[0]),
            ],
            ops=[OpSpec(f"CUSTOM:{code}", [0], [1], custom_options=b"\0")],
            inputs=[0],
            outputs=[1],
        )
        report = source_report(load(data))
        (o007,) = found(report, "O007")
        assert o007.opcode == f"CUSTOM:{code}" and "stamped" not in o007.message
    other = build_model(
        tensors=[
            TensorSpec("x", [1, 4], "INT8", scale=[0.1], zero_point=[0]),
            TensorSpec("y", [1, 4], "INT8", scale=[0.1], zero_point=[0]),
        ],
        ops=[OpSpec("CUSTOM:TFLite_Detection_PostProcess", [0], [1])],
        inputs=[0],
        outputs=[1],
    )
    assert "O007" not in codes(source_report(load(other)))


def test_g004_a_cheap_tail_is_a_warning_and_g001_takes_over_above_the_share() -> None:
    """The same unmapped op at the same place: behind it either a RESHAPE (no compute) or a
    convolution holding most of the model's MACs."""
    for tail_is_conv in (False, True):
        net = Net()
        x = net.input([1, 8, 8, 8])
        a = net.conv(x, [1, 8, 8, 8], 8)
        g = net.op("GATHER", [a, net.const(np.array([0, 1], np.int32))], [1, 8, 8, 8])
        if tail_is_conv:
            out = net.conv(g, [1, 8, 8, 64], 8, kernel=3)
        else:
            out = net.op("RESHAPE", [g, net.const(np.array([1, 512], np.int32))], [1, 512])
        report = source_report(net.model([out]))
        assert ("G001" in codes(report)) is tail_is_conv
        assert ("G004" in codes(report)) is not tail_is_conv
        (finding,) = found(report, "G001" if tail_is_conv else "G004")
        assert finding.op == 1 and "1 supported op after it runs on the CPU too" in finding.message


def test_the_mac_share_gate_of_a_model_without_macs_counts_ops() -> None:
    """No MACs and nothing on the Edge TPU: 0%, not 100% (a 5-D model of elementwise ops)."""
    from coralcheck.config import Config
    from coralcheck.gates import check_gates

    net = Net()
    x = net.input([1, 2, 4, 8, 8])
    y = net.op("ADD", [x, x], [1, 2, 4, 8, 8])
    report = source_report(net.model([y]))
    assert report.summary.macs_total == 0 and report.summary.ops_tpu == 0
    assert report.summary.tpu_mac_share == 0.0
    (gate,) = check_gates(report, Config(min_tpu_mac_share=0.5))
    assert not gate.passed and "0.0% of ops (the model has no multiply-accumulates)" in gate.message
    (g003,) = found(report, "G003")
    assert g003.message == "0 of 1 op on the Edge TPU: the whole model runs on the CPU"


def test_a_float_quantize_inside_the_model_is_not_told_to_change_the_input_type() -> None:
    """DEQUANTIZE -> QUANTIZE in the middle (no float op between: not an island): the QUANTIZE's
    fix is its `fix_inside` (rules/ops.toml), not the model input type."""
    net = Net()
    x = net.input([1, 8, 8, 8])
    a = net.conv(x, [1, 8, 8, 8], 8)
    f = net.op("DEQUANTIZE", [a], [1, 8, 8, 8], "FLOAT32")
    q = net.op("QUANTIZE", [f], [1, 8, 8, 8])
    b = net.conv(q, [1, 8, 8, 8], 8)
    report = source_report(net.model([b]))
    (quantize,) = [c for c in report.root_causes if c.opcode == "QUANTIZE"]
    assert "inference_input_type" not in quantize.fix and quantize.fix
