"""The terminal report (rich): colour on a TTY, plain text when piped or when NO_COLOR is set.

Per model: header, one verdict line, inputs/outputs with the float↔integer formula, ops (runs of
Edge TPU ops collapsed unless verbose; every CPU op with its status and reason), findings by
severity with their fix, the biggest wins, parameter memory, gates and the result. Several models
end with a summary table. Plain output fits 80 columns.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from coralcheck.config import Verdict
from coralcheck.render import Outcome, terminal  # noqa: F401 (terminal lived here: re-exported)
from coralcheck.render.phrases import (
    SEVERITY_ORDER,
    SEVERITY_TITLE,
    fact_rows,
    fact_tables,
    fact_value,
    human_bytes,
    human_count,
    humanize_key,
    io_formulas,
    op_label,
    op_runs,
    plural,
    recovery,
    severity_counts,
    shape_text,
    sorted_findings,
    statistics,
    table_columns,
    verdict_line,
    where,
)
from coralcheck.report import ModelReport, Report

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
PLACEMENT_STYLE = {"tpu": "green", "cpu": "bold red"}
INDENT = 2
SHOWN_WINS = 3


def _console(out: io.StringIO, color: bool, width: int) -> Console:
    return Console(
        file=out,
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
    )


def _grid(*ratios: int | None) -> Table:
    table = Table.grid(padding=(0, 2))
    for ratio in ratios:
        table.add_column(ratio=ratio, overflow="fold")
    return table


def _table(*headers: str, ratios: Mapping[str, int] | None = None) -> Table:
    table = Table(
        box=None,
        pad_edge=False,
        show_edge=False,
        header_style="bold",
        padding=(0, 1),
        expand=bool(ratios),  # rich honours column ratios only in an expanded table
    )
    for h in headers:
        table.add_column(h, overflow="fold", ratio=(ratios or {}).get(h))
    return table


# A titled part of a model's report: printed as a bold title over the indented body.
Section = tuple[str, Any]


def _header(console: Console, m: ModelReport) -> None:
    facts = [f"{m.kind} model", human_bytes(m.file_size), f"compiler {m.compiler_version}"]
    if m.subgraphs > 1:
        facts.append(plural(m.subgraphs, "subgraph"))
    line = Text(m.path, style="bold")
    about = " · ".join(facts)
    fits = len(m.path) + 2 + len(about) <= console.width
    line.append(("  " if fits else "\n") + about, style="dim")
    console.print(line)
    style = "green" if m.summary.ops_cpu == 0 and m.ops else "yellow" if m.ops else ""
    console.print(Text(verdict_line(m), style=style))


def _io(m: ModelReport) -> Section | None:
    if not m.io:
        return None
    table = _table("", "name", "dtype", "shape", "scale", "zero point")
    formulas = _grid(None, 1)
    for t in m.io:
        scale = f"{t.scale:.8g}" if t.scale is not None else "—"
        zp = str(t.zero_point) if t.zero_point is not None else "—"
        table.add_row(t.role, t.name, t.dtype.lower(), shape_text(t), scale, zp)
        formula = io_formulas(t)
        if formula:
            formulas.add_row(Text(f"{t.role} {t.name}", style="dim"), Text("\n".join(formula)))
    body: list[Any] = [table]
    if formulas.row_count:
        body += [Text(""), Text("float x ↔ integer q:", style="dim"), formulas]
    return "Inputs and outputs", Group(*body)


def _ops(m: ModelReport, verbose: bool) -> Section | None:
    if not m.ops:
        if not m.op_histogram:
            return None
        hist = ", ".join(k if n == 1 else f"{k}×{n}" for k, n in m.op_histogram.items())
        return "Ops", Text(hist)
    table = _table("#", "op", "on", "status", ratios={"op": 2, "status": 3})
    first_with: dict[str, int] = {}  # reason -> the op it was first shown for
    for run in op_runs(m.ops, collapse=not verbose):
        op = run.first
        status = Text(op.status)
        if op.placement == "cpu" and op.reason:
            seen = first_with.setdefault(op.reason, op.index)
            reason = op.reason if verbose or seen == op.index else f"same reason as op {seen}"
            status.append("\n" + reason, style="dim")
        elif len(run.ops) > 1:
            status.append(f" ({plural(len(run.ops), 'op')})", style="dim")
        table.add_row(
            run.span,
            run.opcodes,
            Text(op.placement.upper(), style=PLACEMENT_STYLE.get(op.placement, "")),
            status,
        )
    return ("Ops" if verbose else "Ops (runs on the Edge TPU collapsed; -v shows each)"), table


def _findings(m: ModelReport, verdict: Verdict) -> Section | None:
    if not m.findings:
        return None
    groups: list[Any] = []
    for severity in SEVERITY_ORDER:
        items = [(i, f) for i, f in sorted_findings(m) if f.severity == severity]
        if not items:
            continue
        grid = _grid(None, 1)
        for i, f in items:
            body = Text(where(m, f), style="bold")
            body.append(": " + f.message)
            if i in verdict.known:
                body.append(" [in baseline]", style="dim")
            if f.fix:
                body.append("\nfix: " + f.fix, style="dim")
            grid.add_row(Text(f.code, style=SEVERITY_STYLE[severity]), body)
        title = f"{SEVERITY_TITLE[severity]} ({len(items)})"
        groups += [Text(title, style=SEVERITY_STYLE[severity]), grid]
    return "Findings", Group(*groups)


def _wins(m: ModelReport, verbose: bool) -> Section | None:
    if not m.root_causes:
        return None
    grid = _grid(None, 1)
    causes = m.root_causes if verbose else m.root_causes[:SHOWN_WINS]
    for rank, cause in enumerate(causes, 1):
        body = Text(op_label(cause.op, cause.opcode), style="bold")
        body.append(f": {cause.reason or cause.status}")
        gain = "\n" + recovery(cause.ops_recovered)
        if cause.macs_recovered and m.summary.macs_total:
            share = cause.macs_recovered / m.summary.macs_total
            gain += f" (+{human_count(cause.macs_recovered)} MACs, {share:.0%})"
        body.append(gain, style="green")
        if cause.fix:
            body.append("\nfix: " + cause.fix, style="dim")
        grid.add_row(f"{rank}.", body)
    more = len(m.root_causes) - len(causes)
    if more:
        grid.add_row("", Text(f"{plural(more, 'more root cause')}: -v shows them", style="dim"))
    return "Biggest wins", grid


def _memory(m: ModelReport) -> Section | None:
    mem = m.memory
    if mem is None:
        return None
    text = Text(f"{human_bytes(mem.parameter_bytes)}: {human_bytes(mem.on_chip_bytes)} cached ")
    text.append(f"on-chip, {human_bytes(mem.off_chip_bytes)} streamed from the host")
    if mem.off_chip_bytes:
        text.append(" on every inference", style="yellow")
    source = "read from the compiled model" if mem.source == "compiled" else "estimate"
    text.append(f" ({source}; {human_bytes(mem.cache_bytes)} cache)", style="dim")
    return "Parameter memory", text


def _records(rows: list[dict], width: int) -> Any:
    """Dicts as a table when it fits the width, else one key/value block per dict."""
    columns = table_columns(rows)
    cells = [[fact_value(c, row.get(c)) for c in columns] for row in rows]
    natural = sum(
        max(len(humanize_key(c)), *(len(r[k]) for r in cells)) for k, c in enumerate(columns)
    )
    if natural + 2 * len(columns) <= width:
        table = _table(*(humanize_key(c) for c in columns))
        for r in cells:
            table.add_row(*r)
        return table
    blocks: list[Any] = []
    for n, r in enumerate(cells, 1):
        grid = _grid(None, 1)
        for c, value in zip(columns, r, strict=True):
            grid.add_row(Text(humanize_key(c), style="dim"), value)
        blocks += [Text(f"#{n}", style="bold"), Padding(grid, (0, 0, 0, INDENT))]
    return Group(*blocks)


def _facts(
    title: str, facts: Mapping[str, Any] | None, verbose: bool, width: int
) -> Section | None:
    """A facts dict (compiled model, compiler run): scalars as label/value rows; lists of dicts
    (segments, executables...) as tables with -v, else counted."""
    if not facts:
        return None
    grid = _grid(None, 1)
    for label, value in fact_rows(facts):
        grid.add_row(Text(label, style="dim"), value)
    tables = fact_tables(facts)
    if not verbose:
        for name, rows in tables:
            grid.add_row(Text(name, style="dim"), f"{plural(len(rows), 'entry', 'entries')} (-v)")
    body: list[Any] = [grid] if grid.row_count else []
    if verbose:
        for name, rows in tables:
            body += [Text(name, style="dim"), Padding(_records(rows, width), (0, 0, 0, INDENT))]
    return title, Group(*body)


def _diff(m: ModelReport, width: int) -> Section | None:
    if m.diff is None:
        return None
    if not m.diff:
        return "Prediction vs compiler", Text("the prediction agrees with the compiler op by op")
    title = f"Prediction vs compiler ({plural(len(m.diff), 'disagreement')})"
    return title, _records(m.diff, width)


def _gates(verdict: Verdict) -> Section | None:
    if not verdict.gates:
        return None
    grid = _grid(None, None, 1)
    for gate in verdict.gates:
        mark = Text("passed", style="green") if gate.passed else Text("FAILED", style="bold red")
        grid.add_row(mark, gate.name, gate.message)
    return "Gates", grid


def _result(m: ModelReport, verdict: Verdict) -> Text:
    if verdict.failed:
        failing = [m.findings[i] for i in sorted(verdict.failing)]
        reasons = []
        if failing:
            reasons.append(f"{severity_counts(failing)} at or above fail-on ({verdict.fail_on})")
        if verdict.failed_gates:
            names = list(dict.fromkeys(g.name for g in verdict.failed_gates))
            reasons.append(f"{plural(len(names), 'gate')} failed: {', '.join(names)}")
        line = Text("Result: FAILED", style="bold red")
        line.append(" — " + "; ".join(reasons))
        return line
    line = Text("Result: passed", style="bold green")
    counts = severity_counts(m.findings)
    detail = f"{counts}, none failing (fail-on: {verdict.fail_on})" if counts else "no findings"
    line.append(" — " + detail)
    return line


def _model(console: Console, m: ModelReport, verdict: Verdict, verbose: bool) -> None:
    _header(console, m)
    inner = console.width - 2 * INDENT  # a table nested in a section
    sections = (
        _io(m),
        _ops(m, verbose),
        _facts("Compiled model", m.compiled, verbose, inner),
        _facts("Compiler run", m.compiler, verbose, inner),
        _diff(m, inner),
        _findings(m, verdict),
        _wins(m, verbose),
        _memory(m),
        _gates(verdict),
    )
    for section in sections:
        if section is not None:
            console.print()
            title, body = section
            console.print(Text(title, style="bold"))
            console.print(Padding(body, (0, 0, 0, INDENT)))
    console.print()
    console.print(_result(m, verdict))


def _summary(console: Console, report: Report, outcome: Outcome) -> None:
    table = _table("model", "Edge TPU ops", "findings", "result")
    for m, verdict in zip(report.models, outcome.verdicts, strict=True):
        ops = f"{m.summary.ops_tpu}/{m.summary.ops_total}" if m.ops else "—"
        result = Text("FAILED", style="bold red") if verdict.failed else Text("ok", style="green")
        table.add_row(m.path, ops, severity_counts(m.findings) or "—", result)
    for failure in outcome.failures:
        table.add_row(failure.path, "—", "—", Text("error", style="bold red"))
    console.print(Text("Summary", style="bold"))
    console.print(Padding(table, (0, 0, 0, INDENT)))
    failed = sum(v.failed for v in outcome.verdicts)
    line = f"{plural(len(report.models) + len(outcome.failures), 'model')}: {failed} failed"
    if outcome.failures:
        line += f", {len(outcome.failures)} could not be checked"
    console.print(Text(line, style="bold red" if failed or outcome.failures else "bold green"))


def render_text(
    report: Report, outcome: Outcome, *, verbose: bool = False, color: bool = False, width: int = 80
) -> str:
    out = io.StringIO()
    console = _console(out, color, width)
    for n, (m, verdict) in enumerate(zip(report.models, outcome.verdicts, strict=True)):
        if n:
            console.print()
            console.rule(style="dim")
        _model(console, m, verdict, verbose)
    # Models that could not be checked have their one-line error on stderr; with others, the
    # summary lists them too. With nothing checked, there is no report.
    if report.models and len(report.models) + len(outcome.failures) > 1:
        console.print()
        _summary(console, report, outcome)
    return _strip(out.getvalue())


def _strip(text: str) -> str:
    """Without the spaces rich pads table lines with (they wrap narrow terminals on resize)."""
    return "\n".join(line.rstrip() for line in text.split("\n"))


def render_statistics(report: Report, *, color: bool = False, width: int = 80) -> str:
    """`--statistics`: findings per rule code, most frequent first."""
    out = io.StringIO()
    console = _console(out, color, width)
    stats = statistics(report)
    if not stats:
        console.print("No findings.")
        return _strip(out.getvalue())
    table = _table("count", "code", "severity", "rule")
    table.columns[0].justify = "right"
    for s in stats:
        table.add_row(
            str(s.count), s.code, Text(s.severity, style=SEVERITY_STYLE[s.severity]), s.title
        )
    console.print(table)
    return _strip(out.getvalue())


def render_rules(rules: list[Any], *, color: bool = False, width: int = 80) -> str:
    """`coralcheck rules`: one row per rule (the family is the code's letter; `--format json`
    and docs/rules.md name it)."""
    out = io.StringIO()
    console = _console(out, color, width)
    table = _table("code", "severity", "name", "title")
    for column in table.columns[:3]:  # keep codes and names whole; the title wraps
        column.no_wrap = True
    for r in rules:
        severity = Text(r.severity, style=SEVERITY_STYLE.get(r.severity, ""))
        table.add_row(r.code, severity, r.name, r.title)
    console.print(table)
    return _strip(out.getvalue())
