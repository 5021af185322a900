"""Terminal layout without rich: styled text wrapped into lines, tables sized to their content.

The text report is laid out once, as lines of styled spans (`(text, style)`, the style a rich
style name such as "bold red" or "" for none), then either joined as plain text or handed to
rich for colour (`plain`, `colour`). Only the colour sink imports rich (~29 ms, 50 modules):
piped output, NO_COLOR and `-o FILE` never do.

Widths are terminal cells (coralcheck.render.wrap measures and wraps styled text). The sizing
follows rich's `Table` (which the report used before) so the plain report keeps its
characters: a column is as wide as its widest cell, columns with a ratio share the width of an
expanded table, and when a table is too wide its widest columns give way first; cells wrap on
spaces, and a word longer than its column is folded.
"""

from collections.abc import Iterable, Sequence
from math import ceil
from typing import NamedTuple

from coralcheck.render.wrap import (
    Line,
    Styled,
    cell_width,
    cut,
    measure,
    plain_text,
    styled,
    wrap,
)

# --- tables ---------------------------------------------------------------------------------------


class Column(NamedTuple):
    """One column of a table: its header, how it shares a table's width, how its cells wrap."""

    header: str = ""
    ratio: int | None = None  # share of the width of an expanded table (None: sized to content)
    no_wrap: bool = False  # cells are cut rather than wrapped (codes and names kept whole)
    right: bool = False  # justified right (counts)
    max_width: int | None = None  # cells of content at most (longer cells wrap)


def _distribute(total: int, ratios: list[int], minimums: list[int] | None = None) -> list[int]:
    """`total` in parts by `ratios` (rich's `ratio_distribute`: same rounding, same widths)."""
    if minimums:
        ratios = [ratio if minimum else 0 for ratio, minimum in zip(ratios, minimums, strict=True)]
    total_ratio = sum(ratios)
    remaining = total
    parts = []
    for ratio, minimum in zip(ratios, minimums or [0] * len(ratios), strict=True):
        part = max(minimum, ceil(ratio * remaining / total_ratio)) if total_ratio > 0 else remaining
        parts.append(part)
        total_ratio -= ratio
        remaining -= part
    return parts


def _reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]) -> list[int]:
    """`values` less `total` in all, taken by `ratios`, at most `maximums` each (rich's
    `ratio_reduce`)."""
    ratios = [ratio if most else 0 for ratio, most in zip(ratios, maximums, strict=True)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining = total
    result = []
    for ratio, most, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            taken = min(most, round(ratio * remaining / total_ratio))
            result.append(value - taken)
            remaining -= taken
            total_ratio -= ratio
        else:
            result.append(value)
    return result


def _collapse(widths: list[int], wrappable: list[bool], max_width: int) -> list[int]:
    """Widths under `max_width`, narrowing the widest wrappable columns first (rich's
    `Table._collapse_widths`)."""
    total = sum(widths)
    excess = total - max_width
    if not any(wrappable):
        return widths
    while total and excess > 0:
        widest = max(w for w, can in zip(widths, wrappable, strict=True) if can)
        second = max(
            w if can and w != widest else 0 for w, can in zip(widths, wrappable, strict=True)
        )
        ratios = [
            1 if (w == widest and can) else 0 for w, can in zip(widths, wrappable, strict=True)
        ]
        if not any(ratios) or not widest - second:
            break
        widths = _reduce(excess, ratios, [min(excess, widest - second)] * len(widths), widths)
        total = sum(widths)
        excess = total - max_width
    return widths


def _fit(natural: int, padding: int, width: int) -> int:
    """A column's width when it may take at most `width` (rich's measurement of a padded cell)."""
    if width < 1:
        return 0
    if width - padding < 1:
        return width
    return min(natural + padding, width)


def table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Styled]],
    width: int,
    *,
    grid: bool = False,
    expand: bool = False,
) -> list[Line]:
    """`rows` as aligned columns at most `width` cells wide.

    A table has a bold header row and one space of padding on each side of a column boundary; a
    grid (`grid=True`) has no header and two spaces after every column but the last. Either way
    two spaces separate columns. `expand` makes the table `width` wide, sharing it between the
    columns with a ratio.
    """
    count = len(columns)
    if grid:
        pads = [(0, 0 if n == count - 1 else 2) for n in range(count)]
        body = [list(row) for row in rows]
    else:
        pads = [(0 if n == 0 else 1, 0 if n == count - 1 else 1) for n in range(count)]
        header = [styled(c.header, "bold") if c.header else [] for c in columns]
        body = [header, *(list(row) for row in rows)]
    # A cell of one span on one line (nearly every cell) is measured once, and laid out as is.
    simple = [[_simple_width(cell) for cell in row] for row in body]
    widths = _column_widths(columns, body, simple, pads, width, expand)
    lines: list[Line] = []
    for number, (row, sizes) in enumerate(zip(body, simple, strict=True)):
        lines += _row_lines(columns, row, sizes, widths, pads, header=number == 0 and not grid)
    return lines


def _column_widths(
    columns: Sequence[Column],
    body: list[list[Styled]],
    simple: list[list[int | None]],
    pads: list[tuple[int, int]],
    width: int,
    expand: bool,
) -> list[int]:
    """Each column's width, padding included (see `table`)."""
    count = len(columns)
    padding = [left + right for left, right in pads]
    natural = [
        max(
            (w if w is not None else measure(row[n]) if row[n] else 0)
            for row, w in zip(body, (s[n] for s in simple), strict=True)
        )
        for n in range(count)
    ]
    natural = [
        min(size, column.max_width) if column.max_width else size
        for size, column in zip(natural, columns, strict=True)
    ]
    widths = [_fit(natural[n], padding[n], width) or 1 for n in range(count)]

    flexible = [c.ratio is not None for c in columns]
    if expand and any(c.ratio for c in columns):
        fixed = [0 if flexible[n] else widths[n] for n in range(count)]
        shares = _distribute(
            width - sum(fixed),
            [c.ratio or 0 for c in columns if c.ratio is not None],
            [1 + padding[n] for n in range(count) if flexible[n]],
        )
        share = iter(shares)
        widths = [fixed[n] + next(share) if flexible[n] else widths[n] for n in range(count)]
    total = sum(widths)
    if total > width:
        widths = _collapse(widths, [not c.no_wrap for c in columns], width)
        total = sum(widths)
        if total > width:  # last resort: every column gives way evenly
            widths = _reduce(total - width, [1] * count, widths, widths)
            total = sum(widths)
        # Each column as wide as its content needs within its share. (`total` stays the sum of
        # the shares, as in rich: an expanded table then spreads what is left the same way.)
        widths = [_fit(natural[n], padding[n], widths[n]) for n in range(count)]
    if expand and total < width:
        extras = _distribute(width - total, widths)
        widths = [w + extra for w, extra in zip(widths, extras, strict=True)]
    return widths


def _row_lines(
    columns: Sequence[Column],
    row: list[Styled],
    sizes: list[int | None],
    widths: list[int],
    pads: list[tuple[int, int]],
    header: bool,
) -> list[Line]:
    """One row of the table as lines: its cells side by side, each padded to its column."""
    cells: list[list[Line]] = []
    for n, (cell, size) in enumerate(zip(row, sizes, strict=True)):
        column, (left, right) = columns[n], pads[n]
        inner = widths[n] - left - right
        if inner < 1:  # no room left by a too narrow width: blank, as in rich
            cells.append([[(" " * widths[n], "")]])
        elif size is not None and size <= inner and not column.right:
            cells.append([[(" " * left, ""), *cell, (" " * (inner - size + right), "")]])
        else:
            cells.append(_cell_lines(cell, inner, column, left, right))
    height = max(map(len, cells))
    if height == 1:
        return [[span for cell_lines in cells for span in cell_lines[0]]]
    for n, cell_lines in enumerate(cells):
        blank = [[(" " * widths[n], "")]] * (height - len(cell_lines))
        # Headers sit on the row below them (bottom-aligned), cells at the top of theirs.
        cells[n] = blank + cell_lines if header else cell_lines + blank
    return [[span for part in parts for span in part] for parts in zip(*cells, strict=True)]


def _simple_width(cell: Styled) -> int | None:
    """The width of a cell of one span on one line, else None."""
    if len(cell) != 1:
        return None if cell else 0
    text = cell[0][0]
    if "\n" in text or "\t" in text:
        return None
    return cell_width(text)


def _cell_lines(cell: Styled, width: int, column: Column, left: int, right: int) -> list[Line]:
    """A cell's lines, each padded to the column's width."""
    out = []
    for line in wrap(cell, width, no_wrap=column.no_wrap) if cell else [[]]:
        if column.right:
            text = plain_text(line)
            stripped = len(text) - len(text.rstrip())
            line = cut(line, [len(text) - stripped])[0] if stripped else line
            room = width - cell_width(plain_text(line))
            out.append([(" " * (left + room), ""), *line, (" " * right, "")])
        else:
            room = width - cell_width(plain_text(line))
            out.append([(" " * left, ""), *line, (" " * (room + right), "")])
    return out


def indent(lines: Iterable[Line], cells: int) -> list[Line]:
    """`lines` moved right by `cells` (lay them out `cells` narrower)."""
    margin = (" " * cells, "")
    return [[margin, *line] if line else [] for line in lines]


def rule(width: int, style: str = "dim") -> Line:
    """A horizontal line across the width."""
    return [("─" * width, style)]


# --- sinks ----------------------------------------------------------------------------------------


def plain(lines: Iterable[Line]) -> str:
    """The lines as text, without trailing spaces (they wrap narrow terminals on resize)."""
    return "".join("".join(text for text, _ in line).rstrip() + "\n" for line in lines)


def colour(lines: Iterable[Line], width: int) -> str:
    """The lines with their styles as ANSI escapes, through rich (it knows colour systems)."""
    import io

    from rich.console import Console
    from rich.text import Text

    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        force_terminal=True,  # colour was asked for (see coralcheck.render.terminal)
        no_color=False,
        color_system="standard",
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
    )
    text = Text()
    for line in lines:
        chunks: list[str] = []
        last = ""
        for chunk, style in _rstrip(line):
            if style != last and chunks:
                text.append("".join(chunks), last or None)
                chunks = []
            chunks.append(chunk)
            last = style
        chunks.append("\n")
        text.append("".join(chunks), last or None)
    # soft_wrap: the lines already fit; rich neither wraps nor crops them again.
    console.print(text, soft_wrap=True, end="")
    return out.getvalue()


def _rstrip(line: Line) -> Line:
    """`line` without trailing spaces, so no style is painted after its last character."""
    line = list(line)
    while line and not line[-1][0].rstrip():
        line.pop()
    if line:
        text, style = line[-1]
        line[-1] = (text.rstrip(), style)
    return line
