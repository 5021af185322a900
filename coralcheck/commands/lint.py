"""Check TFLite models for the Edge TPU: placement prediction, findings, fixes."""

from __future__ import annotations

import argparse
import sys

from coralcheck.options import DEFAULT_COMPILER_VERSION, DEFAULT_RUNTIME_VERSION, Options


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="MODEL", help=".tflite files")
    out = parser.add_argument_group("output")
    out.add_argument("--format", default="text", help="text|json|sarif|github|junit|markdown")
    out.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    out.add_argument("-v", "--verbose", action="store_true", help="show every op")
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
        "--compiler-timeout", type=float, default=180.0, help="seconds before giving up (180)"
    )
    comp.add_argument(
        "--compiler-flag",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra flag passed to edgetpu_compiler as is (repeatable)",
    )


def options_from_args(args: argparse.Namespace) -> Options:
    return Options(
        compiler_version=args.compiler_version or DEFAULT_COMPILER_VERSION,
        runtime_version=args.runtime_version or DEFAULT_RUNTIME_VERSION,
        compiled_path=args.compiled,
        compile=args.compile,
        compiler_path=args.compiler,
        compile_output=args.compile_output,
        compiler_timeout=args.compiler_timeout,
        compiler_flags=tuple(args.compiler_flag),
    )


def run(args: argparse.Namespace) -> int:
    from coralcheck import __version__
    from coralcheck.api import check_model
    from coralcheck.render import render
    from coralcheck.report import Report

    options = options_from_args(args)
    report = Report(tool_version=__version__)
    for path in args.paths:
        report.models.append(check_model(path, options))
    text = render(report, args.format, verbose=args.verbose)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0
