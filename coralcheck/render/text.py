"""The terminal report: colour on a TTY, plain text when piped or when NO_COLOR is set.

Per model: header, one verdict line, inputs/outputs with the float↔integer formula, ops (runs of
Edge TPU ops collapsed unless verbose; every CPU op with its status and reason), findings by
severity with their fix, the biggest wins, parameter memory, gates and the result. Several models
end with a summary table. Plain output fits 80 columns.

The report is laid out once into lines of styled spans (coralcheck.render.layout; each section
of a model in coralcheck.render.sections); plain output joins their text, colour output hands
them to rich. Plain output never imports rich (~29 ms).
"""

from __future__ import annotations

from typing import Any

from coralcheck.outcome import Outcome, Verdict, statistics
from coralcheck.render import sections
from coralcheck.render.layout import Column, colour, indent, plain, rule, table
from coralcheck.render.phrases import (
    latency_line,
    severity_counts,
    verdict_line,
)
from coralcheck.render.sections import INDENT, SEVERITY_STYLE
from coralcheck.render.wrap import Line, Styled, cell_width, styled, wrap
from coralcheck.report import ModelReport, Report
from coralcheck.wording import human_bytes, plural


def _output(lines: list[Line], color: bool, width: int) -> str:
    return colour(lines, width) if color else plain(lines)


def _header(m: ModelReport, width: int) -> list[Line]:
    facts = [f"{m.kind} model", human_bytes(m.file_size), f"compiler {m.compiler_version}"]
    if m.subgraphs > 1:
        facts.append(plural(m.subgraphs, "subgraph"))
    about = " · ".join(facts)
    fits = cell_width(m.path) + 2 + cell_width(about) <= width
    # Styles add up as in one rich Text: the facts are bold like the path, and dim.
    lines = wrap([(m.path, "bold"), (("  " if fits else "\n") + about, "bold dim")], width)
    style = "green" if m.summary.ops_cpu == 0 and m.ops else "yellow" if m.ops else ""
    lines += wrap(styled(verdict_line(m), style), width)
    estimate = latency_line(m)
    if estimate is not None:
        lines += wrap(styled(estimate), width)
    return lines


def _result(m: ModelReport, verdict: Verdict) -> Styled:
    if verdict.failed:
        failing = [m.findings[i] for i in sorted(verdict.failing)]
        reasons = []
        if failing:
            reasons.append(f"{severity_counts(failing)} at or above fail-on ({verdict.fail_on})")
        if verdict.failed_gates:
            names = list(dict.fromkeys(g.name for g in verdict.failed_gates))
            reasons.append(f"{plural(len(names), 'gate')} failed: {', '.join(names)}")
        return styled("Result: FAILED — " + "; ".join(reasons), "bold red")
    counts = severity_counts(m.findings)
    detail = f"{counts}, none failing (fail-on: {verdict.fail_on})" if counts else "no findings"
    return styled("Result: passed — " + detail, "bold green")


def _model(m: ModelReport, verdict: Verdict, verbose: bool, width: int) -> list[Line]:
    lines = _header(m, width)
    parts = (
        sections.io(m),
        sections.ops(m, verbose),
        sections.segments(m),
        sections.facts("Compiled model", m.compiled, verbose),
        sections.facts("Compiler run", m.compiler, verbose),
        sections.diff(m),
        sections.findings(m, verdict),
        sections.wins(m, verbose),
        sections.memory(m),
        sections.latency(m, verbose),
        sections.gates(verdict),
    )
    for section in parts:
        if section is not None:
            title, body = section
            lines += [[], *wrap(styled(title, "bold"), width)]
            lines += indent(body(width - INDENT), INDENT)
    return [*lines, [], *wrap(_result(m, verdict), width)]


def _summary(report: Report, outcome: Outcome, width: int) -> list[Line]:
    rows = []
    for m, verdict in zip(report.models, outcome.verdicts, strict=True):
        ops = f"{m.summary.ops_tpu}/{m.summary.ops_total}" if m.ops else "—"
        result = styled("FAILED", "bold red") if verdict.failed else styled("ok", "green")
        rows.append(
            [styled(m.path), styled(ops), styled(severity_counts(m.findings) or "—"), result]
        )
    for failure in outcome.failures:
        rows.append([styled(failure.path), styled("—"), styled("—"), styled("error", "bold red")])
    columns = [Column(h) for h in ("model", "Edge TPU ops", "findings", "result")]
    failed = sum(v.failed for v in outcome.verdicts)
    line = f"{plural(len(report.models) + len(outcome.failures), 'model')}: {failed} failed"
    if outcome.failures:
        line += f", {len(outcome.failures)} could not be checked"
    style = "bold red" if failed or outcome.failures else "bold green"
    return [
        *wrap(styled("Summary", "bold"), width),
        *indent(table(columns, rows, width - INDENT), INDENT),
        *wrap(styled(line, style), width),
    ]


def render_text(
    report: Report, outcome: Outcome, *, verbose: bool = False, color: bool = False, width: int = 80
) -> str:
    lines: list[Line] = []
    for n, (m, verdict) in enumerate(zip(report.models, outcome.verdicts, strict=True)):
        if n:
            lines += [[], rule(width)]
        lines += _model(m, verdict, verbose, width)
    # Models that could not be checked have their one-line error on stderr; with others, the
    # summary lists them too. With nothing checked, there is no report.
    if report.models and len(report.models) + len(outcome.failures) > 1:
        lines += [[], *_summary(report, outcome, width)]
    return _output(lines, color, width)


def render_statistics(report: Report, *, color: bool = False, width: int = 80) -> str:
    """`--statistics`: findings per rule code, most frequent first."""
    stats = statistics(report)
    if not stats:
        return _output(wrap(styled("No findings."), width), color, width)
    columns = (Column("count", right=True), Column("code"), Column("severity"), Column("rule"))
    rows = [
        [
            styled(str(s.count)),
            styled(s.code),
            styled(s.severity, SEVERITY_STYLE[s.severity]),
            styled(s.title),
        ]
        for s in stats
    ]
    return _output(table(columns, rows, width), color, width)


def render_rules(rules: list[Any], *, color: bool = False, width: int = 80) -> str:
    """`coralcheck rules`: one row per rule (the family is the code's letter; `--format json`
    and docs/rules.md name it)."""
    # Codes and names are kept whole; the title wraps.
    columns = (
        Column("code", no_wrap=True),
        Column("severity", no_wrap=True),
        Column("name", no_wrap=True),
        Column("title"),
    )
    rows = [
        [
            styled(r.code),
            styled(r.severity, SEVERITY_STYLE.get(r.severity, "")),
            styled(r.name),
            styled(r.title),
        ]
        for r in rules
    ]
    return _output(table(columns, rows, width), color, width)
