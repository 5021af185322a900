"""Why a compilation failed: the error lines of a compiler output classified into failure
kinds (`FAILURE_KINDS`; each is one rule C031–C040, see coralcheck.checks.compiler), each
distinct failure once.

A log can hold thousands of error lines (a 269 KB log: 20,000 distinct ones): the first
`MAX_FAILURES` distinct failures are kept, the others only counted, in linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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


# What is kept of a log's failures:
MAX_FAILURES = 10  # distinct failures, in order; the others are only counted (`more_failures`)

# Digit runs are bounded so that no garbage line can hit int()'s digit limit (ValueError).
INT = r"(\d{1,12})"


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


# Lines that report an error. The first group also ends the run as a failure.
FAILURE_MARKER = re.compile(
    r"Compilation failed|Internal compiler error|Invalid model|Model not quantized"
    r"|Model could not be parsed|Compilation time(?:out|d out)|Unable to open output file"
)
ERROR_LINE = re.compile(
    r"(?:ERROR:|" + FAILURE_MARKER.pattern + r")"
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
        re.compile(r"Didn't find op for builtin opcode '([^']*)' version '" + INT + "'"),
    ),
    ("builtin_code_out_of_range", re.compile(r"builtin_code out of range:?\s*" + INT + "?")),
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
    counter = FailureCounter()
    for line in error_lines:
        counter.add(line)
    return counter.kept()


class FailureCounter:
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
