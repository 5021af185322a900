"""render: a finished Report (and what the settings decided about it) → one output format.

Renderers only format: placement, findings and numbers come from the analysis (`Report`), pass or
fail from the run's `Outcome` (coralcheck.outcome).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from coralcheck.outcome import Outcome, default_outcome
from coralcheck.render.escape import no_workflow_commands, printable
from coralcheck.report import Report

FORMATS = ("text", "json", "sarif", "github", "junit", "markdown", "html", "model-explorer")
# Formats that draw the data flow: the analysis records it for them (`Options.graph`).
GRAPH_FORMATS = frozenset({"html", "model-explorer"})


def terminal(to_file: bool) -> tuple[bool, int]:
    """(colour, width) for output to stdout, or to a file when `to_file`: colour on a terminal
    unless NO_COLOR is set (https://no-color.org) or FORCE_COLOR forces it; the terminal's width,
    else 80 columns."""
    tty = not to_file and sys.stdout.isatty()
    color = not to_file and not os.environ.get("NO_COLOR")
    color = color and (tty or bool(os.environ.get("FORCE_COLOR")))
    if not tty:
        return color, 80
    import shutil  # only on a terminal

    return color, max(60, shutil.get_terminal_size().columns)


def render(
    report: Report,
    fmt: str,
    *,
    outcome: Outcome | None = None,
    verbose: bool = False,
    color: bool = False,
    width: int = 80,
) -> str:
    """Format `report` as `fmt` (one of FORMATS). `verbose`, `color` and `width` are for text."""
    outcome = outcome or default_outcome(report)
    # Read by people, or XML (which forbids most control characters): no raw control characters,
    # and (but in the workflow commands of `github`) no line a CI log reads as a command.
    if fmt in ("text", "markdown", "github", "junit", "html"):
        if fmt not in GRAPH_FORMATS:  # (`check()` records it: as large as the tensor table)
            report = _without_graphs(report)
        report, outcome = printable(report), printable(outcome)
        if fmt not in ("github", "html"):  # github writes commands; a page is not a CI log
            return no_workflow_commands(_render(report, fmt, outcome, verbose, color, width))
    return _render(report, fmt, outcome, verbose, color, width)


def _without_graphs(report: Report) -> Report:
    """`report` without the data-flow graphs only the graph formats draw, so that the escaping
    walk does not visit every tensor of a model for a report that shows none."""
    if all(m.graph is None for m in report.models):
        return report
    models = [m if m.graph is None else m._replace(graph=None) for m in report.models]
    return report._replace(models=models)


# Each format's module and function, imported on first use (rich, xml and the page's assets
# only for the formats that need them).
_RENDERERS = {
    "json": ("coralcheck.render.json", "render_json"),
    "sarif": ("coralcheck.render.sarif", "render_sarif"),
    "github": ("coralcheck.render.github", "render_github"),
    "junit": ("coralcheck.render.junit", "render_junit"),
    "markdown": ("coralcheck.render.markdown", "render_markdown"),
    "html": ("coralcheck.render.html", "render_html"),
    "model-explorer": ("coralcheck.render.modelexplorer", "render_model_explorer"),
    "text": ("coralcheck.render.text", "render_text"),
}


def renderer(fmt: str) -> Any:
    """The function that formats a report as `fmt`, its module imported. The CLI calls it ahead,
    while a worker process checks a large model, so the import overlaps the check."""
    if fmt not in _RENDERERS:
        raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    module, function = _RENDERERS[fmt]
    return getattr(importlib.import_module(module), function)


def _render(
    report: Report, fmt: str, outcome: Outcome, verbose: bool, color: bool, width: int
) -> str:
    render_as = renderer(fmt)
    if fmt == "model-explorer":
        return render_as(report)  # type: ignore[no-any-return]
    if fmt == "text":
        return render_as(report, outcome, verbose=verbose, color=color, width=width)  # type: ignore[no-any-return]
    return render_as(report, outcome)  # type: ignore[no-any-return]
