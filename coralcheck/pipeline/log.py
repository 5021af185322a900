"""`coralcheck log`: a parsed compiler log (coralcheck.compiler.log), on its own or against the
prediction for its source model, as one JSON-ready dict (`log_report`).

Ordinary console output (without `-s`) has no per-op table, only totals; a cut-off excerpt may
have part of one. The comparison then uses what the log has: the totals (ops, ops on the Edge
TPU and on the CPU, Edge TPU segments) and the rows that are listed, and says that the per-op
statuses were not in the log.

Keys: `path`, `kind` ("console" | "oplog" | "unknown"), `compiler_version`, `succeeded`,
`ops_tpu`, `ops_cpu`, `rows_complete`, `rows` [{operator, count, status, mapped}],
`failures` [{kind, code, message, fix}] (the first 10 distinct ones), `more_failures` (how
many other distinct ones the log names), `op_table` ("complete" | "partial" | "absent": the
per-op table of the model, as far as the log shows), and with a model: `model`,
`predicted_for` (the compiler version predicted for: the build the log names),
`prediction_available` (False until the placement predictor gives ops), `by_total`
[{quantity ("ops_total" | "ops_tpu" | "ops_cpu" | "tpu_segments"), predicted, logged}] for the
totals the log prints, `by_type` [{operator, predicted_tpu, predicted_cpu, logged_tpu,
logged_cpu}] (with a complete table only), `by_status` [{operator, status, predicted, logged}]
(every row of a complete table, the listed rows of a partial one), `agrees` (None without a
prediction, or when the log has neither totals nor rows, e.g. a failed run); `findings` [{code,
severity, message, fix}].
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from coralcheck.analyze.logcompare import logged_counts, side_by_side
from coralcheck.checks.compiler import compiler_failure, failure_fix, log_disagrees
from coralcheck.compiler.blocks import TOTAL_LABEL, TOTALS
from coralcheck.compiler.records import CompilerLog, ModelBlock, OpRow
from coralcheck.errors import UsageError
from coralcheck.model import load
from coralcheck.model.isolation import call_isolated
from coralcheck.options import DEFAULT_COMPILER_VERSION, DEFAULT_RUNTIME_VERSION, Options
from coralcheck.pipeline.source import analyze
from coralcheck.registry import failure_code
from coralcheck.report import OpPlacement, Summary


def log_report(
    path: str,
    log: CompilerLog,
    model_path: str | None,
    runtime: int | None,
    compiler: str | None = None,
    multiple: bool = False,
) -> dict[str, Any]:
    """The result of `coralcheck log` (keys in the module docstring): the log read on its own,
    and with `model_path` compared with the prediction for that model (for the compiler the
    log names, unless `compiler` is given; for `-a` when `multiple` or when the log has several
    Edge TPU subgraphs)."""
    version = log.compiler_version
    findings = [compiler_failure(f.kind, f.message, None, version) for f in log.failures]
    result = _log_facts(path, log)
    block, rows = _model_part(log, model_path)
    table = op_table(block, rows)
    result["op_table"] = table
    if model_path:
        target = target_version(log, compiler) or DEFAULT_COMPILER_VERSION
        summary, ops, log_names = call_isolated(
            [model_path], _predict, model_path, runtime, target, multiple_subgraphs(log, multiple)
        )
        result |= {"model": model_path, "predicted_for": target, "prediction_available": bool(ops)}
        comparison, disagreements = _compare(block, rows, table, summary, ops, log_names)
        result |= comparison
        findings += log_disagrees(disagreements)
    result["findings"] = [
        {"code": f.code, "severity": f.severity, "message": f.message, "fix": f.fix}
        for f in findings
    ]
    return result


def _log_facts(path: str, log: CompilerLog) -> dict[str, Any]:
    """What the log says on its own."""
    version = log.compiler_version
    return {
        "path": path,
        "kind": log.kind,
        "compiler_version": log.compiler_version,
        "succeeded": log.succeeded,
        "ops_tpu": log.ops_tpu,
        "ops_cpu": log.ops_cpu,
        "rows_complete": log.rows_complete,
        "rows": [row.to_dict() for row in log.rows],
        "failures": [
            {
                "kind": f.kind,
                "code": failure_code(f.kind),
                "message": f.message,
                "fix": failure_fix(f.kind, f.message, version),
            }
            for f in log.failures
        ],
        "more_failures": log.more_failures,
    }


def _compare(
    block: ModelBlock | None,
    rows: tuple[OpRow, ...],
    table: str,
    summary: Summary,
    ops: list[OpPlacement],
    log_names: list[str],
) -> tuple[dict[str, Any], list[dict]]:
    """The comparison keys of the result, and the counts that disagree (for C050)."""
    if not ops:
        return {"by_total": [], "by_type": [], "by_status": [], "agrees": None}, []
    by_type, by_status = compare(rows, ops, log_names)
    if table != "complete":
        # Only the rows the log lists say anything: an op type it does not list is unknown, not
        # "logged 0".
        listed = {(row.operator, row.status) for row in rows}
        by_type = []
        by_status = [d for d in by_status if (d["operator"], d["status"]) in listed]
    by_total = compare_totals(block, summary)
    disagreements = [d for d in by_status if d["predicted"] != d["logged"]]
    total_disagreements = [d for d in by_total if d["predicted"] != d["logged"]]
    comparable = bool(by_total or by_status)
    comparison = {
        "by_total": by_total,
        "by_type": by_type,
        "by_status": by_status,
        "agrees": not disagreements and not total_disagreements if comparable else None,
    }
    labelled = [{"what": TOTAL_LABEL[d["quantity"]], **d} for d in total_disagreements]
    return comparison, labelled + disagreements


def _model_part(log: CompilerLog, model_path: str | None) -> tuple[ModelBlock | None, tuple]:
    """The summary block and the table rows of `model_path` in the log: in a co-compile log,
    those of the block naming the model (no block, all rows when none does); else the log's
    only block and all its rows."""
    name = os.path.basename(model_path or "")
    named = next(
        (b for b in log.models if name and os.path.basename(b.input_model or "") == name), None
    )
    if log.co_compiled:
        return (named, named.rows) if named is not None else (None, log.rows)
    return (log.models[0] if log.models else None), log.rows


def op_table(block: ModelBlock | None, rows: tuple[OpRow, ...]) -> str:
    """How much of the per-op table the log has: "complete", "partial" (fewer ops than the
    printed total: a cut-off excerpt) or "absent" (console output without -s)."""
    if not rows:
        return "absent"
    total = block.known_total_ops if block is not None else None
    if total is not None and sum(row.count for row in rows) < total:
        return "partial"
    return "complete"


def compare_totals(block: ModelBlock | None, summary: Summary) -> list[dict]:
    """[{quantity, predicted, logged}] for every total the log's block prints."""
    if block is None:
        return []
    predicted = {
        "ops_total": summary.ops_total,
        "ops_tpu": summary.ops_tpu,
        "ops_cpu": summary.ops_cpu,
        "tpu_segments": summary.tpu_segments,
    }
    out = []
    for key, field, _ in TOTALS:
        logged = getattr(block, field)
        if logged is not None:
            out.append({"quantity": key, "predicted": predicted[key], "logged": logged})
    return out


def compare(
    rows: tuple[OpRow, ...], ops: list[OpPlacement], log_names: list[str]
) -> tuple[list[dict], list[dict]]:
    """(by_type, by_status) counts: the prediction (OpPlacements; `log_names[i]` is op i's name
    in compiler logs) against the log's rows."""
    by_status = [
        {"operator": c.operator, "status": c.key, "predicted": c.placed, "logged": c.logged}
        for c in side_by_side(
            logged_counts(rows), Counter((log_names[p.index], p.status) for p in ops)
        )
    ]
    logged = logged_counts(rows, by_status=False)
    predicted = Counter((log_names[p.index], p.placement == "tpu") for p in ops)
    by_type = [
        {
            "operator": op,
            "predicted_tpu": predicted[(op, True)],
            "predicted_cpu": predicted[(op, False)],
            "logged_tpu": logged[(op, True)],
            "logged_cpu": logged[(op, False)],
        }
        for op in dict.fromkeys(d["operator"] for d in by_status)
    ]
    return by_type, by_status


def target_version(log: CompilerLog, given: str | None) -> str | None:
    """The compiler version to predict for: as given, else the build the log names (a build
    coralcheck does not list resolves to the nearest of its line, see knowledge.release)."""
    if given:
        return given
    parts = (log.compiler_version or "").split(".")
    return log.compiler_version if len(parts) >= 2 and parts[0].isdigit() else None


def multiple_subgraphs(log: CompilerLog, given: bool) -> bool:
    """Predict for `-a`: when asked, or when the log reports more than one Edge TPU subgraph."""
    return given or any((block.tpu_subgraphs or 0) > 1 for block in log.models)


def _predict(
    model_path: str, runtime: int | None, compiler: str | None = None, multiple: bool = False
) -> tuple[Summary, list[OpPlacement], list[str]]:
    """The predicted Summary and OpPlacements of the source model, and each op's name in
    compiler logs."""
    model = load(model_path)
    if model.is_compiled:
        raise UsageError("--model", f"{model_path} is compiled: pass the source model")
    options = Options(
        compiler_version=compiler or DEFAULT_COMPILER_VERSION,
        runtime_version=runtime or DEFAULT_RUNTIME_VERSION,
        enable_multiple_subgraphs=multiple,
    )
    report = analyze(model, options)
    return report.summary, list(report.ops), [op.log_name for op in model.main.operators]
