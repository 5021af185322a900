"""The latency estimate of a compiled model: with its source (`estimate_pair`: the real
placement and segments of the pair, the compiled file's streamed bytes and boundary tensors), or
alone (`estimate_compiled`: the compute is the compiler's own `estimated_cycles`, recorded by
2019-2020 compilers only). The model and the parts are coralcheck.analyze.latency's.
"""

from __future__ import annotations

from collections.abc import Sequence

from coralcheck.analyze.compiled import segment_parameter_bytes
from coralcheck.analyze.cost import op_macs
from coralcheck.analyze.latency import assemble, from_ops, round_ms
from coralcheck.analyze.latency_costs import PlannedSegment, cpu_op_ms, op_bytes, op_costs
from coralcheck.analyze.pair import PairMapping
from coralcheck.edgetpu.devices import check_clock, device, latency_model
from coralcheck.edgetpu.opview import OpViews
from coralcheck.model.edgetpu import Segment, decode_segments
from coralcheck.model.graph import Model
from coralcheck.options import Options
from coralcheck.report import Latency, LatencyDetail


def compiled_segments(compiled: Model, segments: Sequence[Segment]) -> list[PlannedSegment]:
    """The segments of a compiled model (main subgraph), with what its executables record."""
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
                input_bytes=op_bytes(sg, op.inputs),
                output_bytes=op_bytes(sg, op.outputs),
                streamed_bytes=segment_parameter_bytes(seg)[1] or 0,
                compiler_cycles=cycles or None,
            )
        )
    return planned


def estimate_pair(
    source: Model, compiled: Model, mapping: PairMapping, options: Options
) -> tuple[Latency, LatencyDetail] | None:
    """The estimate for a source model with its compiled twin: the real placement and segments,
    the compiled file's streamed bytes and boundary tensors. None for a rejected pair."""
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
    return from_ops(dev, options.clock, planned, segment_of, tpu, cpu, cpu_ops)


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
            op_ms.append(round_ms(compute[n]) if n is not None and n < len(compute) else None)
        else:
            op_ms.append(round_ms(cpu_ms[op.index] * dev.cpu_scale * lm.cpu_runtime_factor))
    notes = [
        "compute is the compiler's own cycle estimate (the ops inside a segment are not in "
        "the file): lint the source model for a per-op estimate"
    ]
    return assemble(
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
