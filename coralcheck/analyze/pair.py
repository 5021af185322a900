"""Source ↔ compiled pairs: where every source op really runs, and where the prediction is wrong.

`map_pair(source, compiled)` is the algorithm of compiled-model-format.md §6b. The compiler keeps
the names of the tensors that survive compilation (graph inputs and outputs, segment boundaries
and every tensor of a CPU op), so:

1. every tensor name of the compiled main subgraph must exist in the source with the same shape
   and type (otherwise the files are not source and result: the pair is rejected; different
   quantization parameters only give a warning, as for a re-calibrated export);
2. each CPU op of the compiled model is matched to the source op of the same type that writes the
   same output tensors (and reads the same inputs);
3. each Edge TPU segment owns the source ops found by walking backwards from its output tensors
   until its input tensors, graph inputs or constants; an op claimed twice is a conflict;
4. source ops in neither set are reported as unassigned (dead code).

`diff_placements` lists the ops where a prediction and the real placement disagree.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from coralcheck.edgetpu.statuses import MAPPED_STATUS
from coralcheck.model.graph import Model, Quantization, Subgraph, Tensor
from coralcheck.report import OpPlacement

_MAX_LISTED = 10


@dataclass
class PairMapping:
    """The result of `map_pair`: per source op "tpu" | "cpu" | None (unassigned)."""

    source: str
    compiled: str
    problems: list[str] = field(default_factory=list)
    quantization_differs: list[str] = field(default_factory=list)
    placements: list[str | None] = field(default_factory=list)
    segment_of: list[int | None] = field(default_factory=list)
    source_of_cpu_op: dict[int, int] = field(default_factory=dict)  # compiled op → source op
    opcodes: list[str] = field(default_factory=list)
    tpu_segments: int = 0
    surviving_tensors: int = 0
    source_tensors: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def unassigned(self) -> list[int]:
        return [i for i, p in enumerate(self.placements) if p is None]

    def per_op(self) -> list[tuple[int, str, str | None]]:
        """(source op index, opcode, "tpu" | "cpu" | None) for every source op."""
        return list(zip(range(len(self.opcodes)), self.opcodes, self.placements, strict=True))

    def pair_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "compiled": self.compiled,
            "valid": self.valid,
            "problems": list(self.problems),
            "quantization_differs": list(self.quantization_differs),
            "surviving_tensors": self.surviving_tensors,
            "source_tensors": self.source_tensors,
        }

    def placement_dict(self) -> dict[str, Any]:
        tpu = [op for op, p in zip(self.opcodes, self.placements, strict=True) if p == "tpu"]
        cpu = [op for op, p in zip(self.opcodes, self.placements, strict=True) if p == "cpu"]
        return {
            "ops_total": len(self.opcodes),
            "ops_tpu": len(tpu),
            "ops_cpu": len(cpu),
            "tpu_segments": self.tpu_segments,
            "unassigned": self.unassigned,
            "cpu_op_indices": [i for i, p in enumerate(self.placements) if p == "cpu"],
            "tpu_op_counts": dict(Counter(tpu).most_common()),
            "cpu_op_counts": dict(Counter(cpu).most_common()),
        }


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:3])
    return shown + (", …" if len(names) > 3 else "")


def _same_quantization(a: Quantization | None, b: Quantization | None) -> bool:
    if a is None or not a.is_set or b is None or not b.is_set:
        return (a is None or not a.is_set) == (b is None or not b.is_set)
    return (
        len(a.scale) == len(b.scale)
        and all(math.isclose(x, y, rel_tol=1e-6) for x, y in zip(a.scale, b.scale, strict=True))
        and tuple(a.zero_point) == tuple(b.zero_point)
    )


def _check_tensors(mapping: PairMapping, by_name: dict[str, Tensor], tensors: tuple) -> None:
    """Step 1: every compiled tensor exists in the source, with its shape and type."""
    missing, changed = [], []
    for t in tensors:
        s = by_name.get(t.name)
        if s is None:
            missing.append(t.name)
        elif s.shape != t.shape or s.dtype != t.dtype:
            changed.append(f"{t.name!r} is {t.dtype}{list(t.shape)} vs {s.dtype}{list(s.shape)}")
        elif not _same_quantization(s.quantization, t.quantization):
            mapping.quantization_differs.append(t.name)
    mapping.surviving_tensors = len(tensors) - len(missing)
    if missing:
        mapping.problems.append(
            f"{len(missing)} of its {len(tensors)} tensor names are not in the source "
            f"({_listed(missing)})"
        )
    for text in changed[:_MAX_LISTED]:
        mapping.problems.append(f"tensor {text} in the source")


def map_pair(source: Model, compiled: Model) -> PairMapping:
    """Map every op of the source's main subgraph to the TPU or the CPU (§6b; see above)."""
    src, cmp = source.main, compiled.main
    mapping = PairMapping(
        source=source.path,
        compiled=compiled.path,
        placements=[None] * len(src.operators),
        segment_of=[None] * len(src.operators),
        opcodes=[op.opcode for op in src.operators],
        source_tensors=len(src.tensors),
    )
    by_name: dict[str, Tensor] = {}
    for t in src.tensors:
        by_name.setdefault(t.name, t)
    _check_tensors(mapping, by_name, cmp.tensors)
    if not mapping.valid:
        return mapping

    _match_cpu_ops(mapping, src, cmp, by_name)
    _claim_segments(mapping, src, cmp, by_name)
    return mapping


def _names(indices: tuple[int, ...], tensors: tuple[Tensor, ...]) -> list[str]:
    return [tensors[i].name for i in indices if i >= 0]


def _match_cpu_ops(
    mapping: PairMapping, src: Subgraph, cmp: Subgraph, by_name: dict[str, Tensor]
) -> None:
    """Step 2: each CPU op of the compiled model is the source op of its type that writes the
    same output tensors (and reads the same inputs)."""
    for op in cmp.operators:
        if op.is_edgetpu:
            continue
        outs = _names(op.outputs, cmp.tensors)
        writer = src.producers[by_name[outs[0]].index] if outs else None
        match = None if writer is None else src.operators[writer]
        if (
            match is None
            or match.opcode != op.opcode
            or _names(match.outputs, src.tensors) != outs
            or _names(match.inputs, src.tensors) != _names(op.inputs, cmp.tensors)
        ):
            mapping.problems.append(f"CPU op {op.index} ({op.opcode}) has no counterpart")
            continue
        if mapping.placements[match.index] is not None:
            mapping.problems.append(f"source op {match.index} matches two compiled ops")
            continue
        mapping.placements[match.index] = "cpu"
        mapping.source_of_cpu_op[op.index] = match.index


def _claim_segments(
    mapping: PairMapping, src: Subgraph, cmp: Subgraph, by_name: dict[str, Tensor]
) -> None:
    """Step 3: each segment owns what lies between its output and input tensors."""
    graph_inputs = {src.tensors[i].name for i in src.inputs}
    for number, seg_op in enumerate((op for op in cmp.operators if op.is_edgetpu), 1):
        mapping.tpu_segments = number
        stop = set(_names(seg_op.inputs, cmp.tensors)) | graph_inputs
        stack = []
        for name in _names(seg_op.outputs, cmp.tensors):
            writer = src.producers[by_name[name].index]
            if writer is None:
                mapping.problems.append(f"segment {number} output {name!r} has no source op")
            else:
                stack.append(writer)
        seen: set[int] = set()
        while stack:
            index = stack.pop()
            if index in seen:
                continue
            seen.add(index)
            placed = mapping.placements[index]
            if placed == "cpu":
                mapping.problems.append(f"source op {index} is both on the CPU and in segment")
                continue
            if placed == "tpu" and mapping.segment_of[index] != number:
                mapping.problems.append(f"source op {index} is in two Edge TPU segments")
                continue
            mapping.placements[index] = "tpu"
            mapping.segment_of[index] = number
            for t in src.operators[index].inputs:
                if t < 0 or src.tensors[t].name in stop:
                    continue
                writer = src.producers[t]
                if writer is not None:
                    stack.append(writer)


def log_statuses(log: Any) -> dict[str, list[str]]:
    """Op type → the distinct non-mapped statuses a CompilerLog gives it."""
    statuses: dict[str, list[str]] = {}
    for row in getattr(log, "rows", ()) or ():
        if not row.mapped and row.status not in statuses.setdefault(row.operator, []):
            statuses[row.operator].append(row.status)
    return statuses


def diff_placements(
    predicted: list[OpPlacement],
    mapping: PairMapping,
    statuses: dict[str, list[str]] | None = None,
    log_names: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The ops where the prediction and the real placement disagree (`ModelReport.diff`; keys:
    coralcheck.pipeline.pair).

    `log_names` are the names the compiler log uses for each source op (CUSTOM for custom ops),
    to look up `statuses`.
    """
    out = []
    for p in predicted:
        if not 0 <= p.index < len(mapping.placements):
            continue
        actual = mapping.placements[p.index]
        if actual is None or actual == p.placement:
            continue
        if actual == "tpu":
            actual_status: str | None = MAPPED_STATUS
        else:
            name = log_names[p.index] if log_names else p.opcode
            known = (statuses or {}).get(name, [])
            actual_status = known[0] if len(known) == 1 else None
        out.append(
            {
                "index": p.index,
                "opcode": p.opcode,
                "predicted": p.placement,
                "actual": actual,
                "segment": mapping.segment_of[p.index],
                "predicted_status": p.status,
                "predicted_reason": p.reason,
                "actual_status": actual_status,
            }
        )
    return out
