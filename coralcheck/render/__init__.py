"""render: a finished Report (and what the settings decided about it) → one output format.

Renderers only format: placement, findings and numbers come from the analysis (`Report`), pass or
fail from the settings (`Outcome`, see coralcheck.config and coralcheck.baseline).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import NamedTuple

from coralcheck.config import Config, Verdict, judge
from coralcheck.report import Report

FORMATS = ("text", "json", "sarif", "github", "junit", "markdown")


class ModelFailure(NamedTuple):
    """A model that could not be checked: its one-line error."""

    path: str
    problem: str
    internal: bool = False  # a bug in coralcheck rather than bad input


@dataclass
class Outcome:
    """What a run decided: one verdict per model of the report (same order), and the models
    that could not be checked at all."""

    verdicts: list[Verdict]
    failures: list[ModelFailure] = field(default_factory=list)
    baseline: str | None = None  # the --baseline file, when findings were compared with one

    @property
    def exit_code(self) -> int:
        """3 for a bug, 2 for bad input, 1 for a failed model, else 0 (see the README)."""
        if any(f.internal for f in self.failures):
            return 3
        if self.failures:
            return 2
        return 1 if any(v.failed for v in self.verdicts) else 0


def terminal(to_file: bool) -> tuple[bool, int]:
    """(colour, width) for output to stdout, or to a file when `to_file`: colour on a terminal
    unless NO_COLOR is set (https://no-color.org) or FORCE_COLOR forces it; the terminal's width,
    else 80 columns."""
    tty = not to_file and sys.stdout.isatty()
    color = not to_file and not os.environ.get("NO_COLOR")
    color = color and (tty or bool(os.environ.get("FORCE_COLOR")))
    width = max(60, shutil.get_terminal_size().columns) if tty else 80
    return color, width


def default_outcome(report: Report) -> Outcome:
    """The default settings' verdicts (fail on errors, no gates), for callers with no config."""
    return Outcome([judge(m, Config()) for m in report.models])


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
    # Read by people, or XML (which forbids most control characters): no raw control characters.
    if fmt in ("text", "markdown", "github", "junit"):
        from coralcheck.render.phrases import printable

        report, outcome = printable(report), printable(outcome)
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
    if fmt == "text":
        from coralcheck.render.text import render_text

        return render_text(report, outcome, verbose=verbose, color=color, width=width)
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
