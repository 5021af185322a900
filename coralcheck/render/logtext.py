"""`coralcheck log` for a terminal: the log's totals and table, the comparison with the
prediction, and the findings (the JSON is `coralcheck.pipeline.log.log_report`'s dict itself).
"""

from __future__ import annotations

from coralcheck.compiler.blocks import TOTAL_LABEL
from coralcheck.wording import plural

NO_TABLE = {
    "absent": "the per-op statuses are not in this log (edgetpu_compiler prints them with -s, "
    "and in its <model>_edgetpu.log file)",
    "partial": "the per-op table in this log is cut short: only the listed rows can be compared",
}


def render_log_text(result: dict) -> str:
    """The log report for a terminal."""

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
