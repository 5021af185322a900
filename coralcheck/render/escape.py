"""The user's data made safe to show: control characters, bidirectional overrides and
undecodable bytes of model, tensor and file names shown as escapes (`printable`, `escaped`),
very long strings cut in the middle, and no output line a CI log would read as a workflow
command (`no_workflow_commands`).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")

# Control characters (but tab): a tensor name holding ESC [31m must not restyle, clear or retitle
# the user's terminal, and one holding a newline must not start a line of its own (in a CI log a
# line "::error ...::" is a GitHub Actions command). Messages are single lines: renderers add
# their own line breaks. Also the bidirectional overrides and isolates (U+202E shows a name
# backwards: "Trojan Source") and lone surrogates: the bytes of a file name that is not UTF-8
# (`m\xff.tflite` is read as "m\udcff.tflite"), shown as the byte they stand for.
_CONTROL = "[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"


@cache
def _control() -> re.Pattern[str]:
    """`_CONTROL`, compiled on first use (~0.6 ms): most reports hold no string that needs it,
    `str.isprintable` says so first."""
    return re.compile(_CONTROL)


# Longer strings (a million-character tensor name, a 12,000-dimension shape quoted in a message)
# are cut in the middle: nobody reads them, and wrapping them would take the renderer seconds.
LONGEST_SHOWN = 1000
_HEAD, _TAIL = 700, 200


def printable(value: T) -> T:
    """`value` (a report, outcome, or any of their parts) for the formats people read: control
    characters in every string shown as escapes (`\\x1b`), very long strings cut in the middle.

    Immutable parts that need no change are returned as they are, so a report of thousands of
    clean op placements is walked, not copied; mutable ones (lists, dicts, reports) are copies.
    """
    kind = type(value)
    if kind is str:
        return _printable_text(value)  # type: ignore[return-value, arg-type]
    if value is None or kind in _SCALARS:
        return value
    names = getattr(kind, "_fields", None)
    if names is not None:  # a record (a NamedTuple is also a tuple: tested first)
        if isinstance(value, tuple):
            return _printable_record(value)  # type: ignore[return-value]
        # A mutable record (a report, an outcome): always a copy.
        changes = {name: printable(getattr(value, name)) for name in names}
        return value._replace(**changes)  # type: ignore[attr-defined, no-any-return]
    if isinstance(value, str):
        return _printable_text(value)  # type: ignore[return-value]
    if isinstance(value, tuple | frozenset):
        if not set(map(type, value)) - _NOT_TEXT:  # numbers (the ops of a segment)
            return value
        items = [printable(v) for v in value]
        unchanged = all(new is old for new, old in zip(items, value, strict=True))
        return value if unchanged else kind(items)  # type: ignore[return-value, call-arg]
    if isinstance(value, list):
        if not set(map(type, value)) - _NOT_TEXT:  # numbers (per-op costs)
            return kind(value)  # type: ignore[return-value, call-arg]
        if _clean_records(value):  # (the op placements of a large model: a column at a time)
            return kind(value)  # type: ignore[return-value, call-arg]
        return kind(printable(v) for v in value)  # type: ignore[return-value, call-arg]
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}  # type: ignore[return-value]
    return value


_SCALARS = frozenset({int, float, bool})
_NOT_TEXT = frozenset({int, float, bool, type(None)})


def _printable_record(record: tuple[Any, ...]) -> tuple[Any, ...]:
    """An immutable record as it is when all its strings are clean (nearly always: a quick
    look at each value), else a copy with the changed values."""
    for v in record:
        kind = type(v)
        if kind is str:
            # isprintable() (C, no regex call) is true for nearly every string: no control
            # character in it. When false, _printable_text decides.
            if len(v) > LONGEST_SHOWN or not v.isprintable():
                break
        elif v is not None and kind not in _SCALARS:
            break
    else:
        return record
    items = [printable(v) for v in record]
    if all(new is old for new, old in zip(items, record, strict=True)):
        return record
    return record._make(items)  # type: ignore[attr-defined, no-any-return]


def _clean_records(values: list[Any]) -> bool:
    """True when `values` are records of one NamedTuple class whose fields are numbers, None and
    strings that need no change: checked field by field over all the records at once (one
    `isprintable` of each string column joined), ~20 times faster than record by record."""
    if len(values) < 16:
        return False
    kind = type(values[0])
    if getattr(kind, "_fields", None) is None or not issubclass(kind, tuple):
        return False
    if len(set(map(type, values))) > 1:
        return False
    for column in zip(*values, strict=True):
        types = set(map(type, column))
        kinds = types - _NOT_TEXT
        if not kinds:
            continue
        if kinds != {str}:
            return False  # a nested value: walked record by record
        texts = column if len(types) == 1 else [t for t in column if type(t) is str]
        if max(map(len, texts)) > LONGEST_SHOWN or not "".join(texts).isprintable():
            return False
    return True


def _printable_text(text: str) -> str:
    if len(text) <= LONGEST_SHOWN and (text.isprintable() or not _control().search(text)):
        return text  # nearly every string: nothing to escape or cut
    if len(text) > LONGEST_SHOWN:
        hidden = len(text) - _HEAD - _TAIL
        text = f"{text[:_HEAD]} …({hidden:,} characters not shown)… {text[-_TAIL:]}"
    return _control().sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a surrogate escape: the byte of the file name
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped(text: str) -> str:
    """`text` with control characters, bidirectional overrides and undecodable bytes shown as
    escapes (as `printable` shows them), but never shortened: for error lines."""
    return _control().sub(_escape, text)


# GitHub Actions reads any line of a job's output whose first non-blank characters are "::" as
# a workflow command (actions/runner ActionCommand.TryParseV2 trims leading white space); colour
# codes before them are taken as blank too, to be safe.
@cache
def _command_line() -> re.Pattern[str]:
    return re.compile(r"^((?:[^\S\n]|\x1b\[[0-9;]*m)*):(?=:)", re.MULTILINE)


def no_workflow_commands(text: str) -> str:
    """Output text in which no line can be read as a workflow command: a line that would start
    with "::" (a model or op name at the start of a line) gets its first colon escaped."""
    return _command_line().sub(r"\1\\x3a", text) if "::" in text else text
