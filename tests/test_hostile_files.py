"""Hostile files and names around the model (issue 12, items 5-8, 11-13, 16, 17): file names
that are not UTF-8, broken config and baseline files, files truncated while they are read (or
kept from it by a read lease),
symbolic-link loops, FIFOs, hard links, empty selections, a misbehaving compiler, a model
without its "TFL3" identifier.

Each case goes through the real CLI (a subprocess, or `main` in process where a subprocess
cannot set the scene up) and checks the contract: exit 0/1/2, one `coralcheck: error:` line
when it fails, no traceback, no hang, nothing of the user's overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from conftest import CORPUS, FIXTURES, REPO, cli_env, run_cli
from helpers import fuzzing
from helpers.compiler import SLIM, YOLO8
from helpers.tflite_builder import add_model, with_identifier

from coralcheck.cli import main

FLOAT_MODEL = add_model()  # float: Q001 and I001 findings, exit 1


def _run(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI with a strict UTF-8 stdout (as a CI job's, unlike a C.UTF-8 terminal's)."""
    env = cli_env() | {"PYTHONIOENCODING": "utf-8:strict"}
    return subprocess.run(
        [sys.executable, "-m", "coralcheck", *args],
        capture_output=True,
        timeout=timeout,
        env=env,
        cwd=cwd or REPO,
        check=False,
    )


def _one_error_line(result: subprocess.CompletedProcess, *words: str) -> str:
    err = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    assert result.returncode == 2, err
    assert err.count("\n") == 1 and err.startswith("coralcheck: error: "), err
    assert "Traceback" not in err and "internal error" not in err
    for word in words:
        assert word in err, err
    return err


# --- item 5: file names that are not UTF-8 -----------------------------------------------------

RAW_NAME = b"m\xff.tflite"


@pytest.fixture
def undecodable(tmp_path: Path) -> Path:
    """A directory holding a float model whose name is not UTF-8."""
    folder = tmp_path / "models"
    folder.mkdir()
    with open(os.path.join(os.fsencode(folder), RAW_NAME), "wb") as f:
        f.write(FLOAT_MODEL)
    return folder


@pytest.mark.parametrize("fmt", ["json", "sarif", "text", "markdown", "github", "junit"])
@pytest.mark.parametrize("to_file", [False, True], ids=["stdout", "-o"])
def test_undecodable_file_names_in_every_format(
    undecodable: Path, tmp_path: Path, fmt: str, to_file: bool
) -> None:
    out = tmp_path / f"report.{fmt}"
    args = [undecodable.name, "--format", fmt, *(["-o", str(out)] if to_file else [])]
    result = _run(*args, cwd=undecodable.parent)
    assert result.returncode == 1, result.stderr.decode()
    text = out.read_text(encoding="utf-8") if to_file else result.stdout.decode("utf-8")
    if fmt == "json":
        (model,) = json.loads(text)["models"]
        assert os.fsencode(model["path"]).endswith(RAW_NAME)  # the name read back exactly
    elif fmt == "sarif":
        (run,) = json.loads(text)["runs"]
        (artifact,) = run["artifacts"]
        assert unquote_to_bytes(artifact["location"]["uri"]).endswith(RAW_NAME)
    else:
        assert "m\\xff.tflite" in text


def test_undecodable_file_names_keep_their_baseline(undecodable: Path, tmp_path: Path) -> None:
    """Fingerprints hash the name's own bytes: the same on every run, found in the baseline."""
    baseline = tmp_path / "baseline.json"  # (beside the working directory: the same keys)
    wrote = _run(str(undecodable), "--write-baseline", str(baseline), cwd=tmp_path)
    assert wrote.returncode == 0, wrote.stderr.decode()
    recorded = json.loads(baseline.read_text(encoding="utf-8"))["models"]
    assert [os.fsencode(key) for key in recorded] == [b"models/" + RAW_NAME]
    stored = {f["fingerprint"] for f in next(iter(recorded.values()))["findings"]}
    assert stored
    again = _run(str(undecodable), "--baseline", str(baseline), "--format", "json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr.decode()
    (model,) = json.loads(again.stdout)["models"]
    assert {f["fingerprint"] for f in model["findings"]} == stored
    assert all(f["known"] for f in model["findings"])


# --- item 6: configuration and baseline files ---------------------------------------------------


CONFIGS = {
    "invalid-utf8": b'select = ["Q\xff"]\n',
    "nested-arrays": b"select = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "nested-tables": b"x = " + b"{a = " * 50_000 + b"1" + b"}" * 50_000 + b"\n",
    "huge-integer": b"max-cpu-ops = " + b"9" * 5_000 + b"\n",
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_broken_config_files_are_one_line(case: str, tmp_path: Path) -> None:
    config = tmp_path / "coralcheck.toml"
    config.write_bytes(CONFIGS[case])
    model = tmp_path / "m.tflite"
    model.write_bytes(FLOAT_MODEL)
    for args in ([str(model)], [str(model), "--config", str(config)]):  # found, and given
        _one_error_line(run_cli(*args), str(config), "invalid TOML")


def test_a_pyproject_whose_tool_is_not_a_table_is_not_a_config(tmp_path: Path) -> None:
    """`tool = "poetry"` in any pyproject.toml above the model (found by discovery)."""
    (tmp_path / "pyproject.toml").write_text('tool = "poetry"\n')
    (tmp_path / "coralcheck.toml").unlink(missing_ok=True)
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "m.tflite").write_bytes(FLOAT_MODEL)
    result = run_cli(str(sub / "m.tflite"))
    assert result.returncode == 1 and not result.stderr, result.stderr


BASELINES = {
    "nested": b"[" * 100_000 + b"]" * 100_000,
    "infinity": b'{"coralcheck_baseline": 1, "models": {"m.tflite": {"ops_total": Infinity, '
    b'"ops_tpu": 1, "cpu_ops": {}, "findings": []}}}',
    "1e400": b'{"coralcheck_baseline": 1, "models": {"m.tflite": {"ops_total": 1e400, '
    b'"ops_tpu": 1, "cpu_ops": {}, "findings": []}}}',
    "float-count": b'{"coralcheck_baseline": 1, "models": {"m.tflite": {"ops_total": 2.5, '
    b'"ops_tpu": 1, "cpu_ops": {}, "findings": []}}}',
    "huge-integer": b'{"coralcheck_baseline": 1, "models": {"m.tflite": {"ops_total": '
    + b"9" * 5_000
    + b', "ops_tpu": 1, "cpu_ops": {}, "findings": []}}}',
    "invalid-utf8": b'{"coralcheck_baseline": 1, "models": {"m\xff": {}}}',
}


@pytest.mark.parametrize("case", sorted(BASELINES))
def test_broken_baselines_are_one_line(case: str, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_bytes(BASELINES[case])
    model = tmp_path / "m.tflite"
    model.write_bytes(FLOAT_MODEL)
    _one_error_line(run_cli(str(model), "--baseline", str(baseline)), str(baseline))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_baseline_that_never_ends_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(FLOAT_MODEL)
    run = fuzzing.run_cli_measured([str(model), "--baseline", "/dev/zero"], timeout=30)
    assert run.exit_code == 2 and "not a regular file" in run.stderr
    assert run.rss_mb < 200


# --- item 7: a model truncated while it is read; --compile over the user's files ----------------


def _large(path: Path, data: bytes) -> None:
    """`data` followed by zeros (a sparse file) beyond the size the reader reads whole."""
    from coralcheck.model.reader import READ_WHOLE_BYTES

    path.write_bytes(data)
    os.truncate(path, READ_WHOLE_BYTES + (1 << 20))


@pytest.fixture
def forked_workers() -> None:
    import multiprocessing

    if multiprocessing.get_start_method() != "fork":
        pytest.skip("the fault is patched into the workers through fork")


@pytest.mark.usefixtures("forked_workers", "no_leases")
@pytest.mark.parametrize("fault", ["truncated", "signal"])
def test_a_worker_killed_by_sigbus_is_that_models_error(
    fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mapped model is truncated under the reader (a real SIGBUS in the worker), or its
    worker gets SIGBUS on every try: that model fails with one error (what the file is now, or
    that its worker was killed), the other model of the run is reported."""
    import faulthandler
    import signal

    from coralcheck.commands import workers
    from coralcheck.model import reader
    from coralcheck.options import Options
    from coralcheck.outcome import ModelFailure

    big, small = tmp_path / "big.tflite", tmp_path / "small.tflite"
    small.write_bytes(FLOAT_MODEL)
    parse = reader.parse

    def bus_error_under_the_reader(data, path):  # type: ignore[no-untyped-def]
        if path == str(big):
            faulthandler.disable()  # (pytest's, inherited: no traceback dump in the test log)
            if fault == "signal":
                os.kill(os.getpid(), signal.SIGBUS)
            os.truncate(path, 0)  # every page of the mapping is now past the end of the file
        return parse(data, path)

    monkeypatch.setattr(reader, "parse", bus_error_under_the_reader)
    for jobs in ([(str(big), Options())], [(str(big), Options()), (str(small), Options())]):
        _large(big, FLOAT_MODEL)
        results = workers.check_all(jobs)
        assert isinstance(results[0], ModelFailure)
        expected = workers.WORKER_DIED if fault == "signal" else "empty file (0 bytes)"
        assert results[0].problem == expected
        assert all(not isinstance(r, ModelFailure) for r in results[1:])


def _bus_error_when_reading(monkeypatch: pytest.MonkeyPatch, big: Path) -> None:
    """Reading `big` truncates it to 0 bytes under the reader's mapping: a real SIGBUS in the
    process that reads it (the retry then finds an empty file)."""
    import faulthandler

    from coralcheck.model import reader

    parse = reader.parse

    def truncated_under_the_reader(data, path):  # type: ignore[no-untyped-def]
        if path == str(big) and len(data) > reader.READ_WHOLE_BYTES:
            faulthandler.disable()  # (pytest's, inherited: no traceback dump in the test log)
            os.truncate(path, 0)
        return parse(data, path)

    monkeypatch.setattr(reader, "parse", truncated_under_the_reader)


@pytest.mark.usefixtures("no_leases")
def test_call_isolated_works_here_on_small_files_and_in_a_child_on_mapped_ones(
    tmp_path: Path,
) -> None:
    from coralcheck.errors import ModelError, UsageError
    from coralcheck.model import load
    from coralcheck.model.isolation import WORKER_DIED, call_isolated

    big, small = tmp_path / "big.tflite", tmp_path / "small.tflite"
    small.write_bytes(FLOAT_MODEL)
    _large(big, FLOAT_MODEL)

    def where_and_ops(path: str) -> tuple[int, int]:
        return os.getpid(), len(load(path).main.operators)

    assert call_isolated([str(small)], where_and_ops, str(small)) == (os.getpid(), 1)
    pid, ops = call_isolated([None, str(big)], where_and_ops, str(big))
    assert pid != os.getpid() and ops == 1

    def refuses(path: str) -> None:
        raise UsageError("--model", f"{path} is compiled: pass the source model")

    with pytest.raises(UsageError, match="is compiled") as raised:  # raised here, as it was
        call_isolated([str(big)], refuses, str(big))
    assert raised.value.path == "--model" and raised.value.exit_code == 2

    def killed(path: str) -> None:
        import faulthandler
        import signal

        faulthandler.disable()
        with open(tmp_path / "tries", "a") as f:
            f.write("x")
        os.kill(os.getpid(), signal.SIGBUS)

    with pytest.raises(ModelError) as died:  # (tried twice)
        call_isolated([str(big)], killed, str(big))
    tries = (tmp_path / "tries").read_text()
    assert (died.value.path, died.value.problem, tries) == (str(big), WORKER_DIED, "xx")


@pytest.mark.usefixtures("no_leases")
@pytest.mark.parametrize("command", ["compare", "log"])
def test_compare_and_log_fail_with_one_line_when_a_mapped_model_is_truncated(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`compare` and `log --model` read their models in a child process when they are mapped,
    as the lint does: a model truncated under the reader is its error (exit 2, one line), not
    the death of the program. Without truncation the big model's facts are the small one's."""
    big, small = tmp_path / "big.tflite", tmp_path / "small.tflite"
    source = (FIXTURES / "demo_int8.tflite").read_bytes()
    small.write_bytes(source)
    log = tmp_path / "demo.log"
    log.write_text(
        "Edge TPU Compiler version 16.0.384591198\n"
        "Model compiled successfully in 12 ms.\n\n"
        "Number of operations that will run on Edge TPU: 3\n"
        "Number of operations that will run on CPU: 0\n"
    )

    def run(model: Path) -> int:
        if command == "compare":
            return main(["compare", str(model), str(small), "--format", "json"])
        return main(["log", str(log), "--model", str(model), "--format", "json"])

    def facts(document: dict) -> object:
        if command == "compare":
            (row,) = [m for m in document["models"] if m["path"] != str(small)] or [
                document["models"][0]
            ]
            return {k: v for k, v in row.items() if k not in ("path", "file_size")}
        return {k: v for k, v in document.items() if k != "model"}

    expected = run(small), facts(json.loads(capsys.readouterr().out))
    _large(big, source)
    assert (run(big), facts(json.loads(capsys.readouterr().out))) == expected
    _bus_error_when_reading(monkeypatch, big)
    code = run(big)
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err == f"coralcheck: error: {big}: empty file (0 bytes)\n"


@pytest.mark.usefixtures("leases")
def test_a_writer_waits_until_the_leased_check_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mapped model checked here under a read lease: another process that opens it to write
    (and would truncate it) waits until the check is over, this process survives the SIGIO the
    kernel sends it meanwhile, and SIGIO is as it was afterwards."""
    import signal

    from coralcheck.commands import workers
    from coralcheck.model import reader
    from coralcheck.options import Options

    big = tmp_path / "big.tflite"
    _large(big, FLOAT_MODEL)
    opened = tmp_path / "opened"
    parse = reader.parse
    writers: list[subprocess.Popen] = []
    checked_at: list[float] = []

    def with_a_writer_meanwhile(data, path):  # type: ignore[no-untyped-def]
        code = (
            "import os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)\n"
            "open(sys.argv[2], 'w').write(repr(time.monotonic()))\n"
        )
        writers.append(subprocess.Popen([sys.executable, "-c", code, path, str(opened)]))
        time.sleep(1.0)  # (the writer starts, asks, and waits)
        assert not opened.exists() and writers[0].poll() is None
        model = parse(data, path)
        checked_at.append(time.monotonic())
        return model

    monkeypatch.setattr(reader, "parse", with_a_writer_meanwhile)
    before = signal.getsignal(signal.SIGIO)
    (report,) = workers.check_all([(str(big), Options())])
    assert writers[0].wait(timeout=30) == 0
    assert float(opened.read_text()) > checked_at[0]  # it got the file after the check
    assert report.summary.ops_total == 1 and os.path.getsize(big) == 0  # (then it truncated)
    assert signal.getsignal(signal.SIGIO) == before


@pytest.mark.usefixtures("leases")
def test_a_model_open_for_writing_elsewhere_is_checked_in_a_child(tmp_path: Path) -> None:
    """No read lease on a file someone has open for writing: the check runs in a child."""
    from coralcheck.commands import workers
    from coralcheck.model.isolation import leased
    from coralcheck.options import Options

    big = tmp_path / "big.tflite"
    _large(big, FLOAT_MODEL)
    with leased([str(big), None]) as files:
        assert files is not None and len(files) == 1
    calls: list[bool] = []
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    meanwhile = lambda: calls.append(bool(children.read_text().split()))  # noqa: E731
    writer = os.open(big, os.O_RDWR)
    try:
        with leased([str(big)]) as files:
            assert files is None
        (report,) = workers.check_all([(str(big), Options())], meanwhile=meanwhile)
    finally:
        os.close(writer)
    assert calls == [True] and report.summary.ops_total == 1


def test_a_large_model_compiled_meanwhile_is_checked_in_a_child(
    fake_compiler: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No lease with `--compile`: the real compiler can run for minutes, longer than the kernel
    lets a lease be held before it breaks it (the file could then be truncated under the
    mapping), so the model goes to a worker process as before."""
    from coralcheck.commands import workers
    from coralcheck.options import Options
    from coralcheck.report import ModelReport

    def no_lease_here(paths: object) -> None:
        raise AssertionError("a lease was taken for a check that runs the compiler")

    monkeypatch.setattr(workers, "leased", no_lease_here)
    big = tmp_path / "big.tflite"
    _large(big, (CORPUS / f"{SLIM}.tflite").read_bytes())
    calls: list[bool] = []
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    meanwhile = lambda: calls.append(bool(children.read_text().split()))  # noqa: E731
    options = Options(compile=True, compile_output=str(tmp_path / "out"))
    (report,) = workers.check_all([(str(big), options)], meanwhile=meanwhile)
    assert isinstance(report, ModelReport) and calls == [True]
    assert report.compiler is not None  # (the fake compiler ran, in the child)


@pytest.mark.usefixtures("leases")
def test_only_the_leased_file_is_mapped_not_one_renamed_over_it(tmp_path: Path) -> None:
    """`refuse_mapping(but=...)` names files by inode: a file put in the leased one's place
    meanwhile is refused a mapping (the caller then checks it in a child)."""
    from coralcheck.model import load
    from coralcheck.model.isolation import leased
    from coralcheck.model.reader import MappingRefused, refuse_mapping

    big, other = tmp_path / "big.tflite", tmp_path / "other.tflite"
    _large(big, FLOAT_MODEL)
    _large(other, FLOAT_MODEL)
    with leased([str(big)]) as files:
        assert files is not None
        with refuse_mapping(but=files):
            assert len(load(big).main.operators) == 1
            os.replace(other, big)
            with pytest.raises(MappingRefused):
                load(big)
    with refuse_mapping(), pytest.raises(MappingRefused):
        load(big)


def _truncate_and_restore(path: Path, data: bytes, large: bool, stop: threading.Event) -> None:
    while not stop.is_set():
        os.truncate(path, 0)
        time.sleep(0.002)
        if large:
            _large(path, data)
        else:
            path.write_bytes(data)
        time.sleep(0.004)


@pytest.mark.parametrize("large", [False, True], ids=["read-whole", "mapped"])
def test_a_model_truncated_again_and_again_while_linted(tmp_path: Path, large: bool) -> None:
    """Another process truncates and rewrites the model during the lint (was: 13 of 30 runs
    killed by SIGBUS, or BrokenProcessPool): every run exits 0/1/2, at most one error line."""
    from helpers.hostile import fan_out

    data = fan_out(2_000)  # ~150 KB: the reader takes a while over it
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    other = tmp_path / "other.tflite"
    other.write_bytes(FLOAT_MODEL)
    stop = threading.Event()
    writer = threading.Thread(target=_truncate_and_restore, args=(path, data, large, stop))
    writer.start()
    codes = []
    try:
        for run in range(12):
            args = [str(path)] if run % 2 else [str(path), str(other)]
            result = run_cli(*args, "--format", "json", timeout=60)
            assert result.returncode in (0, 1, 2), result.stderr
            assert result.stderr.count("\n") <= 1 and "internal error" not in result.stderr
            codes.append(result.returncode)
    finally:
        stop.set()
        writer.join()
    assert codes


def test_compile_output_never_overwrites_the_users_compiled_model(
    fake_compiler: Path,
    tmp_path: Path,
) -> None:
    """`coralcheck DIR --compile --compile-output DIR` with x.tflite and x_edgetpu.tflite in
    DIR: the compile of x.tflite would rewrite x_edgetpu.tflite while it is being checked."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copyfile(CORPUS / f"{SLIM}.tflite", folder / "x.tflite")
    shutil.copyfile(CORPUS / f"{SLIM}_edgetpu.tflite", folder / "x_edgetpu.tflite")
    (folder / "x_edgetpu.tflite").write_bytes(b"mine" + (folder / "x_edgetpu.tflite").read_bytes())
    before = hashlib.sha256((folder / "x_edgetpu.tflite").read_bytes()).hexdigest()
    args = [str(folder), "--compile", "--compile-output", str(folder), "--format", "json"]
    code = main(args)
    assert code == 2
    after = hashlib.sha256((folder / "x_edgetpu.tflite").read_bytes()).hexdigest()
    assert after == before
    assert main([*args, "--force"]) in (0, 1, 2)
    assert hashlib.sha256((folder / "x_edgetpu.tflite").read_bytes()).hexdigest() != before


# --- item 8: a glob through a symbolic-link loop ------------------------------------------------


def test_a_glob_through_symlink_loops_ends(tmp_path: Path) -> None:
    tree = tmp_path / "dir" / "a" / "b"
    tree.mkdir(parents=True)
    (tmp_path / "dir" / "a" / "m.tflite").write_bytes(FLOAT_MODEL)
    for name in ("up", "up2", "up3"):
        (tree / name).symlink_to("../..")
    result = run_cli(str(tmp_path / "dir" / "**" / "*.tflite"), "--format", "json", timeout=30)
    assert result.returncode == 1, result.stderr
    (model,) = json.loads(result.stdout)["models"]
    assert model["path"].endswith("dir/a/m.tflite")


# --- item 11: FIFOs and hanging compilers -------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / "m_edgetpu.log"
    os.mkfifo(path)
    return path


def test_log_of_a_fifo_does_not_block(fifo: Path) -> None:
    _one_error_line(run_cli("log", str(fifo), timeout=20), str(fifo), "not a regular file")


def test_baseline_fifo_does_not_block(fifo: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(FLOAT_MODEL)
    result = run_cli(str(model), "--baseline", str(fifo), timeout=20)
    _one_error_line(result, str(fifo), "not a regular file")


class Compile:
    """`coralcheck MODEL --compile ... --format json` in process, with the stand-in compiler
    in a fault mode (tests/fake_compiler): `compile(mode, source, *args)` copies the corpus
    model `source` and returns (exit code, the model's JSON report, seconds)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
        self.tmp_path, self.monkeypatch, self.capsys = tmp_path, monkeypatch, capsys

    def __call__(self, mode: str, source: str, *args: str) -> tuple[int, dict, float]:
        self.monkeypatch.setenv("FAKE_EDGETPU_MODE", mode)
        model = self.tmp_path / "x.tflite"
        shutil.copyfile(CORPUS / f"{source}.tflite", model)
        start = time.monotonic()
        code = main([str(model), "--compile", *args, "--format", "json"])
        seconds = time.monotonic() - start
        (report,) = json.loads(self.capsys.readouterr().out)["models"]
        return code, report, seconds


@pytest.fixture
def compile_with(
    fake_compiler: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Compile:
    return Compile(tmp_path, monkeypatch, capsys)


def test_a_fifo_left_as_the_compiler_log_is_not_read(compile_with: Compile) -> None:
    code, report, seconds = compile_with("fifo-log", YOLO8, "--compiler-timeout", "20")
    assert seconds < 20
    assert code in (0, 1) and report["compiler"]["output_model"] is None  # (a temp dir)
    assert report["compiler"]["ops_tpu"] is not None  # from the console


def test_the_version_probe_keeps_the_compiler_timeout(compile_with: Compile) -> None:
    """A compiler that hangs on --version: 3 s with --compiler-timeout 3 (was 34 s)."""
    _, report, seconds = compile_with("version-hang", YOLO8, "--compiler-timeout", "3")
    assert seconds < 10
    assert report["compiler"]["available"] is False
    assert "--version gave no answer within 3 s" in report["compiler"]["problem"]


def test_twenty_thousand_compiler_errors_through_compile(compile_with: Compile) -> None:
    """Item 4 through `--compile`: 10 failures become findings, the others are counted."""
    code, report, seconds = compile_with("many-errors", SLIM)
    assert code == 1 and seconds < 10
    assert report["compiler"]["more_failures"] == 20_000 - 10
    assert len([f for f in report["findings"] if f["code"] == "C040"]) <= 10


# --- item 12: a hard link to the model ----------------------------------------------------------


@pytest.mark.parametrize("flag", ["-o", "--write-baseline"])
def test_a_hard_link_to_the_model_is_not_overwritten(tmp_path: Path, flag: str) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(FLOAT_MODEL)
    link = tmp_path / "r.txt"
    os.link(model, link)
    _one_error_line(run_cli(str(model), flag, str(link)), str(link), "refusing to overwrite")
    assert model.read_bytes() == FLOAT_MODEL


# --- item 13: an empty selection ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["", ",", " , "])
def test_an_empty_select_flag_is_a_usage_error(tmp_path: Path, value: str) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(FLOAT_MODEL)
    _one_error_line(run_cli(str(model), "--select", value), "--select", "is empty")


def test_an_empty_select_list_in_the_config_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "coralcheck.toml").write_text("select = []\n")
    model = tmp_path / "m.tflite"
    model.write_bytes(FLOAT_MODEL)
    _one_error_line(run_cli(str(model)), "coralcheck.toml", "select is empty")


# --- item 16: what the compiler leaves, and a stdout that cannot be written -----------------------


def test_the_output_fallback_does_not_follow_a_link_out_of_the_directory(
    compile_with: Compile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign = tmp_path / "elsewhere_edgetpu.tflite"
    shutil.copyfile(CORPUS / f"{SLIM}_edgetpu.tflite", foreign)
    monkeypatch.setenv("FAKE_EDGETPU_LINK_TARGET", str(foreign))
    out = tmp_path / "out"
    _, report, _ = compile_with("symlink-output", SLIM, "--compile-output", str(out))
    assert (out / "other_edgetpu.tflite").is_symlink()  # the stand-in did leave its link
    assert report["compiled"] is None  # the foreign file was not read as the compiled model
    assert report["compiler"]["output_model"] is None
    assert report["compiler"]["succeeded"] is False


def test_a_compiler_that_floods_its_output_is_stopped(compile_with: Compile) -> None:
    """Its output is read through a pipe, at most 4 MiB kept (was: a temp file, 3 GB in 5 s)."""
    _, report, seconds = compile_with("flood", SLIM, "--compiler-timeout", "60")
    assert seconds < 30
    assert any("printed more than 4 MiB" in f["message"] for f in report["compiler"]["failures"])


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", [[], ["log"]])
def test_a_full_stdout_is_one_error_line(command: list[str]) -> None:
    target = [str(FIXTURES / "demo_int8.tflite")]
    if command:
        logs = sorted((CORPUS.parent / "edgetpu" / "compiler-logs").glob("*"))
        if not logs:
            pytest.skip("no compiler logs here")
        target = [str(logs[0])]
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "coralcheck", *command, *target],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            timeout=60,
            check=False,
        )
    _one_error_line(result, "<stdout>", "No space left on device")


# --- item 17: a model without its identifier ----------------------------------------------------


def _without_identifier(identifier: bytes) -> bytes:
    return with_identifier(FLOAT_MODEL, identifier)


@pytest.mark.parametrize("identifier", [b"TFL2", b"\x00\xffAB"])
def test_a_wrong_identifier_is_an_error_finding(identifier: bytes) -> None:
    from coralcheck.api import check

    findings = check_findings(check, _without_identifier(identifier))
    (g005,) = [f for f in findings if f.code == "G005"]
    shown = identifier.decode("ascii", "backslashreplace")
    assert g005.severity == "error" and f"is '{shown}', not 'TFL3'" in g005.message


def check_findings(check, data: bytes):  # type: ignore[no-untyped-def]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(data)
        return check(path).models[0].findings


def test_no_identifier_finding_on_real_models() -> None:
    from coralcheck.api import check

    for path in [*FIXTURES.glob("*.tflite"), *sorted(CORPUS.glob("models/*/*.tflite"))[:20]]:
        assert "G005" not in {f.code for f in check(path).models[0].findings}, path


def test_a_compiled_model_with_a_wrong_identifier_gets_the_finding_too() -> None:
    compiled = CORPUS / "models" / "coral_test_data_grouper" / "split_concat_edgetpu.tflite"
    if not compiled.is_file():
        pytest.skip("the shared corpus is not here")
    from coralcheck.api import check

    findings = check_findings(check, with_identifier(compiled.read_bytes(), b"XXXX"))
    assert "G005" in {f.code for f in findings}


@pytest.mark.litert
def test_litert_refuses_a_model_without_the_identifier(tmp_path: Path) -> None:
    """The evidence for G005's severity: TFLite does not load such a file."""
    from ai_edge_litert.interpreter import Interpreter

    good, bad = tmp_path / "good.tflite", tmp_path / "bad.tflite"
    good.write_bytes(FLOAT_MODEL)
    bad.write_bytes(_without_identifier(b"TFL2"))
    Interpreter(model_path=str(good)).allocate_tensors()
    with pytest.raises(ValueError, match="not a valid Flatbuffer"):
        Interpreter(model_path=str(bad))
