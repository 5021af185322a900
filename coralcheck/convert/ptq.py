"""Full-integer post-training quantization (PTQ) with the TFLite converter, Edge TPU settings.

What the Edge TPU needs, and what this sets: int8 ops only (`TFLITE_BUILTINS_INT8`), weights
and activations calibrated on representative samples, uint8 (or int8) input and output so no
float QUANTIZE/DEQUANTIZE is left at the ends, batch 1 and static shapes.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from coralcheck.convert import import_tensorflow
from coralcheck.convert.source import Source
from coralcheck.errors import UsageError
from coralcheck.model import load
from coralcheck.numeric.samples import InputSpec, Sample, progress

IO_TYPES = ("uint8", "int8")
FLOAT_DTYPES = frozenset({"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"})


def converter_error_line(error: BaseException) -> str:
    """The converter's own error in one line: its `error:` messages, without the MLIR trace."""
    text = str(error)
    messages = [m.strip() for m in re.findall(r"error: ([^\n]+)", text)]
    specific = [m for m in messages if not m.startswith("failed while converting")]
    unique = list(dict.fromkeys(specific or messages))
    if unique:
        return "; ".join(unique[:3])
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def to_tflite(
    source: Source,
    inputs: Sequence[InputSpec],
    samples: Sequence[Sample] | None,
    *,
    io_type: str = "uint8",
    on_phase: Callable[[str], None] = lambda phase: None,
) -> bytes:
    """Trace `source` with static `inputs` and convert it.

    With `samples`: full-integer PTQ calibrated on them, int8 builtins only, `io_type` I/O.
    Without: a plain float32 model (the reference for `coralcheck quant`).
    `on_phase` hears what the converter is doing (the message of a crash names it).
    """

    if samples is not None and io_type not in IO_TYPES:
        raise UsageError("--io-type", f"must be one of {', '.join(IO_TYPES)}")
    tf = import_tensorflow()
    specs = [tf.TensorSpec(spec.shape, spec.dtype, name=_op_name(spec.name)) for spec in inputs]

    on_phase("tracing the model")

    @tf.function(input_signature=specs)
    def serve(*xs: Any) -> Any:
        return source.call(list(xs))

    try:
        concrete = serve.get_concrete_function()
    except Exception as e:
        shapes = ", ".join(f"{s.name} {s.label}" for s in inputs)
        raise UsageError(
            source.path, f"cannot trace the model with inputs {shapes}: {converter_error_line(e)}"
        ) from e
    # No trackable_obj: variables are then frozen into constants, which calibration needs
    # (with Keras 3 models, kept resource variables make READ_VARIABLE fail while calibrating).
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    with native_stderr_silenced() as stderr, warnings.catch_warnings():
        # Warnings: "Statistics for quantized inputs were expected" is normal with uint8 I/O.
        warnings.simplefilter("ignore")
        if samples is not None:

            def calibration() -> Iterator[Sample]:
                on_phase(f"calibrating the int8 quantization on {len(samples)} samples")
                yield from progress(samples, len(samples), "calibrating", file=stderr)
                on_phase("quantizing the calibrated model")

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = calibration
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = getattr(tf, io_type)
            converter.inference_output_type = getattr(tf, io_type)
        on_phase("converting")
        try:
            return bytes(converter.convert())
        except Exception as e:
            raise UsageError(
                source.path, f"the converter refused it: {converter_error_line(e)}"
            ) from e


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[TextIO]:
    """Silence what native code writes to file descriptor 2; yield a stream on the real stderr.

    The converter's C++ side prints its whole MLIR diagnostic (and progress chatter) straight
    to fd 2 before raising; the error already holds that text, and we print it in one line.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded use): leave it alone
        yield sys.stderr
        return
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                with os.fdopen(os.dup(saved), "w") as real_stderr:
                    yield real_stderr
            finally:
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _op_name(name: str) -> str:
    """An input name TensorFlow accepts as an op name (it becomes the TFLite tensor name)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-/]", "_", name).lstrip("_.-/")
    return cleaned or "input"


def float_ops(tflite: bytes) -> list[str]:
    """Ops of the converted model that still compute in float, as `OPCODE (op N)`.

    The converter leaves an op it has no int8 kernel for in float, wrapped in
    DEQUANTIZE/QUANTIZE, even with int8 builtins only; the Edge TPU cannot run such a model.
    The wrappers themselves are not listed.
    """

    model = load(tflite)
    sg = model.main
    found = []
    for index, op in enumerate(sg.operators):
        if op.opcode in ("QUANTIZE", "DEQUANTIZE"):  # the wrappers, not the culprit
            continue
        tensors = [*sg.op_inputs(op), *sg.op_outputs(op)]
        if any(t.dtype in FLOAT_DTYPES and not t.is_constant for t in tensors):
            found.append(f"{op.opcode} (op {index})")
    return found


def refuse_float_ops(model_path: str, tflite: bytes) -> None:
    """Refuse a result in which ops stayed float: the Edge TPU runs only int8 ops."""
    left_float = float_ops(tflite)
    if left_float:
        more = " and more" if len(left_float) > 5 else ""
        raise UsageError(
            model_path,
            f"cannot become fully integer: the converter has no int8 kernel for "
            f"{', '.join(left_float[:5])}{more} (left in float); the Edge TPU runs only int8 "
            f"ops, so replace {'it' if len(left_float) == 1 else 'them'}",
        )
