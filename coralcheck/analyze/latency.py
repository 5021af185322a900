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
and `.latency_detail` (the last two in coralcheck.analyze.latency_compiled):

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
from typing import TYPE_CHECKING

from coralcheck.analyze.latency_costs import (
    FEW_CHANNELS,
    PlannedSegment,
    cpu_op_ms,
    few_channel_conv,
    predicted_segments,
    tpu_op_ms,
)
from coralcheck.edgetpu.devices import Device, LatencyModel, check_clock, device, latency_model
from coralcheck.options import DEFAULT_CLOCK, DEFAULT_DEVICE
from coralcheck.report import Latency, LatencyDetail, LatencySegment, Memory

if TYPE_CHECKING:
    from coralcheck.analyze.prediction import Prediction
    from coralcheck.model.graph import Model
    from coralcheck.options import Options

PARTS = ("compute", "streaming", "io", "cpu")  # `Latency.dominant` values, in report order

# --- the estimate ---------------------------------------------------------------------------------


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


def round_ms(x: float) -> float:
    """Milliseconds as reported: 4 significant digits (the model is good to ~15%)."""
    return float(f"{x:.4g}")


def assemble(
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
                compute_ms=round_ms(compute),
                streaming_ms=round_ms(dev.transfer_ms(seg.streamed_bytes)),
                io_ms=round_ms(dev.invoke_ms + dev.transfer_ms(seg.input_bytes + seg.output_bytes)),
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
        estimate_ms=round_ms(estimate),
        low_ms=round_ms(min(low, estimate)),
        high_ms=round_ms(max(high, estimate)),
        tpu_ms=round_ms(tpu),
        streaming_ms=round_ms(streaming),
        io_ms=round_ms(io),
        cpu_ms=round_ms(cpu),
        dominant=_dominant(parts),
    )
    detail = LatencyDetail(
        device_description=dev.description,
        clock_mhz=clock_mhz,
        compute_from=compute_from,
        segments=segments,
        op_ms=op_ms,
        cpu_low_ms=round_ms(cpu_low),
        cpu_high_ms=round_ms(cpu_high),
        compiler_cycles=compiler_cycles,
        compiler_ms=None
        if compiler_cycles is None
        else round_ms(compiler_cycles / clock_mhz / 1e3),
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


def from_ops(
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
    return assemble(
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
    return from_ops(
        dev, options.clock, planned, segment_of, tpu, cpu, cpu_ops, near=near, notes=notes
    )


__all__ = [
    "DEFAULT_CLOCK",
    "DEFAULT_DEVICE",
    "estimate_source",
]
