"""Styled text in terminal cells: spans of (text, style), their width in cells (east-asian wide
characters take two, combining marks none), and wrapping a paragraph into lines of at most a
given width (on spaces; a word longer than the width is folded), as rich wraps text.
coralcheck.render.layout lays these lines out in tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

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


def cut(spans: Line, offsets: Sequence[int]) -> list[Line]:
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
    cropped = cut(line, [keep])[0]
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
        lines.extend(_crop(line, width) for line in cut(paragraph, _breaks(plain, width)))
    return lines
