"""Check TFLite models for the Edge TPU: placement prediction, findings, fixes."""

from __future__ import annotations

import argparse
import sys

from coralcheck.options import DEFAULT_COMPILER_VERSION, DEFAULT_RUNTIME_VERSION, Options


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="MODEL", help=".tflite files")
    parser.add_argument(
        "--format", choices=["text", "json"], default="text", help="output format (text)"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    parser.add_argument(
        "--compiler-version",
        default=DEFAULT_COMPILER_VERSION,
        help=f"target edgetpu_compiler version ({DEFAULT_COMPILER_VERSION})",
    )
    parser.add_argument(
        "--runtime-version",
        type=int,
        default=DEFAULT_RUNTIME_VERSION,
        help=f"Edge TPU runtime on the device ({DEFAULT_RUNTIME_VERSION})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show every op")


def options_from_args(args: argparse.Namespace) -> Options:
    return Options(compiler_version=args.compiler_version, runtime_version=args.runtime_version)


def run(args: argparse.Namespace) -> int:
    from coralcheck.api import check_model
    from coralcheck.report import Report

    options = options_from_args(args)
    report = Report(tool_version=__import__("coralcheck").__version__)
    for path in args.paths:
        report.models.append(check_model(path, options))
    from coralcheck.render import render

    text = render(report, args.format, verbose=args.verbose)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0
