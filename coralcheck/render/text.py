"""The terminal report (rich): colour on a TTY, plain text when piped, NO_COLOR respected."""

from __future__ import annotations

import io
import os
import sys

from coralcheck.report import ModelReport, Report


def _console(file: io.StringIO):  # type: ignore[no-untyped-def]
    from rich.console import Console

    tty = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return Console(file=file, width=80, force_terminal=tty, no_color=not tty, highlight=False)


def _model(console, m: ModelReport) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    console.print(f"[bold]{m.path}[/]  {m.file_size:,} bytes  {m.kind} model")
    io_table = Table(title=None, box=None, pad_edge=False)
    for col in ("", "name", "dtype", "shape", "scale", "zero point"):
        io_table.add_column(col)
    for t in m.io:
        scale = f"{t.scale:.6g}" if t.scale is not None else "-"
        zp = str(t.zero_point) if t.zero_point is not None else "-"
        shape = "x".join(str(d) for d in (t.shape_signature or t.shape))
        io_table.add_row(t.role, t.name, t.dtype, shape, scale, zp)
    console.print(io_table)
    hist = ", ".join(f"{name}×{n}" for name, n in m.op_histogram.items())
    console.print(f"{m.summary.ops_total} ops: {hist}")


def render_text(report: Report, *, verbose: bool = False) -> str:
    out = io.StringIO()
    console = _console(out)
    for m in report.models:
        _model(console, m)
    return out.getvalue()
