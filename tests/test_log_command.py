"""`coralcheck log FILE [--model X.tflite]`: committed compiler logs, checked without a compiler.

Inputs are the real logs in shared/corpus/logs/ and shared/edgetpu/compiler-logs/; expected
counts come from shared/corpus/groundtruth.json.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import CORPUS, REPO, run_cli

from coralcheck.cli import main
from coralcheck.commands import log as log_command
from coralcheck.model import load
from coralcheck.report import OpPlacement

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


@pytest.mark.parametrize("flip", [None, 0])
def test_comparison_with_a_hand_made_prediction(
    flip: int | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = need(CORPUS / "logs" / f"{YOLO8}_edgetpu.log")
    model = CORPUS / f"models/{YOLO8}.tflite"
    ops = predicted_like_the_log(model, log, flip)
    names = [op.log_name for op in load(model).main.operators]
    monkeypatch.setattr(log_command, "_predict", lambda path, runtime, compiler, *_: (ops, names))
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
    by_type, by_status = log_command.compare(log.rows, [], [])
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
    assert log_command.multiple_subgraphs(several, False) is True
    assert log_command.multiple_subgraphs(one, False) is False
    assert log_command.multiple_subgraphs(one, True) is True


def test_the_prediction_is_for_the_build_the_log_names() -> None:
    from coralcheck.compiler.log import parse_log
    from coralcheck.edgetpu.knowledge import target

    log = parse_log("Edge TPU Compiler version 2.0.267685300\n")
    version = log_command.target_version(log, None)
    assert target(version).release.name == "2.0.267685300"  # not the newest 2.0
    assert log_command.target_version(log, "16.0") == "16.0"
