"""I: model inputs and outputs. What the application feeds and reads, and the boundary ops."""

from __future__ import annotations

from collections.abc import Iterator

from coralcheck.checks.context import CheckContext
from coralcheck.registry import finding, rule
from coralcheck.report import Finding
from coralcheck.wording import quote

_FLOAT = frozenset({"FLOAT32", "FLOAT16", "FLOAT64"})


def _io(ctx: CheckContext):
    sg = ctx.sg
    for role, indices in (("input", sg.inputs), ("output", sg.outputs)):
        for i in indices:
            yield role, sg.tensors[i]


@rule("I001")
def float_io(ctx: CheckContext) -> Iterator[Finding]:
    """A float input or output of an integer model costs a conversion on the CPU every inference.

    When the converter keeps float I/O it adds a QUANTIZE after the input and a DEQUANTIZE before
    the output. The compiler leaves both on the CPU (a float-to-int QUANTIZE is "otherwise
    supported, but not mapped"; DEQUANTIZE "works on an unsupported data type"), so every
    inference converts the whole tensor on the CPU. Integer I/O moves that work (a cheap scale
    and offset) into your application, or away entirely for uint8 images.
    """
    if not ctx.integer_model:
        return  # a float model is Q001's
    sg = ctx.sg
    for role, t in _io(ctx):
        if t.dtype not in _FLOAT:
            continue
        # The converter's boundary ops; float produced or consumed otherwise (a custom op's
        # float results, float compute) is not an I/O-type choice (O006, Q002).
        wanted = "QUANTIZE" if role == "input" else "DEQUANTIZE"
        ops = sg.consumers[t.index] if role == "input" else [sg.producers[t.index]]
        boundary = [i for i in ops if i is not None and sg.operators[i].opcode == wanted]
        if not boundary:
            continue
        placed = ctx.prediction.ops[boundary[0]]
        yield finding(
            "I001",
            f"{role} {quote(t.name)} is {t.dtype}: {ctx.label(boundary[0])} converts it on the "
            f"{placed.placement.upper()} at every inference",
            op=boundary[0],
            tensor=t.name,
            opcode=sg.operators[boundary[0]].opcode,
        )


@rule("I002")
def int8_io(ctx: CheckContext) -> Iterator[Finding]:
    """int8 inputs and outputs: fine for the Edge TPU, but mind what you feed.

    Compiler 2.0.291256449 and newer accept int8 I/O. Image pipelines, Coral's examples and
    PyCoral's helpers usually produce uint8 pixels; fed as-is into an int8 input they are off by
    128. Either convert in your code (q = round(x / scale) + zero_point, within -128..127) or
    convert the model with converter.inference_input_type = tf.uint8: the uint8-to-int8 QUANTIZE the
    converter then adds maps to the Edge TPU.
    """
    for role, t in _io(ctx):
        if t.dtype != "INT8":
            continue
        q = t.quantization
        params = ""
        if q is not None and len(q.scale) == 1 and q.zero_point:
            params = f" (scale {q.scale[0]:.4g}, zero point {q.zero_point[0]})"
        use = (
            "uint8 data must be shifted before it is fed"
            if role == "input"
            else "read it as signed values: real = scale * (q - zero point)"
        )
        fix = (
            None
            if role == "input"
            else "Dequantize the output in your code (real = scale * (q - zero_point)), or "
            "convert with converter.inference_output_type = tf.uint8."
        )
        yield finding(
            "I002", f"{role} {quote(t.name)} is INT8{params}; {use}", tensor=t.name, fix=fix
        )
