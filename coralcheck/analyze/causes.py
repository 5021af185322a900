"""Root causes that only one change fixes: several ops on the CPU for one reason.

The predictor judges every op on its own, but some ops are on the CPU together, for one reason
that one change removes; reporting them one by one blames the wrong op and promises wins that
no single op can give:

- **Float islands.** The converter keeps an op without an int8 kernel (ELU, CONV_3D) in float
  and wraps it in DEQUANTIZE → float op → QUANTIZE. The DEQUANTIZE is the first op on the CPU,
  but the cause is the float op; making the DEQUANTIZE mappable alone brings nothing back.
- **A batch larger than 1.** With input batch 4, every 4-D tensor has four dimensions larger
  than 1 and almost every op is rejected on its own ("unsupported rank", or an FC output that is
  not one-dimensional). One change fixes them all: export with batch 1.

`cause_units` finds them; `analyze.placement` blames the ops after a unit on its anchor (the op
named as the cause) and ranks each unit as one root cause, recovered by fixing all its members.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from coralcheck.analyze.partition import partition, tpu_ops, unmap_boundary_quantizes
from coralcheck.analyze.prediction import CauseUnit, Prediction
from coralcheck.analyze.verdicts import FLOAT_TYPES, OpVerdict
from coralcheck.edgetpu import layout
from coralcheck.report import RootCause
from coralcheck.wording import shape_text

if TYPE_CHECKING:
    from coralcheck.model.graph import Subgraph, Tensor

_CUSTOM_OP_FIX = (
    "A custom op never runs on the Edge TPU: replace it with builtin ops, or move it after the "
    "last op that should run on the Edge TPU."
)

# Root causes whose recovery is computed exactly (one re-partition each); the rest are estimated.
_EXACT_RECOVERY_BUDGET = 24
_BOUNDARY = frozenset({"QUANTIZE", "DEQUANTIZE"})
_EIGHT_BIT = frozenset({"INT8", "UINT8"})


def connected_groups(
    sg: Subgraph, members: Sequence[int] | set[int], via: Callable[[Tensor], bool]
) -> list[list[int]]:
    """The connected groups of the ops in `members`, joined through the tensors for which `via`
    holds (a tensor joins its producer and every consumer that are members). Linear in the ops'
    inputs and outputs: each tensor is looked at once per op that touches it."""
    parent = {i: i for i in members}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    joined_via: dict[int, int] = {}  # tensor -> the first member seen touching it
    n_tensors = len(sg.tensors)
    for i in sorted(parent):
        op = sg.operators[i]
        for t in (*op.inputs, *op.outputs):
            if not 0 <= t < n_tensors:
                continue
            first = joined_via.get(t)
            if first is None:
                if via(sg.tensors[t]):
                    joined_via[t] = i
                else:
                    joined_via[t] = -1
                continue
            if first >= 0:
                a, b = root(first), root(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in sorted(parent):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values())


def _is_float(t: Tensor) -> bool:
    return t.dtype in FLOAT_TYPES


def float_islands(
    sg: Subgraph, rejected: Sequence[int], verdicts: Sequence[OpVerdict]
) -> list[CauseUnit]:
    """Groups of ops that compute in float inside an integer model, each with at least one
    compute op (not only the QUANTIZE/DEQUANTIZE of a float model input or output)."""
    if not any(t.dtype in _EIGHT_BIT and not t.is_constant for t in sg.tensors):
        return []  # a float model is not an integer model with islands (Q001)
    candidates = {
        i
        for i in rejected
        if not sg.operators[i].is_custom and any(_is_float(sg.tensors[t]) for t in _io(sg, i))
    }
    if not candidates:
        return []
    units = []
    for group in connected_groups(sg, candidates, _is_float):
        compute = [i for i in group if sg.operators[i].opcode not in _BOUNDARY]
        if not compute:
            continue  # a float input QUANTIZE or output DEQUANTIZE: I001's matter
        anchor = compute[0]
        opcode = sg.operators[anchor].opcode
        names = " -> ".join(f"{sg.operators[i].opcode} (op {i})" for i in group[:6])
        more = f" -> ... ({len(group) - 6} more)" if len(group) > 6 else ""
        units.append(
            CauseUnit(
                kind="float-island",
                anchor=anchor,
                members=tuple(group),
                reason=(
                    f"{opcode} was left in float by the converter: {names}{more} compute in "
                    "float on the CPU"
                ),
                fix=(
                    f"Replace {opcode} with an op that has an int8 kernel; the whole float "
                    "island then maps."
                ),
            )
        )
    return units


def _io(sg: Subgraph, i: int) -> list[int]:
    op = sg.operators[i]
    return [t for t in (*op.inputs, *op.outputs) if 0 <= t < len(sg.tensors)]


def batch_unit(
    sg: Subgraph, rejected: Sequence[int], verdicts: Sequence[OpVerdict]
) -> CauseUnit | None:
    """The ops rejected only because a model input has a batch larger than 1: their named
    tensor has that batch as its first dimension and it is the only outer dimension above 1
    (or, for a 2-D tensor, the batch makes it not one-dimensional)."""
    batched = [
        sg.tensors[i]
        for i in sg.inputs
        if 0 <= i < len(sg.tensors) and len(sg.tensors[i].shape) >= 2 and sg.tensors[i].shape[0] > 1
    ]
    if not batched:
        return None
    batches = {t.shape[0] for t in batched}
    by_name = {t.name: t for t in sg.tensors}
    members = []
    for i in rejected:
        v = verdicts[i]
        if v.kind not in ("rank", "constraint", "limit") or v.tensor is None:
            continue
        t = by_name.get(v.tensor)
        if t is None or not t.shape or t.shape[0] not in batches:
            continue
        outer = [d for d in layout.outer_dims(t.shape) if d > 1]
        if v.kind == "rank" and outer != [t.shape[0]]:
            continue  # another dimension breaks the rule too: not the batch alone
        members.append(i)
    if not members:
        return None
    first = batched[0]
    consumers = sg.consumers[first.index]
    anchor = consumers[0] if consumers and consumers[0] in members else members[0]
    shape = shape_text(first.shape)
    return CauseUnit(
        kind="batch",
        anchor=anchor,
        members=tuple(sorted(set(members) | {anchor})),
        reason=(
            f"input '{first.name}' has batch {first.shape[0]} ({shape}): the batch makes "
            f"{len(members)} ops unmappable"
        ),
        fix="Export the model with batch 1 and run the samples one after another.",
    )


def cause_units(
    sg: Subgraph, rejected: Sequence[int], verdicts: Sequence[OpVerdict]
) -> list[CauseUnit]:
    """Every unit of ops that one change brings back (see the module docstring); an op belongs
    to at most one unit (the batch wins: it is the change that comes first)."""
    units: list[CauseUnit] = []
    batch = batch_unit(sg, rejected, verdicts)
    taken: set[int] = set()
    if batch is not None:
        units.append(batch)
        taken.update(batch.members)
    for island in float_islands(sg, rejected, verdicts):
        if taken.isdisjoint(island.members):
            units.append(island)
            taken.update(island.members)
    return units


# --- ranking: what fixing each root cause alone brings back ---------------------------------


def _recovered(
    fixed: Sequence[int],
    supported: list[bool],
    preds,
    p: Prediction,
    sg: Subgraph,
    quantizes: Sequence[int],
) -> tuple[int, int]:
    """Ops and MACs that would join the Edge TPU segment if the ops `fixed` could map."""
    trial = list(supported)
    for i in fixed:
        trial[i] = True
    first = min(fixed)
    # Only ops from `first` on can change epoch (from op 0 on: everything, as its kind changes).
    after = tpu_ops(trial, partition(trial, preds, first, p.epochs), p.multiple_subgraphs)
    unmap_boundary_quantizes(sg, quantizes, trial, after)
    on_tpu, macs = p.on_tpu, p.macs
    ops = sum(after) - sum(on_tpu)
    gained = sum(
        m for m, now, before in zip(macs, after, on_tpu, strict=True) if now and not before
    )
    lost = sum(m for m, now, before in zip(macs, after, on_tpu, strict=True) if before and not now)
    return max(ops, 0), max(gained - lost, 0)


def _fix_here(sg: Subgraph, index: int, v: OpVerdict) -> str:
    """The verdict's fix for op `index`: a constraint's `fix_inside` (rules/ops.toml) instead
    when the op's data input is not a model input (e.g. a float QUANTIZE after a float island,
    where an integer inference_input_type changes nothing). Verdicts are shared by op
    signature, which does not say where in the graph an op is; this does."""
    inside = v.constraint.params.get("fix_inside") if v.constraint is not None else None
    if inside:
        inputs = sg.operators[index].inputs
        if inputs and inputs[0] not in sg.inputs:
            return str(inside)
    return v.fix


def rank_root_causes(
    sg: Subgraph, p: Prediction, preds, output_quantizes: Sequence[int] = ()
) -> list[RootCause]:
    """Every op on the CPU on its own account, ranked by what fixing it alone would bring back.

    A cause unit (`analyze.causes`: a float island, a batch larger than 1) is one root cause,
    named by its anchor and recovered by fixing all its members. A custom op is never promised
    to move to the Edge TPU: what replacing it brings back counts the ops after it only.
    """
    if not p.rejected:
        return []
    units = {unit.anchor: unit for unit in p.units}
    in_unit = {i for unit in p.units for i in unit.members}
    causes = [i for i in p.rejected if i in units or i not in in_unit]
    supported = [v.supported for v in p.verdicts]
    blamed: dict[int, list[int]] = {}
    for placement in p.ops:
        if placement.blamed_on is not None:
            blamed.setdefault(placement.blamed_on, []).append(placement.index)
    # Exact recovery for the most promising causes (most ops blamed on them); the others are
    # estimated as themselves plus what is blamed on them.
    by_promise = sorted(causes, key=lambda i: (-len(blamed.get(i, ())), i))
    exact = set(by_promise[:_EXACT_RECOVERY_BUDGET])
    result = []
    for i in causes:
        unit = units.get(i)
        fixed = unit.members if unit is not None else (i,)
        if i in exact:
            ops, macs = _recovered(fixed, supported, preds, p, sg, output_quantizes)
        else:
            ops = len(fixed) + len(blamed.get(i, ()))
            macs = sum(p.macs[j] for j in (*fixed, *blamed.get(i, ())))
        v = p.verdicts[i]
        if unit is not None:
            reason, fix = unit.reason, unit.fix
        else:
            reason, fix = v.reason, _fix_here(sg, i, v)
        if sg.operators[i].is_custom:
            ops, macs = max(ops - 1, 0), max(macs - p.macs[i], 0)
            fix = fix or _CUSTOM_OP_FIX
        result.append(
            RootCause(
                op=i,
                opcode=sg.operators[i].opcode,
                status=v.status,
                reason=reason,
                ops_recovered=ops,
                macs_recovered=macs,
                fix=fix,
            )
        )
    blocked = {i: len(v) for i, v in blamed.items()}
    result.sort(key=lambda r: (-r.ops_recovered, -r.macs_recovered, -blocked.get(r.op, 0), r.op))
    return result
