"""Q009: 8-bit tensors whose scale/zero point no runtime can use (builder-made: no converter
writes them)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers.tflite_builder import OpSpec, TensorSpec, build_model

from coralcheck.api import check_model
from coralcheck.options import Options
from coralcheck.report import ModelReport


def lint(tmp_path, scale: list[float], zero_point: list[int], dtype: str = "INT8") -> ModelReport:
    data = build_model(
        tensors=[
            TensorSpec("x", [1, 4], dtype, scale=[0.5], zero_point=[0]),
            TensorSpec("w", [2, 4], "INT8", data=np.ones((2, 4), np.int8), scale=[0.1]),
            TensorSpec("y", [1, 2], dtype, scale=scale, zero_point=zero_point),
        ],
        ops=[OpSpec("FULLY_CONNECTED", [0, 1, -1], [2])],
        inputs=[0],
        outputs=[2],
    )
    path = tmp_path / "model.tflite"
    path.write_bytes(data)
    return check_model(str(path), Options())


@pytest.mark.parametrize(
    ("scale", "zero_point", "dtype", "problem"),
    [
        ([math.nan], [0], "INT8", "scale nan"),
        ([math.inf], [0], "INT8", "scale inf"),
        ([0.0], [0], "INT8", "scale 0.0"),
        ([-0.25], [0], "INT8", "scale -0.25"),
        ([0.25], [300], "UINT8", "zero point 300 (outside UINT8's 0..255)"),
        ([0.25], [-129], "INT8", "zero point -129 (outside INT8's -128..127)"),
        ([0.25, 0.5, 0.5], [0, 0], "INT8", "3 scales but 2 zero points"),
    ],
)
def test_broken_parameters_are_an_error_on_the_tensor_and_its_producer(
    tmp_path, scale, zero_point, dtype, problem
) -> None:
    report = lint(tmp_path, scale, zero_point, dtype)
    (found,) = [f for f in report.findings if f.code == "Q009"]
    assert found.severity == "error"
    assert found.tensor == "y"
    assert found.op == 0 and found.opcode == "FULLY_CONNECTED"
    assert problem in found.message


def test_healthy_parameters_give_no_finding(tmp_path) -> None:
    report = lint(tmp_path, [0.25], [-3])
    assert not [f for f in report.findings if f.code == "Q009"]


@pytest.mark.litert
@pytest.mark.parametrize(
    ("scale", "zero_point", "dtype"),
    [
        ([math.nan], [0], "INT8"),
        ([math.inf], [0], "INT8"),
        ([0.0], [0], "INT8"),
        ([-0.25], [0], "INT8"),
        ([0.25], [-129], "INT8"),
        ([0.25, 0.5, 0.5], [0, 0], "INT8"),
        ([0.25], [300], "UINT8"),
    ],
)
def test_no_runtime_can_use_what_q009_reports(scale, zero_point, dtype) -> None:
    """Q009's evidence: LiteRT refuses each model, or (a uint8 zero point above 255) runs it
    with outputs that cannot even represent 0, whatever the input."""
    from ai_edge_litert.interpreter import Interpreter

    data = build_model(
        tensors=[
            TensorSpec("x", [1, 4], dtype, scale=[0.5], zero_point=[0]),
            TensorSpec(
                "w", [2, 4], "INT8", data=np.ones((2, 4), np.int8), scale=[0.1], zero_point=[0]
            ),
            TensorSpec("y", [1, 2], dtype, scale=scale, zero_point=zero_point),
        ],
        ops=[OpSpec("FULLY_CONNECTED", [0, 1, -1], [2])],
        inputs=[0],
        outputs=[2],
    )
    try:
        interpreter = Interpreter(model_content=bytes(data))
        interpreter.allocate_tensors()
        interpreter.invoke()
    except (RuntimeError, ValueError):
        return  # refused
    (out,) = interpreter.get_output_details()
    scale_out, zero = out["quantization"]
    low, high = np.iinfo(out["dtype"]).min, np.iinfo(out["dtype"]).max
    assert not scale_out * (low - zero) <= 0.0 <= scale_out * (high - zero)


@pytest.mark.litert
def test_litert_runs_the_same_model_with_sound_parameters() -> None:
    """The control for the test above: the model itself is fine."""
    from ai_edge_litert.interpreter import Interpreter

    data = build_model(
        tensors=[
            TensorSpec("x", [1, 4], "INT8", scale=[0.5], zero_point=[0]),
            TensorSpec(
                "w", [2, 4], "INT8", data=np.ones((2, 4), np.int8), scale=[0.1], zero_point=[0]
            ),
            TensorSpec("y", [1, 2], "INT8", scale=[0.25], zero_point=[-3]),
        ],
        ops=[OpSpec("FULLY_CONNECTED", [0, 1, -1], [2])],
        inputs=[0],
        outputs=[2],
    )
    interpreter = Interpreter(model_content=bytes(data))
    interpreter.allocate_tensors()
    interpreter.invoke()
