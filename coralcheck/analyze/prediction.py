"""What the placement predictor gives (`Prediction`), how it groups ops by signature
(`OpGroup`) and the ops that one change brings back together (`CauseUnit`, found by
coralcheck.analyze.causes); coralcheck.analyze.placement.predict makes them, the rules and
estimators read them.
"""

from collections.abc import Sequence, Set
from typing import NamedTuple

from coralcheck.analyze.verdicts import OpVerdict
from coralcheck.edgetpu.opview import OpView
from coralcheck.report import OpPlacement, RootCause, TpuSegment


class CauseUnit(NamedTuple):
    """Ops on the CPU for one reason that one change removes."""

    kind: str  # "float-island" | "batch"
    anchor: int  # the op reported as the cause
    members: tuple[int, ...]  # every op the change brings back to being mappable, ascending
    reason: str
    fix: str


class OpGroup:
    """The ops of the main subgraph that share one signature (`opview.op_signatures`).

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
