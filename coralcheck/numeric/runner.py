"""Running a .tflite on the CPU with every tensor kept, float in and float out.

Uses LiteRT (`ai-edge-litert`, the `[numeric]` extra), else TensorFlow's interpreter. Both are
imported inside functions only. Quantized inputs are fed through the input tensor's scale and
zero point, exactly as on the device; outputs and inner tensors come back dequantized.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coralcheck.convert import import_tensorflow
from coralcheck.errors import UsageError
from coralcheck.model import load
from coralcheck.numeric.samples import InputSpec

NUMERIC_EXTRA = "pip install 'coralcheck[numeric]'"


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """A tensor as the interpreter holds it, with its float <-> integer contract."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name of the stored values
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0

    @property
    def is_quantized(self) -> bool:
        return bool(self.scales) and np.dtype(self.dtype).kind in "iu"

    @property
    def scale(self) -> float:
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        return self.zero_points[0]


def quantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    """float -> stored integers: q = clip(round(x / scale) + zero_point) (per tensor)."""
    if not info.is_quantized:
        return np.asarray(values, dtype=info.dtype)
    limits = np.iinfo(np.dtype(info.dtype))
    q = np.round(np.asarray(values, dtype=np.float64) / info.scale) + info.zero_point
    return np.clip(q, limits.min, limits.max).astype(info.dtype)


def dequantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    """stored integers -> float: x = (q - zero_point) * scale (per tensor or per axis)."""
    if not info.is_quantized:
        return np.asarray(values, dtype=np.float32)
    scales = np.asarray(info.scales, dtype=np.float64)
    zero_points = np.asarray(info.zero_points, dtype=np.float64)
    if scales.size > 1:  # per-axis: broadcast along the quantized dimension
        shape = [1] * values.ndim
        shape[info.quantized_dimension] = scales.size
        scales, zero_points = scales.reshape(shape), zero_points.reshape(shape)
    return ((values.astype(np.float64) - zero_points) * scales).astype(np.float32)


def interpreter_class(command: str) -> tuple[Any, Any, str]:
    """(Interpreter, OpResolverType, name): LiteRT, else TensorFlow's; else a one-line error."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        return Interpreter, OpResolverType, "ai-edge-litert"
    except ImportError:
        pass

    try:
        tf = import_tensorflow(command)
    except UsageError:
        raise UsageError(command, f"needs LiteRT to run models: {NUMERIC_EXTRA}") from None
    return tf.lite.Interpreter, tf.lite.experimental.OpResolverType, "tensorflow"


def _info(detail: dict[str, Any]) -> TensorInfo:
    params = detail.get("quantization_parameters") or {}
    scales = tuple(float(s) for s in params.get("scales", ()))
    zero_points = tuple(int(z) for z in params.get("zero_points", ()))
    if not scales and detail.get("quantization", (0.0, 0))[0]:
        scales, zero_points = (float(detail["quantization"][0]),), (int(detail["quantization"][1]),)
    return TensorInfo(
        index=int(detail["index"]),
        name=str(detail["name"]),
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]).name,
        scales=scales,
        zero_points=zero_points,
        quantized_dimension=int(params.get("quantized_dimension", 0)),
    )


class ModelRunner:
    """One model in an interpreter that keeps every intermediate tensor for inspection."""

    def __init__(self, path: str, command: str) -> None:

        self.path = path
        self.model = load(path)  # one-line ModelError for anything that is not a valid model
        if self.model.is_compiled:
            raise UsageError(
                path,
                "is compiled for the Edge TPU and cannot run on the CPU: give the model "
                "as it was before edgetpu_compiler",
            )
        interpreter_type, resolver, self.runtime = interpreter_class(command)
        try:
            with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
                warnings.simplefilter("ignore")
                # No default delegate (XNNPACK): its fused kernels would hide the inner
                # tensors, and the reference kernels are what the quantization is judged by.
                self.interpreter = interpreter_type(
                    model_path=path,
                    experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                    experimental_preserve_all_tensors=True,
                )
            self.interpreter.allocate_tensors()
        except Exception as e:
            first = next(iter(str(e).strip().splitlines()), type(e).__name__)
            raise UsageError(path, f"the TFLite interpreter cannot run it: {first}") from e
        self.inputs = [_info(d) for d in self.interpreter.get_input_details()]
        self.outputs = [_info(d) for d in self.interpreter.get_output_details()]
        self.tensors = {i.index: i for i in map(_info, self.interpreter.get_tensor_details())}

    def input_specs(self) -> list[InputSpec]:
        """The inputs as float values (quantized inputs are fed as floats, then quantized)."""
        return [
            InputSpec(i.name, i.shape, "float32" if i.is_quantized else i.dtype)
            for i in self.inputs
        ]

    def run(self, sample: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Invoke on one sample of float inputs (in input order); return float outputs."""
        for info, values in zip(self.inputs, sample, strict=True):
            self.interpreter.set_tensor(info.index, quantize(values, info))
        self.interpreter.invoke()
        return [self.value(info.index) for info in self.outputs]

    def value(self, index: int) -> np.ndarray:
        """Tensor `index` after the last run, dequantized to float."""
        info = self.tensors[index]
        return dequantize(self.interpreter.get_tensor(index), info)
