"""What a compiler output says, as records: `CompilerLog` (the whole output), its per-model
summary blocks (`ModelBlock`), table rows (`OpRow`), `-d` attempts (`DelegateTry`) and sizes
(`ByteSize`). coralcheck.compiler.log makes them from text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from coralcheck.compiler.failures import CompilerFailure, distinct_failures
from coralcheck.edgetpu.statuses import MAPPED_STATUS, status_key

# Error lines and unrecognised lines kept verbatim (each list).
MAX_KEPT_LINES = 1000


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
