"""Per op: can this op map at all, and if not, why (`verdict`)? The first step of the placement
prediction (coralcheck.analyze.placement), checked in the order the compiler's statuses imply
(rules/ops.toml header): data type, op supported by the target release and runtime, op version,
tensor rank, then the op's constraints from the knowledge base (coralcheck.edgetpu.constraints).
"""

from typing import NamedTuple

from coralcheck.edgetpu import layout
from coralcheck.edgetpu.constraints import CONSTRAINT_CHECKS
from coralcheck.edgetpu.knowledge import Constraint, Release
from coralcheck.edgetpu.opview import OpView
from coralcheck.edgetpu.statuses import (
    DATA_TYPE,
    MAPPED_STATUS,
    NOT_SUPPORTED,
    RANK,
    UNSPECIFIED,
    VERSION,
)
from coralcheck.edgetpu.target import Target
from coralcheck.wording import quote, shape_text

INTEGER_8BIT = frozenset({"INT8", "UINT8"})
FLOAT_TYPES = frozenset({"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"})


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
    return OpVerdict("ok", MAPPED_STATUS, notes=tuple(notes)), not own_notes


_CONFIRMED = ("confirmed", "corpus")
# The verdict of most ops (shared: verdicts are immutable).
_MAPS = OpVerdict("ok", MAPPED_STATUS)


# The compiler's checks in the order its statuses imply (rules/ops.toml header).
_STEPS = (_parse_step, _data_type_step, _support_step, _version_step, _rank_step)


def decide(view: OpView, target: Target) -> tuple[OpVerdict, bool]:
    """The op's verdict, and whether it holds for every op of the same signature (a failure never
    does: its message names the op's own tensors)."""
    for step in _STEPS:
        found = step(view, target)
        if found is not None:
            return found, False
    return _constraint_step(view, target)


def verdict(view: OpView, target: Target) -> OpVerdict:
    """What the compiler would say about this op on its own."""
    return decide(view, target)[0]


def _named_tensor(view: OpView, message: str) -> str | None:
    """The first of the op's tensors that a constraint message names ('name')."""
    for t in (*view.inputs, *view.outputs):
        if quote(t.name) in message:
            return t.name
    return None
