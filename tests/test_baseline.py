"""Baselines: known findings pass, new ones fail, and so do lost Edge TPU ops and new CPU ops."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, run_cli
from helpers.reports import partly_mapped

from coralcheck import baseline
from coralcheck.config import Config
from coralcheck.errors import UsageError
from coralcheck.outcome import judge
from coralcheck.report import Finding, OpPlacement, Summary


def round_trip(tmp_path: Path, *reports):  # type: ignore[no-untyped-def]
    path = tmp_path / "coralcheck-baseline.json"
    baseline.write(list(reports), str(path))
    return baseline.load(str(path)), path


def test_known_findings_pass_and_new_ones_fail(tmp_path: Path) -> None:
    model = partly_mapped(path=str(tmp_path / "m.tflite"))
    known_baseline, _ = round_trip(tmp_path, model)
    known, regressions = known_baseline.compare(model)
    assert known == frozenset({0, 1, 2})
    assert [(g.name, g.passed) for g in regressions] == [("baseline", True)]
    assert not judge(model, Config(fail_on="info"), known=known, regressions=regressions).failed

    new = Finding("CC555", "error", "a new problem", op=3, opcode="CONV_2D")
    later = model._replace(findings=[*model.findings, new])
    known, regressions = known_baseline.compare(later)
    assert known == frozenset({0, 1, 2})
    verdict = judge(later, Config(), known=known, regressions=regressions)
    assert verdict.failing == frozenset({3}) and verdict.failed


def test_findings_stay_known_when_ops_are_renumbered(tmp_path: Path) -> None:
    before = partly_mapped(path=str(tmp_path / "m.tflite"))
    known_baseline, _ = round_trip(tmp_path, before)
    after = partly_mapped(path=before.path, shift=4)  # four more ops in front
    assert after.findings[0].op == before.findings[0].op + 4
    assert known_baseline.compare(after)[0] == frozenset({0, 1, 2})


def test_a_second_identical_finding_is_new(tmp_path: Path) -> None:
    model = partly_mapped(path=str(tmp_path / "m.tflite"))
    known_baseline, _ = round_trip(tmp_path, model)
    twice = model._replace(findings=[*model.findings, model.findings[1]])
    assert known_baseline.compare(twice)[0] == frozenset({0, 1, 2})


def test_lost_tpu_ops_and_new_cpu_ops_are_regressions(tmp_path: Path) -> None:
    model = partly_mapped(path=str(tmp_path / "m.tflite"))
    known_baseline, _ = round_trip(tmp_path, model)
    ops = list(model.ops)
    ops[26] = ops[26]._replace(placement="cpu", status="Operation not supported")
    worse = model._replace(ops=ops, summary=model.summary._replace(ops_tpu=26, ops_cpu=4))
    _, regressions = known_baseline.compare(worse)
    assert [(g.passed, g.message) for g in regressions] == [
        (False, "Edge TPU ops dropped from 27 (baseline) to 26"),
        (False, "new CPU op: DEPTHWISE_CONV_2D runs on the CPU 1x (baseline: 0x)"),
    ]
    verdict = judge(worse, Config(fail_on="never"), known=frozenset(), regressions=regressions)
    assert verdict.failed

    # one more of an op type already on the CPU is new too
    extra = [*model.ops, OpPlacement(30, "ARG_MAX", 1, "cpu", "More than one subgraph", "")]
    more = model._replace(ops=extra, summary=Summary(31, 27, 4, 1))
    assert [g.message for g in known_baseline.compare(more)[1]] == [
        "new CPU op: ARG_MAX runs on the CPU 2x (baseline: 1x)"
    ]


def test_a_model_not_in_the_baseline_has_only_new_findings(tmp_path: Path) -> None:
    known_baseline, _ = round_trip(tmp_path, partly_mapped(path=str(tmp_path / "a.tflite")))
    other = partly_mapped(path=str(tmp_path / "b.tflite"))
    assert known_baseline.compare(other) == (frozenset(), [])


def test_the_file_is_stable_sorted_and_keyed_by_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = partly_mapped(path=str(tmp_path / "models" / "a.tflite"))
    b = partly_mapped(path=str(tmp_path / "b.tflite"))
    _, path = round_trip(tmp_path, b, a)
    text = path.read_text(encoding="utf-8")
    assert text == baseline.dumps([a, b], str(path))  # order of the run does not matter
    doc = json.loads(text)
    assert list(doc["models"]) == ["b.tflite", "models/a.tflite"]
    entry = doc["models"]["models/a.tflite"]
    assert entry["ops_tpu"] == 27 and entry["cpu_ops"] == {
        "ARG_MAX": 1,
        "QUANTIZE": 1,
        "RESIZE_BILINEAR": 1,
    }
    codes = [f["code"] for f in entry["findings"]]
    assert codes == sorted(codes)
    assert all("op" not in f for f in entry["findings"])  # no op index in the file
    # from another working directory, with a relative model path, the same model is found
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path / "models")
    relative = a._replace(path="a.tflite")
    assert baseline.load(str(path)).compare(relative)[0] == frozenset({0, 1, 2})


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such baseline file"),
        ("{not json", "invalid JSON"),
        ('{"models": {}}', "not a coralcheck baseline"),
        ('{"coralcheck_baseline": 1, "models": {"m": {"ops_tpu": 1}}}', "malformed baseline"),
    ],
)
def test_bad_baseline_files(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=problem):
        baseline.load(str(path))


def test_cli_bad_baseline_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("[]", encoding="utf-8")
    result = run_cli(str(FIXTURES / "demo_int8.tflite"), "--baseline", str(tmp_path / "b.json"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"coralcheck: error: {tmp_path / 'b.json'}: not a coralcheck baseline (version 1; write "
        "one with --write-baseline)"
    ]


def test_cli_write_then_check_against_the_baseline(tmp_path: Path) -> None:
    model = tmp_path / "model.tflite"
    shutil.copy(FIXTURES / "gelu_int8.tflite", model)
    base = tmp_path / "baseline.json"
    assert run_cli(str(model)).returncode == 1  # GELU does not map: an error
    written = run_cli(str(model), "--write-baseline", str(base))
    assert written.returncode == 0, written.stderr
    assert "coralcheck: wrote" in written.stderr
    again = run_cli(str(model), "--baseline", str(base), "--format", "json")
    assert again.returncode == 0, again.stdout
    findings = json.loads(again.stdout)["models"][0]["findings"]
    assert findings and all(f["known"] and not f["fails"] for f in findings)


def test_cli_fails_when_a_model_loses_edge_tpu_ops(tmp_path: Path) -> None:
    model = tmp_path / "model.tflite"
    shutil.copy(FIXTURES / "demo_int8.tflite", model)
    base = tmp_path / "baseline.json"
    assert run_cli(str(model), "--write-baseline", str(base)).returncode == 0
    shutil.copy(FIXTURES / "gelu_int8.tflite", model)  # same name, GELU sends ops to the CPU
    worse = run_cli(str(model), "--baseline", str(base), "--fail-on", "never", "--format", "json")
    assert worse.returncode == 1
    gates = json.loads(worse.stdout)["models"][0]["verdict"]["gates"]
    messages = [g["message"] for g in gates if not g["passed"]]
    assert any(m.startswith("Edge TPU ops dropped from") for m in messages)
    assert any(m.startswith("new CPU op: GELU") for m in messages)
