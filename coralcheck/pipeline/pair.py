"""A source model's report filled from its compiled twin (`--compiled`, or a `--compile` run):
`compare_with_compiled(report, source, compiled, options, origin, log)` maps the pair
(`coralcheck.analyze.pair.map_pair`) and fills

- `report.compiled`: the compiled model's facts (see `coralcheck.analyze.compiled`) plus
  - `pair`: {`source`, `compiled`, `valid`, `problems` [str], `quantization_differs`
    [tensor names], `surviving_tensors`, `source_tensors`};
  - `placement` (valid pairs only), the real placement of the source ops: {`ops_total`,
    `ops_tpu`, `ops_cpu`, `tpu_segments`, `unassigned` [op indices], `cpu_op_indices`
    [op indices], `tpu_op_counts` {opcode: n}, `cpu_op_counts` {opcode: n}}.
- `report.diff`: None when there is no prediction (no `report.ops`) or the pair is invalid;
  otherwise one dict per op where prediction and compiler disagree, in op order:
  {`index`, `opcode`, `predicted` ("tpu"|"cpu"), `actual` ("tpu"|"cpu"), `segment` (the
  1-based Edge TPU segment of a TPU op, else None), `predicted_status`, `predicted_reason`,
  `actual_status` (the compiler's status when known: "Mapped to Edge TPU" for TPU ops; for a
  CPU op the log's status when the log gives that op type only one non-mapped status, else
  None)}.
- findings: the compiled file's own findings (C001–C009, relabelled with its file name; op
  indices mapped to source ops where possible), C010 when it has no segment, C020 when the pair
  is rejected, C021–C024 otherwise.
"""

from __future__ import annotations

import os
from typing import Any

from coralcheck.analyze.compiled import compiled_facts
from coralcheck.analyze.latency_compiled import estimate_pair
from coralcheck.analyze.pair import PairMapping, diff_placements, log_statuses, map_pair
from coralcheck.checks.compiled import CompiledContext, no_edgetpu_segment
from coralcheck.checks.pair import (
    compiler_mapped_predicted_cpu,
    compiler_put_on_cpu,
    pair_mismatch,
    pair_quantization_differs,
    pair_unassigned_ops,
)
from coralcheck.model.edgetpu import decode_segments
from coralcheck.model.graph import Model
from coralcheck.options import Options
from coralcheck.pipeline.compiled import compiled_findings
from coralcheck.report import Finding, ModelReport


def _relabel(f: Finding, name: str, mapping: PairMapping) -> Finding:
    """A compiled-file finding on the source model's report: named, op indices of the source."""
    op = mapping.source_of_cpu_op.get(f.op) if f.op is not None else None
    return f._replace(
        message=f"{name}: {f.message}",
        op=op,
        opcode=mapping.opcodes[op] if op is not None else None,
    )


def compare_with_compiled(
    report: ModelReport,
    source: Model,
    compiled: Model,
    options: Options,
    origin: str = "pair",
    log: Any = None,
) -> PairMapping:
    """Fill `report` (the source model's) from its compiled twin; see the module docstring."""
    name = os.path.basename(compiled.path)
    segments = decode_segments(compiled)
    facts = compiled_facts(compiled, segments, options, origin)
    mapping = map_pair(source, compiled)
    facts["pair"] = mapping.pair_dict()
    findings = [
        _relabel(f, name, mapping)
        for f in compiled_findings(compiled, segments, options)
        if f.code != "C004"
    ]
    if not segments:
        ctx = CompiledContext(compiled, segments, options)
        findings += [_relabel(f, name, mapping) for f in no_edgetpu_segment(ctx)]
    report.diff = None
    if not mapping.valid:
        findings += pair_mismatch(name, mapping.problems)
    else:
        facts["placement"] = mapping.placement_dict()
        unassigned = [(i, mapping.opcodes[i]) for i in mapping.unassigned]
        findings += pair_unassigned_ops(name, unassigned)
        findings += pair_quantization_differs(name, mapping.quantization_differs)
        if report.ops:
            log_names = [op.log_name for op in source.main.operators]
            report.diff = diff_placements(report.ops, mapping, log_statuses(log), log_names)
            findings += compiler_put_on_cpu(name, report.diff)
            findings += compiler_mapped_predicted_cpu(name, report.diff)
    report.compiled = facts
    report.findings.extend(findings)
    return mapping


def pair_latency(
    report: ModelReport, model: Model, compiled: Model, mapping: PairMapping, options: Options
) -> None:
    """With a valid compiled twin, the latency estimate uses its real placement and segments."""
    estimate = estimate_pair(model, compiled, mapping, options)
    if estimate is not None:
        report.latency, report.latency_detail = estimate
