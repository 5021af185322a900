"""Predict what edgetpu_compiler does with every op of the main subgraph, without the compiler.

Two steps, as in the compiler:

1. **Per op** (`verdict`): can this op map at all? Checked in the order the compiler's statuses
   imply (rules/ops.toml header): data type, op supported by the target release and runtime, op
   version, tensor rank, then the op's constraints from the knowledge base.
2. **Partitioning** (`partition`): the compiler delegates through TFLite's delegate API (its errors
   are TFLite's: "Restored original execution plan after delegate application failure"), so the
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

Root causes: every op that stays on the CPU because of its own verdict; each op blocked by the
single-segment rule points (`blamed_on`) to the earliest root cause it depends on. Root causes are
ranked by how many ops (and MACs) the compiler would map if that op alone were fixed, computed by
re-running the partition.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Hashable, Iterable, Sequence, Set
from typing import NamedTuple

from coralcheck.analyze.causes import CauseUnit, cause_units
from coralcheck.analyze.cost import op_macs
from coralcheck.edgetpu import layout
from coralcheck.edgetpu.constraints import (
    CONSTRAINT_CHECKS,
    READS_CONSTANT_DATA,
    OpView,
    OpViews,
    op_signature,
)
from coralcheck.edgetpu.knowledge import Constraint, Release, Target
from coralcheck.model.graph import Model, Subgraph
from coralcheck.report import OpPlacement, RootCause, TpuSegment
from coralcheck.wording import quote, shape_text

MAPPED = "Mapped to Edge TPU"
MORE_THAN_ONE_SUBGRAPH = "More than one subgraph is not supported"
UNSPECIFIED = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
DATA_TYPE = "Operation is working on an unsupported data type"
NOT_SUPPORTED = "Operation not supported"
VERSION = "Operation version not supported"
RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"

INTEGER_8BIT = frozenset({"INT8", "UINT8"})
FLOAT_TYPES = frozenset({"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"})

_CUSTOM_OP_FIX = (
    "A custom op never runs on the Edge TPU: replace it with builtin ops, or move it after the "
    "last op that should run on the Edge TPU."
)

# Root causes whose recovery is computed exactly (one re-partition each); the rest are estimated.
_EXACT_RECOVERY_BUDGET = 24


class OpVerdict(NamedTuple):
    """Whether one op can map on its own (before partitioning), and if not, why.

    kind: "ok", "custom", "dtype", "unsupported", "runtime", "unparseable", "version", "rank",
    "constraint" (a documented constraint) or "limit" (an inferred size limit).
    """

    kind: str
    status: str
    reason: str = ""
    fix: str = ""
    tensor: str | None = None
    constraint: Constraint | None = None
    notes: tuple[str, ...] = ()  # caveats on an op that maps

    @property
    def supported(self) -> bool:
        return self.kind == "ok"


def _label(target: Target, release: Release | None = None) -> str:
    """A release (default: the target's) as messages name it (`Knowledge.label`)."""
    return target.knowledge.label(release or target.release)


def _parse_step(view: OpView, target: Target) -> OpVerdict | None:
    """An op version the compiler cannot even read: the whole compilation fails."""
    op, limit = view.op, target.parse_limit(view.op.opcode)
    if limit is None or op.version <= limit.max_version:
        return None
    return OpVerdict(
        "unparseable",
        VERSION,
        f"{op.opcode} version {op.version} is unknown to compiler {_label(target)} (it "
        f"parses up to version {limit.max_version}): the compiler stops with \"Didn't find op "
        'for builtin opcode" and compiles nothing',
    )


def _data_type_step(view: OpView, target: Target) -> OpVerdict | None:
    """Every tensor the op computes on must be int8/uint8 (a QUANTIZE may read float); index
    inputs (rules/ops.toml [index_inputs]) are not data."""
    op = view.op
    float_input_ok = bool(target.flag(op.opcode, "float_input_allowed", False))
    outputs = {t.index for t in view.outputs}
    at = target.knowledge.index_inputs.get(op.opcode)
    indices = {op.inputs[i] for i in at if i < len(op.inputs)} if at else ()
    for t in view.activations:
        if indices and t.index in indices and t.index not in outputs:
            continue
        is_output = t.index in outputs
        if t.dtype in INTEGER_8BIT or (float_input_ok and t.dtype in FLOAT_TYPES and not is_output):
            continue
        return OpVerdict(
            "custom" if view.op.is_custom else "dtype",
            DATA_TYPE,
            f"{'output' if is_output else 'input'} {quote(t.name)} is {t.dtype}; the Edge TPU "
            "computes only on int8/uint8 tensors",
            tensor=t.name,
        )
    return None


def _support_step(view: OpView, target: Target) -> OpVerdict | None:
    """The op must be in the target release's table, for the target runtime."""
    op = view.op
    if op.is_custom:
        return OpVerdict("custom", NOT_SUPPORTED, f"custom op {op.custom_code!r} runs on the CPU")
    name = op.opcode
    if target.supports(name):
        return None
    spec, first = target.spec(name), target.first_release(name)
    if spec is None or first is None:
        return OpVerdict("unsupported", NOT_SUPPORTED, f"{name} is not an Edge TPU operation")
    if target.release.version < spec.since:
        return OpVerdict(
            "unsupported",
            NOT_SUPPORTED,
            f"{name} maps only from compiler {_label(target, first)} on (target: {_label(target)})",
            fix=f"Compile with edgetpu_compiler {_label(target, first)} or newer.",
        )
    return OpVerdict(
        "runtime",
        NOT_SUPPORTED,
        f"{name} needs Edge TPU runtime {spec.runtime}; the target runtime is {target.runtime}",
        fix=f"Target runtime {spec.runtime} or newer (-m / --runtime-version).",
    )


def _version_step(view: OpView, target: Target) -> OpVerdict | None:
    """The op version must be one the release maps, where a limit is known."""
    op, limit = view.op, target.version_limit(view.op.opcode)
    if limit is None or op.version <= limit.max_version:
        return None
    unsure = "" if limit.confidence == "confirmed" else " (unconfirmed)"
    newer = target.newer_release_for(op.opcode, op.version, parse=False)
    fix = ""
    if newer is not None:  # only where a newer compiler helps (never "use 16.0" to a 16.0 user)
        fix = (
            f"Compiler {newer.short} maps {op.opcode} version {op.version}: target it "
            f"(--compiler-version {newer.short}). Otherwise convert with an older TensorFlow, "
            "or change the op option that raised the version."
        )
    return OpVerdict(
        "version",
        VERSION,
        f"{op.opcode} version {op.version} is newer than compiler {_label(target)} maps "
        f"(up to version {limit.max_version}){unsure}",
        fix=fix,
    )


def _rank_step(view: OpView, target: Target) -> OpVerdict | None:
    """Only the three innermost dimensions of a tensor may be larger than 1."""
    for t in view.activations:
        if layout.has_unsupported_rank(t.shape):
            return OpVerdict(
                "rank",
                RANK,
                f"tensor {quote(t.name)} has shape {shape_text(t.shape)}: "
                f"{layout.non_singleton(t.shape)} dimensions larger than 1, but only the 3 "
                "innermost may be",
                tensor=t.name,
            )
    return None


def _constraint_step(view: OpView, target: Target) -> tuple[OpVerdict, bool]:
    """The op's constraints (rules/ops.toml); the op maps when none fails.

    Also says whether the verdict would be the same for any op of the same signature: a mapped
    op's, unless a "note" constraint added a message of its own (messages may name tensors).
    """
    name = view.op.opcode
    notes: list[str] = []
    own_notes = False
    spec = target.spec(name)
    if spec is not None and spec.confidence not in _CONFIRMED:
        notes.append(f"Coral lists {name} as supported, but no real compiler output confirms it")
    for c in target.constraints(name):
        message = CONSTRAINT_CHECKS[c.check](view, c)
        if not message:
            continue
        if c.effect == "note":
            # Constraint texts are sentences: the caveat follows as one more.
            notes.append(f"{message.rstrip('.')}. Only the compiler can tell whether it maps.")
            own_notes = True
            continue
        found = OpVerdict(
            "limit" if c.inferred else "constraint",
            c.status or UNSPECIFIED,
            f"{name} {message}",
            fix=c.fix,
            tensor=_named_tensor(view, message),
            constraint=c,
        )
        return found, False
    if not notes:
        return _MAPS, True
    return OpVerdict("ok", MAPPED, notes=tuple(notes)), not own_notes


_CONFIRMED = ("confirmed", "corpus")
# The verdict of most ops (shared: verdicts are immutable).
_MAPS = OpVerdict("ok", MAPPED)


# The compiler's checks in the order its statuses imply (rules/ops.toml header).
_STEPS = (_parse_step, _data_type_step, _support_step, _version_step, _rank_step)


def _decide(view: OpView, target: Target) -> tuple[OpVerdict, bool]:
    """The op's verdict, and whether it holds for every op of the same signature (a failure never
    does: its message names the op's own tensors)."""
    for step in _STEPS:
        found = step(view, target)
        if found is not None:
            return found, False
    return _constraint_step(view, target)


def verdict(view: OpView, target: Target) -> OpVerdict:
    """What the compiler would say about this op on its own."""
    return _decide(view, target)[0]


def _named_tensor(view: OpView, message: str) -> str | None:
    """The first of the op's tensors that a constraint message names ('name')."""
    for t in (*view.inputs, *view.outputs):
        if quote(t.name) in message:
            return t.name
    return None


def partition(
    supported: Sequence[bool],
    preds: Sequence[Sequence[int]],
    start: int = 0,
    earlier: Sequence[int] = (),
) -> list[int]:
    """TFLite's delegate partitioning: the subset ("epoch") of every op; even epochs have the
    kind of op 0, odd ones the other kind (see the module docstring).

    An op's epoch depends only on earlier ops, so the epochs of ops before `start` may be given
    (`earlier`, from a partition with the same `supported[:start]` and op 0's kind).
    """
    if not supported:
        return []
    first_kind = supported[0]
    epochs = [*earlier[:start], *([0] * (len(supported) - start))]
    for i in range(start, len(supported)):
        latest = 0
        for p in preds[i]:
            if epochs[p] > latest:
                latest = epochs[p]
        latest_kind = first_kind if latest % 2 == 0 else not first_kind
        epochs[i] = latest if latest_kind == supported[i] else latest + 1
    return epochs


def segment_epoch(supported: Sequence[bool]) -> int:
    """The epoch of the first delegated subset: the Edge TPU segment."""
    return 0 if supported and supported[0] else 1


def tpu_ops(
    supported: Sequence[bool], epochs: Sequence[int], multiple_subgraphs: bool = False
) -> list[bool]:
    """The ops the compiler delegates: those of the first delegated subset, or with `-a`
    (`multiple_subgraphs`) those of every delegated subset."""
    if multiple_subgraphs:
        return list(supported)
    seg = segment_epoch(supported)
    return [s and e == seg for s, e in zip(supported, epochs, strict=True)]


def _segments(
    sg: Subgraph, epochs: Sequence[int], on_tpu: Sequence[bool], macs: Sequence[int]
) -> list[TpuSegment]:
    """The segments the delegated ops form: one per epoch that holds one (see `partition`)."""
    order = sorted({e for e, on in zip(epochs, on_tpu, strict=True) if on})
    if not order:
        return []
    number = {e: n for n, e in enumerate(order)}
    # Per op: its segment (0-based), or -1 on the CPU.
    seg_of = [number[e] if on else -1 for e, on in zip(epochs, on_tpu, strict=True)]
    ops: list[list[int]] = [[] for _ in order]
    cpu_after: list[list[int]] = [[] for _ in order]
    inputs: list[dict[int, None]] = [{} for _ in order]
    outputs: list[dict[int, None]] = [{} for _ in order]
    tensors, producers, consumers = sg.tensors, sg.producers, sg.consumers
    n_tensors = len(tensors)
    graph_inputs, graph_outputs = set(sg.inputs), set(sg.outputs)
    for i, op in enumerate(sg.operators):
        n = seg_of[i]
        if n < 0:  # a CPU op: after the last segment whose epoch is not after its own
            slot = bisect_right(order, epochs[i]) - 1
            if slot >= 0:
                cpu_after[slot].append(i)
            continue
        ops[n].append(i)
        for t in op.inputs:
            if not 0 <= t < n_tensors:
                continue
            p = producers[t]
            if p is None:  # a graph input, a state tensor, or a constant (not an input)
                if t in graph_inputs or tensors[t].is_variable:
                    inputs[n][t] = None
            elif seg_of[p] != n:
                inputs[n][t] = None
        for t in op.outputs:
            if 0 <= t < n_tensors:
                if t in graph_outputs:
                    outputs[n][t] = None
                    continue
                for c in consumers[t]:
                    if seg_of[c] != n:
                        outputs[n][t] = None
                        break
    return [
        TpuSegment(
            number=n + 1,
            ops=tuple(ops[n]),
            inputs=tuple(inputs[n]),
            outputs=tuple(outputs[n]),
            cpu_after=tuple(cpu_after[n]),
            macs=sum(macs[i] for i in ops[n]),
        )
        for n in range(len(order))
    ]


class OpGroup:
    """The ops of the main subgraph that share one signature (`constraints.op_signature`).

    Whatever reads only what a signature holds is decided once per group: the predictor's
    verdict (`verdict`: the one all members share, or None where each op needs its own: a
    failure names the op's tensors, and some constraints read constant values), MACs, and the
    checks that select ops by type or by dtype (`Prediction.ops_of`, `ops_computing_on`).
    """

    __slots__ = ("macs", "members", "opcode", "types", "verdict")

    def __init__(
        self, opcode: str, types: frozenset[str], verdict: OpVerdict | None, macs: int
    ) -> None:
        self.opcode = opcode
        self.types = types  # the dtypes of the activations (OpView.activations)
        self.verdict = verdict
        self.macs = macs
        self.members: list[int] = []  # op indices, ascending


class Prediction:
    """The placement of every op of the main subgraph, and why.

    `views` are made as they are read; `groups` are the ops by signature, in order of first
    appearance; `rejected` are the ops whose own verdict keeps them on the CPU; `epochs` are the
    partition subsets (`partition`); `segments` the Edge TPU segments (`TpuSegment`), in order.
    """

    __slots__ = (
        "epochs",
        "groups",
        "macs",
        "multiple_subgraphs",
        "on_tpu",
        "ops",
        "rejected",
        "root_causes",
        "segments",
        "units",
        "verdicts",
        "views",
    )

    def __init__(
        self,
        views: Sequence[OpView],
        verdicts: list[OpVerdict],
        epochs: list[int],
        on_tpu: list[bool],
        ops: list[OpPlacement],
        macs: list[int],
        groups: list[OpGroup],
        rejected: list[int],
    ) -> None:
        self.views = views
        self.verdicts = verdicts
        self.epochs = epochs
        self.on_tpu = on_tpu
        self.ops = ops
        self.macs = macs
        self.groups = groups
        self.rejected = rejected
        self.root_causes: list[RootCause] = []
        self.segments: list[TpuSegment] = []
        self.multiple_subgraphs = False  # predicted for `edgetpu_compiler -a`
        self.units: list[CauseUnit] = []  # ops on the CPU for one reason (analyze.causes)

    @property
    def tpu_segments(self) -> int:
        return len(self.segments)

    def ops_of(self, opcodes: Set[str]) -> list[int]:
        """The indices of the ops of these types, ascending."""
        found = [i for g in self.groups if g.opcode in opcodes for i in g.members]
        found.sort()
        return found

    def ops_computing_on(self, dtypes: Set[str]) -> list[int]:
        """The indices of the ops with an activation of one of `dtypes`, ascending."""
        found = [i for g in self.groups if not g.types.isdisjoint(dtypes) for i in g.members]
        found.sort()
        return found


def _output_quantizes(sg: Subgraph, target: Target, groups: Iterable[OpGroup]) -> list[int]:
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


def _unmap_boundary_quantizes(
    sg: Subgraph, candidates: Sequence[int], supported: Sequence[bool], on_tpu: list[bool]
) -> set[int]:
    """Take the output QUANTIZEs (`_output_quantizes`) fed by the CPU off the Edge TPU (also
    where they would have made a segment of their own, the first one or, with -a, any); returns
    their indices. Producers come before consumers: one pass in op order settles chains."""
    unmapped = set()
    producers = sg.producers
    for i in candidates:
        if not supported[i]:
            continue
        feeding = [producers[t] for t in sg.operators[i].inputs if t >= 0]
        if any(p is not None and not on_tpu[p] for p in feeding):
            on_tpu[i] = False
            unmapped.add(i)
    return unmapped


def _blame(
    supported: Sequence[bool],
    epochs: Sequence[int],
    on_tpu: Sequence[bool],
    preds,
    anchor_of: dict[int, int],
) -> list[int | None]:
    """Per op: the earliest root cause after the segment that it depends on (None for none).
    An op of a cause unit (`analyze.causes`) stands for its unit's anchor."""
    seg = segment_epoch(supported)
    cause: list[int | None] = [None] * len(supported)
    for i, ok in enumerate(supported):
        if on_tpu[i] or epochs[i] < seg:
            continue
        upstream = [cause[p] for p in preds[i] if cause[p] is not None]
        earliest = min(upstream) if upstream else None  # type: ignore[type-var]
        cause[i] = earliest if earliest is not None or ok else anchor_of.get(i, i)
    return cause


def _new_group(view: OpView, target: Target) -> tuple[OpGroup, OpVerdict]:
    """The group of a signature not seen before, made from its first op; and that op's verdict."""
    found, shared = _decide(view, target)
    if shared and any(c.check in READS_CONSTANT_DATA for c in target.constraints(view.op.opcode)):
        shared = False  # another op of this signature may hold other values
    types = frozenset([t.dtype for t in view.activations])
    return OpGroup(view.op.opcode, types, found if shared else None, op_macs(view)), found


def predict(model: Model, target: Target, multiple_subgraphs: bool = False) -> Prediction:
    """Placement, status, reason and blame for every op of the main subgraph, as the compiler
    would place them (`multiple_subgraphs`: as `edgetpu_compiler -a` would)."""
    sg = model.main
    views = OpViews(model, sg)
    producers = sg.producers
    n_tensors = len(producers)
    by_signature: dict[Hashable, OpGroup] = {}
    verdicts: list[OpVerdict] = []
    macs: list[int] = []
    preds: list[list[int]] = []  # per op: the ops producing its inputs, ascending
    for i, op in enumerate(sg.operators):
        # Ops of one signature share their verdict and MACs: most models repeat a few dozen
        # kinds of op, and deciding one costs ~10 µs against ~1 µs for its signature.
        key: Hashable = op_signature(sg, op)
        try:
            group = by_signature.get(key)
        except TypeError:  # an option value that cannot be hashed: the op is a group of its own
            key, group = ("op", i), None
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
    supported = [v.supported for v in verdicts]
    epochs = partition(supported, preds)
    on_tpu = tpu_ops(supported, epochs, multiple_subgraphs)
    output_quantizes = _output_quantizes(sg, target, by_signature.values())
    boundary = _unmap_boundary_quantizes(sg, output_quantizes, supported, on_tpu)
    rejected = [i for i, ok in enumerate(supported) if not ok]
    units = cause_units(sg, rejected, verdicts) if rejected else []
    anchor_of = {i: unit.anchor for unit in units for i in unit.members}
    cause = _blame(supported, epochs, on_tpu, preds, anchor_of)

    placements: list[OpPlacement] = []
    for i, (op, v) in enumerate(zip(sg.operators, verdicts, strict=True)):
        blamed = None
        if on_tpu[i]:
            status, reason = MAPPED, "; ".join(v.notes)
        elif not supported[i]:
            status, reason = v.status, v.reason
        else:
            upstream = [cause[p] for p in preds[i] if cause[p] is not None]
            blamed = min(upstream) if upstream else None
            culprit = (
                f"op {blamed} ({sg.operators[blamed].opcode})"
                if blamed is not None
                else "an op on the CPU"
            )
            if i in boundary:
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
        placements.append(
            OpPlacement(
                index=i,
                opcode=op.opcode,
                version=op.version,
                placement="tpu" if on_tpu[i] else "cpu",
                status=status,
                reason=reason,
                blamed_on=blamed,
                macs=macs[i],
            )
        )
    segments = _segments(sg, epochs, on_tpu, macs)
    for segment in segments:  # each op's segment number (several only with -a)
        for i in segment.ops:
            placements[i] = placements[i]._replace(segment=segment.number)
    groups = list(by_signature.values())
    prediction = Prediction(views, verdicts, epochs, on_tpu, placements, macs, groups, rejected)
    prediction.multiple_subgraphs = multiple_subgraphs
    prediction.segments = segments
    prediction.units = units
    prediction.root_causes = rank_root_causes(sg, prediction, preds, output_quantizes)
    return prediction


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
    _unmap_boundary_quantizes(sg, quantizes, trial, after)
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
