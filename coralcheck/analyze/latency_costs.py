"""What each op and each Edge TPU segment costs in the latency model (rules/devices.toml,
coralcheck.edgetpu.devices): an op on the Edge TPU by its kind of work (`tpu_op_work`), an op on
the host CPU (`cpu_op_ms`), and the bytes each segment sends and receives and streams
(`PlannedSegment`). coralcheck.analyze.latency adds them up into the estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from coralcheck.edgetpu.devices import LatencyModel
from coralcheck.edgetpu.opview import OpView
from coralcheck.report import Memory, TpuSegment

if TYPE_CHECKING:
    from coralcheck.model.graph import Model, Subgraph

# MAC ops: (input position of the filter, axis of its output channels, axis of its input
# channels); None: no channel padding is known (the MACs count as they are).
_MAC_OPS: dict[str, tuple[int, int, int] | None] = {
    "CONV_2D": (1, 0, -1),
    "FULLY_CONNECTED": (1, 0, -1),
    "TRANSPOSE_CONV": (1, 0, -1),
    "CONV_3D": None,
    "BATCH_MATMUL": None,
    "LSTM": None,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": None,
}
_DEPTHWISE = "DEPTHWISE_CONV_2D"


# --- per-op costs -------------------------------------------------------------------------------


def _padded(channels: int, granularity: int) -> float:
    """How much a dimension of `channels` grows when padded to the array's granularity."""
    if channels <= 0:
        return 1.0
    return math.ceil(channels / granularity) * granularity / channels


def channel_padding(view: OpView, granularity: int) -> float:
    """The factor by which padding the input and output channels grows an op's MACs."""
    opcode = view.op.opcode
    if opcode == _DEPTHWISE:
        weights = view.input(1)
        return _padded(weights.shape[-1], granularity) if weights and weights.shape else 1.0
    where = _MAC_OPS.get(opcode)
    if where is None:
        return 1.0
    position, out_axis, in_axis = where
    weights = view.input(position)
    if weights is None or len(weights.shape) < 2:
        return 1.0
    shape = weights.shape
    return _padded(shape[out_axis], granularity) * _padded(shape[in_axis], granularity)


def _elements(tensors: Iterable[Any]) -> int:
    return sum(t.num_elements for t in tensors)


def tpu_op_work(view: OpView, macs: int, lm: LatencyModel) -> tuple[str, float]:
    """An op's work on the Edge TPU by kind: ("conv" | "depthwise", billions of MACs with the
    channels padded), ("elementwise", millions of output elements) or ("free", 0)."""
    opcode = view.op.opcode
    if opcode in lm.free_ops:
        return "free", 0.0
    if opcode in _MAC_OPS:
        return "conv", macs * channel_padding(view, lm.granularity) * 1e-9
    if opcode == _DEPTHWISE:
        return "depthwise", macs * channel_padding(view, lm.granularity) * 1e-9
    return "elementwise", _elements(view.outputs) * 1e-6


def tpu_op_ms(view: OpView, macs: int, lm: LatencyModel) -> float:
    """Edge TPU compute of one op at 500 MHz: its work times its kind's coefficient."""
    kind, work = tpu_op_work(view, macs, lm)
    return work * lm.ms_per_work[kind]


def cpu_op_ms(view: OpView, macs: int, lm: LatencyModel) -> float:
    """Cost of one op on the reference host CPU with today's LiteRT (before the device's host
    factor and the Edge TPU runtime's `cpu_runtime_factor`)."""
    opcode = view.op.opcode
    if opcode in _MAC_OPS and macs:
        work = macs * lm.cpu_conv_ns_per_mac
    elif opcode == _DEPTHWISE and macs:
        work = macs * lm.cpu_depthwise_ns_per_mac
    else:
        rates = lm.cpu_ns_per_element
        rate = rates.get(opcode, rates["default"])
        work = rate * (_elements(view.activations)) if rate else 0.0
    return lm.cpu_op_us * 1e-3 + work * 1e-6


# --- segments -------------------------------------------------------------------------------------


class PlannedSegment(NamedTuple):
    """An Edge TPU segment to cost: its ops (source op indices), boundary bytes, streamed bytes."""

    ops: list[int] | None
    input_bytes: int
    output_bytes: int
    streamed_bytes: int
    compiler_cycles: int | None = None


def boundary_bytes(sg: Subgraph, members: Sequence[int]) -> tuple[int, int]:
    """Bytes of the tensors that cross into and out of a set of ops: what a segment made of
    them sends and receives over the link (constants stay on the device). Found from the ops
    outside the set and the graph's inputs and outputs (usually far fewer than the members)."""
    tensors = sg.tensors
    if len(members) == len(sg.operators):  # the whole graph: its inputs and outputs
        return (
            sum(tensors[i].nbytes for i in sg.inputs if i >= 0),
            sum(tensors[i].nbytes for i in sg.outputs if i >= 0),
        )
    inside = set(members)
    producers, consumers = sg.producers, sg.consumers
    into = {t for t in sg.inputs if t >= 0 and any(c in inside for c in consumers[t])}
    out = {t for t in sg.outputs if t >= 0 and producers[t] in inside}
    for op in sg.operators:
        if op.index in inside:
            continue
        out.update(t for t in op.inputs if t >= 0 and producers[t] in inside)
        into.update(t for t in op.outputs if t >= 0 and any(c in inside for c in consumers[t]))
    return sum(tensors[t].nbytes for t in into), sum(tensors[t].nbytes for t in out)


def predicted_segments(
    model: Model, segments: Sequence[TpuSegment], memory: Memory
) -> list[PlannedSegment]:
    """The predicted Edge TPU segments (`Prediction.segments`: one, or several with `-a`), each
    with its boundary and streamed bytes. Each segment is one invocation whose inputs and outputs
    cross the link: a CPU op between two segments costs a round trip. Streamed bytes are the
    memory estimate's off-chip bytes, shared between segments by their number of ops."""
    total = sum(len(seg.ops) for seg in segments)
    planned = []
    for seg in segments:
        group = list(seg.ops)
        in_bytes, out_bytes = boundary_bytes(model.main, group)
        streamed = round(memory.off_chip_bytes * len(group) / total) if total else 0
        planned.append(PlannedSegment(group, in_bytes, out_bytes, streamed))
    return planned


def op_bytes(sg: Subgraph, indices: Iterable[int]) -> int:
    return sum(sg.tensors[t].nbytes for t in indices if t >= 0)


def op_costs(
    views: Sequence[OpView], macs: Sequence[int], lm: LatencyModel
) -> tuple[list[float], list[float]]:
    """Both costs of every op, (Edge TPU ms at 500 MHz, host CPU nominal ms): which one applies
    depends on where the op runs."""
    tpu = [tpu_op_ms(v, m, lm) for v, m in zip(views, macs, strict=True)]
    cpu = [cpu_op_ms(v, m, lm) for v, m in zip(views, macs, strict=True)]
    return tpu, cpu


# Convolutions with this many input and output channels or fewer: the compiler's own cycle
# estimates for them are 4x to 30x this model's (corpus single-channel convolutions), and no
# published latency covers them.
FEW_CHANNELS = 4


def few_channel_conv(view: OpView) -> bool:
    """A CONV_2D (or TRANSPOSE_CONV) with at most FEW_CHANNELS input and output channels."""
    if view.op.opcode not in ("CONV_2D", "TRANSPOSE_CONV"):
        return False
    weights = view.input(1)
    if weights is None or len(weights.shape) < 2:
        return False
    return max(weights.shape[0], weights.shape[-1]) <= FEW_CHANNELS
