"""Wording shared by every output format: the verdict line, locations, sizes, the I/O formula.

Only presentation lives here (grouping, ordering, wording); every number comes from the report.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

from coralcheck.report import Finding, IOTensor, Latency, ModelReport, OpPlacement, Report
from coralcheck.wording import MOST_ITEMS, dims_text, human_bytes, human_count, op_location, plural

T = TypeVar("T")
SEVERITY_ORDER = ("error", "warning", "info")
SEVERITY_TITLE = {"error": "Errors", "warning": "Warnings", "info": "Info"}


def where(m: ModelReport, f: Finding) -> str:
    """Where a finding is, in words: `op 3 CONV_2D, tensor 'x'`, or `model` when nowhere."""
    parts = []
    if f.subgraph:
        parts.append(f"subgraph {f.subgraph}")
    if f.op is not None:
        opcode = f.opcode or next((o.opcode for o in m.ops if o.index == f.op), "")
        parts.append(op_location(f.op, opcode).rstrip() if opcode else f"op {f.op}")
    if f.tensor:
        parts.append(f"tensor '{f.tensor}'")
    return ", ".join(parts) or "model"


def sentence(text: str) -> str:
    """`text` ending as a sentence does (a full stop added unless it has one), so that what
    follows on the same line starts a sentence of its own."""
    text = text.rstrip()
    return text if not text or text[-1] in ".!?" else text + "."


def with_fix(message: str, fix: str) -> str:
    """A finding on one line: `<message>. Fix: <fix>` (just the message when there is no fix)."""
    return f"{sentence(message)} Fix: {fix}" if fix else message


def sorted_findings(m: ModelReport) -> list[tuple[int, Finding]]:
    """Findings (with their index in the report) by severity, then op order."""
    return sorted(
        enumerate(m.findings),
        key=lambda item: (
            SEVERITY_ORDER.index(item[1].severity),
            item[1].subgraph,
            -1 if item[1].op is None else item[1].op,
            item[1].code,
        ),
    )


def severity_counts(findings: Iterable[Finding]) -> str:
    """`2 errors, 1 warning` (empty when there are none)."""
    counts = Counter(f.severity for f in findings)
    names = {"error": ("error", "errors"), "warning": ("warning", "warnings"), "info": ("info",)}
    return ", ".join(
        plural(counts[s], *names[s]) if s != "info" else f"{counts[s]} info"
        for s in SEVERITY_ORDER
        if counts[s]
    )


class OpRun(NamedTuple):
    """Consecutive ops with the same placement and status, shown as one row."""

    ops: tuple[OpPlacement, ...]

    @property
    def first(self) -> OpPlacement:
        return self.ops[0]

    @property
    def span(self) -> str:
        a, b = self.ops[0].index, self.ops[-1].index
        return str(a) if a == b else f"{a}–{b}"

    @property
    def opcodes(self) -> str:
        counts = Counter(op.opcode for op in self.ops)
        return ", ".join(name if n == 1 else f"{name}×{n}" for name, n in counts.items())


def op_runs(ops: Iterable[OpPlacement], *, collapse: bool = True) -> list[OpRun]:
    """Ops grouped for display: runs of consecutive Edge TPU ops with one status and no caveat
    become one row; every CPU op, and every op with a caveat, keeps its own row (so its reason
    is shown)."""
    runs: list[list[OpPlacement]] = []
    for op in ops:
        last = runs[-1][-1] if runs else None
        if (
            collapse
            and last is not None
            and op.placement == "tpu" == last.placement
            and op.status == last.status
            and op.reason == last.reason
            and op.index == last.index + 1
        ):
            runs[-1].append(op)
        else:
            runs.append([op])
    return [OpRun(tuple(r)) for r in runs]


def index_ranges(indices: Iterable[int]) -> str:
    """`0–3, 9, 12–14` for ascending op indices (the first MOST_ITEMS ranges, then `, …`)."""
    ranges: list[list[int]] = []
    for i in indices:
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    shown = [str(a) if a == b else f"{a}–{b}" for a, b in ranges[:MOST_ITEMS]]
    return ", ".join(shown) + (", …" if len(ranges) > MOST_ITEMS else "")


def segment_rows(m: ModelReport) -> list[tuple[str, str, str]]:
    """Per predicted Edge TPU segment: its number, its ops (`ops 0–3 (4 ops, 1.2 M MACs)`) and
    what separates it from the next (`op 4 DEQUANTIZE, op 5 CAST, … (5 ops)` on the CPU, or
    `end of the model`)."""
    rows = []
    for seg in m.segments:
        macs = f", {human_count(seg.macs)} MACs" if seg.macs else ""
        ops = f"ops {index_ranges(seg.ops)} ({plural(len(seg.ops), 'op')}{macs})"
        after = [op_location(i, m.ops[i].opcode) for i in seg.cpu_after[:3] if i < len(m.ops)]
        if not seg.cpu_after:
            then = "end of the Edge TPU part" if seg.number == len(m.segments) else "—"
        else:
            more = f", … ({plural(len(seg.cpu_after), 'op')})" if len(seg.cpu_after) > 3 else ""
            then = ", ".join(after) + more
        rows.append((str(seg.number), ops, then))
    return rows


def cpu_stretches(ops: Iterable[OpPlacement]) -> list[list[OpPlacement]]:
    """Consecutive CPU ops, stretch by stretch."""
    out: list[list[OpPlacement]] = []
    for op in ops:
        if op.placement != "cpu":
            continue
        if out and out[-1][-1].index == op.index - 1:
            out[-1].append(op)
        else:
            out.append([op])
    return out


# The parts of a latency estimate (`Latency.dominant` values) as the reports name them.
LATENCY_PARTS = {"compute": "compute", "streaming": "streaming", "io": "I/O", "cpu": "CPU ops"}


def human_ms(ms: float) -> str:
    """Milliseconds with the precision an estimate has: 2-3 significant digits."""
    if ms == 0:
        return "0"
    if ms < 0.01:
        return "<0.01"
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.0f}"
    if ms >= 1:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def latency_shares(latency: Latency) -> list[tuple[str, float]]:
    """(part label, share of the estimate) for every part, largest first."""
    total = latency.estimate_ms
    parts = {
        "compute": latency.tpu_ms,
        "streaming": latency.streaming_ms,
        "io": latency.io_ms,
        "cpu": latency.cpu_ms,
    }
    shares = [(LATENCY_PARTS[k], v / total if total else 0.0) for k, v in parts.items()]
    return sorted(shares, key=lambda s: -s[1])


def latency_line(m: ModelReport) -> str | None:
    """`~12 ms/inference on usb3 (8–16 ms; compute 70%, CPU ops 20%)`: the estimate, its range
    and the parts that make up at least a tenth of it; None when the report has no estimate."""
    latency = m.latency
    if latency is None:
        return None
    shown = [f"{label} {share:.0%}" for label, share in latency_shares(latency) if share >= 0.1]
    clock = "" if latency.clock == "max" else f", {latency.clock} clock"
    return (
        f"~{human_ms(latency.estimate_ms)} ms/inference on {latency.device}{clock} "
        f"({human_ms(latency.low_ms)}–{human_ms(latency.high_ms)} ms; {', '.join(shown[:3])})"
    )


def verdict_line(m: ModelReport) -> str:
    """One line on placement: `38 of 41 ops on the Edge TPU, 1 segment — 3 on CPU from op 27
    RESIZE_BILINEAR`."""
    s = m.summary
    if s.ops_total == 0:
        return "No ops"
    if not m.ops and s.ops_tpu == 0 and s.ops_cpu == 0:
        return f"{plural(s.ops_total, 'op')}; placement not predicted"
    segments = plural(s.tpu_segments, "segment")
    if s.ops_cpu == 0:
        every = "The only op" if s.ops_total == 1 else f"All {s.ops_total} ops"
        return f"{every} on the Edge TPU, {segments}"
    macs = f" ({s.tpu_mac_share:.0%} of MACs)" if s.macs_total else ""
    head = f"{s.ops_tpu} of {plural(s.ops_total, 'op')} on the Edge TPU{macs}, {segments}"
    stretches = cpu_stretches(m.ops)
    if not stretches:
        return f"{head} — {s.ops_cpu} on CPU"
    if len(stretches) == 1:
        run = stretches[0]
        first = op_location(run[0].index, run[0].opcode)
        if len(run) == 1:
            return f"{head} — {s.ops_cpu} on CPU: {first}"
        return f"{head} — {s.ops_cpu} on CPU from {first}"
    parts = [
        op_location(r[0].index, r[0].opcode)
        if len(r) == 1
        else f"{len(r)} from {op_location(r[0].index, r[0].opcode)}"
        for r in stretches[:3]
    ]
    more = ", …" if len(stretches) > 3 else ""
    return f"{head} — {s.ops_cpu} on CPU: {', '.join(parts)}{more}"


def run_headline(report: Report, outcome: Any) -> tuple[str, str]:
    """The run in a few words, and its state: `1 of 3 models failed, 1 could not be checked`
    ("failed"), `3 models passed` ("passed"), or, when findings fail nothing only because of
    --fail-on never, what was found and why nothing fails ("unfailed"). `outcome`: the run's
    `coralcheck.outcome.Outcome`."""
    failed = sum(v.failed for v in outcome.verdicts)
    total = len(report.models) + len(outcome.failures)
    if failed or outcome.failures:
        parts = [f"{failed} of {plural(total, 'model')} failed"]
        if outcome.failures:
            parts.append(f"{len(outcome.failures)} could not be checked")
        return ", ".join(parts), "failed"
    findings = [f for m in report.models for f in m.findings]
    never = {v.fail_on for v in outcome.verdicts} == {"never"}
    if never and any(f.severity != "info" for f in findings):
        return (
            f"{plural(total, 'model')} checked, {severity_counts(findings)} found; nothing "
            "fails because of --fail-on never",
            "unfailed",
        )
    return f"{plural(total, 'model')} passed", "passed"


def op_shapes_text(shapes: list[list[list[int]]]) -> str:
    """An op's tensors, `1x28x28x8, 1x28x28x8 → 1x28x28x8` (non-constant inputs → outputs)."""
    inputs, outputs = shapes
    return f"{', '.join(map(dims_text, inputs)) or '—'} → {', '.join(map(dims_text, outputs))}"


def _signed(n: int) -> str:
    return f"− {-n}" if n < 0 else f"+ {n}"


def io_shape(t: IOTensor) -> str:
    """An input's or output's shape in a table, `1x224x224x3`; a dimension known only at run time
    (-1 in the shape signature) shows as `?`."""
    return dims_text(t.shape_signature or t.shape)


def io_formulas(t: IOTensor) -> tuple[str, str] | None:
    """The float↔integer conversion with this tensor's numbers: (quantize, dequantize)."""
    if t.scale is None or t.zero_point is None:
        return None
    scale = f"{t.scale:.8g}"
    zp = t.zero_point
    q = f"q = round(x / {scale}) {_signed(zp)}"
    x = f"x = {scale} · q" if zp == 0 else f"x = {scale} · (q {_signed(-zp)})"
    return q, x


# --- facts from compiled models and compiler runs: shown generically -----------------------------


def humanize_key(key: str) -> str:
    return key.replace("_", " ").strip()


def fact_value(key: str, value: Any) -> str:
    """A scalar, list or counter as one readable string; byte counts also in KiB/MiB."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and "bytes" in key and value >= 1024:
        return f"{human_bytes(value)} ({value:,} B)"
    if isinstance(value, int) and "bytes" in key:
        return human_bytes(value)
    if isinstance(value, float):
        return f"{value:.8g}"
    if isinstance(value, Mapping) and all(isinstance(v, int | float | str) for v in value.values()):
        if all(isinstance(v, int) for v in value.values()):
            return ", ".join(k if v == 1 else f"{k}×{v}" for k, v in value.items()) or "none"
        return ", ".join(
            f"{humanize_key(str(k))} {fact_value(str(k), v)}" for k, v in value.items()
        )
    if isinstance(value, list | tuple) and all(not isinstance(v, Mapping | list) for v in value):
        more = f", … ({len(value):,} in all)" if len(value) > MOST_ITEMS else ""
        return ", ".join(str(v) for v in value[:MOST_ITEMS]) + more or "none"
    return str(value)


def fact_rows(facts: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(label, value) rows for a facts dict; nested dicts are flattened with their key as a
    prefix, lists of dicts are left to `fact_tables`."""
    rows = []
    for key, value in facts.items():
        label = f"{prefix}{humanize_key(str(key))}"
        if isinstance(value, Mapping) and any(
            isinstance(v, Mapping | list) for v in value.values()
        ):
            rows.extend(fact_rows(value, label + " · "))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            continue  # a table of its own (fact_tables)
        else:
            rows.append((label, fact_value(str(key), value)))
    return rows


def fact_tables(facts: Mapping[str, Any], prefix: str = "") -> list[tuple[str, list[dict]]]:
    """(title, rows) for every list of dicts in a facts dict (segments, per-op diffs, ...)."""
    tables = []
    for key, value in facts.items():
        label = f"{prefix}{humanize_key(str(key))}"
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            tables.append((label, [dict(v) for v in value]))
        elif isinstance(value, Mapping):
            tables.extend(fact_tables(value, label + " · "))
    return tables


def table_columns(rows: list[dict]) -> list[str]:
    """The union of the rows' keys, in first-seen order."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def recovery(ops_recovered: int) -> str:
    """What fixing one root cause alone brings back (the op itself included)."""
    if ops_recovered <= 0:
        return "fixing it alone brings no op back: other root causes block the same ops"
    return f"fixing it alone brings {plural(ops_recovered, 'op')} to the Edge TPU"
