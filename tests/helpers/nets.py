"""`Net`: a tiny model under construction, for models no converter writes (op by op, tensor by
tensor, through coralcheck's own tflite_builder)."""

from __future__ import annotations

from typing import Any

import numpy as np

from coralcheck.model import Model, load
from helpers.tflite_builder import OpSpec, TensorSpec, build_model

# Builtin options tables whose names are not the CamelCase of the op name.
_OPTIONS_TYPES = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions"}


class Net:
    """A tiny model under construction: add tensors and ops, then `model()`."""

    def __init__(self) -> None:
        self.tensors: list[TensorSpec] = []
        self.ops: list[OpSpec] = []
        self.inputs: list[int] = []

    def tensor(
        self,
        shape: list[int],
        dtype: str = "INT8",
        *,
        name: str | None = None,
        signature: list[int] | None = None,
        variable: bool = False,
    ) -> int:
        quantized = dtype in ("INT8", "UINT8", "INT16")
        self.tensors.append(
            TensorSpec(
                name or f"t{len(self.tensors)}",
                shape,
                dtype,
                shape_signature=signature,
                scale=[0.05] if quantized else None,
                zero_point=[0] if quantized else None,
                is_variable=variable,
            )
        )
        return len(self.tensors) - 1

    def input(self, shape: list[int], dtype: str = "INT8", **kw: Any) -> int:
        index = self.tensor(shape, dtype, **kw)
        self.inputs.append(index)
        return index

    def const(self, data: np.ndarray, *, name: str | None = None, zero_point: int = 0) -> int:
        quantized = data.dtype in (np.int8, np.uint8)
        self.tensors.append(
            TensorSpec(
                name or f"c{len(self.tensors)}",
                data=data,
                scale=[0.05] if quantized else None,
                zero_point=[zero_point] if quantized else None,
            )
        )
        return len(self.tensors) - 1

    def op(
        self,
        opcode: str,
        inputs: list[int],
        shape: list[int],
        dtype: str = "INT8",
        options: dict[str, Any] | None = None,
        version: int = 1,
        outputs: int = 1,
    ) -> int:
        """Add an op producing `outputs` new tensors of `shape`; returns the first one."""
        first = len(self.tensors)
        outs = [self.tensor(shape, dtype) for _ in range(outputs)]
        self.ops.append(
            OpSpec(
                opcode,
                inputs,
                outs,
                options,
                options_type=_OPTIONS_TYPES.get(opcode) if options else None,
                version=version,
            )
        )
        return first

    def conv(self, x: int, shape: list[int], channels_in: int, kernel: int = 1) -> int:
        w = self.const(np.ones((shape[-1], kernel, kernel, channels_in), np.int8))
        b = self.const(np.zeros(shape[-1], np.int32))
        return self.op("CONV_2D", [x, w, b], shape, options={"padding": "SAME"})

    def model(self, outputs: list[int]) -> Model:
        return load(build_model(self.tensors, self.ops, self.inputs, outputs))
