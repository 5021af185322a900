"""Predict what edgetpu_compiler does with every op of the main subgraph, without the compiler.

Two steps, as in the compiler:

1. **Per op** (`verdicts.verdict`): can this op map at all? Checked in the order the compiler's
   statuses imply (rules/ops.toml header): data type, op supported by the target release and
   runtime, op version, tensor rank, then the op's constraints from the knowledge base.
2. **Partitioning** (`partition.partition`): the compiler delegates through TFLite's delegate
   API (its errors are TFLite's: "Restored original execution plan after delegate application
   failure"), so the
   supported ops are grouped the way TFLite's `PartitionGraphIntoIndependentNodeSubsets` groups
   them: walking the ops in order, each op joins the earliest subset of its kind (delegated or not)
   that comes after all the subsets producing its inputs; subsets alternate in kind, starting with
   the kind of op 0. The compiler keeps the first delegated subset as its single Edge TPU segment;
   supported ops in later delegated subsets get "More than one subgraph is not supported".
   "Everything after" an unmapped op thus means graph dependency, not file order: ops on branches
   that do not depend on it still map (movenet in the corpus), and CPU ops that only feed the
   segment (CAST/QUANTIZE at the input) do not split it.
   With `-a` (`--enable_multiple_subgraphs`, `multiple_subgraphs=True`) every delegated subset
   becomes an Edge TPU segment of its own, however small: the corpus's `-a` compiles have 3 to 19
   segments, down to a single RESHAPE between two CPU ops (R-e-d-a-X random forests).

A QUANTIZE that produces a graph output but is fed by an op on the CPU stays on the CPU with
"otherwise supported, but not mapped" (rules/ops.toml, QUANTIZE), whether or not mapping it would
open a segment of its own: with or without `-a`, it is never a 1-op Edge TPU segment.

`Prediction.segments` lists the predicted segments (`TpuSegment`: their ops, the tensors that cross
to and from the CPU, and the CPU ops that separate each from the next), in execution order.

Root causes (`causes.py`): every op that stays on the CPU because of its own verdict; each op
blocked by the single-segment rule points (`blamed_on`) to the earliest root cause it depends on.
Root causes are ranked by how many ops (and MACs) the compiler would map if that op alone were
fixed, computed by re-running the partition. What `predict` gives is a `Prediction`
(`prediction.py`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from coralcheck.analyze.causes import cause_units, rank_root_causes
from coralcheck.analyze.cost import op_macs
from coralcheck.analyze.partition import blame, partition, tpu_ops, unmap_boundary_quantizes
from coralcheck.analyze.partition import segments as partition_segments
from coralcheck.analyze.prediction import OpGroup, Prediction
from coralcheck.analyze.verdicts import OpVerdict, decide, verdict
from coralcheck.edgetpu.constraints import READS_CONSTANT_DATA
from coralcheck.edgetpu.opview import OpView, OpViews, op_signatures
from coralcheck.edgetpu.statuses import MAPPED_STATUS, MORE_THAN_ONE_SUBGRAPH, UNSPECIFIED
from coralcheck.edgetpu.target import Target
from coralcheck.model.graph import Model, Subgraph
from coralcheck.report import OpPlacement


def output_quantizes(sg: Subgraph, target: Target, groups: Iterable[OpGroup]) -> list[int]:
    """The ops that rules/ops.toml flags `unmapped_at_output_after_cpu` (QUANTIZE) and that
    produce a graph output, ascending."""
    flagged = target.ops_with_flag("unmapped_at_output_after_cpu")
    outputs = set(sg.outputs)
    found = [
        i
        for g in groups
        if g.opcode in flagged
        for i in g.members
        if any(t in outputs for t in sg.operators[i].outputs)
    ]
    found.sort()
    return found


def _new_group(view: OpView, target: Target) -> tuple[OpGroup, OpVerdict]:
    """The group of a signature not seen before, made from its first op; and that op's verdict."""
    found, shared = decide(view, target)
    if shared and any(c.check in READS_CONSTANT_DATA for c in target.constraints(view.op.opcode)):
        shared = False  # another op of this signature may hold other values
    types = frozenset([t.dtype for t in view.activations])
    return OpGroup(view.op.opcode, types, found if shared else None, op_macs(view)), found


def predict(model: Model, target: Target, multiple_subgraphs: bool = False) -> Prediction:
    """Placement, status, reason and blame for every op of the main subgraph, as the compiler
    would place them (`multiple_subgraphs`: as `edgetpu_compiler -a` would)."""
    sg = model.main
    views = OpViews(model, sg)
    groups, verdicts, macs, preds = _decide_ops(sg, views, target)
    supported = [v.supported for v in verdicts]
    epochs = partition(supported, preds)
    on_tpu = tpu_ops(supported, epochs, multiple_subgraphs)
    quantizes = output_quantizes(sg, target, groups)
    boundary = unmap_boundary_quantizes(sg, quantizes, supported, on_tpu)
    rejected = [i for i, ok in enumerate(supported) if not ok]
    units = cause_units(sg, rejected, verdicts) if rejected else []
    anchor_of = {i: unit.anchor for unit in units for i in unit.members}
    cause = blame(supported, epochs, on_tpu, preds, anchor_of)
    segments = partition_segments(sg, epochs, on_tpu, macs)
    segment_of: list[int | None] = [None] * len(sg.operators)
    for segment in segments:  # each op's segment number (several only with -a)
        for i in segment.ops:
            segment_of[i] = segment.number
    placements = [
        _placement(
            sg, i, verdicts[i], on_tpu[i], preds[i], cause, i in boundary, macs[i], segment_of[i]
        )
        for i in range(len(sg.operators))
    ]
    prediction = Prediction(views, verdicts, epochs, on_tpu, placements, macs, groups, rejected)
    prediction.multiple_subgraphs = multiple_subgraphs
    prediction.segments = segments
    prediction.units = units
    prediction.root_causes = rank_root_causes(sg, prediction, preds, quantizes)
    return prediction


def _decide_ops(
    sg: Subgraph, views: OpViews, target: Target
) -> tuple[list[OpGroup], list[OpVerdict], list[int], list[list[int]]]:
    """Every op's verdict and MACs, decided once per signature group where they can be; and per
    op the earlier ops producing its inputs, ascending. Returns (groups in order of first
    appearance, verdicts, MACs, producers)."""
    producers = sg.producers
    n_tensors = len(producers)
    by_signature: dict[Hashable, OpGroup] = {}
    verdicts: list[OpVerdict] = []
    macs: list[int] = []
    preds: list[list[int]] = []
    signatures: list[Hashable] = op_signatures(sg)
    for i, op in enumerate(sg.operators):
        # Ops of one signature share their verdict and MACs: most models repeat a few dozen
        # kinds of op, and deciding one costs ~10 µs against ~1 µs for its signature.
        key = signatures[i]
        group = by_signature.get(key)
        if group is None:
            group, found = _new_group(views[i], target)
            by_signature[key] = group
        elif group.verdict is not None:
            found = group.verdict
        else:
            found = verdict(views[i], target)
        group.members.append(i)
        verdicts.append(found)
        macs.append(group.macs)
        # Earlier producers only (a malformed later one is ignored).
        earlier = [
            p for t in op.inputs if 0 <= t < n_tensors and (p := producers[t]) is not None and p < i
        ]
        preds.append(earlier if len(earlier) < 2 else sorted(set(earlier)))
    return list(by_signature.values()), verdicts, macs, preds


def _placement(
    sg: Subgraph,
    i: int,
    v: OpVerdict,
    on_tpu: bool,
    preds: list[int],
    cause: list[int | None],
    boundary: bool,
    macs: int,
    segment: int | None,
) -> OpPlacement:
    """Op `i`'s placement: mapped, on the CPU by its own verdict, or on the CPU because it
    depends on one (`blamed_on`, the earliest root cause upstream)."""
    op = sg.operators[i]
    blamed = None
    if on_tpu:
        status, reason = MAPPED_STATUS, "; ".join(v.notes)
    elif not v.supported:
        status, reason = v.status, v.reason
    else:
        upstream = [cause[p] for p in preds if cause[p] is not None]
        blamed = min(upstream) if upstream else None  # type: ignore[type-var]
        culprit = (
            f"op {blamed} ({sg.operators[blamed].opcode})"
            if blamed is not None
            else "an op on the CPU"
        )
        if boundary:
            status = UNSPECIFIED
            reason = (
                f"QUANTIZE at the graph output is fed by the CPU (via {culprit}); the compiler "
                "leaves such an output QUANTIZE on the CPU"
            )
        else:
            status = MORE_THAN_ONE_SUBGRAPH
            reason = (
                f"depends on {culprit}, which stays on the CPU: the compiler maps one Edge "
                "TPU segment and this op would need a second one"
            )
    # (Positional: keywords cost twice as much, a millisecond for 3,500 ops.)
    placement = "tpu" if on_tpu else "cpu"
    return OpPlacement(i, op.opcode, op.version, placement, status, reason, blamed, macs, segment)
