"""`--compile` end to end through the real CLI, with a stand-in `edgetpu_compiler` on PATH.

The stand-in (tests/fake_compiler/edgetpu_compiler.py) answers like the real compiler 16.0 on
corpus models: it copies the real compiled twin, the real recorded `.log` and prints the real
console layout. Expected values come from shared/corpus/groundtruth.json and the recorded logs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from conftest import CORPUS, run_cli
from helpers.compiler import LOGS, SLIM, YOLO5, YOLO8

from coralcheck.checks.compiler import compiler_failure
from coralcheck.cli import main
from coralcheck.compiler.log import parse_log
from coralcheck.compiler.run import build_command
from coralcheck.options import Options


def calls(argv_log: Path) -> list[list[str]]:
    if not argv_log.exists():
        return []
    return [json.loads(line) for line in argv_log.read_text().splitlines()]


def user_copy(tmp_path: Path, model: str, name: str) -> Path:
    """The corpus model copied to a user directory under an awkward name."""
    folder = tmp_path / "my models $(touch pwned); `x` & y"
    folder.mkdir()
    path = folder / name
    shutil.copyfile(CORPUS / f"{model}.tflite", path)
    return path


def lint_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main([*args, "--format", "json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    (model,) = json.loads(captured.out)["models"]
    return code, model


def truth_of(model: str) -> dict:
    return json.loads((CORPUS / "groundtruth.json").read_text())[f"{model}_edgetpu.tflite"]


@pytest.mark.parametrize("model", [YOLO8, YOLO5, SLIM])
def test_compile_end_to_end(
    model: str,
    fake_compiler: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = user_copy(tmp_path, model, "model with spaces;rm -rf ~.tflite")
    _, report = lint_json(
        capsys, str(path), "--compile", "--runtime-version", "13", "--compiler-flag=-a"
    )
    truth = truth_of(model)
    compiler = report["compiler"]
    assert compiler["available"] and compiler["succeeded"], compiler
    assert compiler["version"] == "16.0.384591198"
    assert (compiler["ops_tpu"], compiler["ops_cpu"]) == (truth["tpu_ops"], truth["cpu_ops"])
    if model in LOGS:  # the table printed with -s is the recorded log's
        logged = parse_log((CORPUS / f"{LOGS[model]}_edgetpu.log").read_text())
        assert compiler["rows"] == [row.to_dict() for row in logged.rows]
        assert compiler["log_matches_compiled"] is True
    real = report["compiled"]["placement"]
    assert (real["ops_tpu"], real["ops_cpu"]) == (truth["tpu_ops"], truth["cpu_ops"])
    assert report["compiled"]["origin"] == "compiler"
    if report["ops"]:  # the prediction exists: the diff is exactly where it is wrong
        predicted = {op["index"]: op["placement"] for op in report["ops"]}
        expected = [i for i, _, p in truth["per_op"] if predicted[i] != p]
        assert [d["index"] for d in report["diff"]] == expected
    else:
        assert report["diff"] is None
    # The compiler got our flags and the user's, and the model path intact (no shell).
    (argv,) = [c for c in calls(fake_compiler) if "--version" not in c]
    assert argv[-1] == str(path)
    assert "--show_operations" in argv and "--min_runtime_version=13" in argv
    assert "-a" in argv and any(a.startswith("--timeout_sec=") for a in argv)
    # Nothing was written next to the user's model, and no shell ran the metacharacters.
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert not (Path.cwd() / "pwned").exists() and not (path.parent / "pwned").exists()


def _multiple_subgraph_pair() -> tuple[str, dict]:
    """The smallest corpus pair compiled with -a (several Edge TPU segments)."""
    truth = json.loads((CORPUS / "groundtruth.json").read_text())
    pairs = [e for e in truth.values() if e.get("usable") and e["segments"] > 1]
    if not pairs:
        pytest.skip("no pair compiled with -a in the corpus")
    entry = min(pairs, key=lambda e: len(e["per_op"]))
    return entry["source"].removesuffix(".tflite"), entry


def test_compile_with_multiple_subgraphs_passes_the_flag_and_agrees_with_the_compiler(
    fake_compiler: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, entry = _multiple_subgraph_pair()
    path = user_copy(tmp_path, model, "forest.tflite")
    _, report = lint_json(capsys, str(path), "--compile", "-a")
    (argv,) = [c for c in calls(fake_compiler) if "--version" not in c]
    assert "--enable_multiple_subgraphs" in argv
    assert report["diff"] == []  # every op as the real -a compile placed it
    assert report["summary"]["tpu_segments"] == len(report["segments"]) == entry["segments"]
    assert report["compiled"]["tpu_segments"] == entry["segments"]
    # Predicted for the compiler without -a, the ops after the first CPU op disagree.
    _, single = lint_json(capsys, str(path), "--compile")
    assert single["diff"] and single["summary"]["tpu_segments"] == 1


def test_compile_output_keeps_the_compiler_files(
    fake_compiler: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = user_copy(tmp_path, YOLO8, "yolo.tflite")
    out = tmp_path / "out dir"
    _, report = lint_json(capsys, str(path), "--compile", "--compile-output", str(out))
    assert sorted(p.name for p in out.iterdir()) == ["yolo_edgetpu.log", "yolo_edgetpu.tflite"]
    assert report["compiler"]["kept"] is True
    assert report["compiler"]["output_model"] == str(out / "yolo_edgetpu.tflite")
    assert report["compiled"]["path"] == str(out / "yolo_edgetpu.tflite")


def test_compile_through_a_subprocess(fake_compiler: Path, tmp_path: Path) -> None:
    path = user_copy(tmp_path, SLIM, "slim.tflite")
    result = run_cli(str(path), "--compile", "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    (model,) = json.loads(result.stdout)["models"]
    assert model["compiled"]["placement"]["ops_cpu"] == 2


def test_missing_compiler_is_a_one_line_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (CORPUS / f"{SLIM}.tflite").exists():
        pytest.skip("the shared corpus is not here")
    monkeypatch.setenv("PATH", str(tmp_path))  # no edgetpu_compiler anywhere
    code, report = lint_json(capsys, str(CORPUS / f"{SLIM}.tflite"), "--compile")
    assert code != 2
    (finding,) = [f for f in report["findings"] if f["code"] == "C030"]
    assert finding["severity"] == "warning" and "\n" not in finding["message"]
    assert "not found" in finding["message"]
    for needle in ("apt", "edgetpu-compiler", "x86-64 Linux"):
        assert needle in finding["fix"]
    assert report["compiler"]["available"] is False
    assert report["summary"]["ops_total"] == 84  # the prediction is still reported


def test_explicit_compiler_path_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (CORPUS / f"{SLIM}.tflite").exists():
        pytest.skip("the shared corpus is not here")
    code = main([str(CORPUS / f"{SLIM}.tflite"), "--compile", "--compiler", str(tmp_path / "no")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--compiler" in err and "no such file" in err


def test_a_compiler_that_cannot_execute(
    fake_compiler: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ARM machine with the x86-64 binary: exec format error → a warning, not a crash."""
    junk = tmp_path / "edgetpu_compiler_x86"
    junk.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 64)
    junk.chmod(0o755)
    code, report = lint_json(
        capsys, str(CORPUS / f"{SLIM}.tflite"), "--compile", "--compiler", str(junk)
    )
    assert code != 2
    (finding,) = [f for f in report["findings"] if f["code"] == "C030"]
    assert "could not be run" in finding["message"]


@pytest.mark.parametrize(
    ("mode", "message"),
    [("exit", "ERROR: simulated crash"), ("exit-silent", "exited with status 3")],
)
def test_nonzero_exit(
    mode: str,
    message: str,
    fake_compiler: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FAKE_EDGETPU_MODE", mode)
    _, report = lint_json(capsys, str(CORPUS / f"{SLIM}.tflite"), "--compile")
    (finding,) = [f for f in report["findings"] if f["code"] == "C040"]
    assert message in finding["message"] and finding["severity"] == "error"
    assert report["compiler"]["succeeded"] is False and report["compiler"]["returncode"] == 3
    assert "Edge TPU Compiler version" in report["compiler"]["output_tail"][0]
    assert report["compiled"] is None


def test_timeout_kills_the_compiler_and_its_children(
    fake_compiler: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "hang")
    monkeypatch.setenv("FAKE_EDGETPU_PIDFILE", str(pidfile))
    start = time.monotonic()
    _, report = lint_json(
        capsys, str(CORPUS / f"{SLIM}.tflite"), "--compile", "--compiler-timeout", "0.5"
    )
    assert time.monotonic() - start < 15
    assert report["compiler"]["timed_out"] is True
    (finding,) = [f for f in report["findings"] if f["code"] == "C037"]
    assert finding["severity"] == "error"
    pid = int(pidfile.read_text())
    for _ in range(50):  # the grandchild was killed with the process group (maybe a zombie)
        status = Path(f"/proc/{pid}/status")
        if not status.exists() or "State:\tZ" in status.read_text():
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {pid} still running")


def test_garbage_output(
    fake_compiler: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "garbage")
    _, report = lint_json(capsys, str(CORPUS / f"{SLIM}.tflite"), "--compile")
    (finding,) = [f for f in report["findings"] if f["code"] == "C040"]
    assert "wrote no compiled model and printed nothing recognisable" in finding["message"]


def test_unreadable_compiled_output(
    fake_compiler: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "corrupt-output")
    code, report = lint_json(capsys, str(CORPUS / f"{SLIM}.tflite"), "--compile")
    assert code != 2  # the compiler's fault, not the user's input
    (finding,) = [f for f in report["findings"] if f["code"] == "C040"]
    assert "wrote an unreadable model" in finding["message"]
    assert report["compiler"]["succeeded"] is False


@pytest.mark.parametrize(
    ("recorded", "code", "fix_word"),
    [
        ("12_v14_1_model_not_quantized.log", "C031", "representative_dataset"),
        ("14_v16_didnt_find_op_exp_v2.log", "C032", "older TensorFlow"),
        ("10_v14_1_internal_compiler_error.log", "C034", "Retry"),
        ("07_v16_error_large_activation_tensors.log", "C035", "search_delegate"),
        ("06_v16_error_dynamic_sized_tensors.log", "C036", "batch 1"),
        ("15_v15_num_segments_prints_version_only.log", "C038", "16.0"),
    ],
)
def test_recorded_compiler_failures_become_findings(
    recorded: str,
    code: str,
    fix_word: str,
    fake_compiler: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FAKE_EDGETPU_MODE", f"recorded:{recorded}")
    _, report = lint_json(capsys, str(CORPUS / f"{SLIM}.tflite"), "--compile")
    found = [f for f in report["findings"] if f["code"] == code]
    assert found, report["findings"]
    assert fix_word in found[0]["fix"] and found[0]["severity"] == "error"
    assert report["compiler"]["failures"][0]["code"] == code


def test_unwritable_compile_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not (CORPUS / f"{SLIM}.tflite").exists():
        pytest.skip("the shared corpus is not here")
    blocker = tmp_path / "a file"
    blocker.write_text("")
    args = [str(CORPUS / f"{SLIM}.tflite"), "--compile", "--compiler", sys.executable]
    assert main([*args, "--compile-output", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--compile-output" in err


def test_output_dir_flag_belongs_to_compile_output(
    fake_compiler: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [str(CORPUS / f"{SLIM}.tflite"), "--compile", "--compiler-flag=-o", "--compiler-flag=/tmp"]
    )
    assert code == 2 and "--compile-output" in capsys.readouterr().err


@pytest.mark.parametrize(("version", "timeout_flag"), [("14.1.317412892", False), (None, False)])
def test_older_or_unknown_compilers_get_no_timeout_flag(
    version: str | None,
    timeout_flag: bool,
    fake_compiler: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if version:
        monkeypatch.setenv("FAKE_EDGETPU_VERSION", version)
    else:
        monkeypatch.setenv("FAKE_EDGETPU_MODE", "bad-version")
    _, report = lint_json(capsys, str(CORPUS / f"{SLIM}.tflite"), "--compile")
    (argv,) = [c for c in calls(fake_compiler) if "--version" not in c]
    assert any(a.startswith("--timeout_sec") for a in argv) is timeout_flag
    assert report["compiler"]["succeeded"] is True
    assert report["compiler"]["version"] == version


def test_command_keeps_user_flags_and_makes_paths_absolute(tmp_path: Path) -> None:
    options = Options(runtime_version=12, compiler_flags=("-m", "10", "--search_delegate"))
    argv = build_command("edgetpu_compiler", "-weird.tflite", str(tmp_path), options, "16.0.1")
    assert argv[-1] == os.path.abspath("-weird.tflite")  # never read as a flag
    assert not any(a.startswith("--min_runtime_version") for a in argv)  # the user's -m wins
    assert argv[-4:-1] == ["-m", "10", "--search_delegate"]


@pytest.mark.parametrize("timeout", ["nan", "inf", "0", "-5"])
def test_bad_timeouts_are_usage_errors(
    timeout: str, fake_compiler: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([str(CORPUS / f"{SLIM}.tflite"), "--compile", "--compiler-timeout", timeout])
    err = capsys.readouterr().err
    assert code == 2 and "--compiler-timeout" in err and err.count("\n") == 1


def test_unable_to_open_output_maps_to_c039() -> None:
    finding = compiler_failure("unable_to_open_output", "Unable to open output file")
    assert finding.code == "C039" and "writable" in finding.fix
    assert compiler_failure("something new", "odd").code == "C040"


def test_compile_diffs_against_the_prediction(
    fake_compiler: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a (hand-made, all-TPU) prediction the diff is exactly the ops the compiler left on
    the CPU, each with the log's status where the log gives its op type only one."""
    import coralcheck.pipeline.source
    from coralcheck.report import OpPlacement

    real_analyze = coralcheck.pipeline.source.analyze

    def all_on_tpu(model, options):  # type: ignore[no-untyped-def]
        report = real_analyze(model, options)
        report.ops = [
            OpPlacement(op.index, op.opcode, op.version, "tpu", "Mapped to Edge TPU", "")
            for op in model.main.operators
        ]
        return report

    monkeypatch.setattr(coralcheck.pipeline.source, "analyze", all_on_tpu)
    _, report = lint_json(capsys, str(CORPUS / f"{YOLO8}.tflite"), "--compile")
    truth = truth_of(YOLO8)
    cpu = [i for i, _, p in truth["per_op"] if p == "cpu"]
    assert [d["index"] for d in report["diff"]] == cpu
    assert all(d["predicted"] == "tpu" and d["actual"] == "cpu" for d in report["diff"])
    by_op = {d["opcode"]: d["actual_status"] for d in report["diff"]}
    # yolov8n's log: SOFTMAX has one non-mapped status, CONCATENATION two (so none is named).
    assert by_op["SOFTMAX"] == "More than one subgraph is not supported"
    assert by_op["CONCATENATION"] is None
    (c021,) = [f for f in report["findings"] if f["code"] == "C021"]
    assert f"{len(cpu)} op(s)" in c021["message"]
