"""`--format html`: one self-contained page per run, a section per model.

The page needs nothing but itself: its style and script (`html.css`, `html.js` beside this file,
written for this page: no library is vendored) are inlined, and a Content-Security-Policy forbids
any fetch, so it works from `file://`, as a CI artifact and offline, in light and dark.

Each model's section shows, at the top, the verdict line, the gates and the result, the latency
estimate (when the report has one), the I/O contract and the parameter memory; then the graph;
then the findings by severity (each linked to its op in the graph) and the biggest wins. The
verdict, gates and lists are static HTML; the graph is drawn by the script from the model's data
(a JSON island: ops, tensors, data flow, all from the `Report`), laid out in layers from the
inputs at the top. Every op node is an SVG element with `data-op` (its index) and
`data-placement` (`tpu` or `cpu`), as in the JSON report, for tests and user scripts.

Nothing here decides anything: placements, reasons, blame and boundaries are the report's.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from coralcheck.outcome import Outcome, default_outcome
from coralcheck.render.escape import printable
from coralcheck.render.phrases import (
    SEVERITY_ORDER,
    SEVERITY_TITLE,
    io_formulas,
    io_shape,
    recovery,
    run_headline,
    severity_counts,
    sorted_findings,
    verdict_line,
    where,
)
from coralcheck.report import ModelReport, Report, _json_ready
from coralcheck.wording import human_bytes, human_count, op_location, plural

_HERE = Path(__file__).resolve().parent
SHOWN_WINS = 5
# Graphs with more ops than this open with their runs of Edge TPU ops collapsed (the script reads
# it from the page; a reader can expand every run or one at a time).
COLLAPSE_ABOVE = 1500
# Everything the page may load is itself: no network, no other file.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
)


def _asset(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")


def e(text: object) -> str:
    """Text (model-provided or ours) as HTML text or attribute value."""
    return html.escape(str(text), quote=True)


def json_island(value: Any) -> str:
    """JSON to put inside <script type="application/json">: no `</script>`, `<!--` or `&`
    can close or confuse it (the same characters, escaped as JSON \\u escapes, parse back)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --- the data the script draws -----------------------------------------------------------------


def _number(value: float | None) -> float | str | None:
    """A scale as JSON: NaN and infinities (read from corrupt files) as the text JS shows."""
    if value is None or math.isfinite(value):
        return value
    return str(value)


def graph_data(m: ModelReport) -> dict[str, Any]:
    """One model's graph as compact JSON: ops as rows, statuses once, tensors as rows."""
    statuses: dict[str, int] = {}
    ops = []
    for op in m.ops:
        status = statuses.setdefault(op.status, len(statuses))
        ops.append([op.opcode, op.placement, status, op.reason, op.blamed_on, op.macs, op.segment])
    findings = [
        [f.op, f.severity, f.code, f.message, f.fix]
        for _, f in sorted_findings(m)
        if f.op is not None and f.subgraph == 0
    ]
    data: dict[str, Any] = {
        "ops": ops,
        "statuses": list(statuses),
        "roots": [[c.op, c.ops_recovered, c.macs_recovered] for c in m.root_causes],
        "findings": findings,
        "collapseAbove": COLLAPSE_ABOVE,
    }
    g = m.graph
    if g is not None and len(g.op_inputs) == len(m.ops):
        data["tensors"] = [
            [t.name, t.dtype, list(t.shape), _number(t.scale), t.zero_point, t.channels,
             int(t.constant)]
            for t in g.tensors
        ]  # fmt: skip
        data["ins"] = [list(i) for i in g.op_inputs]
        data["outs"] = [list(o) for o in g.op_outputs]
        data["graphIn"] = list(g.inputs)
        data["graphOut"] = list(g.outputs)
        data["boundary"] = list(g.boundary)
    return data


# --- the static parts --------------------------------------------------------------------------


def _op_link(n: int, index: int, text: str) -> str:
    return f'<a href="#m{n}-op-{index}" class="goto" data-goto="{index}">{e(text)}</a>'


def _latency(m: ModelReport) -> str:
    """The latency estimate line, when the report has one (`ModelReport.latency`)."""
    value = getattr(m, "latency", None)
    if value is None:
        return ""

    lat = _json_ready(value)
    if not isinstance(lat, dict) or lat.get("estimate_ms") is None:
        return ""
    text = f"~{lat['estimate_ms']:.3g} ms per inference"
    if lat.get("device"):
        text += f" on {lat['device']}"
    extra = []
    if lat.get("low_ms") is not None and lat.get("high_ms") is not None:
        extra.append(f"{lat['low_ms']:.3g}–{lat['high_ms']:.3g} ms")
    if lat.get("dominant"):
        extra.append(f"dominated by {lat['dominant']}")
    if extra:
        text += f" ({'; '.join(extra)})"
    return f'<p class="latency"><span class="label">Latency estimate</span> {e(text)}</p>'


def _verdict(m: ModelReport, outcome: Outcome, n: int) -> str:
    verdict = outcome.verdicts[n]
    result = "failed" if verdict.failed else "passed"
    parts = [
        f'<div class="verdict {result}">',
        f'<p class="result"><span class="badge {result}">{result}</span> {e(verdict_line(m))}</p>',
    ]
    why = []
    if verdict.failing:
        why.append(
            f"{plural(len(verdict.failing), 'finding')} at or above "
            f"<code>--fail-on {e(verdict.fail_on)}</code>"
        )
    if verdict.known:
        why.append(f"{plural(len(verdict.known), 'known finding')} from the baseline")
    if why:
        parts.append(f'<p class="why">{"; ".join(why)}</p>')
    if verdict.gates:
        parts.append('<ul class="gates">')
        for g in verdict.gates:
            state = "passed" if g.passed else "failed"
            parts.append(
                f'<li class="{state}"><span class="badge {state}">{state}</span> '
                f"gate <b>{e(g.name)}</b>: {e(g.message)}</li>"
            )
        parts.append("</ul>")
    parts.append(_latency(m))
    parts.append("</div>")
    return "".join(parts)


def _io(m: ModelReport) -> str:
    if not m.io:
        return ""
    rows = []
    for t in m.io:
        formulas = io_formulas(t)
        contract = "<br>".join(e(f) for f in formulas) if formulas else "—"
        rows.append(
            f"<tr><td>{e(t.role)}</td><td class='name'>{e(t.name)}</td><td>{e(t.dtype.lower())}"
            f"</td><td>{e(io_shape(t))}</td>"
            f"<td>{'—' if t.scale is None else e(f'{t.scale:.8g}')}</td>"
            f"<td>{'—' if t.zero_point is None else e(t.zero_point)}</td>"
            f"<td class='formula'>{contract}</td></tr>"
        )
    return (
        '<div class="card io"><h3>Inputs and outputs</h3><table><thead><tr><th></th><th>name</th>'
        "<th>dtype</th><th>shape</th><th>scale</th><th>zero point</th>"
        "<th>float x ↔ integer q</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def _memory(m: ModelReport) -> str:
    mem = m.memory
    if mem is None:
        return ""
    source = "read from the compiled model" if mem.source == "compiled" else "estimate"
    streamed = " on every inference" if mem.off_chip_bytes else ""
    share = mem.on_chip_bytes / mem.parameter_bytes if mem.parameter_bytes else 1.0
    return (
        '<div class="card memory"><h3>Parameter memory</h3>'
        f"<p>{e(human_bytes(mem.parameter_bytes))}: <b>{e(human_bytes(mem.on_chip_bytes))}</b> "
        f"cached on-chip, <b>{e(human_bytes(mem.off_chip_bytes))}</b> streamed from the host"
        f"{streamed}</p>"
        f'<div class="meter" title="{share:.0%} cached on-chip">'
        f'<span style="width:{share * 100:.1f}%"></span></div>'
        f'<p class="dim">{source}; {e(human_bytes(mem.cache_bytes))} on-chip cache</p></div>'
    )


def _graph(m: ModelReport, n: int) -> str:
    if not m.ops:
        return ""
    about = (
        ""
        if m.graph is not None
        else ('<p class="dim">The data flow was not recorded: ops are shown in file order.</p>')
    )
    return f"""<div class="card graph-card">
<div class="toolbar">
  <h3>Graph</h3>
  <input type="search" class="search" placeholder="op index (#12) or tensor name"
    aria-label="search the graph by op index or tensor name">
  <span class="search-result" aria-live="polite"></span>
  <label class="collapse"><input type="checkbox" class="collapse-runs">
    collapse Edge TPU runs</label>
  <button type="button" class="zoom-in" title="zoom in">+</button>
  <button type="button" class="zoom-out" title="zoom out">−</button>
  <button type="button" class="fit" title="show the whole graph">fit</button>
</div>
{about}<div class="legend"></div>
<div class="graph-box">
  <div class="graph" id="m{n}-graph" tabindex="0"><svg xmlns="http://www.w3.org/2000/svg"
    role="img" aria-label="the ops of {e(m.path)} in data-flow order"></svg></div>
  <aside class="details"><p class="dim">Hover over an op for its details; click to keep them
  here.</p></aside>
</div>
<div class="tip" role="tooltip" hidden></div>
</div>"""


def _findings(m: ModelReport, outcome: Outcome, n: int) -> str:
    if not m.findings:
        return '<div class="card findings"><h3>Findings</h3><p>None.</p></div>'
    verdict = outcome.verdicts[n]
    by_severity: dict[str, list[str]] = {s: [] for s in SEVERITY_ORDER}
    for i, f in sorted_findings(m):
        place = where(m, f)
        linked = f.op is not None and f.subgraph == 0
        place_html = _op_link(n, f.op, place) if linked else e(place)  # type: ignore[arg-type]
        mark = (
            '<span class="badge failed">fails</span> '
            if i in verdict.failing
            else '<span class="badge known">known</span> '
            if i in verdict.known
            else ""
        )
        fix = f'<p class="fix"><b>Fix:</b> {e(f.fix)}</p>' if f.fix else ""
        by_severity[f.severity].append(
            f'<li class="finding {e(f.severity)}">{mark}<code>{e(f.code)}</code> '
            f'<span class="where">{place_html}</span><p>{e(f.message)}</p>{fix}</li>'
        )
    parts = [
        f'<div class="card findings"><h3>Findings <small>{e(severity_counts(m.findings))}'
        "</small></h3>"
    ]
    for severity, items in by_severity.items():
        if items:
            parts.append(
                f'<details open class="{severity}"><summary>{SEVERITY_TITLE[severity]} '
                f"({len(items)})</summary><ul>{''.join(items)}</ul></details>"
            )
    parts.append("</div>")
    return "".join(parts)


def _wins(m: ModelReport, n: int) -> str:
    if not m.root_causes:
        return ""
    items = []
    for cause in m.root_causes[:SHOWN_WINS]:
        gain = recovery(cause.ops_recovered)
        if cause.macs_recovered and m.summary.macs_total:
            share = cause.macs_recovered / m.summary.macs_total
            gain += f" (+{human_count(cause.macs_recovered)} MACs, {share:.0%})"
        fix = f'<p class="fix"><b>Fix:</b> {e(cause.fix)}</p>' if cause.fix else ""
        items.append(
            f"<li>{_op_link(n, cause.op, op_location(cause.op, cause.opcode))}: "
            f"{e(cause.reason or cause.status)}<p class='gain'>{e(gain)}</p>{fix}</li>"
        )
    more = len(m.root_causes) - len(items)
    tail = f'<p class="dim">{plural(more, "more root cause")}.</p>' if more else ""
    return (
        '<div class="card wins"><h3>Biggest wins</h3><ol>'
        + "".join(items)
        + "</ol>"
        + tail
        + "</div>"
    )


def _section(m: ModelReport, outcome: Outcome, n: int) -> str:
    facts = [f"{m.kind} model", human_bytes(m.file_size), f"compiler {m.compiler_version}"]
    if m.subgraphs > 1:
        facts.append(plural(m.subgraphs, "subgraph"))
    data = f'<script type="application/json" class="cc-data">{json_island(graph_data(m))}</script>'
    return (
        f'<section class="model" id="m{n}" data-model="{n}">'
        f'<h2><span class="path">{e(m.path)}</span> <small>{e(" · ".join(facts))}</small></h2>'
        + _verdict(m, outcome, n)
        + '<div class="cards">'
        + _io(m)
        + _memory(m)
        + "</div>"
        + _graph(m, n)
        + '<div class="cards">'
        + _findings(m, outcome, n)
        + _wins(m, n)
        + "</div>"
        + data
        + "</section>"
    )


def render_html(report: Report, outcome: Outcome) -> str:
    headline, state = run_headline(report, outcome)
    state = "failed" if state == "failed" else "passed"
    title = report.models[0].path if len(report.models) == 1 else "coralcheck report"
    errors = ""
    if outcome.failures:
        errors = (
            '<ul class="errors">'
            + "".join(
                f"<li><code>{e(f.path)}</code>: {e(f.problem)}</li>" for f in outcome.failures
            )
            + "</ul>"
        )
    baseline = (
        f'<p class="dim">Compared with the baseline <code>{e(outcome.baseline)}</code>.</p>'
        if outcome.baseline
        else ""
    )
    sections = "".join(_section(m, outcome, n) for n, m in enumerate(report.models))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="generator" content="coralcheck {e(report.tool_version)}">
<title>{e(title)} — coralcheck</title>
<style>
{_asset("html.css")}</style>
</head>
<body>
<header class="page">
  <h1>coralcheck <small>{e(report.tool_version)}</small></h1>
  <p class="headline {state}"><span class="badge {state}">{state}</span> {e(headline)}</p>
  <button type="button" class="theme" title="light or dark">◐</button>
</header>
{errors}{baseline}{sections}
<script>
{_asset("html.js")}</script>
</body>
</html>
"""


def notebook_frame(report: Report, height: int = 900) -> str:
    """The page in an iframe of its own (`Report._repr_html_`): a notebook shows it as it is,
    without its styles and ids meeting the notebook's."""
    page = render_html(printable(report), printable(default_outcome(report)))  # as render() does
    return (
        f'<iframe srcdoc="{e(page)}" style="width:100%;height:{height}px;border:0" '
        'title="coralcheck report"></iframe>'
    )
