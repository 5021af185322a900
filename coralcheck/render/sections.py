"""The sections of a model's text report, one function each: its title and its body, laid out
at the width it is given (coralcheck.render.text puts them together). None for a section the
report has nothing for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from coralcheck.outcome import Verdict
from coralcheck.render.layout import Column, indent, table
from coralcheck.render.phrases import (
    SEVERITY_ORDER,
    SEVERITY_TITLE,
    fact_rows,
    fact_tables,
    fact_value,
    human_ms,
    humanize_key,
    io_formulas,
    io_shape,
    op_runs,
    op_shapes_text,
    recovery,
    segment_rows,
    sorted_findings,
    table_columns,
    where,
)
from coralcheck.render.wrap import Line, Styled, cell_width, styled, wrap
from coralcheck.report import LatencySegment, ModelReport
from coralcheck.wording import human_bytes, human_count, op_location, plural

INDENT = 2  # the body of a section, under its title
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
PLACEMENT_STYLE = {"tpu": "green", "cpu": "bold red"}
SHOWN_WINS = 3
TWO_COLUMNS = (Column(), Column())  # a label and its text, in a grid

# A section of a model's report: its title, and its body laid out at a given width.
Section = tuple[str, Callable[[int], list[Line]]]


def io(m: ModelReport) -> Section | None:
    if not m.io:
        return None

    def body(width: int) -> list[Line]:
        rows = []
        formulas = []
        for t in m.io:
            scale = f"{t.scale:.8g}" if t.scale is not None else "—"
            zp = str(t.zero_point) if t.zero_point is not None else "—"
            cells = (t.role, t.name, t.dtype.lower(), io_shape(t), scale, zp)
            rows.append([styled(cell) for cell in cells])
            formula = io_formulas(t)
            if formula:
                formulas.append([styled(f"{t.role} {t.name}", "dim"), styled("\n".join(formula))])
        headers = ("", "name", "dtype", "shape", "scale", "zero point")
        lines = table([Column(h) for h in headers], rows, width)
        if formulas:
            lines += [[], *wrap(styled("float x ↔ integer q:", "dim"), width)]
            lines += table(TWO_COLUMNS, formulas, width, grid=True)
        return lines

    return "Inputs and outputs", body


def ops(m: ModelReport, verbose: bool) -> Section | None:
    if not m.ops:
        if not m.op_histogram:
            return None
        hist = ", ".join(k if n == 1 else f"{k}×{n}" for k, n in m.op_histogram.items())
        return "Ops", lambda width: wrap(styled(hist), width)
    rows = []
    first_with: dict[str, int] = {}  # reason -> the op it was first shown for
    shapes = m.op_shapes if verbose else None
    for run in op_runs(m.ops, collapse=not verbose):
        op = run.first
        status: Styled = [(op.status, "")]
        if len(run.ops) > 1:
            status.append((f" ({plural(len(run.ops), 'op')})", "dim"))
        if op.reason:  # why an op is on the CPU; a caveat on one that maps
            seen = first_with.setdefault(op.reason, op.index)
            reason = op.reason if verbose or seen == op.index else f"same reason as op {seen}"
            status.append(("\n" + reason, "dim"))
        placement = styled(op.placement.upper(), PLACEMENT_STYLE.get(op.placement, ""))
        opcodes: Styled = styled(op.opcode if len(run.ops) == 1 else run.opcodes)
        if shapes is not None and len(run.ops) == 1 and 0 <= op.index < len(shapes):
            opcodes.append(("\n" + op_shapes_text(shapes[op.index]), "dim"))
        rows.append([styled(run.span), opcodes, placement, status])
    title = "Ops" if verbose else "Ops (runs on the Edge TPU collapsed; -v shows each)"

    def lay_out(width: int) -> list[Line]:
        # The op column as wide as its names, up to 2/5 of the width (a long list of a
        # collapsed run wraps); the status and its reason take all the rest.
        op_column = Column("op", max_width=max(12, width * 2 // 5 - 2))
        columns = (Column("#"), op_column, Column("on"), Column("status", ratio=1))
        return table(columns, rows, width, expand=True)

    return title, lay_out


def segments(m: ModelReport) -> Section | None:
    """The predicted Edge TPU segments, when there are several (edgetpu_compiler -a)."""
    if len(m.segments) < 2:
        return None
    rows = [[styled(n), styled(ops), styled(then)] for n, ops, then in segment_rows(m)]
    columns = (Column("#"), Column("ops"), Column("then on the CPU", ratio=2))
    title = f"Edge TPU segments ({len(m.segments)}; each CPU stretch between them is a round trip)"
    return title, lambda width: table(columns, rows, width, expand=True)


def findings(m: ModelReport, verdict: Verdict) -> Section | None:
    if not m.findings:
        return None
    groups: list[tuple[str, list[list[Styled]]]] = []
    for severity in SEVERITY_ORDER:
        items = [(i, f) for i, f in sorted_findings(m) if f.severity == severity]
        if not items:
            continue
        rows = []
        for i, f in items:
            # Bold throughout, as the rich Text it was: the location, then the message.
            body: Styled = [(where(m, f), "bold"), (": " + f.message, "bold")]
            if i in verdict.known:
                body.append((" [in baseline]", "bold dim"))
            if f.fix:
                body.append(("\nfix: " + f.fix, "bold dim"))
            rows.append([styled(f.code, SEVERITY_STYLE[severity]), body])
        groups.append((severity, rows))

    def lay_out(width: int) -> list[Line]:
        lines: list[Line] = []
        for severity, rows in groups:
            title = f"{SEVERITY_TITLE[severity]} ({len(rows)})"
            lines += wrap(styled(title, SEVERITY_STYLE[severity]), width)
            lines += table(TWO_COLUMNS, rows, width, grid=True)
        return lines

    return "Findings", lay_out


def wins(m: ModelReport, verbose: bool) -> Section | None:
    if not m.root_causes:
        return None
    rows = []
    causes = m.root_causes if verbose else m.root_causes[:SHOWN_WINS]
    for rank, cause in enumerate(causes, 1):
        body: Styled = [(op_location(cause.op, cause.opcode), "bold")]
        body.append((f": {cause.reason or cause.status}", "bold"))
        gain = "\n" + recovery(cause.ops_recovered)
        if cause.macs_recovered and m.summary.macs_total:
            share = cause.macs_recovered / m.summary.macs_total
            gain += f" (+{human_count(cause.macs_recovered)} MACs, {share:.0%})"
        body.append((gain, "bold green"))
        if cause.fix:
            body.append(("\nfix: " + cause.fix, "bold dim"))
        rows.append([styled(f"{rank}."), body])
    more = len(m.root_causes) - len(causes)
    if more:
        rows.append([[], styled(f"{plural(more, 'more root cause')}: -v shows them", "dim")])
    return "Biggest wins", lambda width: table(TWO_COLUMNS, rows, width, grid=True)


def memory(m: ModelReport) -> Section | None:
    mem = m.memory
    if mem is None:
        return None
    text: Styled = [
        (
            f"{human_bytes(mem.parameter_bytes)}: {human_bytes(mem.on_chip_bytes)} cached "
            f"on-chip, {human_bytes(mem.off_chip_bytes)} streamed from the host",
            "",
        )
    ]
    if mem.off_chip_bytes:
        text.append((" on every inference", "yellow"))
    source = "read from the compiled model" if mem.source == "compiled" else "estimate"
    text.append((f" ({source}; {human_bytes(mem.cache_bytes)} cache)", "dim"))
    return "Parameter memory", lambda width: wrap(text, width)


# Ops listed by cost in the -v latency breakdown; the rest are summed in one row.
SHOWN_COSTLY_OPS = 15


def _segment_row(seg: LatencySegment) -> dict[str, str]:
    row = {
        "segment": str(seg.index),
        "ops": "?" if seg.ops is None else str(seg.ops),
        "compute": f"{human_ms(seg.compute_ms)} ms",
        "streaming": f"{human_ms(seg.streaming_ms)} ms",
        "I/O": f"{human_ms(seg.io_ms)} ms",
        "in": human_bytes(seg.input_bytes),
        "out": human_bytes(seg.output_bytes),
        "streamed": human_bytes(seg.streamed_bytes),
    }
    if seg.compiler_cycles:
        row["compiler cycles"] = f"{seg.compiler_cycles:,}"
    return row


def latency(m: ModelReport, verbose: bool) -> Section | None:
    latency, detail = m.latency, m.latency_detail
    if latency is None or detail is None:
        return None
    clock = f"Edge TPU at {detail.clock_mhz:g} MHz, {latency.clock} clock"
    title = f"Latency on {latency.device} ({detail.device_description}; {clock})"
    invocations = plural(len(detail.segments), "invocation")
    rows = [
        (
            "estimate",
            f"~{human_ms(latency.estimate_ms)} ms per inference "
            f"({human_ms(latency.low_ms)}–{human_ms(latency.high_ms)} ms)",
        ),
        ("compute", f"{human_ms(latency.tpu_ms)} ms on the Edge TPU"),
        ("streaming", f"{human_ms(latency.streaming_ms)} ms (parameters streamed every inference)"),
        ("I/O", f"{human_ms(latency.io_ms)} ms ({invocations}, inputs and outputs over the link)"),
    ]
    if latency.cpu_ms or detail.cpu_high_ms:
        rows.append(
            (
                "CPU ops",
                f"{human_ms(latency.cpu_ms)} ms ({human_ms(detail.cpu_low_ms)}–"
                f"{human_ms(detail.cpu_high_ms)} ms by host)",
            )
        )
    if detail.compiler_cycles is not None and detail.compiler_ms is not None:
        rows.append(
            (
                "compiler",
                f"its own estimate: {detail.compiler_cycles:,} cycles = "
                f"{human_ms(detail.compiler_ms)} ms at {detail.clock_mhz:g} MHz (compute only)",
            )
        )
    rows += [("note", note) for note in detail.notes]
    grid = [[styled(label, "dim"), styled(text)] for label, text in rows]
    segments = [_segment_row(seg) for seg in detail.segments] if verbose else []
    costly: list[list[Styled]] = []
    if verbose and m.ops and len(detail.op_ms) == len(m.ops):
        priced = sorted(
            ((ms, op) for op, ms in zip(m.ops, detail.op_ms, strict=True) if ms),
            key=lambda x: -x[0],
        )
        for ms, op in priced[:SHOWN_COSTLY_OPS]:
            where = "TPU" if op.placement == "tpu" else "CPU"
            costly.append(
                [styled(str(op.index)), styled(op.opcode), styled(where), styled(f"{ms:.3g} ms")]
            )
        rest = priced[SHOWN_COSTLY_OPS:]
        if rest:
            total = sum(ms for ms, _ in rest)
            costly.append(
                [
                    styled(""),
                    styled(f"{plural(len(rest), 'more op')}"),
                    styled(""),
                    styled(f"{total:.3g} ms"),
                ]
            )

    def body(width: int) -> list[Line]:
        lines = table(TWO_COLUMNS, grid, width, grid=True)
        if segments:
            lines += wrap(styled("segments", "dim"), width)
            lines += indent(_records(segments, width - INDENT), INDENT)
        if costly:
            lines += wrap(styled("costliest ops", "dim"), width)
            columns = (Column("#"), Column("op"), Column("on"), Column("ms", right=True))
            lines += indent(table(columns, costly, width - INDENT), INDENT)
        return lines

    return title, body


def _records(rows: list[dict], width: int) -> list[Line]:
    """Dicts as a table when it fits the width, else one key/value block per dict."""
    columns = table_columns(rows)
    cells = [[fact_value(c, row.get(c)) for c in columns] for row in rows]
    headers = [humanize_key(c) for c in columns]
    natural = sum(
        max(cell_width(header), *(cell_width(r[k]) for r in cells))
        for k, header in enumerate(headers)
    )
    if natural + 2 * len(columns) <= width:
        body = [[styled(value) for value in r] for r in cells]
        return table([Column(h) for h in headers], body, width)
    lines: list[Line] = []
    for n, r in enumerate(cells, 1):
        pairs = [[styled(h, "dim"), styled(v)] for h, v in zip(headers, r, strict=True)]
        lines += wrap(styled(f"#{n}", "bold"), width)
        lines += indent(table(TWO_COLUMNS, pairs, width - INDENT, grid=True), INDENT)
    return lines


def facts(title: str, facts: Mapping[str, Any] | None, verbose: bool) -> Section | None:
    """A facts dict (compiled model, compiler run): scalars as label/value rows; lists of dicts
    (segments, executables...) as tables with -v, else counted."""
    if not facts:
        return None
    rows = [[styled(label, "dim"), styled(value)] for label, value in fact_rows(facts)]
    tables = fact_tables(facts)
    if not verbose:
        for name, entries in tables:
            count = plural(len(entries), "entry", "entries")
            rows.append([styled(name, "dim"), styled(f"{count} (-v)")])

    def body(width: int) -> list[Line]:
        lines = table(TWO_COLUMNS, rows, width, grid=True) if rows else []
        if verbose:
            for name, entries in tables:
                lines += wrap(styled(name, "dim"), width)
                lines += indent(_records(entries, width - INDENT), INDENT)
        return lines

    return title, body


def diff(m: ModelReport) -> Section | None:
    if m.diff is None:
        return None
    if not m.diff:
        agreed = styled("the prediction agrees with the compiler op by op")
        return "Prediction vs compiler", lambda width: wrap(agreed, width)
    title = f"Prediction vs compiler ({plural(len(m.diff), 'disagreement')})"
    diff = m.diff
    return title, lambda width: _records(diff, width)


def gates(verdict: Verdict) -> Section | None:
    if not verdict.gates:
        return None
    rows = []
    for gate in verdict.gates:
        mark = styled("passed", "green") if gate.passed else styled("FAILED", "bold red")
        rows.append([mark, styled(gate.name), styled(gate.message)])
    columns = (Column(), Column(), Column())
    return "Gates", lambda width: table(columns, rows, width, grid=True)
