"""Check TFLite models for the Edge TPU: placement prediction, findings, fixes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from coralcheck import config as settings
from coralcheck import registry
from coralcheck._version import __version__
from coralcheck.cli import error_line, write_stdout
from coralcheck.commands.paths import expand_paths
from coralcheck.commands.workers import check_all
from coralcheck.config_keys import (
    FAIL_ON,
    parse_clock,
    parse_codes,
    parse_device,
    parse_milliseconds,
    parse_select,
    parse_share,
)
from coralcheck.errors import UsageError
from coralcheck.options import (
    DEFAULT_CLOCK,
    DEFAULT_COMPILER_VERSION,
    DEFAULT_DEVICE,
    DEFAULT_RUNTIME_VERSION,
    Options,
)
from coralcheck.outcome import ModelFailure, Outcome, judge
from coralcheck.render import FORMATS, GRAPH_FORMATS, render, renderer, terminal
from coralcheck.render.escape import escaped, no_workflow_commands, printable
from coralcheck.report import Report
from coralcheck.wording import plural


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="MODEL",
        help=".tflite files, directories (searched for *.tflite, any case) or globs",
    )
    _output_arguments(parser.add_argument_group("output"))
    _rule_arguments(parser.add_argument_group("rules and pass/fail"))
    _gate_arguments(parser.add_argument_group("gates (a failed gate exits 1)"))
    _baseline_arguments(parser.add_argument_group("baseline").add_mutually_exclusive_group())
    target = parser.add_argument_group("target")
    add_target_arguments(target)
    add_latency_arguments(target)
    _compiler_arguments(parser.add_argument_group("compiled models and the real compiler"))


def _output_arguments(group: Any) -> None:
    """--format, -o, -v, --statistics."""
    group.add_argument(
        "--format", default="text", choices=FORMATS, help="report format (default: text)"
    )
    group.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the report to FILE (missing directories are made)",
    )
    group.add_argument(
        "-v", "--verbose", action="store_true", help="show every op with its tensor shapes"
    )
    group.add_argument(
        "--statistics",
        action="store_true",
        help="show the number of findings per rule instead of the report",
    )


def _rule_arguments(group: Any) -> None:
    """--select, --ignore, --fail-on and the settings file."""
    group.add_argument(
        "--select",
        metavar="CODES",
        action="append",
        help="comma-separated rule codes or prefixes to report (replaces the config's select)",
    )
    group.add_argument(
        "--ignore",
        metavar="CODES",
        action="append",
        help="comma-separated rule codes or prefixes not to report (replaces the config's ignore)",
    )
    group.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default=None,
        help="lowest severity that fails the run (default: error)",
    )
    group.add_argument(
        "--config",
        metavar="FILE",
        help="settings file (coralcheck.toml or pyproject.toml) instead of the nearest one",
    )
    group.add_argument("--isolated", action="store_true", help="ignore every configuration file")


def _gate_arguments(group: Any) -> None:
    """The gates: --max-cpu-ops, --require-full-mapping, --min-tpu-mac-share, --max-latency-ms."""
    group.add_argument(
        "--max-cpu-ops", type=int, metavar="N", default=None, help="at most N ops on the CPU"
    )
    group.add_argument(
        "--require-full-mapping",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="every op must run on the Edge TPU",
    )
    group.add_argument(
        "--min-tpu-mac-share",
        metavar="P",
        default=None,
        help="share of multiply-accumulates on the Edge TPU, 0-1 or a percentage (0.9, 90%%)",
    )
    group.add_argument(
        "--max-latency-ms",
        metavar="N",
        default=None,
        help="the estimated milliseconds per inference on --device must be at most N",
    )


def _baseline_arguments(group: Any) -> None:
    """--baseline or --write-baseline."""
    group.add_argument(
        "--baseline",
        metavar="FILE",
        help="known findings in FILE do not fail; new ones, lost Edge TPU ops and new CPU ops do",
    )
    group.add_argument(
        "--write-baseline", metavar="FILE", help="record the current findings in FILE"
    )


def add_target_arguments(group: Any) -> None:
    """The compiler and runtime the prediction is for (the lint's, also `view`'s)."""
    group.add_argument(
        "--compiler-version",
        default=None,
        help=f"target edgetpu_compiler version (default {DEFAULT_COMPILER_VERSION})",
    )
    group.add_argument(
        "--runtime-version",
        type=int,
        default=None,
        help=f"Edge TPU runtime on the device (default {DEFAULT_RUNTIME_VERSION})",
    )
    group.add_argument(
        "-a",
        "--enable-multiple-subgraphs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="predict for edgetpu_compiler -a: every run of mappable ops becomes an Edge TPU "
        "segment (default: one segment, as the compiler without -a)",
    )


def _compiler_arguments(group: Any) -> None:
    """--compiled, --compile and the compiler run's options."""
    group.add_argument(
        "--compiled",
        metavar="X_edgetpu.tflite",
        help="the compiled twin: diff it op by op (several segments: predicted for -a)",
    )
    group.add_argument("--compile", action="store_true", help="run edgetpu_compiler on the model")
    group.add_argument("--compiler", metavar="PATH", help="edgetpu_compiler to run")
    group.add_argument(
        "--compile-output", metavar="DIR", help="keep the compiled model and log in DIR"
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="let --compile replace an X_edgetpu.tflite or .log already in --compile-output",
    )
    group.add_argument(
        "--compiler-timeout", type=float, default=180.0, help="seconds before giving up (180)"
    )
    group.add_argument(
        "--compiler-flag",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra flag passed to edgetpu_compiler as is (repeatable)",
    )


def add_latency_arguments(group: Any) -> None:
    """`--device` and `--clock`: what the latency estimate is for (lint and compare)."""
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

    def codes(flag: str, values: list[str] | None) -> tuple[str, ...] | None:
        if values is None:
            return None
        items = [c for v in values for c in v.split(",")]
        parse = parse_select if flag == "--select" else parse_codes
        return parse(items, flag, flag, registry.codes())

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
    checked = {os.path.realpath(m) for m in models}
    files = {_file_id(m) for m in models} - {None}
    for target in targets:
        if target and (os.path.realpath(target) in checked or _file_id(target) in files):
            raise UsageError(target, "is one of the models being checked; refusing to overwrite it")


def _write(text: str, output: str | None) -> None:

    if not output:
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
    jobs = [(p, c.options(base)) for p, c in zip(paths, configs, strict=True)]
    results = check_all(jobs, meanwhile=lambda: renderer(args.format))
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
        n = sum(len(m.findings) for m in report.models)
        counts = f"{plural(n, 'finding')} in {plural(len(report.models), 'model')}"
        print(f"coralcheck: wrote {escaped(args.write_baseline)}: {counts}", file=sys.stderr)
    verdicts = []
    for m, config in zip(report.models, kept, strict=True):
        known, regressions = baseline.compare(m) if baseline else (frozenset(), [])
        verdicts.append(judge(m, config, known=known, regressions=regressions))
    outcome = Outcome(verdicts, failures, baseline=args.baseline or args.write_baseline or None)
    for failure in failures:
        error_line(f"{failure.path}: {failure.problem}")
    _write(_render(report, outcome, args), args.output)
    return outcome.exit_code


def _render(report: Report, outcome: Outcome, args: argparse.Namespace) -> str:
    color, width = terminal(to_file=bool(args.output))
    if args.statistics and args.format == "json":
        from coralcheck.render.json import render_statistics_json

        return render_statistics_json(report)
    if args.statistics:
        from coralcheck.render.text import render_statistics

        text = render_statistics(printable(report), color=color, width=width)
        return no_workflow_commands(text)
    return render(
        report, args.format, outcome=outcome, verbose=args.verbose, color=color, width=width
    )
