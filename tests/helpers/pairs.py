"""(source, compiled) pairs for the tests: the corpus YOLOv8n pair with its compiler log
(`yolo`), hand-made predictions and reports for it, and a synthetic two-segment pair."""

from __future__ import annotations

import pytest
from conftest import CORPUS

from coralcheck.compiler.log import parse_log
from coralcheck.model import load
from coralcheck.report import ModelReport, OpPlacement, Summary
from helpers.edgetpu_builder import CustomOptionsSpec, LayerSpec, custom_options, simple_package
from helpers.tflite_builder import OpSpec, TensorSpec, build_model

MAPPED = "Mapped to Edge TPU"


def yolo() -> tuple:
    model = "models/goalbuddy/yolov8n_full_integer_quant"
    if not (CORPUS / f"{model}.tflite").exists():
        pytest.skip("the shared corpus is not here")
    source = load(CORPUS / f"{model}.tflite")
    compiled = load(CORPUS / f"{model}_edgetpu.tflite")
    log = parse_log((CORPUS / "logs/goalbuddy/yolov8n_full_integer_quant_edgetpu.log").read_text())
    return source, compiled, log


def prediction(source, placements: list[str]) -> list[OpPlacement]:  # type: ignore[no-untyped-def]
    return [
        OpPlacement(op.index, op.opcode, op.version, p, MAPPED if p == "tpu" else "x", "why")
        for op, p in zip(source.main.operators, placements, strict=True)
    ]


def pair_report(source, ops: list[OpPlacement]) -> ModelReport:  # type: ignore[no-untyped-def]
    n = len(source.main.operators)
    return ModelReport(source.path, "source", source.file_size, "16.0", Summary(n, 0, 0, 0), ops)


def q(name: str, shape: tuple = (1, 4)) -> TensorSpec:
    return TensorSpec(name, list(shape), "UINT8", scale=[0.5], zero_point=[128])


def seg(inputs: list[str], outputs: list[str]) -> bytes:
    pkg = simple_package([LayerSpec(n) for n in inputs], [LayerSpec(n) for n in outputs])
    return custom_options(CustomOptionsSpec(pkg))


EDGETPU = "CUSTOM:edgetpu-custom-op"


def two_segment_pair(dead_op: bool = False, renamed_shape: bool = False) -> tuple:
    """Source: MUL, ADD | RELU | ADD (+ a dead RELU); compiled: seg1, RELU, seg2."""
    tensors = [q("in"), q("x"), q("a"), q("b"), q("out"), q("dead")]
    ops = [
        OpSpec("MUL", [0, 0], [1]),
        OpSpec("ADD", [1, 1], [2]),
        OpSpec("RELU", [2], [3]),
        OpSpec("ADD", [3, 3], [4]),
    ]
    if dead_op:
        ops.append(OpSpec("RELU", [1], [5]))
    source = build_model(tensors=tensors, ops=ops, inputs=[0], outputs=[4])
    out_shape = (1, 8) if renamed_shape else (1, 4)
    compiled = build_model(
        tensors=[q("in"), q("a"), q("b"), q("out", out_shape)],
        ops=[
            OpSpec(EDGETPU, [0], [1], custom_options=seg(["in"], ["a"])),
            OpSpec("RELU", [1], [2]),
            OpSpec(EDGETPU, [2], [3], custom_options=seg(["b"], ["out"])),
        ],
        inputs=[0],
        outputs=[3],
    )
    return load(source), load(compiled)
