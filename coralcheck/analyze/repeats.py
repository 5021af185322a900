"""Repeated findings as one: a rule that says the same thing at many places says it once.

A MobileNetV3 has a HARD_SWISH after nearly every block, a TimeDistributed layer becomes one
STRIDED_SLICE per time step: their rules fire once per op with the same message but for the op
and the names. Such findings (same rule, severity, subgraph and fix, and the same message once
op labels, quoted names and numbers are set aside) become one finding at the first place, whose
message names the next few places and counts the rest; every place, with its own message, is in
the finding's `places` (shown by `--format json`).

The grouped finding keeps the first place's op, op type and tensor, so its fingerprint (rule,
model, op type, tensor: coralcheck.baseline) is the one the first finding had: a baseline written
before the grouping still knows it, and SARIF alerts keep their identity.
"""

from __future__ import annotations

import re
from functools import cache

from coralcheck.report import Finding, Place
from coralcheck.wording import op_location

GROUP_FROM = 3  # this many findings of one shape become one (two are shown as they are)
SHOWN_PLACES = 3  # places named in the grouped message after the first

# What differs between the findings of one shape: "CONV_2D (op 12)", 'tensor names', numbers.


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """An op label, a quoted name, a number: compiled when a model first has enough findings
    to group (~0.4 ms)."""
    return (
        re.compile(r"\b[A-Z][A-Z0-9_]*\s\(op\s\d+\)"),
        re.compile(r"'[^'\n]*'"),
        re.compile(r"\d+(?:\.\d+)?"),
    )


def message_shape(finding: Finding) -> tuple[str, str, int, str, str]:
    """What findings said at different places have in common: they group when it is equal."""
    op_label, quoted, number = _patterns()
    text = op_label.sub("<op>", finding.message)
    text = number.sub("#", quoted.sub("'…'", text))
    return finding.code, finding.severity, finding.subgraph, finding.fix, text


def place_of(finding: Finding) -> Place:
    """Where one finding is, and its own message."""
    return Place(finding.op, finding.opcode, finding.tensor, finding.message)


def place_label(place: Place) -> str:
    """`op 12 CONV_2D`, `tensor 'x'` or `model`."""
    if place.op is not None:
        return op_location(place.op, place.opcode) if place.opcode else f"op {place.op}"
    if place.tensor:
        return f"tensor '{place.tensor}'"
    return "model"


def group_repeats(findings: list[Finding]) -> list[Finding]:
    """`findings` with every set of at least GROUP_FROM findings of one shape replaced by one
    finding (at the first one's position in the list)."""
    if len(findings) < GROUP_FROM:
        return findings
    groups: dict[tuple[str, str, int, str, str], list[Finding]] = {}
    for f in findings:
        if not f.places:  # already grouped by its rule (or by an earlier pass)
            groups.setdefault(message_shape(f), []).append(f)
    if all(len(group) < GROUP_FROM for group in groups.values()):
        return findings
    out = []
    for f in findings:
        group = groups.get(message_shape(f)) if not f.places else None
        if group is None or len(group) < GROUP_FROM:
            out.append(f)
        elif group[0] is f:
            out.append(grouped(group))
    return out


def grouped(group: list[Finding]) -> Finding:
    """One finding for `group` (findings of one shape, in report order)."""
    first, rest = group[0], group[1:]
    places = tuple(place_of(f) for f in group)
    shown = ", ".join(place_label(p) for p in places[1 : 1 + SHOWN_PLACES])
    more = len(rest) - SHOWN_PLACES
    if more > 0:
        shown += f" and {more} more"
    message = (
        f"{first.message}; likewise at {len(rest)} more places: {shown} "
        "(--format json lists every place)"
    )
    return first._replace(message=message, places=places)
