"""render: a finished Report → one output format. Renderers only format."""

from __future__ import annotations

from coralcheck.report import Report

FORMATS = ("text", "json")


def render(report: Report, fmt: str, *, verbose: bool = False) -> str:
    if fmt == "json":
        from coralcheck.render.json import render_json

        return render_json(report)
    from coralcheck.render.text import render_text

    return render_text(report, verbose=verbose)
