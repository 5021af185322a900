"""Read an edgetpu_compiler log (console output or .log) and check it against the prediction.

`coralcheck log FILE [--model X.tflite] [--format text|json]`: for CI jobs that keep the
compiler's log beside the model but have no compiler. Exit 0 when the log shows no failure and
(with --model) agrees with the prediction op type by op type and status by status; 1 when it
shows a failure or disagrees; 2 when FILE or the model cannot be read.

The comparison and the JSON keys: coralcheck.pipeline.log; the text: coralcheck.render.logtext.
"""

from __future__ import annotations

import argparse
import json

from coralcheck.cli import write_stdout
from coralcheck.compiler.log import parse_log
from coralcheck.compiler.records import CompilerLog
from coralcheck.errors import UsageError
from coralcheck.fileio import read_regular
from coralcheck.pipeline.log import log_report
from coralcheck.render.escape import no_workflow_commands, printable
from coralcheck.render.logtext import render_log_text

# The first 16 MiB of a log are read (real ones are a few KB).
MAX_LOG_BYTES = 16 << 20


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="compiler console output or _edgetpu.log")
    parser.add_argument("--model", metavar="X.tflite", help="the source model the log is for")
    parser.add_argument("--format", default="text", choices=("text", "json"))
    parser.add_argument(
        "--runtime-version", type=int, default=None, help="Edge TPU runtime on the device"
    )
    parser.add_argument(
        "--compiler-version",
        default=None,
        help="compiler to predict for (default: the version the log names, e.g. 16.0)",
    )
    parser.add_argument(
        "-a",
        "--enable-multiple-subgraphs",
        action="store_true",
        help="predict for edgetpu_compiler -a (implied when the log reports several Edge TPU "
        "subgraphs)",
    )


def read_log(path: str) -> CompilerLog:
    """Parse FILE; unreadable or unrecognisable input is a UsageError (exit 2)."""
    try:
        data = read_regular(path, MAX_LOG_BYTES)[:MAX_LOG_BYTES]  # (a FIFO would block: refused)
    except FileNotFoundError:
        raise UsageError(path, "no such file") from None
    except IsADirectoryError:
        raise UsageError(path, "is a directory, not a compiler log") from None
    except OSError as e:
        raise UsageError(path, f"cannot read: {e.strerror or e}") from None
    log = parse_log(data)
    if not log.recognised:
        raise UsageError(path, "not edgetpu_compiler output (nothing in it is recognised)")
    return log


def run(args: argparse.Namespace) -> int:
    log = read_log(args.file)
    result = log_report(
        args.file,
        log,
        args.model,
        args.runtime_version,
        args.compiler_version,
        args.enable_multiple_subgraphs,
    )
    if args.format == "json":
        write_stdout(json.dumps(result, indent=2) + "\n")
    else:
        # Operator names and statuses are the log's text: escaped, and no line may become a
        # workflow command in a CI log.
        write_stdout(no_workflow_commands(render_log_text(printable(result))))
    return 1 if result["failures"] or result.get("agrees") is False else 0
