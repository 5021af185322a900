"""Parse what `edgetpu_compiler` prints: its console output and its `<model>_edgetpu.log` file.

The compiler's own verdict is the ground truth coralcheck's predictions are measured against, and
users paste its output into bug reports, so this parser takes *any* text: console output with or
without `-s`, `-d` delegate-search retries, co-compiles, `--num_segments`, the 2.0 header layout,
error runs, the op-log file, truncated excerpts and plain garbage. It never raises; what it does not
understand is kept verbatim in `CompilerLog.unrecognised_lines` rather than dropped.

Layouts and messages are those of `shared/edgetpu/facts.md` §4 and §5 and of the real logs in
`shared/edgetpu/compiler-logs/` and `shared/corpus/logs/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

MAPPED_STATUS = "Mapped to Edge TPU"

# The 7 status strings seen in real logs (facts.md §4.3), in that order, with a short stable key.
_STATUS_KEYS: dict[str, str] = {
    MAPPED_STATUS: "mapped",
    "More than one subgraph is not supported": "more_than_one_subgraph",
    "Operation is otherwise supported, but not mapped due to some unspecified limitation": (
        "unspecified_limitation"
    ),
    "Operation is working on an unsupported data type": "unsupported_data_type",
    "Operation not supported": "operation_not_supported",
    "Operation version not supported": "version_not_supported",
    "Tensor has unsupported rank (up to 3 innermost dimensions mapped)": "unsupported_rank",
}
KNOWN_STATUSES: tuple[str, ...] = tuple(_STATUS_KEYS)
UNKNOWN_STATUS_KEY = "unknown"

# The fixed set of `CompilerFailure.kind` values.
FAILURE_KINDS: tuple[str, ...] = (
    "model_not_quantized",
    "op_version_not_found",
    "builtin_code_out_of_range",
    "internal_error",
    "large_activation_tensors",
    "dynamic_sized_tensors",
    "timeout",
    "version_only",
    "unable_to_open_output",
    "other",
)


# A log can hold thousands of error lines (a 269 KB log: 20,000 distinct ones). What is kept:
MAX_FAILURES = 10  # distinct failures, in order; the others are only counted (`more_failures`)
MAX_KEPT_LINES = 1000  # error lines and unrecognised lines kept verbatim (each list)


def status_key(status: str) -> str:
    """Short stable key of a known status string (e.g. "mapped"), "unknown" for any other."""
    return _STATUS_KEYS.get(status.strip(), UNKNOWN_STATUS_KEY)


# ---------------------------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ByteSize:
    """A size as the compiler printed it (`text`, e.g. "2.87MiB") and in bytes.

    The compiler rounds to two decimals of its unit, so `num_bytes` is exact only to that
    precision (±0.005 MiB is about ±5 KiB).
    """

    text: str
    num_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"text", "bytes"}."""
        return {"text": self.text, "bytes": self.num_bytes}


@dataclass(frozen=True)
class OpRow:
    """One row of the Operator / Count / Status table: `count` ops of type `operator` had `status`.

    The same operator can have several rows, one per status. `status` is kept verbatim, whether
    or not it is one of `KNOWN_STATUSES`.
    """

    operator: str
    count: int
    status: str
    mapped: bool

    @classmethod
    def of(cls, operator: str, count: int, status: str) -> OpRow:
        """A row whose `mapped` flag follows from its status."""
        return cls(operator, count, status, status == MAPPED_STATUS)

    @property
    def status_key(self) -> str:
        """Short stable key of the status ("unknown" when the string is not a known one)."""
        return status_key(self.status)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"operator", "count", "status", "mapped"}."""
        return {
            "operator": self.operator,
            "count": self.count,
            "status": self.status,
            "mapped": self.mapped,
        }


_SEGMENT_NAME = re.compile(r"_segment_(\d{1,6})_of_(\d{1,6})")


@dataclass(frozen=True)
class ModelBlock:
    """The per-model summary ("Input model: ... Operation log: ...") or the op-log's Input/Output.

    A co-compile prints one block per model. Every field is None when its line was not printed
    (old layouts, op-log files, truncated excerpts). `ops_tpu`/`ops_cpu` come from the
    "Number of operations that will run on ..." lines; when those are absent they are derived
    where the log allows it (`ops_counts_derived` is then True): an all-mapped successful run
    prints no such paragraph, and a cut-off count is `total_ops` minus the other.
    `rows` are the table rows printed after this block.
    """

    input_model: str | None = None
    output_model: str | None = None
    input_size: ByteSize | None = None
    output_size: ByteSize | None = None
    on_chip_available: ByteSize | None = None
    on_chip_used: ByteSize | None = None
    on_chip_remaining: ByteSize | None = None
    off_chip_streamed: ByteSize | None = None
    tpu_subgraphs: int | None = None
    total_ops: int | None = None
    ops_tpu: int | None = None
    ops_cpu: int | None = None
    ops_counts_derived: bool = False
    operation_log: str | None = None
    rows: tuple[OpRow, ...] = ()

    @property
    def segment(self) -> tuple[int, int] | None:
        """(index, count) of a `--num_segments` output (`<m>_segment_<i>_of_<N>`), else None."""
        for path in (self.output_model, self.input_model):
            match = _SEGMENT_NAME.search(path or "")
            if match:
                return int(match.group(1)), int(match.group(2))
        return None

    @property
    def known_total_ops(self) -> int | None:
        """Total ops as printed, or the sum of the TPU and CPU counts when only those are known."""
        if self.total_ops is not None:
            return self.total_ops
        if self.ops_tpu is not None and self.ops_cpu is not None:
            return self.ops_tpu + self.ops_cpu
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; sizes become {"text", "bytes"}, the segment a [index, count] list."""
        sizes = {
            "input_size": self.input_size,
            "output_size": self.output_size,
            "on_chip_available": self.on_chip_available,
            "on_chip_used": self.on_chip_used,
            "on_chip_remaining": self.on_chip_remaining,
            "off_chip_streamed": self.off_chip_streamed,
        }
        segment = self.segment
        return {
            "input_model": self.input_model,
            "output_model": self.output_model,
            **{name: size.to_dict() if size else None for name, size in sizes.items()},
            "tpu_subgraphs": self.tpu_subgraphs,
            "total_ops": self.total_ops,
            "ops_tpu": self.ops_tpu,
            "ops_cpu": self.ops_cpu,
            "ops_counts_derived": self.ops_counts_derived,
            "operation_log": self.operation_log,
            "segment": list(segment) if segment else None,
            "rows": [row.to_dict() for row in self.rows],
        }


@dataclass(frozen=True)
class DelegateTry:
    """One "Try to compile segment with N ops" attempt of a `-d` (search delegate) run.

    `intermediate_tensors` are the tensors the retry cut the graph at (none on the first try);
    `succeeded` is None when the excerpt ends before the attempt's outcome.
    """

    ops: int
    intermediate_tensors: tuple[str, ...] = ()
    succeeded: bool | None = None
    errors: tuple[str, ...] = ()

    @property
    def failures(self) -> tuple[CompilerFailure, ...]:
        """Why this attempt failed (why the search cut ops), one per distinct cause."""
        return distinct_failures(self.errors)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ops": self.ops,
            "intermediate_tensors": list(self.intermediate_tensors),
            "succeeded": self.succeeded,
            "errors": list(self.errors),
            "failures": [failure.to_dict() for failure in self.failures],
        }


@dataclass(frozen=True)
class CompilerFailure:
    """Why a compilation failed: a `kind` from `FAILURE_KINDS` and the line that said so.

    `op`/`version` are set for `op_version_not_found`, `builtin_code` for
    `builtin_code_out_of_range` when the line names it.
    """

    kind: str
    message: str
    op: str | None = None
    version: int | None = None
    builtin_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "message": self.message,
            "op": self.op,
            "version": self.version,
            "builtin_code": self.builtin_code,
        }


@dataclass(frozen=True)
class CompilerLog:
    """Everything recognised in one compiler output.

    - `kind`: "console" (stdout), "oplog" (the `_edgetpu.log` file) or "unknown" (nothing tells,
      e.g. a lone table row or garbage).
    - `rows`: every table row in file order (for a co-compile, the tables of all models).
    - `ops_tpu`/`ops_cpu`: from the rows when the table is complete (or nothing says otherwise),
      else from the model blocks' counts, e.g. when a truncated excerpt cut the table short.
      `rows_complete` says whether the rows add up to the printed total (None: nothing to check).
    - `succeeded`: the last outcome printed (a `-d` run fails several tries, then succeeds);
      None when the text does not say (op-log files, fragments).
    - `errors`: the error lines verbatim (trailing blanks stripped), retries' included; the
      first `MAX_KEPT_LINES` (as for `unrecognised_lines`).
    - `failures`: why the run failed, one per distinct cause, the first `MAX_FAILURES` of
      them; empty when it succeeded. `more_failures` counts the other distinct causes.
    """

    kind: str = "unknown"
    compiler_version: str | None = None
    recognised: bool = False
    succeeded: bool | None = None
    compile_time_ms: int | None = None
    timeout_sec: int | None = None
    delegate_search_step: int | None = None
    delegate_search: tuple[DelegateTry, ...] = ()
    models: tuple[ModelBlock, ...] = ()
    rows: tuple[OpRow, ...] = ()
    rows_complete: bool | None = None
    ops_tpu: int | None = None
    ops_cpu: int | None = None
    errors: tuple[str, ...] = ()
    failures: tuple[CompilerFailure, ...] = ()
    unrecognised_lines: tuple[str, ...] = ()
    more_failures: int = 0

    @property
    def co_compiled(self) -> bool:
        """True when several models were compiled together (one summary block each)."""
        return len(self.models) > 1

    @property
    def failure_kinds(self) -> tuple[str, ...]:
        """The `kind` of each failure, in order."""
        return tuple(failure.kind for failure in self.failures)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (only str, int, bool, None, lists and dicts)."""
        return {
            "kind": self.kind,
            "compiler_version": self.compiler_version,
            "recognised": self.recognised,
            "succeeded": self.succeeded,
            "compile_time_ms": self.compile_time_ms,
            "timeout_sec": self.timeout_sec,
            "delegate_search_step": self.delegate_search_step,
            "delegate_search": [attempt.to_dict() for attempt in self.delegate_search],
            "co_compiled": self.co_compiled,
            "models": [model.to_dict() for model in self.models],
            "rows": [row.to_dict() for row in self.rows],
            "rows_complete": self.rows_complete,
            "ops_tpu": self.ops_tpu,
            "ops_cpu": self.ops_cpu,
            "errors": list(self.errors),
            "failures": [failure.to_dict() for failure in self.failures],
            "more_failures": self.more_failures,
            "unrecognised_lines": list(self.unrecognised_lines),
        }


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

# Digit runs are bounded so that no garbage line can hit int()'s digit limit (ValueError).
_INT = r"(\d{1,12})"
_SIZE = re.compile(r"(\d{1,12}(?:\.\d{1,6})?)\s*(B|KiB|MiB|GiB|KB|MB|GB)", re.IGNORECASE)
_UNIT_BYTES = {
    "b": 1,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "kb": 2**10,
    "mb": 2**20,
    "gb": 2**30,
}


def parse_size(text: str) -> ByteSize | None:
    """`2.87MiB` / `187.00KiB` / `0.00B` → ByteSize; None when the text is not a size.

    Units are binary, as the compiler prints them; "KB"/"MB"/"GB" (seen in hand-edited pastes)
    are read the same way.
    """
    stripped = text.strip()
    match = _SIZE.fullmatch(stripped)
    if not match:
        return None
    factor = _UNIT_BYTES[match.group(2).lower()]
    value = (Decimal(match.group(1)) * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return ByteSize(stripped, int(value))


def _parse_int(text: str) -> int | None:
    """A bounded non-negative integer, or None."""
    match = re.fullmatch(_INT, text.strip())
    return int(match.group(1)) if match else None


def _parse_path(text: str) -> str | None:
    """A path value; None when empty."""
    return text.strip() or None


# ---------------------------------------------------------------------------------------------
# Line patterns
# ---------------------------------------------------------------------------------------------

_VERSION = re.compile(r"Edge TPU Compiler version\s+(\d{1,6}(?:\.\d{1,12}){0,3})")
_DELEGATE_STEP = re.compile(r"Searching for valid delegate with step " + _INT)
_TRY = re.compile(r"Try to compile segment with " + _INT + r" ops?")
_INTERMEDIATE = re.compile(r"Intermediate tensors:\s*(.*)")
_TIMER = re.compile(r"Started a compilation timeout timer of " + _INT + r" seconds?\.?")
_CHILD_DONE = re.compile(r"Compilation child process completed within timeout period\.?")
_COMPILED_IN = re.compile(r"Models? compiled successfully in " + _INT + r" ?ms\.?")
_SUCCEEDED = re.compile(r"Compilation succeeded!?")
_TABLE_HEADER = re.compile(r"Operator\s+Count\s+Status")
_NOT_ALL_MAPPED = re.compile(r"Model successfully compiled but not all operations are supported")
_SEE_OPLOG = re.compile(r"See the operation log file for individual operation details\.?")
_OPLOG_FIELD = re.compile(r"(Input|Output):\s*(.*)")
_ROW = re.compile(r"(\S+)\s+" + _INT + r"\s+(\S.*)")
_STRICT_OPERATOR = re.compile(r"[A-Z][A-Z0-9_]*")

# "<key>: <value>" lines of a model block → (ModelBlock field, value parser).
_BLOCK_FIELDS: dict[str, tuple[str, Callable[[str], object]]] = {
    "Input model": ("input_model", _parse_path),
    "Input size": ("input_size", parse_size),
    "Output model": ("output_model", _parse_path),
    "Output size": ("output_size", parse_size),
    "On-chip memory available for caching model parameters": ("on_chip_available", parse_size),
    "On-chip memory used for caching model parameters": ("on_chip_used", parse_size),
    "On-chip memory remaining for caching model parameters": ("on_chip_remaining", parse_size),
    "Off-chip memory used for streaming uncached model parameters": (
        "off_chip_streamed",
        parse_size,
    ),
    "Number of Edge TPU subgraphs": ("tpu_subgraphs", _parse_int),
    "Total number of operations": ("total_ops", _parse_int),
    "Operation log": ("operation_log", _parse_path),
    "Number of operations that will run on Edge TPU": ("ops_tpu", _parse_int),
    "Number of operations that will run on CPU": ("ops_cpu", _parse_int),
}
_BLOCK_FIELD = re.compile("(" + "|".join(re.escape(key) for key in _BLOCK_FIELDS) + r")\s*:\s*(.*)")

# Lines that report an error. The first group also ends the run as a failure.
_FAILURE_MARKER = re.compile(
    r"Compilation failed|Internal compiler error|Invalid model|Model not quantized"
    r"|Model could not be parsed|Compilation time(?:out|d out)|Unable to open output file"
)
_ERROR_LINE = re.compile(
    r"(?:ERROR:|" + _FAILURE_MARKER.pattern + r")"
    r"|.*terminating with uncaught exception"
)

# Error lines that only wrap or follow the real cause: they name no failure of their own.
_WRAPPER_ERRORS = re.compile(
    r"Compilation failed!?"
    r"|Compilation failed: Model failed in Tflite interpreter.*"
    r"|ERROR: Registration failed.*"
    r"|ERROR: Restored original execution plan.*"
    r"|ERROR: Node number \d+ \(.*\) failed to (?:prepare|invoke).*"
    r"|Invalid model.*"
    r"|Model could not be parsed.*"
)

# Error line → failure kind, first match wins.
_FAILURE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "op_version_not_found",
        re.compile(r"Didn't find op for builtin opcode '([^']*)' version '" + _INT + "'"),
    ),
    ("builtin_code_out_of_range", re.compile(r"builtin_code out of range:?\s*" + _INT + "?")),
    ("model_not_quantized", re.compile(r"Model not quantized")),
    ("internal_error", re.compile(r"Internal compiler error|terminating with uncaught exception")),
    ("large_activation_tensors", re.compile(r"large activation tensors")),
    ("dynamic_sized_tensors", re.compile(r"dynamic-sized tensors")),
    ("timeout", re.compile(r"Compilation time(?:out|d out)")),
    ("unable_to_open_output", re.compile(r"Unable to open output file")),
)


def classify_error(line: str) -> CompilerFailure | None:
    """The failure an error line names; None for a line that only wraps another (see above).

    An error line that is neither known nor a wrapper becomes an `other` failure, so that a
    message nobody has seen yet still reaches the user.
    """
    for kind, pattern in _FAILURE_PATTERNS:
        match = pattern.search(line)
        if match:
            return _failure_from_match(kind, line, match)
    if _WRAPPER_ERRORS.fullmatch(line):
        return None
    return CompilerFailure("other", line)


def distinct_failures(error_lines: tuple[str, ...] | list[str]) -> tuple[CompilerFailure, ...]:
    """The failures the error lines name, in order, each distinct one once (the first
    `MAX_FAILURES`)."""
    counter = _FailureCounter()
    for line in error_lines:
        counter.add(line)
    return counter.kept()


class _FailureCounter:
    """Distinct failures of error lines fed one by one, in linear time: the first
    `MAX_FAILURES` kept, the others counted (by hash: no line is kept for them)."""

    def __init__(self) -> None:
        self.failures: dict[CompilerFailure, None] = {}
        self.others: set[int] = set()

    def add(self, line: str) -> None:
        failure = classify_error(line)
        if failure is None or failure in self.failures:
            return
        if len(self.failures) < MAX_FAILURES:
            self.failures[failure] = None
        else:
            self.others.add(hash(failure))

    def kept(self) -> tuple[CompilerFailure, ...]:
        return tuple(self.failures)

    @property
    def more(self) -> int:
        return len(self.others)


def _failure_from_match(kind: str, line: str, match: re.Match[str]) -> CompilerFailure:
    """Build the failure of `kind`, with the op/version or builtin code the line names."""
    if kind == "op_version_not_found":
        return CompilerFailure(kind, line, op=match.group(1), version=int(match.group(2)))
    if kind == "builtin_code_out_of_range" and match.group(1):
        return CompilerFailure(kind, line, builtin_code=int(match.group(1)))
    return CompilerFailure(kind, line)


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


@dataclass
class _BlockDraft:
    """A model block being filled line by line."""

    values: dict[str, Any] = field(default_factory=dict)
    rows: list[OpRow] = field(default_factory=list)
    not_all_mapped_notice: bool = False
    # True once a line that is not part of the block followed it: a cut-off excerpt that ends
    # inside the block cannot tell whether the "not all operations" paragraph would follow.
    closed: bool = False

    def freeze(self, run_succeeded: bool | None) -> ModelBlock:
        """The immutable block, with ops_tpu/ops_cpu derived where the log allows it."""
        block = ModelBlock(**self.values, rows=tuple(self.rows))
        return _with_derived_counts(block, self.not_all_mapped_notice, self.closed, run_succeeded)


def _with_derived_counts(
    block: ModelBlock, notice: bool, closed: bool, run_succeeded: bool | None
) -> ModelBlock:
    """Fill ops_tpu/ops_cpu the compiler left implicit (all-mapped run, cut-off count line)."""
    total, tpu, cpu = block.total_ops, block.ops_tpu, block.ops_cpu
    if total is None or (tpu is not None and cpu is not None):
        return block
    if tpu is None and cpu is None:
        all_mapped = not notice and closed and run_succeeded is True and block.tpu_subgraphs != 0
        if not all_mapped:
            return block
        tpu, cpu = total, 0
    elif tpu is not None:
        cpu = total - tpu
    elif cpu is not None:
        tpu = total - cpu
    if tpu is None or cpu is None or tpu < 0 or cpu < 0:
        return block
    return replace(block, ops_tpu=tpu, ops_cpu=cpu, ops_counts_derived=True)


@dataclass
class _TryDraft:
    """A `-d` attempt being filled line by line."""

    ops: int
    intermediate_tensors: tuple[str, ...] = ()
    succeeded: bool | None = None
    errors: list[str] = field(default_factory=list)

    def freeze(self) -> DelegateTry:
        """The immutable attempt."""
        return DelegateTry(self.ops, self.intermediate_tensors, self.succeeded, tuple(self.errors))


class _Parser:
    """A line-by-line state machine over one compiler output; `result()` gives the CompilerLog."""

    def __init__(self) -> None:
        self.version: str | None = None
        self.version_line = ""
        self.saw_console_line = False
        self.saw_oplog_line = False
        self.outcome: bool | None = None
        self.compile_time_ms: int | None = None
        self.timeout_sec: int | None = None
        self.delegate_step: int | None = None
        self.tries: list[_TryDraft] = []
        self.blocks: list[_BlockDraft] = []
        self.rows: list[OpRow] = []
        self.in_table = False
        self.saw_table = False
        self.errors: list[str] = []
        self.last_error = ""
        self.failure_counter = _FailureCounter()
        self.unrecognised: list[str] = []
        self.content_lines = 0
        self.handlers: tuple[Callable[[str], bool], ...] = (
            self._version_line,
            self._delegate_line,
            self._timer_line,
            self._outcome_line,
            self._table_header_line,
            self._block_line,
            self._oplog_line,
            self._error_line,
            self._row_line,
        )

    # -- driving ----------------------------------------------------------------------------

    def feed(self, raw_line: str) -> None:
        """Take one line: hand it to the first handler that recognises it, else keep it."""
        line = raw_line.strip()
        if not line:
            return
        self.content_lines += 1
        if self.in_table and self._table_row(line):
            return
        self.in_table = False
        for handler in self.handlers:
            if handler(line):
                return
        if len(self.unrecognised) < MAX_KEPT_LINES:
            self.unrecognised.append(line)
        self._close_block()

    # -- handlers: each returns True when the line was its kind ------------------------------

    def _version_line(self, line: str) -> bool:
        """The "Edge TPU Compiler version X" line (the first one wins)."""
        match = _VERSION.search(line)
        if not match:
            return False
        if self.version is None:
            self.version, self.version_line = match.group(1), line
        self.saw_console_line = True
        return True

    def _delegate_line(self, line: str) -> bool:
        """The `-d` lines: search step, each try, and a retry's intermediate tensors."""
        if match := _DELEGATE_STEP.fullmatch(line):
            self.delegate_step = int(match.group(1))
        elif match := _TRY.fullmatch(line):
            self.tries.append(_TryDraft(int(match.group(1))))
        elif (match := _INTERMEDIATE.fullmatch(line)) and self.tries:
            names = (name.strip() for name in match.group(1).split(","))
            self.tries[-1].intermediate_tensors = tuple(name for name in names if name)
        else:
            return False
        self.saw_console_line = True
        return True

    def _timer_line(self, line: str) -> bool:
        """The 16.0 timeout-timer lines."""
        if match := _TIMER.fullmatch(line):
            self.timeout_sec = self.timeout_sec or int(match.group(1))
        elif not _CHILD_DONE.fullmatch(line):
            return False
        self.saw_console_line = True
        return True

    def _outcome_line(self, line: str) -> bool:
        """A success line: "Model(s) compiled successfully in N ms.", "Compilation succeeded!"."""
        if match := _COMPILED_IN.fullmatch(line):
            self.compile_time_ms = int(match.group(1))
        elif not _SUCCEEDED.fullmatch(line):
            return False
        self._set_outcome(True)
        self._close_block()
        self.saw_console_line = True
        return True

    def _table_header_line(self, line: str) -> bool:
        """The "Operator  Count  Status" header: the rows follow."""
        if not _TABLE_HEADER.fullmatch(line):
            return False
        self.in_table = True
        self.saw_table = True
        self._close_block()
        return True

    def _block_line(self, line: str) -> bool:
        """A model-block field, the "not all operations" notice, or "See the operation log"."""
        if match := _BLOCK_FIELD.fullmatch(line):
            if not self._set_block_field(match.group(1), match.group(2)):
                return False
        elif _NOT_ALL_MAPPED.match(line):
            self._current_block().not_all_mapped_notice = True
            self._set_outcome(True)
        elif _SEE_OPLOG.fullmatch(line):
            self._close_block()
        else:
            return False
        self.saw_console_line = True
        return True

    def _oplog_line(self, line: str) -> bool:
        """The op-log file's "Input: <path>" and "Output: <path>"."""
        match = _OPLOG_FIELD.fullmatch(line)
        if not match:
            return False
        name = "input_model" if match.group(1) == "Input" else "output_model"
        draft = self._block_for(name)
        draft.values[name] = _parse_path(match.group(2))
        self.saw_oplog_line = True
        return True

    def _error_line(self, line: str) -> bool:
        """An error line: kept verbatim, and a failure outcome when it is a failure marker."""
        if not _ERROR_LINE.match(line):
            return False
        if len(self.errors) < MAX_KEPT_LINES:
            self.errors.append(line)
        self.last_error = line
        self.failure_counter.add(line)
        attempt = self.tries[-1] if self.tries else None
        if attempt and attempt.succeeded is not True and len(attempt.errors) < MAX_KEPT_LINES:
            attempt.errors.append(line)
        if _FAILURE_MARKER.match(line):
            self._set_outcome(False)
        self._close_block()
        self.saw_console_line = True
        return True

    def _row_line(self, line: str) -> bool:
        """A table row outside a table (a quoted fragment): only with a known status."""
        match = _ROW.fullmatch(line)
        if not match or not _STRICT_OPERATOR.fullmatch(match.group(1)):
            return False
        if match.group(3).strip() not in _STATUS_KEYS:
            return False
        self._add_row(match)
        return True

    def _table_row(self, line: str) -> bool:
        """A row inside a table: any operator name and any status, kept verbatim."""
        match = _ROW.fullmatch(line)
        if not match:
            return False
        self._add_row(match)
        return True

    # -- state helpers -----------------------------------------------------------------------

    def _add_row(self, match: re.Match[str]) -> None:
        """Record a row, in the log and in the current model block."""
        row = OpRow.of(match.group(1), int(match.group(2)), match.group(3).strip())
        self.rows.append(row)
        if self.blocks:
            self.blocks[-1].rows.append(row)

    def _set_block_field(self, key: str, raw_value: str) -> bool:
        """Store one "<key>: <value>" of a model block ("Input model" starts a new block).

        False when the value does not parse (a size that is not a size): the line is then not
        taken as a block line.
        """
        name, parse_value = _BLOCK_FIELDS[key]
        value = parse_value(raw_value)
        if value is None:
            return False
        draft = self._new_block() if key == "Input model" else self._block_for(name)
        draft.values[name] = value
        return True

    def _block_for(self, name: str) -> _BlockDraft:
        """The block to put field `name` in: the current one, or a new one if it is taken."""
        draft = self._current_block()
        return self._new_block() if name in draft.values else draft

    def _current_block(self) -> _BlockDraft:
        """The block being filled; a fragment that starts mid-block gets one of its own."""
        if not self.blocks or self.blocks[-1].closed:
            return self._new_block()
        return self.blocks[-1]

    def _new_block(self) -> _BlockDraft:
        """Start a model block (co-compiles print one per model)."""
        self._close_block()
        self.blocks.append(_BlockDraft())
        return self.blocks[-1]

    def _close_block(self) -> None:
        """Mark the current block as followed by something that is not part of it."""
        if self.blocks:
            self.blocks[-1].closed = True

    def _set_outcome(self, succeeded: bool) -> None:
        """Record an outcome line: the run's latest outcome, and the open try's."""
        self.outcome = succeeded
        if self.tries and self.tries[-1].succeeded is None:
            self.tries[-1].succeeded = succeeded

    # -- result ------------------------------------------------------------------------------

    def result(self) -> CompilerLog:
        """The CompilerLog for everything fed so far."""
        version_only = self.version is not None and self.content_lines == 1
        succeeded = False if version_only else self.outcome
        models = tuple(draft.freeze(succeeded) for draft in self.blocks)
        rows = tuple(self.rows)
        rows_complete = _rows_complete(rows, models)
        ops_tpu, ops_cpu = _op_totals(rows, rows_complete, models)
        return CompilerLog(
            kind=self._kind(),
            compiler_version=self.version,
            recognised=self._recognised(),
            succeeded=succeeded,
            compile_time_ms=self.compile_time_ms,
            timeout_sec=self.timeout_sec,
            delegate_search_step=self.delegate_step,
            delegate_search=tuple(attempt.freeze() for attempt in self.tries),
            models=models,
            rows=rows,
            rows_complete=rows_complete,
            ops_tpu=ops_tpu,
            ops_cpu=ops_cpu,
            errors=tuple(self.errors),
            failures=self._failures(succeeded, version_only),
            unrecognised_lines=tuple(self.unrecognised),
            more_failures=0 if succeeded is True or version_only else self.failure_counter.more,
        )

    def _kind(self) -> str:
        """The op-log's Input:/Output: lines make "oplog", any console line "console"."""
        if self.saw_oplog_line:
            return "oplog"
        if self.saw_console_line:
            return "console"
        return "unknown"

    def _recognised(self) -> bool:
        """Whether anything at all in the text was compiler output."""
        return bool(self.saw_console_line or self.saw_oplog_line or self.saw_table or self.rows)

    def _failures(self, succeeded: bool | None, version_only: bool) -> tuple[CompilerFailure, ...]:
        """Why the run failed, one per distinct cause; () when it succeeded."""
        if succeeded is True:
            return ()
        if version_only:
            return (CompilerFailure("version_only", self.version_line),)
        failures = self.failure_counter.kept()
        if not failures and succeeded is False:
            return (CompilerFailure("other", self.last_error),)
        return failures


def _rows_complete(rows: tuple[OpRow, ...], models: tuple[ModelBlock, ...]) -> bool | None:
    """Whether the rows add up to the models' printed totals; None when there is no total."""
    totals = [model.known_total_ops for model in models]
    if not rows or not totals or None in totals:
        return None
    return sum(row.count for row in rows) == sum(total for total in totals if total is not None)


def _op_totals(
    rows: tuple[OpRow, ...], rows_complete: bool | None, models: tuple[ModelBlock, ...]
) -> tuple[int | None, int | None]:
    """(ops_tpu, ops_cpu): from a complete table, else from the blocks, else the rows there are."""
    if rows and rows_complete is not False:
        return _row_totals(rows)
    counted = [(m.ops_tpu, m.ops_cpu) for m in models]
    if counted and all(tpu is not None and cpu is not None for tpu, cpu in counted):
        return sum(tpu or 0 for tpu, _ in counted), sum(cpu or 0 for _, cpu in counted)
    if rows:
        return _row_totals(rows)
    return None, None


def _row_totals(rows: tuple[OpRow, ...]) -> tuple[int, int]:
    """(mapped, not mapped) op counts of the rows."""
    mapped = sum(row.count for row in rows if row.mapped)
    return mapped, sum(row.count for row in rows) - mapped


def _leading_comment_count(lines: list[str]) -> int:
    """How many first lines are the shared logs' `# source:` / `# note:` comments."""
    count = 0
    for line in lines:
        if not line.lstrip().startswith("#"):
            break
        count += 1
    return count


def parse_log(text: str | bytes) -> CompilerLog:
    """Parse compiler console output or a `_edgetpu.log` file; never raises.

    Bytes are decoded as UTF-8 with replacement. Text with nothing recognisable gives a
    CompilerLog with `recognised=False` and the text's lines in `unrecognised_lines`.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    lines = text.splitlines()
    parser = _Parser()
    for line in lines[_leading_comment_count(lines) :]:
        parser.feed(line)
    return parser.result()
