"""Terminal layout without rich: styled text wrapped into lines, tables sized to their content.

The text report is laid out once, as lines of styled spans (`(text, style)`, the style a rich
style name such as "bold red" or "" for none), then either joined as plain text or handed to
rich for colour (`plain`, `colour`). Only the colour sink imports rich (~29 ms, 50 modules):
piped output, NO_COLOR and `-o FILE` never do.

Widths are terminal cells: east-asian wide characters take two, combining marks none. The
sizing follows rich's `Table` (which the report used before) so the plain report keeps its
characters: a column is as wide as its widest cell, columns with a ratio share the width of an
expanded table, and when a table is too wide its widest columns give way first; cells wrap on
spaces, and a word longer than its column is folded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from math import ceil
from typing import NamedTuple

Span = tuple[str, str]  # (text, style)
Line = list[Span]  # one terminal line, no newline in it
Styled = list[Span]  # text that may hold newlines: a cell, a paragraph

TAB_SIZE = 8
# Printable ASCII and the symbols coralcheck prints: a typical report needs no unicodedata.
_CHAR_WIDTHS: dict[str, int] = dict.fromkeys([*map(chr, range(32, 127)), *"×·—–↔−…─"], 1)
_WORD = re.compile(r"\s*\S+\s*")


def _char_width(char: str) -> int:
    width = _CHAR_WIDTHS.get(char)
    if width is None:
        import unicodedata

        code = ord(char)
        category = unicodedata.category(char)
        if code < 32 or 0x7F <= code < 0xA0:
            width = 0  # control characters (escaped before they get here, but tab)
        elif category in ("Mn", "Me") or (category == "Cf" and char != "\xad"):
            width = 0  # combining marks, zero-width joiners and spaces (a soft hyphen shows)
        elif unicodedata.east_asian_width(char) in ("W", "F"):
            width = 2
        else:
            width = 1
        _CHAR_WIDTHS[char] = width
    return width


def cell_width(text: str) -> int:
    """Terminal cells `text` takes."""
    if text.isascii():
        return len(text)  # printable ASCII: one cell a character (tabs are expanded first)
    return sum(map(_char_width, text))


def styled(text: str, style: str = "") -> Styled:
    return [(text, style)]


def plain_text(spans: Iterable[Span]) -> str:
    return "".join(text for text, _ in spans)


def measure(text: Styled) -> int:
    """The cells of the longest line of `text` (wrapped nowhere)."""
    plain = plain_text(text)
    if "\t" in plain:
        return max(cell_width(plain_text(line)) for line in map(_expand_tabs, _paragraphs(text)))
    return max(map(cell_width, plain.split("\n")))


# --- wrapping -------------------------------------------------------------------------------------


def _chop(text: str, width: int) -> list[str]:
    """`text` cut into pieces of at most `width` cells (a wide character is never split)."""
    if text.isascii():
        return [text[i : i + width] for i in range(0, len(text), width)]
    pieces: list[str] = []
    size = start = 0
    for index, char in enumerate(text):
        char_size = _char_width(char)
        if size + char_size > width:
            pieces.append(text[start:index])
            start, size = index, 0
        size += char_size
    if size:
        pieces.append(text[start:])
    return pieces


def _breaks(text: str, width: int) -> list[int]:
    """Offsets to break one paragraph at so each line fits `width`: between words, and inside a
    word longer than a whole line (it is folded). rich's `divide_line`, so lines break where the
    rich-rendered report broke them."""
    breaks: list[int] = []
    offset = 0  # cells used on the current line
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group()
        word_width = cell_width(word.rstrip())
        if width - offset >= word_width:
            offset += cell_width(word)
        elif word_width > width:
            pieces = _chop(word, width)
            for piece in pieces:
                if start:
                    breaks.append(start)
                start += len(piece)
            offset = cell_width(pieces[-1])
        elif offset and start:
            breaks.append(start)
            offset = cell_width(word)
    return breaks


def _cut(spans: Line, offsets: Sequence[int]) -> list[Line]:
    """`spans` split at character `offsets` (ascending) into lines."""
    lines: list[Line] = [[]]
    position = 0
    cuts = iter(offsets)
    cut = next(cuts, None)
    for text, style in spans:
        end = position + len(text)
        begin = 0
        while cut is not None and cut <= end:
            if cut - position > begin:
                lines[-1].append((text[begin : cut - position], style))
            begin = cut - position
            lines.append([])
            cut = next(cuts, None)
        if begin < len(text):
            lines[-1].append((text[begin:], style))
        position = end
    return lines


def _paragraphs(text: Styled) -> list[Line]:
    """`text` split at its newlines."""
    if len(text) == 1 and "\n" not in text[0][0]:
        return [text]  # most cells: one span, one line
    lines: list[Line] = [[]]
    for chunk, style in text:
        first, *rest = chunk.split("\n")
        if first:
            lines[-1].append((first, style))
        for part in rest:
            lines.append([(part, style)] if part else [])
    return lines


def _expand_tabs(line: Line) -> Line:
    """Tabs as spaces up to the next stop (every TAB_SIZE cells)."""
    out: Line = []
    position = 0
    for text, style in line:
        if "\t" not in text:
            out.append((text, style))
            position += cell_width(text)
            continue
        expanded = []
        for part in re.split(r"(\t)", text):
            if part == "\t":
                spaces = TAB_SIZE - position % TAB_SIZE
                expanded.append(" " * spaces)
                position += spaces
            else:
                expanded.append(part)
                position += cell_width(part)
        out.append(("".join(expanded), style))
    return out


def _crop(line: Line, width: int) -> Line:
    """`line` cut to `width` cells (its trailing spaces first); a wide character cut in half
    becomes a space."""
    text = plain_text(line)
    excess = cell_width(text) - width
    if excess <= 0:
        return line
    trailing = len(text) - len(text.rstrip())
    keep = len(text) - min(trailing, excess)
    if cell_width(text[:keep]) > width:
        keep, size = 0, 0
        for char in text:
            if size + _char_width(char) > width:
                break
            size += _char_width(char)
            keep += 1
    cropped = _cut(line, [keep])[0]
    missing = width - cell_width(text[:keep])
    return [*cropped, (" " * missing, "")] if missing > 0 else cropped


def wrap(text: Styled, width: int, *, no_wrap: bool = False) -> list[Line]:
    """`text` as lines of at most `width` cells: each newline starts a line, long lines break
    between words, a word longer than `width` is folded (with `no_wrap`, lines are cut)."""
    width = max(width, 1)
    lines: list[Line] = []
    for paragraph in _paragraphs(text):
        plain = plain_text(paragraph)
        if "\t" in plain:
            paragraph = _expand_tabs(paragraph)
            plain = plain_text(paragraph)
        if no_wrap or cell_width(plain) <= width:
            lines.append(_crop(paragraph, width))
            continue
        lines.extend(_crop(line, width) for line in _cut(paragraph, _breaks(plain, width)))
    return lines


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
    padding = [left + right for left, right in pads]
    # A cell of one span on one line (nearly every cell) is measured once, and laid out as is.
    simple = [[_simple_width(cell) for cell in row] for row in body]
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

    inners = [w - left - right for w, (left, right) in zip(widths, pads, strict=True)]
    lefts = [" " * left for left, _ in pads]
    lines: list[Line] = []
    for number, (row, sizes) in enumerate(zip(body, simple, strict=True)):
        cells: list[list[Line]] = []
        for n, (cell, size) in enumerate(zip(row, sizes, strict=True)):
            column, inner, right = columns[n], inners[n], pads[n][1]
            if inner < 1:  # no room left by a too narrow width: blank, as in rich
                cells.append([[(" " * widths[n], "")]])
            elif size is not None and size <= inner and not column.right:
                cells.append([[(lefts[n], ""), *cell, (" " * (inner - size + right), "")]])
            else:
                cells.append(_cell_lines(cell, inner, column, pads[n][0], right))
        height = max(map(len, cells))
        if height == 1:
            lines.append([span for cell_lines in cells for span in cell_lines[0]])
            continue
        for n, cell_lines in enumerate(cells):
            blank = [[(" " * widths[n], "")]] * (height - len(cell_lines))
            # Headers sit on the row below them (bottom-aligned), cells at the top of theirs.
            cells[n] = blank + cell_lines if number == 0 and not grid else cell_lines + blank
        for parts in zip(*cells, strict=True):
            lines.append([span for part in parts for span in part])
    return lines


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
            line = _cut(line, [len(text) - stripped])[0] if stripped else line
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
