"""`--format json`: the Report as versioned JSON, described by coralcheck/report.schema.json.

It is `Report.to_dict()` plus what the settings decided: per finding its `fingerprint` (stable
across runs, see coralcheck.baseline), whether it `fails` the run and whether it is `known` from
the baseline; per model a `verdict` (failed, fail-on, gates); and the models that could not be
checked (`errors`). `schema_version` changes when a field changes meaning or goes away.
"""

from __future__ import annotations

import json
import os
from typing import Any

from coralcheck.baseline import fingerprints, model_key
from coralcheck.render import Outcome
from coralcheck.render.phrases import statistics, verdict_line
from coralcheck.report import Report


def report_dict(report: Report, outcome: Outcome) -> dict[str, Any]:
    doc = report.to_dict()
    for m, model_doc, verdict in zip(report.models, doc["models"], outcome.verdicts, strict=True):
        prints = fingerprints(m, model_key(m.path, os.getcwd()))
        for i, finding_doc in enumerate(model_doc["findings"]):
            finding_doc["fingerprint"] = prints[i]
            finding_doc["fails"] = i in verdict.failing
            finding_doc["known"] = i in verdict.known
        model_doc["verdict"] = {
            "failed": verdict.failed,
            "fail_on": verdict.fail_on,
            "placement": verdict_line(m),
            "gates": [
                {"name": g.name, "passed": g.passed, "message": g.message} for g in verdict.gates
            ],
        }
    doc["baseline"] = outcome.baseline
    doc["errors"] = [
        {"path": f.path, "message": f.problem, "internal": f.internal} for f in outcome.failures
    ]
    doc["exit_code"] = outcome.exit_code
    return doc


def render_json(report: Report, outcome: Outcome) -> str:
    return json.dumps(report_dict(report, outcome), indent=2, ensure_ascii=False) + "\n"


def render_statistics_json(report: Report) -> str:
    """`--statistics --format json`: [{code, count, severity, title}], most frequent first."""
    rows = [
        {"code": s.code, "count": s.count, "severity": s.severity, "title": s.title}
        for s in statistics(report)
    ]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
