"""`coralcheck log FILE [--model X.tflite]`: committed compiler logs, checked without a compiler.

Inputs are the real logs in shared/corpus/logs/ and shared/edgetpu/compiler-logs/; expected
counts come from shared/corpus/groundtruth.json.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from conftest import CORPUS, REPO, run_cli

from coralcheck.cli import main
from coralcheck.commands import log as log_command
from coralcheck.model import load
from coralcheck.pipeline import log as log_pipeline
from coralcheck.report import OpPlacement, Summary

LOGS = REPO.parent / "shared" / "edgetpu" / "compiler-logs"
YOLO8 = "goalbuddy/yolov8n_full_integer_quant"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["log", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_oplog_file_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    log = need(CORPUS / "logs" / f"{YOLO8}_edgetpu.log")
    truth = json.loads((CORPUS / "groundtruth.json").read_text())[f"models/{YOLO8}_edgetpu.tflite"]
    code, result = run_json(capsys, str(log))
    assert code == 0
    assert result["compiler_version"] == "16.0.384591198" and result["kind"] == "oplog"
    assert (result["ops_tpu"], result["ops_cpu"]) == (truth["tpu_ops"], truth["cpu_ops"])
    assert sum(r["count"] for r in result["rows"]) == len(truth["per_op"])
    assert set(result["rows"][0]) == {"operator", "count", "status", "mapped"}
    assert result["failures"] == []


def test_with_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    log = need(CORPUS / "logs" / f"{YOLO8}_edgetpu.log")
    code, result = run_json(capsys, str(log), "--model", str(CORPUS / f"models/{YOLO8}.tflite"))
    assert result["model"].endswith("yolov8n_full_integer_quant.tflite")
    if result["prediction_available"]:
        assert code == (0 if result["agrees"] else 1)
        by_type = {d["operator"]: d for d in result["by_type"]}
        assert by_type["TRANSPOSE"]["logged_tpu"] == 2 and by_type["TRANSPOSE"]["logged_cpu"] == 3
        disagree = [d for d in result["by_status"] if d["predicted"] != d["logged"]]
        assert result["agrees"] is (not disagree)
        assert ("C050" in [f["code"] for f in result["findings"]]) is bool(disagree)
    else:
        assert code == 0 and result["agrees"] is None


def predicted_like_the_log(model_path: Path, log_path: Path, flip: int | None = None) -> list:
    """Hand-made OpPlacements whose per-type status counts are exactly the log's rows."""
    model = load(model_path)
    rows = log_command.read_log(str(log_path)).rows
    pool: dict[str, list[tuple[str, bool]]] = {}
    for row in rows:
        pool.setdefault(row.operator, []).extend([(row.status, row.mapped)] * row.count)
    ops = []
    for op in model.main.operators:
        status, mapped = pool[op.log_name].pop()
        placement = "tpu" if mapped else "cpu"
        if op.index == flip:
            placement, status = "cpu", "Operation is otherwise supported, but not mapped"
        ops.append(OpPlacement(op.index, op.opcode, op.version, placement, status, ""))
    return ops


def summary_of(ops: list[OpPlacement]) -> Summary:
    """The Summary of hand-made OpPlacements (segments: runs of Edge TPU ops in op order)."""
    tpu = [op.placement == "tpu" for op in ops]
    segments = sum(1 for i, on in enumerate(tpu) if on and (i == 0 or not tpu[i - 1]))
    return Summary(len(ops), sum(tpu), len(ops) - sum(tpu), segments)


@pytest.mark.parametrize("flip", [None, 0])
def test_comparison_with_a_hand_made_prediction(
    flip: int | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = need(CORPUS / "logs" / f"{YOLO8}_edgetpu.log")
    model = CORPUS / f"models/{YOLO8}.tflite"
    ops = predicted_like_the_log(model, log, flip)
    names = [op.log_name for op in load(model).main.operators]
    summary = summary_of(ops)
    monkeypatch.setattr(
        log_pipeline, "_predict", lambda path, runtime, compiler, *_: (summary, ops, names)
    )
    code, result = run_json(capsys, str(log), "--model", str(model))
    assert result["prediction_available"] is True
    if flip is None:
        assert code == 0 and result["agrees"] is True
        assert all(d["predicted_tpu"] == d["logged_tpu"] for d in result["by_type"])
    else:
        assert code == 1 and result["agrees"] is False
        op = names[flip]
        (row,) = [d for d in result["by_type"] if d["operator"] == op]
        assert row["predicted_tpu"] == row["logged_tpu"] - 1
        assert "C050" in [f["code"] for f in result["findings"]]


@pytest.mark.parametrize(
    ("name", "kind", "code"),
    [
        ("12_v14_1_model_not_quantized.log", "model_not_quantized", "C031"),
        ("13_v15_didnt_find_op_reverse_v2.log", "op_version_not_found", "C032"),
        ("11_v14_1_internal_compiler_error_noblank.log", "internal_error", "C034"),
        ("09_v16_sa_flags_large_activation.log", "large_activation_tensors", "C035"),
    ],
)
def test_failure_logs_exit_1(
    name: str, kind: str, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code, result = run_json(capsys, str(need(LOGS / name)))
    assert exit_code == 1
    assert result["failures"][0]["kind"] == kind and result["failures"][0]["code"] == code
    assert result["failures"][0]["fix"]


def test_console_log_text_output() -> None:
    log = need(LOGS / "01_v16_search_delegate_multi_subgraph_console.log")
    result = run_cli("log", str(log))
    assert result.returncode == 0, result.stderr
    assert "16.0.384591198" in result.stdout and "132 ops on the Edge TPU, 3 on the CPU" in (
        result.stdout
    )
    assert "More than one subgraph is not supported" in result.stdout


def test_unreadable_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage.log"
    garbage.write_bytes(bytes(range(256)) * 4)
    for path, problem in [
        (tmp_path / "missing.log", "no such file"),
        (tmp_path, "is a directory"),
        (garbage, "not edgetpu_compiler output"),
    ]:
        assert main(["log", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and problem in err and "Traceback" not in err


def test_model_must_be_readable_and_a_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = need(CORPUS / "logs" / f"{YOLO8}_edgetpu.log")
    assert main(["log", str(log), "--model", str(tmp_path / "none.tflite")]) == 2
    assert "no such file" in capsys.readouterr().err
    compiled = CORPUS / f"models/{YOLO8}_edgetpu.tflite"
    assert main(["log", str(log), "--model", str(compiled)]) == 2
    assert "source model" in capsys.readouterr().err


def test_by_type_counts_are_the_log_rows() -> None:
    log = log_command.read_log(str(need(CORPUS / "logs" / f"{YOLO8}_edgetpu.log")))
    by_type, by_status = log_pipeline.compare(log.rows, [], [])
    logged = Counter()
    for row in log.rows:
        logged[row.operator] += row.count
    assert {d["operator"]: d["logged_tpu"] + d["logged_cpu"] for d in by_type} == dict(logged)
    assert sum(d["logged"] for d in by_status) == sum(logged.values())


def _multiple_subgraph_pair_with_log() -> tuple[Path, Path]:
    """(log, source model) of the smallest corpus pair compiled with -a that has its log."""
    import csv

    truth = json.loads((need(CORPUS / "groundtruth.json")).read_text())
    with (CORPUS / "pairs.csv").open(newline="", encoding="utf-8") as f:
        logs = {row["compiled_path"]: row["log_path"] for row in csv.DictReader(f)}
    pairs = [
        (len(e["per_op"]), logs[c], e["source"])
        for c, e in truth.items()
        if e.get("usable") and e["segments"] > 1 and logs.get(c)
    ]
    if not pairs:
        pytest.skip("no -a pair with a log in the corpus")
    _, log, source = min(pairs)
    return CORPUS / log, CORPUS / source


def test_a_log_of_an_a_compile_agrees_with_the_prediction_for_a(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log, model = _multiple_subgraph_pair_with_log()
    code, result = run_json(capsys, str(log), "--model", str(model), "-a")
    assert (code, result["agrees"]) == (0, True)
    # An op log does not say how many segments the compile made: without -a the prediction is
    # the single-segment one, and it disagrees.
    code, result = run_json(capsys, str(log), "--model", str(model))
    assert (code, result["agrees"]) == (1, False)


def test_console_output_with_several_subgraphs_implies_a() -> None:
    from coralcheck.compiler.log import parse_log

    several = parse_log(
        "Edge TPU Compiler version 15.0.340273435\nNumber of Edge TPU subgraphs: 3\n"
    )
    one = parse_log("Edge TPU Compiler version 15.0.340273435\nNumber of Edge TPU subgraphs: 1\n")
    assert log_pipeline.multiple_subgraphs(several, False) is True
    assert log_pipeline.multiple_subgraphs(one, False) is False
    assert log_pipeline.multiple_subgraphs(one, True) is True


def test_the_prediction_is_for_the_build_the_log_names() -> None:
    from coralcheck.compiler.log import parse_log
    from coralcheck.edgetpu.target import target

    log = parse_log("Edge TPU Compiler version 2.0.267685300\n")
    version = log_pipeline.target_version(log, None)
    assert target(version).release.name == "2.0.267685300"  # not the newest 2.0
    assert log_pipeline.target_version(log, "16.0") == "16.0"


# ---------------------------------------------------------------------------------------------
# Console output without the per-op table (edgetpu_compiler without -s)
# ---------------------------------------------------------------------------------------------

NO_TABLE_LOG = "24_v16_transpose_otherwise_supported_TRUNCATED.log"  # 1 op on the TPU, 190 CPU


def hand_made(tpu: int, cpu: int) -> tuple[Summary, list[OpPlacement], list[str]]:
    """A prediction of `tpu` mapped ops followed by `cpu` ops on the CPU (one segment)."""
    ops = [
        OpPlacement(i, "TRANSPOSE", 1, "tpu" if i < tpu else "cpu", "Mapped to Edge TPU", "")
        if i < tpu
        else OpPlacement(i, "TRANSPOSE", 1, "cpu", "Operation not supported", "")
        for i in range(tpu + cpu)
    ]
    return summary_of(ops), ops, ["TRANSPOSE"] * len(ops)


@pytest.mark.parametrize(("tpu", "cpu", "agrees"), [(1, 190, True), (2, 189, False)])
def test_console_log_without_table_compares_the_totals(
    tpu: int,
    cpu: int,
    agrees: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 11: without -s the log has no rows; no op may be reported as "logged 0"."""
    log = need(LOGS / NO_TABLE_LOG)
    prediction = hand_made(tpu, cpu)
    monkeypatch.setattr(log_pipeline, "_predict", lambda path, runtime, compiler, *_: prediction)
    code, result = run_json(capsys, str(log), "--model", "model.tflite")
    assert result["op_table"] == "absent" and result["by_status"] == []
    assert result["agrees"] is agrees and code == (0 if agrees else 1)
    logged = {d["quantity"]: d["logged"] for d in result["by_total"]}
    assert logged == {"ops_total": 191, "ops_tpu": 1, "ops_cpu": 190, "tpu_segments": 1}
    c050 = [f["message"] for f in result["findings"] if f["code"] == "C050"]
    assert bool(c050) is not agrees
    assert all("TRANSPOSE" not in message and "logged 0" not in message for message in c050)

    assert main(["log", str(log), "--model", "model.tflite"]) == code
    text = capsys.readouterr().out
    assert "per-op statuses are not in this log" in text
    assert ("the prediction agrees with the log's totals" in text) is agrees
    if not agrees:
        assert "ops on the Edge TPU" in text and "TRANSPOSE" not in text


def test_a_cut_off_table_compares_only_the_listed_rows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """compiler-logs/17 lists one CONCATENATION row of 90 ops: nothing else is "logged 0"."""
    log = need(LOGS / "17_v2_0_old_header_format_TRUNCATED.log")
    ops = [
        OpPlacement(i, op, 1, "cpu" if op == "CONCATENATION" else "tpu", status, "")
        for i, (op, status) in enumerate(
            [("CONCATENATION", "More than one subgraph is not supported")] * 6
            + [("CONV_2D", "Mapped to Edge TPU")] * 39
            + [("RESHAPE", "More than one subgraph is not supported")] * 45
        )
    ]
    ops = [op._replace(placement="cpu") if op.opcode == "RESHAPE" else op for op in ops]
    names = [op.opcode for op in ops]
    summary = Summary(90, 39, 51, 1)
    monkeypatch.setattr(
        log_pipeline, "_predict", lambda path, runtime, compiler, *_: (summary, ops, names)
    )
    code, result = run_json(capsys, str(log), "--model", "model.tflite")
    assert result["op_table"] == "partial"
    assert [(d["operator"], d["predicted"], d["logged"]) for d in result["by_status"]] == [
        ("CONCATENATION", 6, 6)
    ]
    assert result["agrees"] is True and code == 0


def console_output(version: str, model: str, total: int, tpu: int, segments: int) -> str:
    """What edgetpu_compiler prints without -s (shared/edgetpu/facts.md §4.1; compiler-logs/24)."""
    lines = [
        f"Edge TPU Compiler version {version}",
        "",
        "Model compiled successfully in 120 ms.",
        "",
        f"Input model: {model}",
        "Input size: 1.00MiB",
        f"Output model: {model.removesuffix('.tflite')}_edgetpu.tflite",
        "Output size: 1.10MiB",
        "On-chip memory used for caching model parameters: 1.00MiB",
        "On-chip memory remaining for caching model parameters: 6.00MiB",
        "Off-chip memory used for streaming uncached model parameters: 0.00B",
        f"Number of Edge TPU subgraphs: {segments}",
        f"Total number of operations: {total}",
        f"Operation log: {model.removesuffix('.tflite')}_edgetpu.log",
        "",
    ]
    if tpu < total:
        lines += [
            "Model successfully compiled but not all operations are supported by the Edge TPU. "
            "A percentage of the model will instead run on the CPU, which is slower.",
            f"Number of operations that will run on Edge TPU: {tpu}",
            f"Number of operations that will run on CPU: {total - tpu}",
        ]
    return "\n".join([*lines, "See the operation log file for individual operation details.", ""])


def corpus_pairs_with_logs() -> list[dict[str, str]]:
    """The corpus pairs that have a compiler log, a source model and a compiled model here."""
    import csv

    pairs_csv = CORPUS / "pairs.csv"
    if not pairs_csv.is_file():
        pytest.skip("shared/corpus/pairs.csv is absent")
    with pairs_csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        row
        for row in rows
        if row["log_path"]
        and row["source_path"]
        and (CORPUS / row["log_path"]).is_file()
        and (CORPUS / row["source_path"]).is_file()
    ]


def test_console_output_of_corpus_pairs_agrees_where_the_op_log_does(tmp_path: Path) -> None:
    """For every corpus pair with a log: the same compile printed without -s (totals only, from
    the op log and the compiled model) is compared on its totals, never op by op, and agrees
    whenever the op-by-op comparison with the op log agrees."""
    from coralcheck.compiler.log import parse_log

    truth = json.loads((CORPUS / "groundtruth.json").read_text())
    pairs = corpus_pairs_with_logs()
    assert len(pairs) >= 20
    agreeing = 0
    for pair in pairs:
        source = str(CORPUS / pair["source_path"])
        oplog_path = CORPUS / pair["log_path"]
        oplog = parse_log(oplog_path.read_bytes())
        total = sum(row.count for row in oplog.rows)
        segments = truth[pair["compiled_path"]]["segments"]
        console = tmp_path / f"{pair['pair_id'].replace(':', '_')}.txt"
        console.write_text(
            console_output(
                oplog.compiler_version or "16.0.384591198",
                os.path.basename(source),
                total,
                oplog.ops_tpu or 0,
                segments,
            )
        )
        by_op = log_pipeline.log_report(str(oplog_path), oplog, source, None)
        by_total = log_pipeline.log_report(
            str(console), log_command.read_log(str(console)), source, None
        )
        assert by_total["op_table"] == "absent" and by_total["by_status"] == [], pair["pair_id"]
        counts = {d["quantity"]: (d["predicted"], d["logged"]) for d in by_total["by_total"]}
        assert counts["ops_total"] == (total, total), pair["pair_id"]
        if by_op["agrees"]:
            # Agreeing op by op means agreeing on the ops on the TPU and on the CPU.
            assert counts["ops_tpu"][0] == counts["ops_tpu"][1], pair["pair_id"]
            assert counts["ops_cpu"][0] == counts["ops_cpu"][1], pair["pair_id"]
        assert by_total["agrees"] is all(p == logged for p, logged in counts.values())
        agreeing += bool(by_total["agrees"])
    assert agreeing >= len(pairs) // 2
