"""S: shapes. Edge TPU tensors have static sizes and at most 3 non-singleton inner dimensions."""

from __future__ import annotations

from collections.abc import Iterator

from coralcheck.checks.context import CheckContext, chain
from coralcheck.edgetpu import layout
from coralcheck.registry import finding, rule
from coralcheck.report import Finding
from coralcheck.wording import plural, quote, shape_text

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
    return shape_text(t.shape_signature or t.shape)


def _open_beyond_batch(t) -> bool:
    """A dimension other than the first (the batch) is unknown until run time."""
    return any(d < 0 for d in (t.shape_signature or ())[1:])


def _dynamic_starts(ctx: CheckContext, dynamic: list) -> Iterator[tuple[object, int | None]]:
    """(tensor, producing op) where a dynamic size starts: graph inputs, and op outputs whose op
    reads no dynamic tensor."""
    sg = ctx.sg
    dynamic_indices = {t.index for t in dynamic}
    seen_ops: set[int | None] = set()
    for t in dynamic:
        producer = sg.producers[t.index]
        if producer is not None:
            op = sg.operators[producer]
            if any(i in dynamic_indices for i in op.inputs if i >= 0) or producer in seen_ops:
                continue  # not where the dynamic size starts
        seen_ops.add(producer)
        yield t, producer


@rule("S001")
def dynamic_shape(ctx: CheckContext) -> Iterator[Finding]:
    """Tensor sizes are computed while the model runs, or unknown beyond the batch.

    The Edge TPU needs every tensor size fixed at compile time. When the converter emits SHAPE
    and index arithmetic to compute a size at run time (a Keras Reshape or Flatten on a model
    whose batch was left as None, anything built from tf.shape), TFLite knows those tensors'
    sizes only while the model runs, and the compiler fails outright: "Attempting to use a
    delegate that only supports static-sized tensors with a graph that has dynamic-sized
    tensors." When a height, width or channel count is unknown (-1 in the shape signature), the
    compiler compiles the placeholder sizes the file stores instead (TensorFlow writes 1 for
    each unknown dimension: a 1x1 image), and the compiled model accepts nothing else. An
    unknown batch alone is S004's, a warning: the compiler fixes it to 1.

    Evidence: ../shared/edgetpu/compiler-logs/06_v16_error_dynamic_sized_tensors.log
    (google-coral/edgetpu#829, compiler 16.0) for the run-time sizes; TensorFlow 2.21 writes the
    placeholder sizes (tests/test_verdicts.py converts such models).
    """
    sg = ctx.sg
    # Most tensors have no signature: tested first, it saves a property call per tensor.
    dynamic = [t for t in sg.tensors if t.shape_signature is not None and t.is_dynamic]
    shape_ops = _runtime_shape_ops(ctx)
    if not shape_ops and not any(_open_beyond_batch(t) for t in dynamic):
        return
    computed = f"; shapes computed at run time: {chain(ctx, shape_ops)}" if shape_ops else ""
    starts = list(_dynamic_starts(ctx, dynamic))
    if not starts and shape_ops:  # run-time sizes without any -1 in a signature
        first = shape_ops[0]
        yield finding(
            "S001",
            f"{ctx.label(first)} computes a tensor size at run time{computed}",
            op=first,
            opcode=sg.operators[first].opcode,
        )
        return
    for t, producer in starts:
        where = "input" if t.index in sg.inputs else "tensor"
        origin = f" (made by {ctx.label(producer)})" if producer is not None else ""
        placeholder = (
            f"; the compiler would compile the stored placeholder size {shape_text(t.shape)}"
            if _open_beyond_batch(t) and not shape_ops
            else ""
        )
        yield finding(
            "S001",
            f"{where} {quote(t.name)}{origin} has shape signature {_signature(t)}: "
            f"{plural(len(dynamic), 'tensor')} with sizes known only at run time"
            f"{computed}{placeholder}",
            op=producer if producer is not None else (shape_ops[0] if shape_ops else None),
            tensor=t.name,
            opcode=sg.operators[producer].opcode if producer is not None else None,
        )


@rule("S004")
def dynamic_batch(ctx: CheckContext) -> Iterator[Finding]:
    """The batch size is left open (-1): the compiler compiles the batch of 1 the file stores.

    A Keras model converted with its batch left as None (the default of keras.Input) has shape
    signature [-1, H, W, C] on its input and on the tensors after it, and the stored shape
    [1, H, W, C]. As long as no size is computed at run time (S001), the compiler takes the
    stored shape and maps the model as a batch-1 model, every op included. Nothing blocks the
    Edge TPU; the warning says that the model runs one sample per inference, whatever its
    signature promises.

    Evidence: ../shared/corpus/models/nrf20 (Keras MNIST CNNs and MobileNet v1/v2 with signature
    [-1, H, W, C], compiler 15.0: every op mapped, ../shared/corpus/logs/nrf20).
    """
    sg = ctx.sg
    dynamic = [t for t in sg.tensors if t.shape_signature is not None and t.is_dynamic]
    if not dynamic or _runtime_shape_ops(ctx) or any(_open_beyond_batch(t) for t in dynamic):
        return  # S001's
    for t, producer in _dynamic_starts(ctx, dynamic):
        where = "input" if t.index in sg.inputs else "tensor"
        yield finding(
            "S004",
            f"{where} {quote(t.name)} has shape signature {_signature(t)}: the batch is left "
            f"open; the compiler compiles it as stored, {shape_text(t.shape)}",
            op=producer,
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
            f"{ctx.label(i)}: {v.reason}",
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

    Evidence: ../shared/edgetpu/compiler-logs/16_v2_1_tensor_unsupported_rank_TRUNCATED.log and
    26_tensor_unsupported_rank_row_FRAGMENT.log ("Tensor has unsupported rank", google-coral/
    edgetpu#30: CONV_2D with batch 30).
    """
    verdicts = ctx.prediction.verdicts
    rank_ops = sum(1 for i in ctx.prediction.rejected if verdicts[i].kind == "rank")
    for t in _batched_inputs(ctx):
        consumers = ctx.consumers(t)
        yield finding(
            "S003",
            f"input {quote(t.name)} has batch {t.shape[0]} ({shape_text(t.shape)}): "
            f"{plural(rank_ops, 'op')} cannot map because of it",
            op=consumers[0] if consumers else None,
            tensor=t.name,
            opcode=ctx.sg.operators[consumers[0]].opcode if consumers else None,
        )
