"""`--format markdown`: a pull-request comment or GitHub job summary (`>> $GITHUB_STEP_SUMMARY`).

A headline, one table row per model (placement, CPU ops, estimated latency, findings, result),
then per model with something to say: the placement and latency lines, failed gates, the findings
with their fixes and the biggest wins.
"""

from __future__ import annotations

import re

from coralcheck.outcome import Outcome
from coralcheck.render.phrases import (
    human_ms,
    latency_line,
    recovery,
    run_headline,
    severity_counts,
    sorted_findings,
    verdict_line,
    where,
)
from coralcheck.report import ModelReport, Report
from coralcheck.wording import op_location, plural

SEVERITY_ICON = {"error": "🔴 error", "warning": "🟡 warning", "info": "🔵 info"}
SHOWN_WINS = 3


# Markdown and HTML punctuation that could restyle or break model-provided text (tensor names);
# `_` only at a word's edge (GitHub does not emphasize inside words: CONV_2D stays as it is).
# The comment is posted on a pull request, so neither can the text ping people (`@team`), link
# anywhere (bare URLs, `www.`, e-mail addresses are autolinked), start math (`$...$`) or spell
# HTML entities (`&lt;`): `@` and `$` go inside a <span> (GitHub's advice for a literal `$`;
# a mention must be one run of text), an entity's `&` and a URL's `:` or `.` are escaped.
_SPECIAL = re.compile(
    r"(?P<punct>[\\`*\[\]<>|~#])|(?P<edge>(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))"
    r"|(?P<span>[@$])|(?P<amp>&)|(?i:(?<=\bhttp)|(?<=\bhttps)|(?<=\bftp)|(?<=\bmailto))(?P<colon>:)"
    r"|(?i:(?<=\bwww))(?P<dot>\.)"
)


def _escape(m: re.Match[str]) -> str:
    if m.group("span"):
        return f"<span>{m.group()}</span>"
    if m.group("amp"):
        return "&amp;"
    return "\\" + m.group()


def text(value: str) -> str:
    """Text as literal markdown: model data shows as written and does nothing else."""
    return _SPECIAL.sub(_escape, value.replace("\r", ""))


def cell(value: str) -> str:
    """Text as literal markdown inside a table cell: escaped, lines joined by <br>."""
    return "<br>".join(text(value).split("\n"))


def code(text: str) -> str:
    """Inline code that survives backticks in the text."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _model_section(m: ModelReport, outcome: Outcome, n: int) -> list[str]:
    verdict = outcome.verdicts[n]
    lines = [f"### {code(m.path)}", "", text(verdict_line(m)), ""]
    estimate = latency_line(m)
    if estimate is not None:
        lines[-1:-1] = ["", text(estimate)]
    for gate in verdict.failed_gates:
        lines.append(f"- ❌ gate **{gate.name}** failed: {text(gate.message)}")
    if verdict.failed_gates:
        lines.append("")
    if m.findings:
        lines += [_row("", "Code", "Where", "Finding", "Fix"), "|---|---|---|---|---|"]
        for i, f in sorted_findings(m):
            mark = "❌" if i in verdict.failing else "☑️" if i in verdict.known else ""
            lines.append(
                _row(
                    f"{mark} {SEVERITY_ICON[f.severity]}".strip(),
                    code(f.code),
                    cell(where(m, f)),
                    cell(f.message),
                    cell(f.fix),
                )
            )
        lines.append("")
    if m.root_causes:
        lines.append("**Biggest wins**")
        lines.append("")
        for rank, cause in enumerate(m.root_causes[:SHOWN_WINS], 1):
            win = (
                f"{op_location(cause.op, cause.opcode)} ({cause.reason or cause.status}): "
                f"{recovery(cause.ops_recovered)}"
            )
            if cause.fix:
                win += f". Fix: {cause.fix}"
            lines.append(f"{rank}. " + text(" ".join(win.split())))
        lines.append("")
    cpu = [op for op in m.ops if op.placement == "cpu"]
    if cpu:
        lines += [
            f"<details><summary>{plural(len(cpu), 'op')} on the CPU</summary>",
            "",
            _row("#", "Op", "Status", "Reason"),
            "|---|---|---|---|",
        ]
        lines += [
            _row(str(op.index), code(op.opcode), cell(op.status), cell(op.reason)) for op in cpu
        ]
        lines += ["", "</details>", ""]
    return lines


def _result(m: ModelReport, failed: bool, fail_on: str) -> str:
    """A model's result cell: failed, passed, or not failed only because of --fail-on never."""
    if failed:
        return "❌ failed"
    if fail_on == "never" and any(f.severity != "info" for f in m.findings):
        return "⚠️ not failed (--fail-on never)"
    return "✅ passed"


_MARKS = {"failed": "❌", "unfailed": "⚠️", "passed": "✅"}


def _latency_cell(m: ModelReport) -> str:
    """`~2.2 ms (usb3)`: the estimate in the summary table."""
    latency = m.latency
    if latency is None:
        return "—"
    return f"~{human_ms(latency.estimate_ms)} ms ({latency.device})"


def render_markdown(report: Report, outcome: Outcome) -> str:
    words, state = run_headline(report, outcome)
    lines = [f"## {_MARKS[state]} coralcheck: {words}", ""]
    lines += [
        _row("Model", "Edge TPU ops", "Segments", "CPU ops", "Latency", "Findings", "Result"),
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for m, verdict in zip(report.models, outcome.verdicts, strict=True):
        s = m.summary
        result = _result(m, verdict.failed, verdict.fail_on)
        lines.append(
            _row(
                code(m.path),
                f"{s.ops_tpu} / {s.ops_total}" if m.ops else "—",
                str(s.tpu_segments) if m.ops else "—",
                str(s.ops_cpu) if m.ops else "—",
                _latency_cell(m),
                severity_counts(m.findings) or "—",
                result,
            )
        )
    for failure in outcome.failures:
        lines.append(
            _row(code(failure.path), "—", "—", "—", "—", cell(failure.problem), "⚠️ not checked")
        )
    lines.append("")
    for n, m in enumerate(report.models):
        verdict = outcome.verdicts[n]
        if m.findings or verdict.gates or any(op.placement == "cpu" for op in m.ops):
            lines += _model_section(m, outcome, n)
    if outcome.baseline:
        lines += [f"Compared with the baseline {code(outcome.baseline)}.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
