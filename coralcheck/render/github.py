"""`--format github`: GitHub Actions workflow commands, shown as annotations on the run and on
the pull request's files.

`::error file=<path>,title=<CODE>::<where>: <message>. Fix: <fix>` per finding (error, warning or
notice by severity), one `::error` per failed gate and per model that could not be checked.
Values are escaped as the runner expects: `%`, CR and LF in the message; also `:` and `,` in
properties.
"""

from __future__ import annotations

from coralcheck.outcome import Outcome
from coralcheck.render.phrases import where, with_fix
from coralcheck.report import Report

COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str) -> str:
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{name} {props}::{escape_data(message)}"


def render_github(report: Report, outcome: Outcome) -> str:
    lines = []
    for m, verdict in zip(report.models, outcome.verdicts, strict=True):
        for i, f in enumerate(m.findings):
            message = with_fix(f"{where(m, f)}: {f.message}", f.fix)
            if i in verdict.known:
                message += " (in the baseline)"
            lines.append(command(COMMAND[f.severity], message, file=m.path, title=f.code))
        for gate in verdict.failed_gates:
            lines.append(
                command(
                    "error",
                    f"gate {gate.name} failed: {gate.message}",
                    file=m.path,
                    title=f"coralcheck gate {gate.name}",
                )
            )
    for failure in outcome.failures:
        lines.append(command("error", failure.problem, file=failure.path, title="coralcheck"))
    return "".join(line + "\n" for line in lines)
