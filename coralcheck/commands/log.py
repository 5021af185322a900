"""Read an edgetpu_compiler log (console output or .log) and check it against the prediction.

`coralcheck log FILE [--model X.tflite] [--format text|json]`: for CI jobs that keep the
compiler's log beside the model but have no compiler. Exit 0 when the log shows no failure and
(with --model) agrees with the prediction op type by op type and status by status; 1 when it
shows a failure or disagrees; 2 when FILE or the model cannot be read.

JSON keys: `path`, `kind` ("console" | "oplog" | "unknown"), `compiler_version`, `succeeded`,
`ops_tpu`, `ops_cpu`, `rows_complete`, `rows` [{operator, count, status, mapped}],
`failures` [{kind, code, message, fix}] (the first 10 distinct ones), `more_failures` (how many
other distinct ones the log names), and with --model: `model`, `prediction_available`
(False until the placement predictor gives ops), `by_type` [{operator, predicted_tpu,
predicted_cpu, logged_tpu, logged_cpu}], `by_status` [{operator, status, predicted, logged}],
`agrees` (None without a prediction); `findings` [{code, severity, message, fix}].
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


def _rows_for(log: Any, model_path: str) -> tuple:
    """The table rows of `model_path` in a co-compile log (all rows otherwise)."""
    name = os.path.basename(model_path)
    for block in log.models:
        if block.rows and os.path.basename(block.input_model or "") == name:
            return block.rows
    return log.rows


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
    """The compiler version to predict for: as given, else major.minor of the log's version."""
    if given:
        return given
    parts = (log.compiler_version or "").split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and parts[0].isdigit() else None


def log_report(
    path: str, log: Any, model_path: str | None, runtime: int | None, compiler: str | None = None
) -> dict:
    """The JSON-ready result of `coralcheck log` (keys in the module docstring)."""
    from coralcheck.checks.compiled import FAILURE_RULE_BY_KIND, compiler_failure, log_disagrees

    findings = [compiler_failure(f.kind, f.message) for f in log.failures]
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
                "code": FAILURE_RULE_BY_KIND.get(f.kind, FAILURE_RULE_BY_KIND["other"]).code,
                "message": f.message,
                "fix": FAILURE_RULE_BY_KIND.get(f.kind, FAILURE_RULE_BY_KIND["other"]).fix,
            }
            for f in log.failures
        ],
        "more_failures": log.more_failures,
    }
    if model_path:
        ops, log_names = _predict(model_path, runtime, target_version(log, compiler))
        result["model"] = model_path
        result["prediction_available"] = bool(ops)
        if ops:
            by_type, by_status = compare(_rows_for(log, model_path), ops, log_names)
            disagreements = [d for d in by_status if d["predicted"] != d["logged"]]
            result |= {"by_type": by_type, "by_status": by_status, "agrees": not disagreements}
            findings += log_disagrees(disagreements)
        else:
            result |= {"by_type": [], "by_status": [], "agrees": None}
    result["findings"] = [
        {"code": f.code, "severity": f.severity, "message": f.message, "fix": f.fix}
        for f in findings
    ]
    return result


def _predict(
    model_path: str, runtime: int | None, compiler: str | None = None
) -> tuple[list[Any], list[str]]:
    """The predicted OpPlacements of the source model, and each op's name in compiler logs."""
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
    )
    report = analyze(model, options)
    return list(report.ops), [op.log_name for op in model.main.operators]


def render_text(result: dict) -> str:
    """The log report for a terminal."""
    version = result["compiler_version"] or "unknown version"
    lines = [f"{result['path']}: edgetpu_compiler {version} ({result['kind']})"]
    if result["ops_tpu"] is not None:
        lines.append(f"{result['ops_tpu']} ops on the Edge TPU, {result['ops_cpu']} on the CPU")
    if result["rows"]:
        lines.append(f"{'Operator':<30} {'Count':>5}  Status")
        lines += [f"{r['operator']:<30} {r['count']:>5}  {r['status']}" for r in result["rows"]]
    if "model" in result:
        if not result["prediction_available"]:
            lines.append(f"{result['model']}: no placement prediction to compare with")
        elif result["agrees"]:
            lines.append(f"{result['model']}: the prediction agrees with the log")
        else:
            lines.append(f"{result['model']}: the prediction disagrees with the log")
            lines.append(f"  {'Operator':<28} {'predicted':>9} {'logged':>6}  Status")
            lines += [
                f"  {d['operator']:<28} {d['predicted']:>9} {d['logged']:>6}  {d['status']}"
                for d in result["by_status"]
                if d["predicted"] != d["logged"]
            ]
    for f in result["findings"]:
        lines.append(f"{f['code']} {f['severity']}: {f['message']}")
        if f["fix"]:
            lines.append(f"  fix: {f['fix']}")
    if result.get("more_failures"):
        lines.append(
            f"... and {result['more_failures']:,} more distinct compiler errors in the log"
        )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    log = read_log(args.file)
    result = log_report(args.file, log, args.model, args.runtime_version, args.compiler_version)
    from coralcheck.cli import write_stdout

    if args.format == "json":
        write_stdout(json.dumps(result, indent=2) + "\n")
    else:
        # Operator names and statuses are the log's text: escaped, and no line may become a
        # workflow command in a CI log.
        from coralcheck.render.phrases import no_workflow_commands, printable

        write_stdout(no_workflow_commands(render_text(printable(result))))
    return 1 if result["failures"] or result.get("agrees") is False else 0
