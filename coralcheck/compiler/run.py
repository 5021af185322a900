"""Find and run the real `edgetpu_compiler` (x86-64 Linux only; never installed with coralcheck).

- `find_compiler(explicit)`: `--compiler PATH` (a bad explicit path is a `UsageError`), else
  `edgetpu_compiler` on PATH; None when there is none.
- `read_version(executable)`: `edgetpu_compiler --version` → "16.0.384591198" (None if it
  prints no version).
- `output_directory(compile_output)`: where the compiler writes: the user's `--compile-output`
  DIR (created if needed, checked writable), else a private temporary directory removed
  afterwards, so nothing is written next to the user's files.
- `run_compiler(executable, model_path, out_dir, options, version)`: one run, without a shell
  (list arguments; the model path is made absolute so no name is read as a flag), with `-s`,
  `--min_runtime_version` from `Options.runtime_version` (unless the user's flags set it),
  `--timeout_sec` for compilers ≥ 16, `--enable_multiple_subgraphs` with
  `Options.enable_multiple_subgraphs`, and a hard timeout of our own that kills the whole process
  group; then the console output and the `.log` are parsed with `coralcheck.compiler.log`.

`CompilerRun.to_dict()` is `ModelReport.compiler`:

- `available` (True), `executable`, `version` (from `--version`), `command` [argv],
  `returncode` (None when killed), `timed_out`, `duration_s`, `kept` (output kept in
  `--compile-output`), `output_dir`, `output_model`, `log_file` (paths only when kept),
  `succeeded` (a compiled model was written and no failure reported),
- from the console (or the `.log`): `compiler_version`, `tpu_subgraphs`, `ops_total`,
  `ops_tpu`, `ops_cpu`, `on_chip_used_bytes`, `off_chip_streamed_bytes`, `rows`
  [{operator, count, status, mapped}] (the `.log`'s table when the console has none),
- `failures` [{kind, code, message}], `more_failures` (how many other distinct failures the
  output named), `output_tail` [last lines of stdout/stderr when the run failed], and
  `log_matches_compiled` / `log_mismatches` [{operator, mapped, logged, real}] (set by the
  caller when the pair is valid: the log's per-type mapped/unmapped counts against the real
  placement read from the compiled model, `coralcheck.analyze.logcompare.log_vs_placement`).

When the compiler is missing, `missing_compiler_dict(problem)` gives {`available`: False,
`problem`, `install_hint`}.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coralcheck import registry
from coralcheck.compiler.failures import CompilerFailure
from coralcheck.compiler.log import parse_log
from coralcheck.compiler.process import MAX_OUTPUT_BYTES, Process, run_process
from coralcheck.compiler.records import CompilerLog
from coralcheck.errors import UsageError
from coralcheck.fileio import read_regular
from coralcheck.options import Options

COMPILER_NAME = "edgetpu_compiler"
VERSION_TIMEOUT_S = 30.0
TAIL_LINES = 20

# Flags whose values coralcheck sets; a user flag naming one of them replaces ours
# (the output directory is only ever set with --compile-output).
_OUT_DIR_FLAGS = ("-o", "--out_dir")
_RUNTIME_FLAGS = ("-m", "--min_runtime_version")
_TIMEOUT_FLAGS = ("-t", "--timeout_sec")
_MULTIPLE_SUBGRAPHS_FLAGS = ("-a", "--enable_multiple_subgraphs")


def find_compiler(explicit: str | None = None) -> str | None:
    """The compiler to run: `explicit` (must be an executable file), else the one on PATH."""
    if explicit:
        path = os.path.expanduser(explicit)
        if os.path.isdir(path):
            raise UsageError("--compiler", f"{explicit}: is a directory")
        if not os.path.exists(path):
            found = shutil.which(path)
            if found is None:
                raise UsageError("--compiler", f"{explicit}: no such file")
            return found
        if not os.access(path, os.X_OK):
            raise UsageError("--compiler", f"{explicit}: not executable")
        return os.path.abspath(path)
    return shutil.which(COMPILER_NAME)


def missing_compiler_dict(problem: str) -> dict[str, Any]:
    """`ModelReport.compiler` when the compiler could not be run."""
    return {"available": False, "problem": problem, "install_hint": registry.entry("C030")["fix"]}


def read_version(executable: str, timeout: float = VERSION_TIMEOUT_S) -> str | None:
    """`edgetpu_compiler --version` → its version ("16.0.384591198"), None if none printed.
    Raises `TimeoutError` when it gives no answer within `timeout` seconds."""
    try:
        done = run_process([executable, "--version"], tempfile.gettempdir(), timeout)
    except OSError:
        return None
    if done.timed_out:
        raise TimeoutError(f"{executable} --version gave no answer within {timeout:g} s")
    return parse_log(done.stdout + "\n" + done.stderr).compiler_version


def _major(version: str | None) -> int | None:
    head = (version or "").split(".", 1)[0]
    return int(head) if head.isdigit() and len(head) < 6 else None


def _sets(flags: tuple[str, ...], names: tuple[str, ...]) -> bool:
    """Whether a user flag sets one of the options in `names` (`-o DIR`, `--out_dir=DIR`)."""
    return any(f == n or f.startswith(n + "=") for f in flags for n in names)


def check_timeout(timeout: float) -> None:
    """`--compiler-timeout` must be a positive, finite number of seconds."""
    if not (math.isfinite(timeout) and timeout > 0):
        raise UsageError(
            "--compiler-timeout", f"must be a positive number of seconds, not {timeout}"
        )


def build_command(
    executable: str, model_path: str, out_dir: str, options: Options, version: str | None
) -> list[str]:
    """The argv of one compile: ours, the user's flags as they are, then the model."""
    check_timeout(options.compiler_timeout)
    flags = tuple(options.compiler_flags)
    if _sets(flags, _OUT_DIR_FLAGS):
        raise UsageError("--compiler-flag", "the output directory is set with --compile-output")
    argv = [executable, "--show_operations", f"--out_dir={out_dir}"]
    if not _sets(flags, _RUNTIME_FLAGS):
        argv.append(f"--min_runtime_version={options.runtime_version}")
    major = _major(version)
    if major is not None and major >= 16 and not _sets(flags, _TIMEOUT_FLAGS):
        argv.append(f"--timeout_sec={max(1, math.ceil(options.compiler_timeout))}")
    if options.enable_multiple_subgraphs and not _sets(flags, _MULTIPLE_SUBGRAPHS_FLAGS):
        argv.append("--enable_multiple_subgraphs")  # compile as the prediction assumes
    return [*argv, *flags, os.path.abspath(model_path)]


@contextlib.contextmanager
def output_directory(compile_output: str | None) -> Iterator[tuple[str, bool]]:
    """(directory, kept): `--compile-output DIR` (created, must be writable) or a temp dir."""
    if not compile_output:
        with tempfile.TemporaryDirectory(prefix="coralcheck-compile-") as tmp:
            yield tmp, False
        return
    path = os.path.abspath(os.path.expanduser(compile_output))
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise UsageError("--compile-output", f"{compile_output}: not a directory") from None
    except OSError as e:
        raise UsageError(
            "--compile-output", f"{compile_output}: cannot create: {e.strerror or e}"
        ) from None
    if not os.path.isdir(path):
        raise UsageError("--compile-output", f"{compile_output}: not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError("--compile-output", f"{compile_output}: not writable")
    yield path, True


@dataclass
class CompilerRun:
    """One compiler run and what it left (see the module docstring for `to_dict`)."""

    executable: str
    version: str | None
    command: list[str]
    process: Process
    output_dir: str
    kept: bool
    output_model: str | None = None
    log_file: str | None = None
    console: CompilerLog = field(default_factory=CompilerLog)
    oplog: CompilerLog | None = None
    # Set by the caller when the compiled model it wrote cannot be read.
    output_problem: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> CompilerLog:
        """The log with the op table: the console's (with -s), else the `.log` file's."""
        if not self.console.rows and self.oplog is not None and self.oplog.rows:
            return self.oplog
        return self.console

    def failures(self) -> list[CompilerFailure]:
        """Why the run failed (empty when it wrote a compiled model and reported no failure)."""
        found: list[CompilerFailure] = []
        for log in (self.console, self.oplog):
            for failure in log.failures if log is not None else ():
                if failure.kind not in [f.kind for f in found]:
                    found.append(failure)
        proc = self.process
        if proc.timed_out and "timeout" not in [f.kind for f in found]:
            found.insert(0, CompilerFailure("timeout", f"no result after {proc.duration_s:g} s"))
        if proc.flooded:
            found.insert(
                0,
                CompilerFailure(
                    "other", f"printed more than {MAX_OUTPUT_BYTES >> 20} MiB of output; stopped"
                ),
            )
        # Only the version printed says little when the exit status says more.
        if {f.kind for f in found} <= {"version_only"} and proc.returncode not in (0, None):
            found.append(CompilerFailure("other", f"exited with status {proc.returncode}"))
        if self.output_problem is not None:
            found.append(
                CompilerFailure("other", f"wrote an unreadable model: {self.output_problem}")
            )
        if not found and self.output_model is None:
            said = "" if self.console.recognised else " and printed nothing recognisable"
            found.append(CompilerFailure("other", f"wrote no compiled model{said}"))
        return found

    def to_dict(self) -> dict[str, Any]:
        log = self.log
        block = self.console.models[0] if self.console.models else None
        failures = self.failures()
        proc = self.process
        tail = (proc.stdout.strip().splitlines() + proc.stderr.strip().splitlines())[-TAIL_LINES:]
        return {
            "available": True,
            "executable": self.executable,
            "version": self.version,
            "command": list(self.command),
            "returncode": proc.returncode,
            "timed_out": proc.timed_out,
            "duration_s": proc.duration_s,
            "kept": self.kept,
            "output_dir": self.output_dir if self.kept else None,
            "output_model": self.output_model if self.kept else None,
            "log_file": self.log_file if self.kept else None,
            "succeeded": not failures,
            "compiler_version": self.console.compiler_version or log.compiler_version,
            "tpu_subgraphs": block.tpu_subgraphs if block else None,
            "ops_total": block.total_ops if block else None,
            "ops_tpu": log.ops_tpu,
            "ops_cpu": log.ops_cpu,
            "on_chip_used_bytes": block.on_chip_used.num_bytes
            if block and block.on_chip_used
            else None,
            "off_chip_streamed_bytes": block.off_chip_streamed.num_bytes
            if block and block.off_chip_streamed
            else None,
            "rows": [row.to_dict() for row in log.rows],
            "failures": [
                {
                    "kind": f.kind,
                    "code": registry.failure_code(f.kind),
                    "message": f.message,
                }
                for f in failures
            ],
            # distinct failures beyond the first 10 of the console and of the `.log`
            "more_failures": self.console.more_failures
            + (self.oplog.more_failures if self.oplog else 0),
            "output_tail": tail if failures else [],
            **self.extra,
        }


def _inside(directory: str, candidate: str | None) -> str | None:
    """`candidate` (relative to `directory`) when it is an existing regular file inside it
    (a symbolic link out of the directory, or a FIFO, is not the compiler's output)."""
    if not candidate:
        return None
    path = Path(directory, candidate).resolve()
    root = Path(directory).resolve()
    return str(path) if path.is_file() and root in path.parents else None


def _find_output(out_dir: str, stem: str, printed: str | None, suffix: str) -> str | None:
    """The compiler's output file: as printed, as named by convention, or the only candidate."""
    for candidate in (printed, f"{stem}_edgetpu{suffix}"):
        found = _inside(out_dir, candidate)
        if found:
            return found
    matches = [p.name for p in sorted(Path(out_dir).glob(f"*_edgetpu{suffix}"))]
    inside = [found for found in map(lambda name: _inside(out_dir, name), matches) if found]
    return inside[0] if len(inside) == 1 else None


def _read_text(path: str | None) -> str | None:
    """The first MAX_OUTPUT_BYTES of the `.log` (opened without blocking: never a FIFO)."""
    if path is None:
        return None

    try:
        data = read_regular(path, MAX_OUTPUT_BYTES)
    except OSError:
        return None
    return data[:MAX_OUTPUT_BYTES].decode("utf-8", errors="replace")


def outputs_of(model_path: str, out_dir: str) -> list[str]:
    """The files a compile of `model_path` writes into `out_dir` (`X_edgetpu.tflite/.log`)."""
    stem = Path(model_path).name.removesuffix(".tflite")
    return [os.path.join(out_dir, f"{stem}_edgetpu{suffix}") for suffix in (".tflite", ".log")]


def refuse_to_overwrite(model_path: str, out_dir: str) -> None:
    """`--compile-output DIR` never replaces the user's compiled model or log without `--force`
    (a model being checked in the same run may be that very file)."""
    for path in outputs_of(model_path, out_dir):
        if os.path.lexists(path):
            raise UsageError(
                path,
                "exists: --compile would overwrite it (pass --force, or another --compile-output)",
            )


def run_compiler(
    executable: str,
    model_path: str,
    out_dir: str,
    options: Options,
    version: str | None = None,
    kept: bool = False,
) -> CompilerRun:
    """Compile `model_path` into `out_dir` and collect what the compiler printed and wrote.

    Raises OSError when the executable cannot be started at all (the caller reports it).
    """
    argv = build_command(executable, model_path, out_dir, options, version)
    grace = min(10.0, max(1.0, 0.1 * options.compiler_timeout))
    process = run_process(argv, out_dir, options.compiler_timeout + grace)
    console = parse_log(process.stdout + "\n" + process.stderr)
    block = console.models[0] if console.models else None
    stem = Path(model_path).name.removesuffix(".tflite")
    run = CompilerRun(executable, version, argv, process, out_dir, kept, console=console)
    run.output_model = _find_output(out_dir, stem, block.output_model if block else None, ".tflite")
    run.log_file = _find_output(out_dir, stem, block.operation_log if block else None, ".log")
    text = _read_text(run.log_file)
    run.oplog = parse_log(text) if text is not None else None
    return run
