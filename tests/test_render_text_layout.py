"""The text report's own layout (coralcheck.render.layout): wrapping, tables, the two sinks.

Widths are checked in terminal cells with this module's own count (`cells`), independent of the
layout's: an east-asian wide character takes two, a combining mark none.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import CLI_LISTING_MODULES, FIXTURES, cli_env, run_listing_modules
from helpers.reports import ANSI, clean, hostile, outcome_for, partly_mapped, report_of

from coralcheck.render import render
from coralcheck.render.layout import Column, colour, plain, table
from coralcheck.render.text import render_rules, render_statistics
from coralcheck.render.wrap import Line, cell_width, plain_text, styled, wrap
from coralcheck.report import Finding, IOTensor, ModelReport, OpPlacement, RootCause, Summary

ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
CJK = "模型名称非常长的中文字用于测试宽符换行和对齐"


def cells(text: str) -> int:
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def texts(lines: list[Line]) -> list[str]:
    return [plain_text(line) for line in lines]


def widest(text: str) -> int:
    return max(cells(line) for line in text.splitlines())


# --- cells and wrapping ---------------------------------------------------------------------------


def test_cell_width_counts_wide_characters_twice_and_combining_marks_not_at_all() -> None:
    assert cell_width("CONV_2D×3 · x ↔ q —") == 19
    assert cell_width("模型") == 4
    assert cell_width("ｆｕｌｌ") == 8  # fullwidth latin
    assert cell_width("e\u0301") == 1  # e + combining acute accent
    assert cell_width("😀") == 2


@pytest.mark.parametrize("width", [1, 5, 9, 10, 17, 40])
def test_wrap_breaks_between_words_and_keeps_every_word_in_order(width: int) -> None:
    words = ["fixing", "it", "alone", "brings", "2", "ops", "to", "the", "Edge", "TPU"]
    words += ["(+18.4", "k", "MACs,", "5%)"]
    lines = texts(wrap(styled(" ".join(words)), width))
    assert all(cells(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == "".join(words)
    if width >= 10:  # every word fits a line: none is cut
        assert [w for line in lines for w in line.split()] == words


def test_wrap_folds_a_word_longer_than_the_line() -> None:
    word = "serving_default_input_tensor_with_a_name_nobody_would_shorten:0"
    lines = texts(wrap(styled(f"tensor {word} is FLOAT32"), 20))
    assert lines[0] == "tensor "  # the long word starts a line of its own...
    assert [cells(line) for line in lines[1:4]] == [20, 20, 20]  # ...and is folded at the width
    assert "".join(lines) == f"tensor {word} is FLOAT32"


def test_wrap_never_splits_a_wide_character_and_counts_it_twice() -> None:
    lines = texts(wrap(styled(CJK), 5))
    assert all(cells(line) <= 5 for line in lines)
    assert [len(line) for line in lines[:-1]] == [2] * (len(lines) - 1)  # 2 characters: 4 cells
    assert "".join(lines) == CJK


def test_wrap_starts_a_line_at_each_newline_and_keeps_the_styles() -> None:
    lines = wrap([("op 3 GELU", "bold"), (": no\nfix: use ReLU", "dim")], 40)
    assert lines == [[("op 3 GELU", "bold"), (": no", "dim")], [("fix: use ReLU", "dim")]]


def test_tabs_expand_to_the_next_stop() -> None:
    assert texts(wrap(styled("ab\tc\td"), 40)) == ["ab      c       d"]


def test_a_line_that_cannot_fit_is_cut_to_the_width() -> None:
    assert texts(wrap(styled("RESIZE_BILINEAR"), 4, no_wrap=True)) == ["RESI"]
    assert all(cells(line) <= 3 for line in texts(wrap(styled("模型名"), 3, no_wrap=True)))


# --- tables ---------------------------------------------------------------------------------------


def column_starts(line: str, values: list[str]) -> list[int]:
    """Where each value starts in `line`, left to right."""
    starts, position = [], 0
    for value in values:
        position = line.index(value, position)
        starts.append(position)
        position += len(value)
    return starts


def test_table_sizes_columns_to_their_content_and_aligns_them() -> None:
    rows = [
        ["0–26", "CONV_2D×13", "TPU"],
        ["27", "RESIZE_BILINEAR", "CPU"],
        ["28", "ARG_MAX", "CPU"],
    ]
    lines = texts(table([Column("#"), Column("op"), Column("on")], map_styled(rows), 80))
    assert lines[0].rstrip() == "#     op               on"  # two spaces after the widest cell
    starts = {tuple(column_starts(line, row)) for line, row in zip(lines[1:], rows, strict=True)}
    assert starts == {(0, 6, 23)}
    two = [row[:2] for row in rows]
    assert widest(plain(table([Column("#"), Column("op")], map_styled(two), 80))) == 21


def map_styled(rows: list[list[str]]) -> list[list[list[tuple[str, str]]]]:
    return [[styled(cell) for cell in row] for row in rows]


def test_expanded_table_shares_the_width_between_ratio_columns() -> None:
    columns = [Column("#"), Column("op", ratio=2), Column("on"), Column("status", ratio=3)]
    rows = map_styled([["0", "CONV_2D", "TPU", "Mapped to Edge TPU"]])
    lines = table(columns, rows, 60, expand=True)
    assert {cells(plain_text(line)) for line in lines} == {60}  # as wide as allowed
    header = plain_text(lines[0])
    op, status = header.index("op"), header.index("status")
    on = header.index("on", op + 2)
    # "#" and "on" take 2 + 5 cells (gaps included); op and status share the other 53, 2:3.
    assert (on - op, 60 - status) == (22, 30)


def test_a_table_too_wide_wraps_its_widest_column_and_keeps_the_others_whole() -> None:
    message = "depends on op 2 (GELU), which stays on the CPU: the compiler maps one segment"
    rows = map_styled([["G001", "op 2 GELU", message]])
    lines = texts(table([Column("code"), Column("where"), Column("message")], rows, 50))
    assert all(cells(line) <= 50 for line in lines)
    assert lines[1].startswith("G001  op 2 GELU  depends")  # narrow columns are not wrapped
    assert " ".join(" ".join(lines[1:]).split()[4:]) == message


def test_headers_sit_on_the_row_below_them_when_one_wraps() -> None:
    rows = map_styled([["1", "1x3", "0.5", "3"]])
    columns = [Column("#"), Column("shape"), Column("scale"), Column("zero point")]
    lines = texts(table(columns, rows, 22))
    assert [line.split() for line in lines[:2]] == [["zero"], ["#", "shape", "scale", "point"]]
    assert all(cells(line) <= 22 for line in lines)


def test_a_right_justified_column_lines_up_its_last_digits() -> None:
    rows = map_styled([["7", "Q002"], ["1234", "C004"]])
    lines = texts(table([Column("count", right=True), Column("code")], rows, 40))
    assert [line[:5] for line in lines] == ["count", "    7", " 1234"]


@pytest.mark.parametrize("seed", range(8))
def test_random_tables_fit_the_width_and_lose_no_character(seed: int) -> None:
    """Every character of every cell is shown once, in tables too wide for the width, with wide
    characters and words longer than a column. (The columns that do not share an expanded
    table's width hold short texts, as in the report: else they could leave the others a
    single cell, too narrow for a wide character.)"""
    rng = random.Random(seed)
    alphabet = "abcdefghij_" + CJK[:6] + "ｆ×é"

    def text(short: bool) -> str:
        if short:
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5)))
        words = ["".join(rng.choice(alphabet) for _ in range(rng.choice((1, 3, 8, 25, 60))))]
        for _ in range(rng.randint(0, 6)):
            words.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9))))
        return " ".join(words)

    for _ in range(25):
        count = rng.randint(1, 5)
        expand = rng.random() < 0.5
        ratios = [rng.choice([None, None, 1, 3]) if expand else None for _ in range(count)]
        short = [expand and ratio is None for ratio in ratios]
        columns = [Column(text(s), ratio=r) for r, s in zip(ratios, short, strict=True)]
        rows = [[styled(text(s)) for s in short] for _ in range(rng.randint(1, 4))]
        width = rng.randint(count * 12, 120)
        grid = rng.random() < 0.5
        lines = texts(table(columns, rows, width, grid=grid, expand=expand))
        assert all(cells(line) <= width for line in lines), (width, lines)
        shown = Counter("".join(lines).replace(" ", ""))
        cells_text = [cell[0][0] for row in rows for cell in row]
        headers = [] if grid else [column.header for column in columns]
        assert shown == Counter("".join(headers + cells_text).replace(" ", ""))


# --- the report -----------------------------------------------------------------------------------

LONG_WORD = "model/backbone/stage_4/block_17/" * 4 + "conv"


def awkward() -> ModelReport:
    """A report whose every name and message is longer than a line, with wide characters."""
    message = (
        f"tensor '{LONG_WORD}' has rows of 144 x 2100 = 302400 elements; rows above 196608 did "
        f"not map in real compiles (模型的中文说明：这个张量太大了，无法映射到 Edge TPU 上)"
    )
    ops = [
        OpPlacement(0, "CONV_2D", 1, "tpu", "Mapped to Edge TPU", ""),
        OpPlacement(1, "CUSTOM:" + LONG_WORD, 1, "cpu", "Operation not supported", message),
        OpPlacement(2, "ＦＵＬＬＷＩＤＴＨ_ＯＰ", 1, "cpu", "Operation not supported", CJK * 3),
    ]
    findings = [
        Finding("O003", "error", message, op=1, tensor=LONG_WORD, fix=CJK * 4 + " " + message),
        Finding("Q002", "warning", CJK + " " + message, op=2, tensor=CJK),
        Finding("I001", "info", LONG_WORD * 3, tensor=LONG_WORD),
    ]
    io = [IOTensor("input", 0, CJK + LONG_WORD, "INT8", (1, 3), None, 0.5, -3)]
    causes = [RootCause(1, "CUSTOM:" + LONG_WORD, "Operation not supported", message, 2, 10, CJK)]
    return ModelReport(
        path=f"models/{CJK}/{LONG_WORD}_ｆｕｌｌｗｉｄｔｈ　ｍｏｄｅｌ.tflite",
        kind="source",
        file_size=123_456,
        compiler_version="16.0",
        summary=Summary(3, 1, 2, 1, 100, 90),
        ops=ops,
        findings=findings,
        io=io,
        root_causes=causes,
    )


@pytest.mark.parametrize("width", [40, 60, 80, 133])
@pytest.mark.parametrize("verbose", [False, True])
def test_awkward_names_and_messages_fit_the_width_and_every_word_is_shown(
    width: int, verbose: bool
) -> None:
    m = awkward()
    report = report_of(m, clean())
    text = render(report, "text", outcome=outcome_for(report), verbose=verbose, width=width)
    assert widest(text) <= width
    flat = "".join(text.split())
    for f in m.findings:
        assert "".join(f.message.split()) in flat
        assert "".join(f.fix.split()) in flat
    for op in m.ops[1:]:
        assert "".join(op.reason.split()) in flat and "".join(op.opcode.split()) in flat
    assert "".join(m.path.split()) in flat  # the header (the summary interleaves it with others)


def test_ops_columns_are_aligned_on_every_row() -> None:
    text = render(report_of(partly_mapped()), "text", verbose=True)
    ops = text[text.index("\nOps") : text.index("\nCompiled model")].splitlines()[3:]
    rows = [line for line in ops if re.match(r"  \d", line)]
    assert len(rows) == 30  # every op, verbose
    starts = set()
    for row in rows:
        match = re.match(r"  \d+ +(\S+) +(TPU|CPU) +(\S)", row)
        assert match, row
        starts.add((match.start(1), match.start(2), match.start(3)))
    assert len(starts) == 1  # op, placement and status start at the same column on every row
    ((_, _, status),) = starts
    # The lines of a wrapped status and the CPU ops' reasons start in the status column.
    continued = [line for line in ops if line.strip() and not re.match(r"  \d", line)]
    assert len(continued) == 4
    assert {len(line) - len(line.lstrip()) for line in continued} == {status}


def test_colour_is_the_plain_text_with_styles() -> None:
    report = report_of(partly_mapped(), hostile())
    outcome = outcome_for(report)
    coloured = render(report, "text", outcome=outcome, color=True)
    plain_text_ = render(report, "text", outcome=outcome)
    assert not ANSI.search(plain_text_)
    assert ESCAPE.sub("", coloured) == plain_text_  # one layout: the same characters
    assert "\x1b[1m" in coloured  # bold titles
    assert "\x1b[1;31mCPU\x1b[0m" in coloured and "\x1b[32mTPU\x1b[0m" in coloured
    assert "\x1b[2m" in coloured  # dim reasons


def test_colour_sink_writes_no_style_after_the_last_character() -> None:
    out = colour([[("Result: passed", "bold green"), ("   ", "")], [], [("x", "")]], 80)
    assert out == "\x1b[1;32mResult: passed\x1b[0m\n\nx\n"


def test_rules_and_statistics_fit_narrow_terminals() -> None:
    title = "The Edge TPU runtime would reject this segment's executables"
    rules = [
        SimpleNamespace(code="C006", severity="error", name="executables-rejected", title=title)
    ]
    text = render_rules(rules, width=50)  # type: ignore[arg-type]
    assert widest(text) <= 50 and "C006  error     executables-rejected" in text
    report = report_of(partly_mapped())
    assert widest(render_statistics(report, width=40)) <= 40


def test_a_3500_op_verbose_report_lists_every_op_once() -> None:
    """-v prints one row per op even for thousands of ops (its speed is measured by
    benchmarks/bench_lint.py, not here)."""
    ops = [
        OpPlacement(i, "FULLY_CONNECTED" if i % 7 else "ADD", 1, "tpu", "Mapped to Edge TPU", "")
        for i in range(3400)
    ]
    reason = "depends on op 3400 (GELU), which stays on the CPU: the compiler maps one segment"
    ops += [
        OpPlacement(i, "GELU", 1, "cpu", "Operation not supported", reason)
        for i in range(3400, 3500)
    ]
    m = ModelReport("many.tflite", "source", 10, "16.0", Summary(3500, 3400, 100, 1), ops=ops)
    report = report_of(m)
    text = render(report, "text", outcome=outcome_for(report), verbose=True)
    rows = [int(n) for n in re.findall(r"^  (\d+) ", text, re.M)]
    assert rows == list(range(3500))
    assert widest(text) <= 80


# --- processes: which modules the plain and colour paths load -------------------------------------


def run_and_list_modules(tmp_path: Path, *args: str, **env: str) -> tuple[str, set[str]]:
    environment = cli_env()
    environment.pop("NO_COLOR")
    environment.pop("FORCE_COLOR", None)
    environment.update(env)
    result, modules = run_listing_modules(CLI_LISTING_MODULES, tmp_path, *args, env=environment)
    assert result.returncode in (0, 1), result.stderr
    return result.stdout, modules


DEMO = str(FIXTURES / "demo_int8.tflite")


@pytest.mark.parametrize(
    "args",
    [
        [DEMO],
        [DEMO, "-v", "--isolated"],
        [str(FIXTURES), "--statistics"],
        [str(FIXTURES)],  # several models: the summary table
        ["rules"],
    ],
    ids=["lint", "verbose", "statistics", "several", "rules"],
)
def test_piped_plain_output_imports_no_rich(tmp_path: Path, args: list[str]) -> None:
    stdout, modules = run_and_list_modules(tmp_path, *args)
    assert stdout.strip() and not ANSI.search(stdout)
    assert [m for m in modules if m == "rich" or m.startswith("rich.")] == []


def test_output_to_a_file_imports_no_rich_even_when_colour_is_forced(tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    _, modules = run_and_list_modules(tmp_path, DEMO, "-o", str(report), FORCE_COLOR="1")
    assert "rich" not in modules
    assert DEMO in report.read_text(encoding="utf-8")
    assert not ANSI.search(report.read_text(encoding="utf-8"))


def test_forced_colour_goes_through_rich_with_the_same_characters(tmp_path: Path) -> None:
    coloured, modules = run_and_list_modules(tmp_path, DEMO, FORCE_COLOR="1")
    plain_out, _ = run_and_list_modules(tmp_path, DEMO)
    assert "rich.console" in modules
    assert ANSI.search(coloured)
    assert ESCAPE.sub("", coloured) == plain_out
