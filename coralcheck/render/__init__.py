"""render: a finished Report (and what the settings decided about it) → one output format.

Renderers only format: placement, findings and numbers come from the analysis (`Report`), pass or
fail from the run's `Outcome` (coralcheck.outcome).
"""

from __future__ import annotations

import os
import sys

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
        report, outcome = printable(report), printable(outcome)
        if fmt not in ("github", "html"):  # github writes commands; a page is not a CI log
            return no_workflow_commands(_render(report, fmt, outcome, verbose, color, width))
    return _render(report, fmt, outcome, verbose, color, width)


def _render(
    report: Report, fmt: str, outcome: Outcome, verbose: bool, color: bool, width: int
) -> str:
    if fmt == "json":
        from coralcheck.render.json import render_json

        return render_json(report, outcome)
    if fmt == "sarif":
        from coralcheck.render.sarif import render_sarif

        return render_sarif(report, outcome)
    if fmt == "github":
        from coralcheck.render.github import render_github

        return render_github(report, outcome)
    if fmt == "junit":
        from coralcheck.render.junit import render_junit

        return render_junit(report, outcome)
    if fmt == "markdown":
        from coralcheck.render.markdown import render_markdown

        return render_markdown(report, outcome)
    if fmt == "html":
        from coralcheck.render.html import render_html

        return render_html(report, outcome)
    if fmt == "model-explorer":
        from coralcheck.render.modelexplorer import render_model_explorer

        return render_model_explorer(report)
    if fmt == "text":
        from coralcheck.render.text import render_text

        return render_text(report, outcome, verbose=verbose, color=color, width=width)
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
