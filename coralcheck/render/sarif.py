"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

One run; the rules come from the registry (id, name, descriptions, help with the fix, default
level); each finding is a result located on the model file (a URI relative to the working
directory, under %SRCROOT%) and, logically, on its subgraph/op/tensor. `partialFingerprints`
carries the stable fingerprint (rule, path, op type, tensor — not the op index), so alerts
survive edits that renumber ops. Failed gates are results of the `gate/<name>` rules; models
that could not be checked are tool execution notifications.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from coralcheck.baseline import fingerprints, model_key
from coralcheck.checks import catalogue
from coralcheck.fileio import json_safe, name_bytes
from coralcheck.gates import GateResult, gate_rule
from coralcheck.outcome import Outcome
from coralcheck.render.phrases import latency_line, verdict_line, where, with_fix
from coralcheck.report import Finding, ModelReport, Report

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "coralcheck/v1"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _uri(path: str) -> tuple[str, str | None]:
    """(uri, uriBaseId): relative to the working directory when inside it, else absolute."""
    rel = model_key(path, os.getcwd())
    if rel.startswith("../") or rel == "..":
        return Path(os.path.abspath(path)).as_uri(), None
    return quote(name_bytes(rel)), SRCROOT  # (the file name's own bytes, %-encoded)


def _artifact_location(path: str, index: int | None = None) -> dict[str, Any]:
    uri, base = _uri(path)
    location: dict[str, Any] = {"uri": uri}
    if base:
        location["uriBaseId"] = base
    if index is not None:
        location["index"] = index
    return location


def _rule_descriptor(rule: Any) -> dict[str, Any]:
    help_md = "\n\n".join(
        part
        for part in (
            rule.explanation,
            f"**Example**\n\n{rule.example}" if rule.example else "",
            f"**Fix**\n\n{rule.fix}" if rule.fix else "",
        )
        if part
    )
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.explanation or rule.title},
        "help": {"text": help_md, "markdown": help_md},
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {"family": rule.family, "tags": ["edgetpu", rule.family]},
    }


def _physical_location(path: str, index: int) -> dict[str, Any]:
    # A model is binary: there are no lines. GitHub code scanning needs a startLine to show an
    # alert, so every result points at line 1 of the model file.
    return {"artifactLocation": _artifact_location(path, index), "region": {"startLine": 1}}


def _logical_location(m: ModelReport, f: Finding) -> dict[str, Any]:
    parts = [f"subgraph[{f.subgraph}]"]
    if f.op is not None:
        opcode = f.opcode or next((o.opcode for o in m.ops if o.index == f.op), "")
        parts.append(f"op[{f.op}]" + (f":{opcode}" if opcode else ""))
    if f.tensor:
        parts.append(f"tensor:{f.tensor}")
    kind = "variable" if f.tensor else "function" if f.op is not None else "module"
    return {"name": where(m, f), "fullyQualifiedName": "/".join(parts), "kind": kind}


def _finding_result(
    m: ModelReport, f: Finding, fp: str, artifact: int, rule_index: int, state: str | None
) -> dict[str, Any]:
    text = with_fix(f"{where(m, f)}: {f.message}", f.fix)
    result: dict[str, Any] = {
        "ruleId": f.code,
        "ruleIndex": rule_index,
        "level": LEVEL[f.severity],
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": _physical_location(m.path, artifact),
                "logicalLocations": [_logical_location(m, f)],
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fp},
        "properties": {
            "severity": f.severity,
            "fix": f.fix,
            "subgraph": f.subgraph,
            "op": f.op,
            "tensor": f.tensor,
        },
    }
    if f.places:  # a finding standing for several places: each of them, with its own message
        result["relatedLocations"] = [
            {
                "id": n,
                "message": {"text": place.message},
                "physicalLocation": _physical_location(m.path, artifact),
                "logicalLocations": [
                    _logical_location(
                        m, f._replace(op=place.op, opcode=place.opcode, tensor=place.tensor)
                    )
                ],
            }
            for n, place in enumerate(f.places)
        ]
    if state:
        result["baselineState"] = state
    return result


def _gate_result(
    m: ModelReport, gate: GateResult, artifact: int, rule_index: int, occurrence: int
) -> dict[str, Any]:
    rel = model_key(m.path, os.getcwd())
    return {
        "ruleId": f"gate/{gate.name}",
        "ruleIndex": rule_index,
        "level": "error",
        "message": {"text": f"gate {gate.name} failed: {gate.message}"},
        "locations": [
            {
                "physicalLocation": _physical_location(m.path, artifact),
                "logicalLocations": [{"name": "model", "kind": "module"}],
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: f"gate/{gate.name}/{rel}:{occurrence}"},
    }


def _model_artifact(m: ModelReport) -> dict[str, Any]:
    """The model file as an artifact: its placement and latency summary as the description,
    the latency estimate's numbers in the property bag."""
    artifact: dict[str, Any] = {
        "location": _artifact_location(m.path),
        "length": m.file_size,
        "roles": ["analysisTarget"],
    }
    estimate = latency_line(m)
    summary = verdict_line(m) if estimate is None else f"{verdict_line(m)}; {estimate}"
    artifact["description"] = {"text": summary}
    if m.latency is not None:
        artifact["properties"] = {"latency": m.latency._asdict()}
    return artifact


def sarif_dict(report: Report, outcome: Outcome) -> dict[str, Any]:

    rules = [_rule_descriptor(r) for r in catalogue.all_rules()]
    rule_index = {r["id"]: i for i, r in enumerate(rules)}

    def index_of(rule_id: str, descriptor: dict[str, Any]) -> int:
        if rule_id not in rule_index:
            rule_index[rule_id] = len(rules)
            rules.append(descriptor)
        return rule_index[rule_id]

    artifacts: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for m, verdict in zip(report.models, outcome.verdicts, strict=True):
        artifact = len(artifacts)
        artifacts.append(_model_artifact(m))
        prints = fingerprints(m, model_key(m.path, os.getcwd()))
        for i, f in enumerate(m.findings):
            minimal = {"id": f.code, "defaultConfiguration": {"level": LEVEL[f.severity]}}
            state = None
            if outcome.baseline is not None:
                state = "unchanged" if i in verdict.known else "new"
            results.append(
                _finding_result(m, f, prints[i], artifact, index_of(f.code, minimal), state)
            )
        for occurrence, gate in enumerate(verdict.failed_gates, 1):
            descriptor = _rule_descriptor(gate_rule(gate.name))
            rule = index_of(descriptor["id"], descriptor)
            results.append(_gate_result(m, gate, artifact, rule, occurrence))
    notifications = [
        {
            "level": "error",
            "message": {"text": f"{failure.path}: {failure.problem}"},
            "locations": [
                {"physicalLocation": {"artifactLocation": _artifact_location(failure.path)}}
            ],
        }
        for failure in outcome.failures
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "coralcheck",
                "version": report.tool_version or "unknown",
                "rules": rules,
            }
        },
        "originalUriBaseIds": {SRCROOT: {"uri": Path(os.getcwd()).as_uri() + "/"}},
        "artifacts": artifacts,
        "results": results,
        "invocations": [
            {
                "executionSuccessful": not outcome.failures,
                "exitCode": outcome.exit_code,
                "toolExecutionNotifications": notifications,
            }
        ],
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def render_sarif(report: Report, outcome: Outcome) -> str:
    return json_safe(json.dumps(sarif_dict(report, outcome), indent=2, ensure_ascii=False)) + "\n"
