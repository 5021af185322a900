"""Check TFLite models for the Edge TPU: placement prediction, findings, fixes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coralcheck.config import FAIL_ON
from coralcheck.options import DEFAULT_COMPILER_VERSION, DEFAULT_RUNTIME_VERSION, Options

MODEL_SUFFIX = ".tflite"


def register(parser: argparse.ArgumentParser) -> None:
    from coralcheck.render import FORMATS

    parser.add_argument(
        "paths",
        nargs="+",
        metavar="MODEL",
        help=".tflite files, directories (searched for *.tflite, any case) or globs",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--format", default="text", choices=FORMATS, help="report format (default: text)"
    )
    out.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the report to FILE (missing directories are made)",
    )
    out.add_argument(
        "-v", "--verbose", action="store_true", help="show every op with its tensor shapes"
    )
    out.add_argument(
        "--statistics",
        action="store_true",
        help="show the number of findings per rule instead of the report",
    )
    rules = parser.add_argument_group("rules and pass/fail")
    rules.add_argument(
        "--select",
        metavar="CODES",
        action="append",
        help="comma-separated rule codes or prefixes to report (replaces the config's select)",
    )
    rules.add_argument(
        "--ignore",
        metavar="CODES",
        action="append",
        help="comma-separated rule codes or prefixes not to report (replaces the config's ignore)",
    )
    rules.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default=None,
        help="lowest severity that fails the run (default: error)",
    )
    rules.add_argument(
        "--config",
        metavar="FILE",
        help="settings file (coralcheck.toml or pyproject.toml) instead of the nearest one",
    )
    rules.add_argument("--isolated", action="store_true", help="ignore every configuration file")
    gates = parser.add_argument_group("gates (a failed gate exits 1)")
    gates.add_argument(
        "--max-cpu-ops", type=int, metavar="N", default=None, help="at most N ops on the CPU"
    )
    gates.add_argument(
        "--require-full-mapping",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="every op must run on the Edge TPU",
    )
    gates.add_argument(
        "--min-tpu-mac-share",
        metavar="P",
        default=None,
        help="share of multiply-accumulates on the Edge TPU, 0-1 or a percentage (0.9, 90%%)",
    )
    gates.add_argument(
        "--max-latency-ms",
        metavar="N",
        default=None,
        help="the estimated milliseconds per inference on --device must be at most N",
    )
    baseline = parser.add_argument_group("baseline").add_mutually_exclusive_group()
    baseline.add_argument(
        "--baseline",
        metavar="FILE",
        help="known findings in FILE do not fail; new ones, lost Edge TPU ops and new CPU ops do",
    )
    baseline.add_argument(
        "--write-baseline", metavar="FILE", help="record the current findings in FILE"
    )
    target = parser.add_argument_group("target")
    target.add_argument(
        "--compiler-version",
        default=None,
        help=f"target edgetpu_compiler version (default {DEFAULT_COMPILER_VERSION})",
    )
    target.add_argument(
        "--runtime-version",
        type=int,
        default=None,
        help=f"Edge TPU runtime on the device (default {DEFAULT_RUNTIME_VERSION})",
    )
    target.add_argument(
        "-a",
        "--enable-multiple-subgraphs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="predict for edgetpu_compiler -a: every run of mappable ops becomes an Edge TPU "
        "segment (default: one segment, as the compiler without -a)",
    )
    add_latency_arguments(target)
    comp = parser.add_argument_group("compiled models and the real compiler")
    comp.add_argument(
        "--compiled", metavar="X_edgetpu.tflite", help="the compiled twin: diff it op by op"
    )
    comp.add_argument("--compile", action="store_true", help="run edgetpu_compiler on the model")
    comp.add_argument("--compiler", metavar="PATH", help="edgetpu_compiler to run")
    comp.add_argument(
        "--compile-output", metavar="DIR", help="keep the compiled model and log in DIR"
    )
    comp.add_argument(
        "--force",
        action="store_true",
        help="let --compile replace an X_edgetpu.tflite or .log already in --compile-output",
    )
    comp.add_argument(
        "--compiler-timeout", type=float, default=180.0, help="seconds before giving up (180)"
    )
    comp.add_argument(
        "--compiler-flag",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra flag passed to edgetpu_compiler as is (repeatable)",
    )


def add_latency_arguments(group: Any) -> None:
    """`--device` and `--clock`: what the latency estimate is for (lint and compare)."""
    from coralcheck.options import DEFAULT_CLOCK, DEFAULT_DEVICE

    group.add_argument(
        "--device",
        default=None,
        metavar="NAME",
        help=f"Coral device of the latency estimate (default {DEFAULT_DEVICE}): usb3, usb2, "
        "rpi4, rpi3, devboard, pcie",
    )
    group.add_argument(
        "--clock",
        default=None,
        metavar="max|std",
        help=f"Edge TPU clock (default {DEFAULT_CLOCK}): max = libedgetpu1-max, std = "
        "libedgetpu1-std's reduced clock",
    )


def options_from_args(args: argparse.Namespace) -> Options:
    from coralcheck.render import GRAPH_FORMATS

    return Options(
        compiler_version=args.compiler_version or DEFAULT_COMPILER_VERSION,
        runtime_version=args.runtime_version or DEFAULT_RUNTIME_VERSION,
        enable_multiple_subgraphs=bool(args.enable_multiple_subgraphs),
        compiled_path=args.compiled,
        compile=args.compile,
        compiler_path=args.compiler,
        compile_output=args.compile_output,
        compiler_timeout=args.compiler_timeout,
        compiler_flags=tuple(args.compiler_flag),
        op_shapes=args.verbose,
        graph=args.format in GRAPH_FORMATS,
        force=args.force,
    )


def cli_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, as Config fields (None: not given)."""
    from coralcheck.config import (
        known_codes,
        parse_clock,
        parse_codes,
        parse_device,
        parse_milliseconds,
        parse_select,
        parse_share,
    )
    from coralcheck.errors import UsageError

    def codes(flag: str, values: list[str] | None) -> tuple[str, ...] | None:
        if values is None:
            return None
        items = [c for v in values for c in v.split(",")]
        parse = parse_select if flag == "--select" else parse_codes
        return parse(items, flag, flag, known_codes())

    if args.max_cpu_ops is not None and args.max_cpu_ops < 0:
        raise UsageError("--max-cpu-ops", f"must be a whole number >= 0, not {args.max_cpu_ops}")
    share = args.min_tpu_mac_share
    latency_ms = args.max_latency_ms
    return {
        "select": codes("--select", args.select),
        "ignore": codes("--ignore", args.ignore),
        "fail_on": args.fail_on,
        "compiler_version": args.compiler_version,
        "runtime_version": args.runtime_version,
        "enable_multiple_subgraphs": args.enable_multiple_subgraphs,
        "max_cpu_ops": args.max_cpu_ops,
        "require_full_mapping": args.require_full_mapping,
        "min_tpu_mac_share": None if share is None else parse_share(share, "--min-tpu-mac-share"),
        "max_latency_ms": None
        if latency_ms is None
        else parse_milliseconds(latency_ms, "--max-latency-ms"),
        "device": None if args.device is None else parse_device(args.device, "--device"),
        "clock": None if args.clock is None else parse_clock(args.clock, "--clock"),
    }


# --- which files -----------------------------------------------------------------------------


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def is_model_name(name: str) -> bool:
    """A `.tflite` file name, in any case (`model.TFLITE` from a Windows or camera export)."""
    return name.lower().endswith(MODEL_SUFFIX)


def _models_in(directory: str) -> list[str]:
    return sorted(
        str(p) for p in Path(directory).rglob("*") if is_model_name(p.name) and p.is_file()
    )


def _any_case_suffix(pattern: str) -> str:
    """A glob ending in `.tflite` (any case) made to match the extension in any case."""
    if not is_model_name(pattern):
        return pattern
    stem = pattern[: -len(MODEL_SUFFIX)]
    return stem + "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in MODEL_SUFFIX)


def _glob(pattern: str) -> list[str]:
    """The paths a glob matches, sorted. `**` does not follow symbolic links to directories
    (pathlib's rule, as for directory arguments), so a link back up the tree (`a/b/up -> ../..`)
    cannot make the expansion endless; `glob.glob` follows them."""
    anchor = Path(pattern).anchor
    base = Path(anchor) if anchor else Path()
    relative = pattern[len(anchor) :] if anchor else pattern
    if not relative:
        return []
    try:
        return sorted(str(p) for p in base.glob(relative))
    except (OSError, ValueError):  # an unreadable directory, a pattern pathlib refuses
        return []


def expand_paths(paths: Sequence[str]) -> tuple[list[str], list[Any]]:
    """Model files to check, in order and without duplicates, and the arguments that name none.
    Files are taken as given; directories and globs contribute their `*.tflite` files."""
    from coralcheck.render import ModelFailure

    models: dict[str, str] = {}  # real path -> path as the user spelled it
    failures = []

    def add(path: str) -> None:
        models.setdefault(os.path.realpath(path), path)

    for arg in paths:
        if os.path.isdir(arg):
            found = _models_in(arg)
            if not found:
                failures.append(ModelFailure(arg, f"no {MODEL_SUFFIX} files in this directory"))
            for path in found:
                add(path)
        elif os.path.lexists(arg) or not _is_glob(arg):
            add(arg)  # a missing file gets the reader's own error
        else:
            found = []
            for match in _glob(_any_case_suffix(arg)):
                if os.path.isdir(match):
                    found += _models_in(match)
                elif is_model_name(match):
                    found.append(match)
            if not found:
                failures.append(ModelFailure(arg, f"no {MODEL_SUFFIX} files match this pattern"))
            for path in found:
                add(path)
    return list(models.values()), failures


# --- checking ----------------------------------------------------------------------------------


def check_one(path: str, options: Options) -> Any:
    """One model's report, or its ModelFailure (picklable: runs in worker processes)."""
    from coralcheck.api import check_model
    from coralcheck.errors import CoralcheckError
    from coralcheck.model.reader import MappingRefused
    from coralcheck.render import ModelFailure

    try:
        return check_model(path, options)
    except MappingRefused:
        raise  # (check_all checks it in a worker process)
    except CoralcheckError as e:
        return ModelFailure(e.path, " ".join(e.problem.split()))
    except Exception as e:
        if os.environ.get("CORALCHECK_DEBUG"):
            raise
        return ModelFailure(
            path,
            f"internal error: {type(e).__name__}: {e} "
            "(a bug in coralcheck; set CORALCHECK_DEBUG=1 for the traceback)",
            internal=True,
        )


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    )


def _maps_a_file(path: str, options: Options) -> bool:
    """Whether checking this job maps a model file instead of reading it (see
    `coralcheck.model.reader.READ_WHOLE_BYTES`)."""
    from coralcheck.model.reader import READ_WHOLE_BYTES

    for name in (path, options.compiled_path):
        try:
            if name and os.stat(name).st_size > READ_WHOLE_BYTES:
                return True
        except OSError:
            continue  # (the reader reports it)
    return False


# A worker that dies takes the pool down: each job it left is checked again alone, and one that
# kills its own worker too is this error (exit 2), the other models are reported as usual.
WORKER_DIED = (
    "the process reading it was killed (was the file truncated or replaced while it was read? "
    "or out of memory)"
)


def check_all(jobs: list[tuple[str, Options]]) -> list[Any]:
    """Reports (or failures) for every job, in job order: in parallel over the cores when there
    is more than one model, with a progress bar when stderr is a terminal.

    Large models are mapped, not read, and a mapped file truncated by another process kills the
    process reading it (SIGBUS): those are always checked in worker processes, even alone, so
    that such a death is that model's error and not the end of the run."""
    from coralcheck.model.reader import MappingRefused, refuse_mapping

    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1 and not any(_maps_a_file(path, options) for path, options in jobs):
        try:
            with refuse_mapping():  # (a file may grow between the look above and the read)
                return [check_one(path, options) for path, options in jobs]
        except MappingRefused:
            pass
    if len(jobs) == 1 and sys.platform == "linux":
        return [_check_in_child(*jobs[0])]
    from concurrent.futures.process import BrokenProcessPool

    from coralcheck.render import ModelFailure

    results: list[Any] = [None] * len(jobs)
    try:
        _check_in_pool(jobs, range(len(jobs)), results, max(1, workers))
    except BrokenProcessPool:
        for n in [n for n, result in enumerate(results) if result is None]:
            try:
                _check_in_pool(jobs, [n], results, 1)
            except BrokenProcessPool:
                results[n] = ModelFailure(jobs[n][0], WORKER_DIED)
    return results


def _check_in_child(path: str, options: Options) -> Any:
    """One job checked in one forked process, as a pool of one would check it but without the
    pool (importing concurrent.futures and multiprocessing and starting a pool cost more than
    the check of a 70 MB model): a child that dies is tried once more, then it is the job's
    WORKER_DIED failure."""
    import pickle

    for _attempt in range(2):
        read_end, write_end = os.pipe()
        _flush_std_streams()  # (else the child has a copy of what is not written yet)
        pid = os.fork()
        if pid == 0:  # the child: the outcome, pickled, then gone without any clean-up
            try:
                os.close(read_end)
                try:
                    outcome = (True, check_one(path, options))
                except BaseException as e:  # (CORALCHECK_DEBUG: the parent raises it)
                    outcome = (False, e)
                with open(write_end, "wb") as pipe:  # (pickled in frames, read as they come)
                    pickle.dump(outcome, pipe, pickle.HIGHEST_PROTOCOL)
            finally:
                _flush_std_streams()
                os._exit(0)
        os.close(write_end)
        # Meanwhile, on the other core, what the report's rendering imports.
        import coralcheck.render.phrases  # noqa: F401

        with open(read_end, "rb") as pipe:
            try:
                outcome = pickle.load(pipe)
            except Exception:  # nothing, or cut short: the child died
                outcome = None
        _, status = os.waitpid(pid, 0)  # (after: the child's exit overlaps the unpickling)
        if outcome is not None and os.waitstatus_to_exitcode(status) == 0:
            ok, result = outcome
            if not ok:
                raise result
            return result
    from coralcheck.render import ModelFailure

    return ModelFailure(path, WORKER_DIED)


def _flush_std_streams() -> None:
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # none, or closed
            stream.flush()


def _check_in_pool(
    jobs: list[tuple[str, Options]], which: Any, results: list[Any], workers: int
) -> None:
    """Check `jobs[n]` for each n in `which` in a pool of `workers` processes into `results[n]`.
    Raises BrokenProcessPool when a worker dies (the results so far are kept)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(check_one, *jobs[n]): n for n in which}
        progress = _progress() if sys.stderr.isatty() and len(futures) > 1 else None
        task = progress.add_task("", total=len(futures)) if progress else None
        if progress:
            progress.start()
        try:
            for future in as_completed(futures):
                n = futures[future]
                results[n] = future.result()
                if progress:
                    progress.update(task, advance=1, description=os.path.basename(jobs[n][0]))
        finally:
            if progress:
                progress.stop()


# --- output ------------------------------------------------------------------------------------


def _file_id(path: str) -> tuple[int, int] | None:
    """(device, inode): the same for every name of one file (symbolic or hard links)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _refuse_to_overwrite_models(models: Sequence[str], *targets: str | None) -> None:
    """The report and the baseline are written where asked, but never over a model (by any of
    its names: a hard link has a path of its own)."""
    from coralcheck.errors import UsageError

    checked = {os.path.realpath(m) for m in models}
    files = {_file_id(m) for m in models} - {None}
    for target in targets:
        if target and (os.path.realpath(target) in checked or _file_id(target) in files):
            raise UsageError(target, "is one of the models being checked; refusing to overwrite it")


def _write(text: str, output: str | None) -> None:
    from coralcheck.errors import UsageError

    if not output:
        from coralcheck.cli import write_stdout

        write_stdout(text)
        return
    directory = os.path.dirname(os.path.abspath(output))
    try:
        # A missing directory is made, as ruff does for --output-file (CI writes reports to
        # fresh directories such as reports/).
        os.makedirs(directory, exist_ok=True)
    except FileExistsError:
        raise UsageError(
            output, f"cannot write the report: {directory} is not a directory"
        ) from None
    except OSError as e:
        raise UsageError(output, f"cannot write the report: {e.strerror or e}") from None
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise UsageError(output, f"cannot write the report: {e.strerror or e}") from None


def run(args: argparse.Namespace) -> int:
    from coralcheck import __version__
    from coralcheck import config as settings
    from coralcheck.cli import _error
    from coralcheck.errors import UsageError
    from coralcheck.render import ModelFailure, Outcome
    from coralcheck.report import Report

    if args.statistics and args.format not in ("text", "json"):
        raise UsageError("--statistics", "works with --format text or json")
    cli = cli_settings(args)
    base = options_from_args(args)
    paths, failures = expand_paths(args.paths)
    if args.format == "model-explorer" and len(paths) > 1:
        raise UsageError("--format model-explorer", f"is for one model; {len(paths)} were given")
    _refuse_to_overwrite_models(paths, args.output, args.write_baseline)
    cache: dict[Any, Any] = {}
    configs = [
        settings.resolve(p, cli, config_file=args.config, isolated=args.isolated, cache=cache)
        for p in paths
    ]
    baseline = None
    if args.baseline:  # the baseline module (hashlib, json) only when one is used
        from coralcheck import baseline as baselines

        baseline = baselines.load(args.baseline)

    # Analyse; then apply each model's settings to its report.
    report = Report(tool_version=__version__)
    kept = []  # the settings of each model that could be checked
    results = check_all([(p, c.options(base)) for p, c in zip(paths, configs, strict=True)])
    for result, config in zip(results, configs, strict=True):
        if isinstance(result, ModelFailure):
            failures.append(result)
        else:
            report.models.append(settings.apply(result, config))
            kept.append(config)

    if args.write_baseline:
        from coralcheck import baseline as baselines

        baselines.write(report.models, args.write_baseline)
        baseline = baselines.load(args.write_baseline)
        from coralcheck.render.phrases import plural

        n = sum(len(m.findings) for m in report.models)
        from coralcheck.render.phrases import escaped

        counts = f"{plural(n, 'finding')} in {plural(len(report.models), 'model')}"
        print(f"coralcheck: wrote {escaped(args.write_baseline)}: {counts}", file=sys.stderr)
    verdicts = []
    for m, config in zip(report.models, kept, strict=True):
        known, regressions = baseline.compare(m) if baseline else (frozenset(), [])
        verdicts.append(settings.judge(m, config, known=known, regressions=regressions))
    outcome = Outcome(verdicts, failures, baseline=args.baseline or args.write_baseline or None)
    for failure in failures:
        _error(f"{failure.path}: {failure.problem}")
    _write(_render(report, outcome, args), args.output)
    return outcome.exit_code


def _render(report: Any, outcome: Any, args: argparse.Namespace) -> str:
    from coralcheck.render import render, terminal

    color, width = terminal(to_file=bool(args.output))
    if args.statistics and args.format == "json":
        from coralcheck.render.json import render_statistics_json

        return render_statistics_json(report)
    if args.statistics:
        from coralcheck.render.phrases import no_workflow_commands, printable
        from coralcheck.render.text import render_statistics

        text = render_statistics(printable(report), color=color, width=width)
        return no_workflow_commands(text)
    return render(
        report, args.format, outcome=outcome, verbose=args.verbose, color=color, width=width
    )
