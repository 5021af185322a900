"""S: shapes. Edge TPU tensors have static sizes and at most 3 non-singleton inner dimensions."""

from __future__ import annotations

from collections.abc import Iterator

from coralcheck.checks import CheckContext, chain, finding, rule
from coralcheck.edgetpu import layout
from coralcheck.edgetpu.constraints import quote
from coralcheck.render.phrases import plural
from coralcheck.report import Finding

INDEX_TYPES = frozenset({"INT32", "INT64"})


def _runtime_shape_ops(ctx: CheckContext) -> list[int]:
    """SHAPE ops and the integer ops downstream of them, up to the op that takes the result."""
    sg = ctx.sg
    found: set[int] = set()
    todo = [op.index for op in sg.operators if op.opcode == "SHAPE"]
    while todo:
        i = todo.pop()
        if i in found:
            continue
        found.add(i)
        for t in sg.op_outputs(sg.operators[i]):
            if t.dtype in INDEX_TYPES:
                todo.extend(sg.consumers[t.index])
    return sorted(found)


def _signature(t) -> str:
    return layout.shape_text(t.shape_signature or t.shape)


@rule("S001")
def dynamic_shape(ctx: CheckContext) -> Iterator[Finding]:
    """The Edge TPU needs every tensor size fixed at compile time.

    A dimension of -1 in a tensor's shape signature (typically a batch dimension left as None in
    Keras) makes the compiler fail outright: "Attempting to use a delegate that only supports
    static-sized tensors with a graph that has dynamic-sized tensors." Converters also emit SHAPE
    and index arithmetic to compute such sizes at run time; none of that runs on the Edge TPU.
    """
    sg = ctx.sg
    # Most tensors have no signature: tested first, it saves a property call per tensor.
    dynamic = [t for t in sg.tensors if t.shape_signature is not None and t.is_dynamic]
    if not dynamic:
        return
    dynamic_indices = {t.index for t in dynamic}
    shape_ops = _runtime_shape_ops(ctx)
    computed = f"; shapes computed at run time: {chain(ctx, shape_ops)}" if shape_ops else ""
    seen_ops: set[int | None] = set()
    for t in dynamic:
        producer = sg.producers[t.index]
        if producer is not None:
            op = sg.operators[producer]
            if any(i in dynamic_indices for i in op.inputs if i >= 0) or producer in seen_ops:
                continue  # not where the dynamic size starts
        seen_ops.add(producer)
        where = "input" if t.index in sg.inputs else "tensor"
        origin = f" (made by {ctx.op_label(producer)})" if producer is not None else ""
        yield finding(
            "S001",
            f"{where} {quote(t.name)}{origin} has shape signature {_signature(t)}: "
            f"{plural(len(dynamic), 'tensor')} with sizes known only at run time{computed}",
            op=producer if producer is not None else (shape_ops[0] if shape_ops else None),
            tensor=t.name,
            opcode=sg.operators[producer].opcode if producer is not None else None,
        )


def _batched_inputs(ctx: CheckContext) -> list:
    return [
        t
        for t in (ctx.sg.tensors[i] for i in ctx.sg.inputs)
        if len(t.shape) >= 4 and t.shape[0] > 1
    ]


@rule("S002")
def unsupported_rank(ctx: CheckContext) -> Iterator[Finding]:
    """Only the 3 innermost dimensions of a tensor may be larger than 1.

    The Edge TPU lays tensors out as [y][x][z]; any dimension beyond those three (batch, or an
    extra axis from a reshape to 5-D) must be 1. Ops with such a tensor stay on the CPU with
    "Tensor has unsupported rank (up to 3 innermost dimensions mapped)".
    """
    batches = {t.shape[0] for t in _batched_inputs(ctx)}
    sg = ctx.sg
    for i in ctx.prediction.rejected:  # ops whose own verdict is not "ok"
        v = ctx.prediction.verdicts[i]
        if v.kind != "rank":
            continue
        tensor = next((t for t in ctx.views[i].activations if t.name == v.tensor), None)
        if tensor is not None:
            outer = [d for d in layout.outer_dims(tensor.shape) if d > 1]
            # A batch > 1 from the model input is reported once, by S003.
            if len(tensor.shape) == 4 and outer == [tensor.shape[0]] and tensor.shape[0] in batches:
                continue
        yield finding(
            "S002",
            f"{ctx.op_label(i)}: {v.reason}",
            op=i,
            tensor=v.tensor,
            opcode=sg.operators[i].opcode,
        )


@rule("S003")
def batch_size(ctx: CheckContext) -> Iterator[Finding]:
    """The Edge TPU runs one sample at a time: batch size must be 1.

    With a batch dimension larger than 1, every 4-D tensor has four dimensions larger than 1, so
    almost no op can map ("Tensor has unsupported rank"). Batching brings no speed-up on the Edge
    TPU anyway: run the samples one after another.
    """
    verdicts = ctx.prediction.verdicts
    rank_ops = sum(1 for i in ctx.prediction.rejected if verdicts[i].kind == "rank")
    for t in _batched_inputs(ctx):
        consumers = ctx.consumers(t)
        yield finding(
            "S003",
            f"input {quote(t.name)} has batch {t.shape[0]} ({layout.shape_text(t.shape)}): "
            f"{plural(rank_ops, 'op')} cannot map because of it",
            op=consumers[0] if consumers else None,
            tensor=t.name,
            opcode=ctx.sg.operators[consumers[0]].opcode if consumers else None,
        )
