"""The finished report: what analysis produces and renderers format. `--format json` prints
`Report.to_dict()` plus the verdict (gates, exit code) the CLI adds; coralcheck/report.schema.json
describes it, versioned by `schema_version`.

Renderers never compute: any number a renderer needs must be a field here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}
Placement = Literal["tpu", "cpu"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem or piece of advice, with a stable code (see `coralcheck rules`)."""

    code: str
    severity: Severity
    message: str
    op: int | None = None  # operator index in the subgraph
    tensor: str | None = None  # tensor name
    fix: str = ""
    subgraph: int = 0
    opcode: str | None = None  # the op type at `op`, for stable fingerprints


@dataclass(frozen=True, slots=True)
class OpPlacement:
    """Where one operator of the main subgraph runs, in the compiler's words and in ours."""

    index: int
    opcode: str
    version: int
    placement: Placement
    status: str  # the compiler's status string (e.g. "Mapped to Edge TPU")
    reason: str  # the human reason naming the root cause
    blamed_on: int | None = None  # the op whose failure sent this one to the CPU
    macs: int = 0


@dataclass(frozen=True, slots=True)
class RootCause:
    """An op that keeps others off the TPU, ranked by what fixing it would bring back."""

    op: int
    opcode: str
    status: str
    reason: str
    ops_recovered: int
    macs_recovered: int
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Summary:
    ops_total: int
    ops_tpu: int
    ops_cpu: int
    tpu_segments: int
    macs_total: int = 0
    macs_tpu: int = 0

    @property
    def tpu_mac_share(self) -> float:
        return self.macs_tpu / self.macs_total if self.macs_total else 1.0


@dataclass(frozen=True, slots=True)
class IOTensor:
    """A graph input or output, with the float<->integer contract users must follow."""

    role: Literal["input", "output"]
    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    scale: float | None
    zero_point: int | None


@dataclass(frozen=True, slots=True)
class Memory:
    """Parameter memory: what fits the on-chip cache and what is streamed every inference."""

    parameter_bytes: int  # constant data of ops predicted (or known) to run on the TPU
    cache_bytes: int  # on-chip cache assumed for parameters
    on_chip_bytes: int
    off_chip_bytes: int
    source: Literal["estimate", "compiled"] = "estimate"


@dataclass(slots=True)
class ModelReport:
    path: str
    kind: Literal["source", "compiled"]
    file_size: int
    compiler_version: str  # the target compiler the prediction is for
    summary: Summary
    ops: list[OpPlacement] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    io: list[IOTensor] = field(default_factory=list)
    memory: Memory | None = None
    root_causes: list[RootCause] = field(default_factory=list)
    op_histogram: dict[str, int] = field(default_factory=dict)
    subgraphs: int = 1
    # Facts read from a compiled model (segments, executables, CPU ops), when there is one.
    compiled: dict[str, Any] | None = None
    # A real compiler run or a compiler log: its parsed result.
    compiler: dict[str, Any] | None = None
    # Where the prediction and the real compiler disagree, op by op.
    diff: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["summary"]["tpu_mac_share"] = round(self.summary.tpu_mac_share, 4)
        return _finite(d)


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: a non-finite number read from a corrupt file (a NaN scale)
    becomes None, so that every JSON output stays valid for jq and JSON.parse."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_finite(v) for v in value)
    return value


@dataclass(slots=True)
class Report:
    models: list[ModelReport] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    tool_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tool": {"name": "coralcheck", "version": self.tool_version},
            "models": [m.to_dict() for m in self.models],
        }

    @property
    def findings(self) -> list[tuple[ModelReport, Finding]]:
        return [(m, f) for m in self.models for f in m.findings]
