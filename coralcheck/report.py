"""The finished report: what analysis produces and renderers format. `--format json` prints
`Report.to_dict()` plus the verdict (gates, exit code) the CLI adds; coralcheck/report.schema.json
describes it, versioned by `schema_version`.

Renderers never compute: any number a renderer needs must be a field here.

Records are `NamedTuple`s when immutable and `MutableRecord`s (plain classes with `__slots__`)
when analysis fills them in; both list their fields in `_fields` and copy themselves with
`_replace`. (Not dataclasses: importing `dataclasses` and creating the classes costs the
command several milliseconds at start-up.) A NamedTuple is also a tuple: code that walks values
(`to_dict`, `printable`) must test for a record before it tests for a tuple.
"""

import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal, NamedTuple

from coralcheck.records import MutableRecord

SCHEMA_VERSION = 1

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}
Placement = Literal["tpu", "cpu"]


class Place(NamedTuple):
    """One place of a finding that groups repeats (see coralcheck.analyze.repeats)."""

    op: int | None
    opcode: str | None
    tensor: str | None
    message: str  # what the finding said at this place


class Finding(NamedTuple):
    """One problem or piece of advice, with a stable code (see `coralcheck rules`)."""

    code: str
    severity: Severity
    message: str
    op: int | None = None  # operator index in the subgraph (the first place of a group)
    tensor: str | None = None  # tensor name
    fix: str = ""
    subgraph: int = 0
    opcode: str | None = None  # the op type at `op`, for stable fingerprints
    # Every place of a finding that stands for the same finding at several places (the first
    # is `op`/`tensor`); empty for a finding at one place.
    places: tuple[Place, ...] = ()


class OpPlacement(NamedTuple):
    """Where one operator of the main subgraph runs, in the compiler's words and in ours."""

    index: int
    opcode: str
    version: int
    placement: Placement
    status: str  # the compiler's status string (e.g. "Mapped to Edge TPU")
    reason: str  # the human reason naming the root cause
    blamed_on: int | None = None  # the op whose failure sent this one to the CPU
    macs: int = 0
    segment: int | None = None  # the Edge TPU segment it runs in (1, 2, ...); None on the CPU


class RootCause(NamedTuple):
    """An op that keeps others off the TPU, ranked by what fixing it would bring back."""

    op: int
    opcode: str
    status: str
    reason: str
    ops_recovered: int
    macs_recovered: int
    fix: str = ""


class TpuSegment(NamedTuple):
    """One predicted Edge TPU segment: ops the compiler delegates together, which run as one
    `edgetpu-custom-op` (several with `edgetpu_compiler -a`).

    `number` is 1-based, in execution order; `ops` are the op indices it holds, ascending;
    `inputs` and `outputs` are the main subgraph's tensor indices that cross its boundary (read
    from graph inputs, state tensors or CPU ops; written for CPU ops or graph outputs), in
    first-use order; `cpu_after` are the CPU ops that run after it and before the next segment
    (after the last one: the CPU ops that follow it), i.e. what separates it from the next;
    `macs` are its multiply-accumulates.
    """

    number: int
    ops: tuple[int, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    cpu_after: tuple[int, ...]
    macs: int = 0


class Summary(NamedTuple):
    ops_total: int
    ops_tpu: int
    ops_cpu: int
    tpu_segments: int
    macs_total: int = 0
    macs_tpu: int = 0

    @property
    def tpu_mac_share(self) -> float:
        """The share of multiply-accumulates on the Edge TPU; in a model without any (lookup
        tables, comparisons), the share of its ops; 0 for a model without ops."""
        if self.macs_total:
            return self.macs_tpu / self.macs_total
        return self.ops_tpu / self.ops_total if self.ops_total else 0.0


class IOTensor(NamedTuple):
    """A graph input or output, with the float<->integer contract users must follow."""

    role: Literal["input", "output"]
    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    scale: float | None
    zero_point: int | None


class Memory(NamedTuple):
    """Parameter memory: what fits the on-chip cache and what is streamed every inference."""

    parameter_bytes: int  # constant data of ops predicted (or known) to run on the TPU
    cache_bytes: int  # on-chip cache assumed for parameters
    on_chip_bytes: int
    off_chip_bytes: int
    source: Literal["estimate", "compiled"] = "estimate"


class GraphTensor(NamedTuple):
    """A tensor of the main subgraph as an op's details show it (never its data)."""

    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float | None  # the per-tensor scale (the first one when quantized per channel)
    zero_point: int | None
    channels: int = 0  # how many scales a per-channel quantization has (0: per tensor, or none)
    constant: bool = False  # has data in the file (weights, bias)


class OpGraph(NamedTuple):
    """The data flow of the main subgraph (the graph of the HTML report and the Model Explorer
    overlay): what each op of `ModelReport.ops` reads and writes. Recorded when asked for
    (`Options.graph`), as it is as large as the model's tensor table."""

    subgraph: str  # the subgraph's name in the file ("" when unnamed)
    signature: str | None  # the key of the signature that runs the main subgraph, if any
    tensors: list[GraphTensor]  # every tensor of the main subgraph, by index
    op_inputs: list[tuple[int, ...]]  # per op: the tensors it reads (-1: an omitted input)
    op_outputs: list[tuple[int, ...]]  # per op: the tensors it writes
    inputs: tuple[int, ...]  # the subgraph's input tensors
    outputs: tuple[int, ...]
    # CPU ops that read a tensor an Edge TPU op writes, or write one an Edge TPU op reads: where
    # data crosses between the host and the Edge TPU.
    boundary: tuple[int, ...] = ()


class Latency(NamedTuple):
    """Estimated milliseconds per inference on one Coral device (coralcheck.analyze.latency).

    `estimate_ms` = `tpu_ms` + `streaming_ms` + `io_ms` + `cpu_ms`; `low_ms`..`high_ms` is the
    range the model's held-out error and the host CPU allow. `io_ms` includes each Edge TPU
    segment's invocation; `dominant` is the largest part: "compute", "streaming", "io" or "cpu".
    """

    device: str
    clock: str  # "max" | "std"
    estimate_ms: float
    low_ms: float
    high_ms: float
    tpu_ms: float  # Edge TPU compute at the clock
    streaming_ms: float  # parameters streamed from the host every inference
    io_ms: float  # segment inputs and outputs over the link, plus one invocation per segment
    cpu_ms: float  # ops on the host CPU (nominal; the range has its spread)
    dominant: str


class LatencySegment(NamedTuple):
    """One Edge TPU segment's share of the estimate."""

    index: int  # 1-based
    ops: int | None  # ops in the segment (None: unknown, a compiled model without its source)
    compute_ms: float
    streaming_ms: float
    io_ms: float
    input_bytes: int
    output_bytes: int
    streamed_bytes: int
    compiler_cycles: int | None = None  # the compiler's own estimate, when the file records it


class LatencyDetail(NamedTuple):
    """How the latency estimate was made: per segment, per op, and what it does not capture."""

    device_description: str
    clock_mhz: float
    compute_from: str  # "ops" (the model's op shapes) | "compiler-cycles" (a compiled model)
    segments: list[LatencySegment]
    op_ms: list[float | None]  # per op of `ModelReport.ops` (None: cost unknown)
    cpu_low_ms: float
    cpu_high_ms: float
    compiler_cycles: int | None  # summed over segments, when every segment records them
    compiler_ms: float | None  # those cycles at the clock
    notes: list[str]


class ModelReport(MutableRecord):
    """One model's report; analysis appends to its lists and sets the compiled/compiler facts."""

    __slots__ = _fields = (
        "path",
        "kind",
        "file_size",
        "compiler_version",
        "summary",
        "ops",
        "findings",
        "io",
        "memory",
        "root_causes",
        "op_histogram",
        "subgraphs",
        "compiled",
        "compiler",
        "diff",
        "segments",
        "op_shapes",
        "graph",
        "latency",
        "latency_detail",
    )

    def __init__(
        self,
        path: str,
        kind: Literal["source", "compiled"],
        file_size: int,
        compiler_version: str,  # the target compiler the prediction is for
        summary: Summary,
        ops: list[OpPlacement] | None = None,
        findings: list[Finding] | None = None,
        io: list[IOTensor] | None = None,
        memory: Memory | None = None,
        root_causes: list[RootCause] | None = None,
        op_histogram: dict[str, int] | None = None,
        subgraphs: int = 1,
        compiled: dict[str, Any] | None = None,
        compiler: dict[str, Any] | None = None,
        diff: list[dict[str, Any]] | None = None,
        segments: list[TpuSegment] | None = None,
        op_shapes: list[list[list[list[int]]]] | None = None,
        graph: OpGraph | None = None,
        latency: Latency | None = None,
        latency_detail: LatencyDetail | None = None,
    ) -> None:
        self.path = path
        self.kind = kind
        self.file_size = file_size
        self.compiler_version = compiler_version
        self.summary = summary
        self.ops: list[OpPlacement] = [] if ops is None else ops
        self.findings: list[Finding] = [] if findings is None else findings
        self.io: list[IOTensor] = [] if io is None else io
        self.memory = memory
        self.root_causes: list[RootCause] = [] if root_causes is None else root_causes
        self.op_histogram: dict[str, int] = {} if op_histogram is None else op_histogram
        self.subgraphs = subgraphs
        # Facts read from a compiled model (segments, executables, CPU ops), when there is one.
        self.compiled = compiled
        # A real compiler run or a compiler log: its parsed result.
        self.compiler = compiler
        # Where the prediction and the real compiler disagree, op by op.
        self.diff = diff
        # The predicted Edge TPU segments (source models; a compiled model's are in `compiled`).
        self.segments: list[TpuSegment] = [] if segments is None else segments
        # Per op of the main subgraph: [non-constant input shapes, output shapes], when asked
        # for (Options.op_shapes, `-v`); None otherwise.
        self.op_shapes = op_shapes
        # The data flow of the main subgraph, when asked for (`Options.graph`).
        self.graph = graph
        # Estimated ms per inference on the target device (None: no estimate possible; a
        # finding says why), and how it was made.
        self.latency = latency
        self.latency_detail = latency_detail

    def to_dict(self) -> dict[str, Any]:
        d = _json_ready(self)
        d["summary"]["tpu_mac_share"] = round(self.summary.tpu_mac_share, 4)
        return d


# Types that JSON writes as they are: no conversion, no copy.
_AS_IS = frozenset({str, int, bool, type(None)})


def _json_ready(value: Any) -> Any:
    """`value` as JSON-ready data: records become dicts (fields in order), tuples and lists
    become lists, dicts are copied; non-finite numbers (a NaN scale read from a corrupt file)
    become None, because JSON has no NaN or Infinity and every output must stay valid for jq
    and JSON.parse."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    names = getattr(kind, "_fields", None)
    if names is not None:  # a record (a NamedTuple is a tuple too: test this first)
        values = value if isinstance(value, tuple) else [getattr(value, n) for n in names]
        d = dict(zip(names, values, strict=True))
        for name, v in d.items():
            if type(v) not in _AS_IS:
                d[name] = _json_ready(v)
        return d
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: v if type(v) in _AS_IS else _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if type(v) in _AS_IS else _json_ready(v) for v in value]
    return value


class Report(MutableRecord):
    """Every model of one run (`models` grows as they are checked)."""

    __slots__ = _fields = ("models", "schema_version", "tool_version")
    # How a notebook shows a report (`_repr_html_`): the HTML report, set by coralcheck.api,
    # which hands reports to notebooks; the records do not import the renderers.
    html_view: "ClassVar[Callable[[Report], str] | None]" = None

    def __init__(
        self,
        models: list[ModelReport] | None = None,
        schema_version: int = SCHEMA_VERSION,
        tool_version: str = "",
    ) -> None:
        self.models: list[ModelReport] = [] if models is None else models
        self.schema_version = schema_version
        self.tool_version = tool_version

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tool": {"name": "coralcheck", "version": self.tool_version},
            "models": [m.to_dict() for m in self.models],
        }

    @property
    def findings(self) -> list[tuple[ModelReport, Finding]]:
        return [(m, f) for m in self.models for f in m.findings]

    def _repr_html_(self) -> str | None:
        """The HTML report (`--format html`) in a notebook (Jupyter, Colab), in an iframe of its
        own so that its styles and scripts stay apart from the notebook's (`html_view`)."""
        view = type(self).html_view
        return None if view is None else view(self)
