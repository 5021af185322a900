"""Parse what `edgetpu_compiler` prints: its console output and its `<model>_edgetpu.log` file.

The compiler's own verdict is the ground truth coralcheck's predictions are measured against, and
users paste its output into bug reports, so this parser takes *any* text: console output with or
without `-s`, `-d` delegate-search retries, co-compiles, `--num_segments`, the 2.0 header layout,
error runs, the op-log file, truncated excerpts and plain garbage. It never raises; what it does not
understand is kept verbatim in `CompilerLog.unrecognised_lines` rather than dropped.

Layouts and messages are those of `shared/edgetpu/facts.md` §4 and §5 and of the real logs in
`shared/edgetpu/compiler-logs/` and `shared/corpus/logs/`.

`parse_log(text)` feeds the text line by line to one state machine (console output and the
`.log` file share their table and most lines; the `.log` adds "Input:"/"Output:"). What it
returns is in `records.py`; the per-model summary block's fields are read by `blocks.py`, error
lines classified by `failures.py`; the op statuses are coralcheck.edgetpu.statuses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from coralcheck.compiler.blocks import BLOCK_FIELD, BLOCK_FIELDS, BlockDraft, parse_path
from coralcheck.compiler.failures import (
    ERROR_LINE,
    FAILURE_MARKER,
    INT,
    CompilerFailure,
    FailureCounter,
)
from coralcheck.compiler.records import MAX_KEPT_LINES, CompilerLog, DelegateTry, ModelBlock, OpRow
from coralcheck.edgetpu.statuses import STATUS_KEYS

_VERSION = re.compile(r"Edge TPU Compiler version\s+(\d{1,6}(?:\.\d{1,12}){0,3})")
_DELEGATE_STEP = re.compile(r"Searching for valid delegate with step " + INT)
_TRY = re.compile(r"Try to compile segment with " + INT + r" ops?")
_INTERMEDIATE = re.compile(r"Intermediate tensors:\s*(.*)")
_TIMER = re.compile(r"Started a compilation timeout timer of " + INT + r" seconds?\.?")
_CHILD_DONE = re.compile(r"Compilation child process completed within timeout period\.?")
_COMPILED_IN = re.compile(r"Models? compiled successfully in " + INT + r" ?ms\.?")
_SUCCEEDED = re.compile(r"Compilation succeeded!?")
_TABLE_HEADER = re.compile(r"Operator\s+Count\s+Status")
_NOT_ALL_MAPPED = re.compile(r"Model successfully compiled but not all operations are supported")
_SEE_OPLOG = re.compile(r"See the operation log file for individual operation details\.?")
_OPLOG_FIELD = re.compile(r"(Input|Output):\s*(.*)")
_ROW = re.compile(r"(\S+)\s+" + INT + r"\s+(\S.*)")
_STRICT_OPERATOR = re.compile(r"[A-Z][A-Z0-9_]*")


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
        self.blocks: list[BlockDraft] = []
        self.rows: list[OpRow] = []
        self.in_table = False
        self.saw_table = False
        self.errors: list[str] = []
        self.last_error = ""
        self.failure_counter = FailureCounter()
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
        if match := BLOCK_FIELD.fullmatch(line):
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
        draft.values[name] = parse_path(match.group(2))
        self.saw_oplog_line = True
        return True

    def _error_line(self, line: str) -> bool:
        """An error line: kept verbatim, and a failure outcome when it is a failure marker."""
        if not ERROR_LINE.match(line):
            return False
        if len(self.errors) < MAX_KEPT_LINES:
            self.errors.append(line)
        self.last_error = line
        self.failure_counter.add(line)
        attempt = self.tries[-1] if self.tries else None
        if attempt and attempt.succeeded is not True and len(attempt.errors) < MAX_KEPT_LINES:
            attempt.errors.append(line)
        if FAILURE_MARKER.match(line):
            self._set_outcome(False)
        self._close_block()
        self.saw_console_line = True
        return True

    def _row_line(self, line: str) -> bool:
        """A table row outside a table (a quoted fragment): only with a known status."""
        match = _ROW.fullmatch(line)
        if not match or not _STRICT_OPERATOR.fullmatch(match.group(1)):
            return False
        if match.group(3).strip() not in STATUS_KEYS:
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
        name, parse_value = BLOCK_FIELDS[key]
        value = parse_value(raw_value)
        if value is None:
            return False
        draft = self._new_block() if key == "Input model" else self._block_for(name)
        draft.values[name] = value
        return True

    def _block_for(self, name: str) -> BlockDraft:
        """The block to put field `name` in: the current one, or a new one if it is taken."""
        draft = self._current_block()
        return self._new_block() if name in draft.values else draft

    def _current_block(self) -> BlockDraft:
        """The block being filled; a fragment that starts mid-block gets one of its own."""
        if not self.blocks or self.blocks[-1].closed:
            return self._new_block()
        return self.blocks[-1]

    def _new_block(self) -> BlockDraft:
        """Start a model block (co-compiles print one per model)."""
        self._close_block()
        self.blocks.append(BlockDraft())
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
