"""Read an edgetpu_compiler log (console output or .log) and check it against the prediction.

`coralcheck log FILE [--model X.tflite] [--format text|json]`: for CI jobs that keep the
compiler's log beside the model but have no compiler. Exit 0 when the log shows no failure and
(with --model) agrees with the prediction op type by op type and status by status; 1 when it
shows a failure or disagrees; 2 when FILE or the model cannot be read.

Ordinary console output (without `-s`) has no per-op table, only totals; a cut-off excerpt may
have part of one. The comparison then uses what the log has: the totals (ops, ops on the Edge
TPU and on the CPU, Edge TPU segments) and the rows that are listed, and says that the per-op
statuses were not in the log.

JSON keys: `path`, `kind` ("console" | "oplog" | "unknown"), `compiler_version`, `succeeded`,
`ops_tpu`, `ops_cpu`, `rows_complete`, `rows` [{operator, count, status, mapped}],
`failures` [{kind, code, message, fix}] (the first 10 distinct ones), `more_failures` (how
many other distinct ones the log names), `op_table` ("complete" | "partial" | "absent": the
per-op table of the model, as far as the log shows), and with --model: `model`,
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

import argparse
import json
import os
from collections import Counter
from typing import Any

# The first 16 MiB of a log are read (real ones are a few KB).
MAX_LOG_BYTES = 16 << 20


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="compiler console output or _edgetpu.log")
    parser.add_argument("--model", metavar="X.tflite", help="the source model the log is for")
    parser.add_argument("--format", default="text", choices=("text", "json"))
    parser.add_argument(
        "--runtime-version", type=int, default=None, help="Edge TPU runtime on the device"
    )
    parser.add_argument(
        "--compiler-version",
        default=None,
        help="compiler to predict for (default: the version the log names, e.g. 16.0)",
    )
    parser.add_argument(
        "-a",
        "--enable-multiple-subgraphs",
        action="store_true",
        help="predict for edgetpu_compiler -a (implied when the log reports several Edge TPU "
        "subgraphs)",
    )


def read_log(path: str) -> Any:
    """Parse FILE; unreadable or unrecognisable input is a UsageError (exit 2)."""
    from coralcheck.compiler.log import parse_log
    from coralcheck.errors import UsageError
    from coralcheck.fileio import read_regular

    try:
        data = read_regular(path, MAX_LOG_BYTES)[:MAX_LOG_BYTES]  # (a FIFO would block: refused)
    except FileNotFoundError:
        raise UsageError(path, "no such file") from None
    except IsADirectoryError:
        raise UsageError(path, "is a directory, not a compiler log") from None
    except OSError as e:
        raise UsageError(path, f"cannot read: {e.strerror or e}") from None
    log = parse_log(data)
    if not log.recognised:
        raise UsageError(path, "not edgetpu_compiler output (nothing in it is recognised)")
    return log


def _model_part(log: Any, model_path: str | None) -> tuple[Any, tuple]:
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


def op_table(block: Any, rows: tuple) -> str:
    """How much of the per-op table the log has: "complete", "partial" (fewer ops than the
    printed total: a cut-off excerpt) or "absent" (console output without -s)."""
    if not rows:
        return "absent"
    total = block.known_total_ops if block is not None else None
    if total is not None and sum(row.count for row in rows) < total:
        return "partial"
    return "complete"


# The totals a console log prints, in report order: (JSON key, ModelBlock field, text label).
TOTALS = (
    ("ops_total", "known_total_ops", "ops"),
    ("ops_tpu", "ops_tpu", "ops on the Edge TPU"),
    ("ops_cpu", "ops_cpu", "ops on the CPU"),
    ("tpu_segments", "tpu_subgraphs", "Edge TPU segments"),
)
TOTAL_LABEL = {key: label for key, _, label in TOTALS}


def compare_totals(block: Any, summary: Any) -> list[dict]:
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


def compare(rows: tuple, ops: list[Any], log_names: list[str]) -> tuple[list[dict], list[dict]]:
    """(by_type, by_status) counts: prediction (OpPlacements) vs log rows."""
    predicted = Counter((log_names[p.index], p.status) for p in ops)
    predicted_tpu = Counter(log_names[p.index] for p in ops if p.placement == "tpu")
    predicted_cpu = Counter(log_names[p.index] for p in ops if p.placement == "cpu")
    logged: Counter[tuple[str, str]] = Counter()
    logged_tpu: Counter[str] = Counter()
    logged_cpu: Counter[str] = Counter()
    for row in rows:
        logged[(row.operator, row.status)] += row.count
        (logged_tpu if row.mapped else logged_cpu)[row.operator] += row.count
    keys = list(dict.fromkeys([*logged, *predicted]))
    by_status = [
        {"operator": op, "status": status, "predicted": predicted[(op, status)]}
        | {"logged": logged[(op, status)]}
        for op, status in keys
    ]
    types = list(dict.fromkeys(op for op, _ in keys))
    by_type = [
        {
            "operator": op,
            "predicted_tpu": predicted_tpu[op],
            "predicted_cpu": predicted_cpu[op],
            "logged_tpu": logged_tpu[op],
            "logged_cpu": logged_cpu[op],
        }
        for op in types
    ]
    return by_type, by_status


def target_version(log: Any, given: str | None) -> str | None:
    """The compiler version to predict for: as given, else the build the log names (a build
    coralcheck does not list resolves to the nearest of its line, see knowledge.release)."""
    if given:
        return given
    parts = (log.compiler_version or "").split(".")
    return log.compiler_version if len(parts) >= 2 and parts[0].isdigit() else None


def multiple_subgraphs(log: Any, given: bool) -> bool:
    """Predict for `-a`: when asked, or when the log reports more than one Edge TPU subgraph."""
    return given or any((block.tpu_subgraphs or 0) > 1 for block in log.models)


def log_report(
    path: str,
    log: Any,
    model_path: str | None,
    runtime: int | None,
    compiler: str | None = None,
    multiple: bool = False,
) -> dict:
    """The JSON-ready result of `coralcheck log` (keys in the module docstring)."""
    from coralcheck.checks.compiler import compiler_failure, failure_fix, log_disagrees
    from coralcheck.registry import failure_code

    version = log.compiler_version
    findings = [compiler_failure(f.kind, f.message, None, version) for f in log.failures]
    result: dict[str, Any] = {
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
    block, rows = _model_part(log, model_path)
    table = op_table(block, rows)
    result["op_table"] = table
    if model_path:
        from coralcheck.options import DEFAULT_COMPILER_VERSION

        target = target_version(log, compiler) or DEFAULT_COMPILER_VERSION
        summary, ops, log_names = _predict(
            model_path, runtime, target, multiple_subgraphs(log, multiple)
        )
        result["model"] = model_path
        result["predicted_for"] = target
        result["prediction_available"] = bool(ops)
        if ops:
            by_type, by_status = compare(rows, ops, log_names)
            if table != "complete":
                # Only the rows the log lists say anything: an op type it does not list is
                # unknown, not "logged 0".
                listed = {(row.operator, row.status) for row in rows}
                by_type = []
                by_status = [d for d in by_status if (d["operator"], d["status"]) in listed]
            by_total = compare_totals(block, summary)
            disagreements = [d for d in by_status if d["predicted"] != d["logged"]]
            total_disagreements = [d for d in by_total if d["predicted"] != d["logged"]]
            comparable = bool(by_total or by_status)
            result |= {
                "by_total": by_total,
                "by_type": by_type,
                "by_status": by_status,
                "agrees": not disagreements and not total_disagreements if comparable else None,
            }
            findings += log_disagrees(
                [{"what": TOTAL_LABEL[d["quantity"]], **d} for d in total_disagreements]
                + disagreements
            )
        else:
            result |= {"by_total": [], "by_type": [], "by_status": [], "agrees": None}
    result["findings"] = [
        {"code": f.code, "severity": f.severity, "message": f.message, "fix": f.fix}
        for f in findings
    ]
    return result


def _predict(
    model_path: str, runtime: int | None, compiler: str | None = None, multiple: bool = False
) -> tuple[Any, list[Any], list[str]]:
    """The predicted Summary and OpPlacements of the source model, and each op's name in
    compiler logs."""
    from coralcheck.analyze import analyze
    from coralcheck.errors import UsageError
    from coralcheck.model import load
    from coralcheck.options import DEFAULT_COMPILER_VERSION, DEFAULT_RUNTIME_VERSION, Options

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


NO_TABLE = {
    "absent": "the per-op statuses are not in this log (edgetpu_compiler prints them with -s, "
    "and in its <model>_edgetpu.log file)",
    "partial": "the per-op table in this log is cut short: only the listed rows can be compared",
}


def render_text(result: dict) -> str:
    """The log report for a terminal."""
    from coralcheck.wording import plural

    version = result["compiler_version"] or "unknown version"
    lines = [f"{result['path']}: edgetpu_compiler {version} ({result['kind']})"]
    if result["ops_tpu"] is not None:
        lines.append(
            f"{plural(result['ops_tpu'], 'op')} on the Edge TPU, {result['ops_cpu']} on the CPU"
        )
    if result["rows"]:
        lines.append(f"{'Operator':<30} {'Count':>5}  Status")
        lines += [f"{r['operator']:<30} {r['count']:>5}  {r['status']}" for r in result["rows"]]
    if result["op_table"] in NO_TABLE and (result["rows"] or result["ops_tpu"] is not None):
        lines.append(NO_TABLE[result["op_table"]].capitalize())
    if "model" in result:
        lines += _comparison_lines(result)
    for f in result["findings"]:
        lines.append(f"{f['code']} {f['severity']}: {f['message']}")
        if f["fix"]:
            lines.append(f"  fix: {f['fix']}")
    if result.get("more_failures"):
        lines.append(
            f"... and {result['more_failures']:,} more distinct compiler errors in the log"
        )
    return "\n".join(lines) + "\n"


def _comparison_lines(result: dict) -> list[str]:
    """The prediction against the log: agreement, or the counts that differ."""
    model = result["model"]
    if not result["prediction_available"]:
        return [f"{model}: no placement prediction to compare with"]
    if result["agrees"] is None:
        return [f"{model}: the log has nothing to compare with the prediction (no totals, no ops)"]
    compared = "the log" if result["op_table"] == "complete" else "the log's totals"
    if result["op_table"] == "partial":
        compared += " and listed rows"
    if result["agrees"]:
        return [f"{model}: the prediction agrees with {compared}"]
    lines = [f"{model}: the prediction disagrees with {compared}"]
    totals = [
        (TOTAL_LABEL[d["quantity"]], d["predicted"], d["logged"], "")
        for d in result["by_total"]
        if d["predicted"] != d["logged"]
    ]
    statuses = [
        (d["operator"], d["predicted"], d["logged"], d["status"])
        for d in result["by_status"]
        if d["predicted"] != d["logged"]
    ]
    for title, rows in (("Total", totals), ("Operator", statuses)):
        if rows:
            status = "  Status" if title == "Operator" else ""
            lines.append(f"  {title:<28} {'predicted':>9} {'logged':>6}{status}".rstrip())
            lines += [
                f"  {what:<28} {predicted:>9} {logged:>6}  {how}".rstrip()
                for what, predicted, logged, how in rows
            ]
    return lines


def run(args: argparse.Namespace) -> int:
    log = read_log(args.file)
    result = log_report(
        args.file,
        log,
        args.model,
        args.runtime_version,
        args.compiler_version,
        args.enable_multiple_subgraphs,
    )
    from coralcheck.cli import write_stdout

    if args.format == "json":
        write_stdout(json.dumps(result, indent=2) + "\n")
    else:
        # Operator names and statuses are the log's text: escaped, and no line may become a
        # workflow command in a CI log.
        from coralcheck.render.phrases import no_workflow_commands, printable

        write_stdout(no_workflow_commands(render_text(printable(result))))
    return 1 if result["failures"] or result.get("agrees") is False else 0
