"""Latency: a static estimate of the milliseconds one inference takes on a Coral device.

The model (rules/devices.toml holds every coefficient and where it comes from):

- **compute**: each op on the Edge TPU costs by its kind (`tpu_op_ms`): MAC ops (CONV_2D,
  FULLY_CONNECTED, ...) per multiply-accumulate with channels padded to the array's granularity,
  DEPTHWISE_CONV_2D per MAC (far slower per MAC), other ops per output element, layout-only ops
  (RESHAPE, CONCATENATION...) nothing; at 500 MHz, scaled to the chosen clock (`--clock`);
- **streaming**: parameters that do not fit the on-chip cache cross the link on every inference;
- **I/O**: each Edge TPU segment is one invocation (`invoke_ms`) and sends its input and output
  tensors over the link; a CPU op between two segments therefore costs a round trip;
- **CPU**: each op left on the host costs its MACs or elements at the reference host's rates
  times the device's host factor, given as a range (`cpu_op_ms`).

The coefficients were fitted to published latencies (../shared/latency/ground_truth.csv) and are
checked on held-out models by benchmarks/latency_agreement.py; the estimate's range is the
held-out error of the device plus the CPU spread. Three entry points fill `ModelReport.latency`
and `.latency_detail`:

- `estimate_source(model, prediction, memory, options)`: a source model, from the prediction;
- `estimate_pair(model, compiled, mapping, options)`: a source model with its compiled twin
  (`--compiled`, `--compile`): the real placement, segments and streamed bytes;
- `estimate_compiled(compiled, segments, options)`: a compiled model alone: the compute is the
  compiler's own `estimated_cycles` (2019-2020 compilers); None when the file does not record
  them (finding C011).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from coralcheck.analyze.cost import op_macs
from coralcheck.edgetpu.constraints import OpView, OpViews
from coralcheck.edgetpu.devices import Device, LatencyModel, check_clock, device, latency_model
from coralcheck.options import DEFAULT_CLOCK, DEFAULT_DEVICE
from coralcheck.report import Latency, LatencyDetail, LatencySegment, Memory, TpuSegment

if TYPE_CHECKING:
    from coralcheck.analyze.pair import PairMapping
    from coralcheck.analyze.prediction import Prediction
    from coralcheck.model.edgetpu import Segment
    from coralcheck.model.graph import Model, Subgraph
    from coralcheck.options import Options

PARTS = ("compute", "streaming", "io", "cpu")  # `Latency.dominant` values, in report order

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


def _op_bytes(sg: Subgraph, indices: Iterable[int]) -> int:
    return sum(sg.tensors[t].nbytes for t in indices if t >= 0)


def compiled_segments(compiled: Model, segments: Sequence[Segment]) -> list[PlannedSegment]:
    """The segments of a compiled model (main subgraph), with what its executables record."""
    from coralcheck.analyze.compiled import segment_parameter_bytes

    sg = compiled.main
    planned = []
    for seg in segments:
        if seg.subgraph != sg.index:
            continue
        op = sg.operators[seg.op_index]
        main = seg.package.main_executable()
        cycles = main.estimated_cycles if main is not None else 0
        planned.append(
            PlannedSegment(
                ops=None,
                input_bytes=_op_bytes(sg, op.inputs),
                output_bytes=_op_bytes(sg, op.outputs),
                streamed_bytes=segment_parameter_bytes(seg)[1] or 0,
                compiler_cycles=cycles or None,
            )
        )
    return planned


# --- the estimate ---------------------------------------------------------------------------------


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


def _prediction_costs(prediction: Prediction, lm: LatencyModel) -> tuple[list[float], list[float]]:
    """Per op: TPU cost where the prediction maps it, else CPU cost; computed once per op
    signature (ops of one signature have the same shapes)."""
    n = len(prediction.on_tpu)
    tpu = [0.0] * n
    cpu = [0.0] * n
    on_tpu = prediction.on_tpu
    for group in prediction.groups:
        members = group.members
        if not members:
            continue
        view = prediction.views[members[0]]
        if any(on_tpu[i] for i in members):
            t = tpu_op_ms(view, group.macs, lm)
            for i in members:
                tpu[i] = t
        if not all(on_tpu[i] for i in members):
            c = cpu_op_ms(view, group.macs, lm)
            for i in members:
                cpu[i] = c
    return tpu, cpu


def _dominant(parts: dict[str, float]) -> str:
    return max(PARTS, key=lambda k: parts[k])


def _round(x: float) -> float:
    """Milliseconds as reported: 4 significant digits (the model is good to ~15%)."""
    return float(f"{x:.4g}")


def _assemble(
    dev: Device,
    clock: str,
    lm: LatencyModel,
    planned: list[PlannedSegment],
    compute_ms: list[float],
    cpu_nominal_ms: float,
    op_ms: list[float | None],
    *,
    compute_from: str,
    extra_high_ms: float = 0.0,
    notes: list[str] | None = None,
) -> tuple[Latency, LatencyDetail]:
    """The estimate from its parts: per-segment compute (ms at the clock), the CPU ops."""
    clock_mhz = lm.clock_mhz[clock]
    segments = []
    for n, (seg, compute) in enumerate(zip(planned, compute_ms, strict=True), 1):
        segments.append(
            LatencySegment(
                index=n,
                ops=len(seg.ops) if seg.ops is not None else None,
                compute_ms=_round(compute),
                streaming_ms=_round(dev.transfer_ms(seg.streamed_bytes)),
                io_ms=_round(dev.invoke_ms + dev.transfer_ms(seg.input_bytes + seg.output_bytes)),
                input_bytes=seg.input_bytes,
                output_bytes=seg.output_bytes,
                streamed_bytes=seg.streamed_bytes,
                compiler_cycles=seg.compiler_cycles,
            )
        )
    tpu = sum(compute_ms)
    streaming = sum(dev.transfer_ms(s.streamed_bytes) for s in planned)
    io = sum(dev.invoke_ms + dev.transfer_ms(s.input_bytes + s.output_bytes) for s in planned)
    # The estimate: the TFLite the Edge TPU runtime ships with, on the device's host; the range:
    # today's LiteRT on the fastest such host .. the old runtime on the slowest.
    cpu = cpu_nominal_ms * lm.cpu_runtime_factor * dev.cpu_scale
    down, up = cpu_spread(dev, lm)
    cpu_low, cpu_high = cpu / down, cpu * up
    device_part = tpu + streaming + io
    estimate = device_part + cpu
    low = device_part * (1 - dev.relative_error) + cpu_low
    high = device_part * (1 + dev.relative_error) + extra_high_ms + cpu_high
    parts = {"compute": tpu, "streaming": streaming, "io": io, "cpu": cpu}
    cycles = [s.compiler_cycles for s in planned]
    compiler_cycles = sum(cycles) if cycles and all(cycles) else None  # type: ignore[arg-type]
    latency = Latency(
        device=dev.name,
        clock=clock,
        estimate_ms=_round(estimate),
        low_ms=_round(min(low, estimate)),
        high_ms=_round(max(high, estimate)),
        tpu_ms=_round(tpu),
        streaming_ms=_round(streaming),
        io_ms=_round(io),
        cpu_ms=_round(cpu),
        dominant=_dominant(parts),
    )
    detail = LatencyDetail(
        device_description=dev.description,
        clock_mhz=clock_mhz,
        compute_from=compute_from,
        segments=segments,
        op_ms=op_ms,
        cpu_low_ms=_round(cpu_low),
        cpu_high_ms=_round(cpu_high),
        compiler_cycles=compiler_cycles,
        compiler_ms=None if compiler_cycles is None else _round(compiler_cycles / clock_mhz / 1e3),
        notes=notes or [],
    )
    return latency, detail


def cpu_spread(dev: Device, lm: LatencyModel) -> tuple[float, float]:
    """How far below and above the CPU estimate the range goes: the runtime factor's spread
    (by model) and the host's, combined as independent uncertainties (in log space)."""
    era, (era_low, era_high) = lm.cpu_runtime_factor, lm.cpu_runtime_range
    down = math.hypot(math.log(era / era_low), math.log(dev.cpu_scale / dev.cpu_low))
    up = math.hypot(math.log(era_high / era), math.log(dev.cpu_high / dev.cpu_scale))
    return math.exp(down), math.exp(up)


def _near_cache(memory: Memory | None, lm: LatencyModel) -> float:
    """Parameter bytes that may be streamed although the estimate caches them: the part above
    `near_cache_share` of the cache, when the estimate streams less than that."""
    if memory is None or memory.source != "estimate" or not memory.cache_bytes:
        return 0.0
    uncertain = memory.parameter_bytes - lm.near_cache_share * memory.cache_bytes
    return max(0.0, uncertain - memory.off_chip_bytes)


def _scale(clock: str, lm: LatencyModel) -> float:
    """Compute milliseconds at 500 MHz -> at the clock (an unknown clock is a usage error)."""
    return lm.clock_mhz["max"] / lm.clock_mhz[check_clock(clock)]


def _per_op(
    n: int,
    segment_of: Sequence[int | None],
    tpu: Sequence[float],
    cpu: Sequence[float],
    scale: float,
    cpu_scale: float,
) -> list[float | None]:
    """Each op's ms (Edge TPU compute at the clock, or host CPU), to the microsecond's tenth
    (by integer rounding: `round(x, 4)` costs microseconds per op on large models)."""
    ms = (tpu[i] * scale if segment_of[i] is not None else cpu[i] * cpu_scale for i in range(n))
    return [int(x * 1e4 + 0.5) / 1e4 for x in ms]


def _from_ops(
    dev: Device,
    clock: str,
    planned: list[PlannedSegment],
    segment_of: Sequence[int | None],
    tpu: Sequence[float],
    cpu: Sequence[float],
    cpu_ops: Iterable[int],
    *,
    near: float = 0.0,
    notes: list[str] | None = None,
) -> tuple[Latency, LatencyDetail]:
    """The estimate from per-op costs (`tpu` at 500 MHz, `cpu` nominal) and where each op runs:
    `segment_of` (index into `planned`, None off the Edge TPU), `cpu_ops` on the host."""
    lm = latency_model()
    scale = _scale(clock, lm)
    compute = [sum(tpu[i] for i in seg.ops or ()) * scale for seg in planned]
    host = dev.cpu_scale * lm.cpu_runtime_factor
    return _assemble(
        dev,
        clock,
        lm,
        planned,
        compute,
        sum(cpu[i] for i in cpu_ops),
        _per_op(len(tpu), segment_of, tpu, cpu, scale, host),
        compute_from="ops",
        extra_high_ms=dev.transfer_ms(near),
        notes=notes,
    )


def estimate_source(
    model: Model, prediction: Prediction, memory: Memory, options: Options
) -> tuple[Latency, LatencyDetail]:
    """The estimate for a source model from its placement prediction and memory estimate."""
    lm = latency_model()
    dev = device(options.device)
    tpu, cpu = _prediction_costs(prediction, lm)
    planned = predicted_segments(model, prediction.segments, memory)
    segment_of: list[int | None] = [None] * len(tpu)
    for n, seg in enumerate(planned):
        for i in seg.ops or ():
            segment_of[i] = n
    cpu_ops = [i for i, s in enumerate(segment_of) if s is None]
    near = _near_cache(memory, lm)
    notes = []
    few = [
        i
        for g in prediction.groups
        if g.members and few_channel_conv(prediction.views[g.members[0]])
        for i in g.members
        if segment_of[i] is not None
    ]
    total_tpu = sum(tpu[i] for seg in planned for i in seg.ops or ())
    if few and total_tpu and sum(tpu[i] for i in few) >= 0.1 * total_tpu:
        notes.append(
            f"{len(few)} convolution(s) with at most {FEW_CHANNELS} channels in and out carry "
            f"{sum(tpu[i] for i in few) / total_tpu:.0%} of the compute: the compiler's own "
            "estimates for such convolutions are 4x-30x this model's, and no published latency "
            "covers them; the estimate may be far too low"
        )
    if near:
        notes.append(
            f"the parameters nearly fill the on-chip cache: up to {near / 1e6:.2f} MB more may "
            "be streamed (in the range's high end)"
        )
    return _from_ops(
        dev, options.clock, planned, segment_of, tpu, cpu, cpu_ops, near=near, notes=notes
    )


def estimate_pair(
    source: Model, compiled: Model, mapping: PairMapping, options: Options
) -> tuple[Latency, LatencyDetail] | None:
    """The estimate for a source model with its compiled twin: the real placement and segments,
    the compiled file's streamed bytes and boundary tensors. None for a rejected pair."""
    from coralcheck.model.edgetpu import decode_segments

    if not mapping.valid:
        return None
    lm = latency_model()
    dev = device(options.device)
    sg = source.main
    views = OpViews(source, sg)
    macs = [op_macs(v) for v in views]
    tpu, cpu = op_costs(views, macs, lm)
    planned = compiled_segments(compiled, decode_segments(compiled))
    segment_of = [
        (s - 1 if s is not None else None) if p == "tpu" else None
        for p, s in zip(mapping.placements, mapping.segment_of, strict=True)
    ]
    members: list[list[int]] = [[] for _ in planned]
    for i, s in enumerate(segment_of):
        if s is not None and s < len(members):
            members[s].append(i)
    planned = [seg._replace(ops=m) for seg, m in zip(planned, members, strict=True)]
    cpu_ops = [i for i, p in enumerate(mapping.placements) if p == "cpu"]
    return _from_ops(dev, options.clock, planned, segment_of, tpu, cpu, cpu_ops)


def estimate_compiled(
    compiled: Model, segments: Sequence[Segment], options: Options
) -> tuple[Latency, LatencyDetail] | None:
    """The estimate for a compiled model alone: compute from the compiler's own cycle estimate
    (None when a segment does not record it: the ops inside a segment are not in the file)."""
    lm = latency_model()
    dev = device(options.device)
    planned = compiled_segments(compiled, segments)
    if not planned or any(s.compiler_cycles is None for s in planned):
        return None
    clock_mhz = lm.clock_mhz[check_clock(options.clock)]
    compute = [
        (s.compiler_cycles or 0) / clock_mhz / 1e3 * lm.compiler_cycles_scale for s in planned
    ]
    sg = compiled.main
    views = OpViews(compiled, sg)
    cpu_ops = [op.index for op in sg.operators if not op.is_edgetpu]
    cpu_ms = {i: cpu_op_ms(views[i], op_macs(views[i]), lm) for i in cpu_ops}
    number = {s.op_index: n for n, s in enumerate(segments) if s.subgraph == sg.index}
    op_ms: list[float | None] = []
    for op in sg.operators:
        if op.is_edgetpu:
            n = number.get(op.index)
            op_ms.append(_round(compute[n]) if n is not None and n < len(compute) else None)
        else:
            op_ms.append(_round(cpu_ms[op.index] * dev.cpu_scale * lm.cpu_runtime_factor))
    notes = [
        "compute is the compiler's own cycle estimate (the ops inside a segment are not in "
        "the file): lint the source model for a per-op estimate"
    ]
    return _assemble(
        dev,
        options.clock,
        lm,
        planned,
        compute,
        sum(cpu_ms.values()),
        op_ms,
        compute_from="compiler-cycles",
        notes=notes,
    )


__all__ = [
    "DEFAULT_CLOCK",
    "DEFAULT_DEVICE",
    "estimate_compiled",
    "estimate_pair",
    "estimate_source",
]
