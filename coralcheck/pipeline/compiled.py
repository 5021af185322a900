"""A compiled model's report (`*_edgetpu.tflite` on its own): `kind="compiled"`, its `ops` the
operators of the compiled main subgraph (each Edge TPU segment one op on the TPU), the summary
counting a whole segment as one op; findings are the C001–C009 rules of
`coralcheck.checks.compiled`, G005 for a wrong file identifier, C011 when no latency estimate
can be made. `compiled_findings` also serves the compiled twin of a pair.
"""

from __future__ import annotations

from coralcheck.analyze.compiled import (
    compiled_facts,
    compiled_memory,
    compiled_placements,
    cpu_ops_between_segments,
)
from coralcheck.analyze.latency_compiled import estimate_compiled
from coralcheck.analyze.overview import io_tensors, op_histogram
from coralcheck.checks.compiled import COMPILED_MODEL_RULES, CompiledContext, no_latency_estimate
from coralcheck.checks.graph import identifier_findings
from coralcheck.model.edgetpu import Segment, decode_segments
from coralcheck.model.graph import Model
from coralcheck.options import Options
from coralcheck.report import Finding, ModelReport, Summary


def compiled_findings(model: Model, segments: list[Segment], options: Options) -> list[Finding]:
    """The C001–C009 findings of a compiled model."""
    ctx = CompiledContext(model, segments, options, cpu_ops_between_segments(model.main))
    return [finding for rule in COMPILED_MODEL_RULES for finding in rule(ctx)]


def inspect_compiled(model: Model, options: Options) -> ModelReport:
    """The report of a compiled model on its own (see the module docstring)."""
    segments = decode_segments(model)
    ops = compiled_placements(model, segments)
    tpu = sum(1 for p in ops if p.placement == "tpu")
    findings = compiled_findings(model, segments, options)
    estimate = estimate_compiled(model, segments, options)
    if estimate is None and segments:
        findings.extend(no_latency_estimate(CompiledContext(model, segments, options)))
    latency, latency_detail = estimate if estimate is not None else (None, None)
    return ModelReport(
        path=model.path,
        kind="compiled",
        file_size=model.file_size,
        compiler_version=options.compiler_version,
        summary=Summary(
            ops_total=len(ops),
            ops_tpu=tpu,
            ops_cpu=len(ops) - tpu,
            tpu_segments=sum(1 for s in segments if s.subgraph == model.main.index),
        ),
        ops=ops,
        findings=[*identifier_findings(model), *findings],
        io=io_tensors(model),
        memory=compiled_memory(segments),
        op_histogram=op_histogram(model),
        subgraphs=len(model.subgraphs),
        compiled=compiled_facts(model, segments, options),
        latency=latency,
        latency_detail=latency_detail,
    )
