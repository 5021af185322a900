"""Wording shared by the rules and the reports: counts, sizes, names, ops and shapes in words.

It sits below both the analysis (finding messages) and the renderers (tables, headlines), so
that both say things the same way and neither imports the other for a phrase.

- `plural(3, "op")` → "3 ops"; `human_bytes` → "2.31 KiB"; `human_count` → "12.3 M".
- `quote(name)` → "'conv1/Relu'", cut in the middle when a file holds a huge name.
- `op_label(3, "CONV_2D")` → "CONV_2D (op 3)", as a finding message names an op;
  `op_location(3, "CONV_2D")` → "op 3 CONV_2D", as a report locates one (tables, headlines).
- `shape_text([1, 8, 8, 3])` → "[1, 8, 8, 3]" in a message; `dims_text` → "1x8x8x3" in a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Longest name quoted in full in a message (names come from the file: they can be megabytes).
_NAME_TEXT = 120
# Longest shape written out in full in a message; corrupt files can claim thousands of dimensions.
_SHAPE_TEXT_DIMS = 8
MOST_ITEMS = 16  # of a shape or a list shown in a table cell


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def human_bytes(n: int) -> str:
    """Sizes as the Edge TPU compiler prints them: B, KiB, MiB with two decimals."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.2f} KiB"
    return f"{n / (1024 * 1024):.2f} MiB"


def human_count(n: int) -> str:
    """Large counts (MACs) in engineering notation: 12.3 M."""
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)


def quote(name: str) -> str:
    """A tensor or subgraph name in quotes for a message, shortened in the middle when huge."""
    if len(name) > _NAME_TEXT:
        name = f"{name[: _NAME_TEXT // 2]}...{name[-_NAME_TEXT // 3 :]}"
    return f"'{name}'"


def op_label(index: int, opcode: str) -> str:
    """An op in a finding message: `CONV_2D (op 3)`."""
    return f"{opcode} (op {index})"


def op_location(index: int, opcode: str) -> str:
    """An op where a report locates it (tables, headlines, root causes): `op 3 CONV_2D`."""
    return f"op {index} {opcode}"


def shape_text(shape: Sequence[int]) -> str:
    """A shape in a message: "[1, 2, 8, 16, 8]"; more than 8 dimensions are shortened
    ("..., (12000 dims)")."""
    dims = [str(d) for d in shape]
    if len(dims) > _SHAPE_TEXT_DIMS:
        dims = [*dims[:3], "...", *dims[-3:], f"({len(shape)} dims)"]
    return "[" + ", ".join(dims) + "]"


def dims_text(dims: Iterable[int]) -> str:
    """A shape in a table: `1x224x224x3`; a dimension known only at run time (-1) shows as `?`."""
    dims = list(dims)
    shown = "x".join("?" if d < 0 else str(d) for d in dims[:MOST_ITEMS]) or "scalar"
    return shown + (f"x… ({len(dims):,} dimensions)" if len(dims) > MOST_ITEMS else "")
