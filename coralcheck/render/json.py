"""`--format json`: the Report as versioned JSON (docs/report.schema.json)."""

from __future__ import annotations

import json

from coralcheck.report import Report


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"
