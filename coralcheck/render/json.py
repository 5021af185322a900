"""`--format json`: the Report as versioned JSON, described by coralcheck/report.schema.json.

It is `Report.to_dict()` plus what the settings decided: per finding its `fingerprint` (stable
across runs, see coralcheck.baseline), whether it `fails` the run and whether it is `known` from
the baseline; per model a `verdict` (failed, fail-on, gates); and the models that could not be
checked (`errors`). `schema_version` changes when a field changes meaning or goes away.
"""

from __future__ import annotations

import json
import os
from itertools import chain
from typing import Any

from coralcheck.baseline import fingerprints, model_key
from coralcheck.fileio import json_safe
from coralcheck.outcome import Outcome, statistics
from coralcheck.render.phrases import verdict_line
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
    # (file names that are not UTF-8 keep their bytes as \udcXX escapes: see coralcheck.fileio)
    return json_safe(dumps(report_dict(report, outcome))) + "\n"


# --- json.dumps(value, indent=2, ensure_ascii=False), faster -----------------------------------
#
# With `indent`, the standard library encodes in Python (about 20 ms for the JSON of a 3,500-op
# report; this takes half of that); without, in C. Here the C encoder writes every container
# whose values are all scalars, with the line break and indentation of its depth as item
# separator: that is exactly the indented text. A list of such dicts (the ops, the findings) is
# one C call, whose separators between the dicts are then re-indented. Anything else is written
# as json.dumps would, so the text is the same byte for byte (tests/test_render.py compares
# them on any JSON value).

_SCALAR = frozenset({str, int, float, bool, type(None)})
_PAD = "  "


def _flat_encoder(depth: int) -> Any:
    """The C encoder for scalar items one level below `depth`."""
    separator = ",\n" + _PAD * (depth + 1)
    return json.JSONEncoder(
        ensure_ascii=False, check_circular=False, separators=(separator, ": ")
    ).encode


def dumps(value: Any, depth: int = 0) -> str:
    """`json.dumps(value, indent=2, ensure_ascii=False)` of a value that starts `depth` levels
    deep (its lines but the first are indented as they would be there)."""
    kind = type(value)
    if kind in _SCALAR:
        return json.dumps(value, ensure_ascii=False)
    inner = "\n" + _PAD * (depth + 1)
    close = inner[: -len(_PAD)]
    if kind is dict and set(map(type, value)) == {str}:
        if _SCALAR.issuperset(map(type, value.values())):
            return "{" + inner + _flat_encoder(depth)(value)[1:-1] + close + "}"
        items = (
            json.dumps(k, ensure_ascii=False) + ": " + dumps(v, depth + 1) for k, v in value.items()
        )
        return "{" + inner + ("," + inner).join(items) + close + "}"
    if (kind is list or kind is tuple) and value:
        if _SCALAR.issuperset(map(type, value)):
            return "[" + inner + _flat_encoder(depth)(value)[1:-1] + close + "]"
        if _flat_dicts(value):
            deeper = inner + _PAD
            text = _flat_encoder(depth + 1)(value)[2:-2]  # without the outer [{ and }]
            between = "}," + deeper + "{"  # only between the dicts: a key follows other commas
            text = text.replace(between, inner + "}," + inner + "{" + deeper)
            return "[" + inner + "{" + deeper + text + inner + "}" + close + "]"
        return "[" + inner + ("," + inner).join(dumps(v, depth + 1) for v in value) + close + "]"
    # Empty containers, other key types, subclasses, anything json.dumps itself refuses.
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return text.replace("\n", "\n" + _PAD * depth)


def _flat_dicts(items: list[Any] | tuple[Any, ...]) -> bool:
    """Whether every item is a non-empty dict of string keys and scalar values."""
    return (
        set(map(type, items)) == {dict}
        and all(items)
        and set(map(type, chain.from_iterable(items))) == {str}
        and _SCALAR.issuperset(map(type, chain.from_iterable(map(dict.values, items))))
    )


def render_statistics_json(report: Report) -> str:
    """`--statistics --format json`: [{code, count, severity, title}], most frequent first."""
    rows = [
        {"code": s.code, "count": s.count, "severity": s.severity, "title": s.title}
        for s in statistics(report)
    ]
    return json_safe(json.dumps(rows, indent=2, ensure_ascii=False)) + "\n"
