"""The `coralcheck` command: arguments, exit codes and dispatch. No analysis logic lives here.

Exit codes (documented in the README):
  0  nothing at or above --fail-on (and every gate passed)
  1  findings at or above --fail-on, or a gate failed
  2  usage error or bad input (missing, unreadable or invalid model, bad config)
  3  internal error (a bug in coralcheck: please report it)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Sequence

from coralcheck._version import __version__
from coralcheck.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, CoralcheckError, UsageError

# Subcommands: name -> module in coralcheck.commands with `register(parser)` and `run(args)`.
SUBCOMMANDS: dict[str, str] = {
    "lint": "lint",
    "rule": "rule",
    "rules": "rules",
    "log": "log",
    "convert": "convert",
    "quant": "quant",
    "compare": "compare",
    "view": "view",
}


def error_line(message: str) -> None:
    """One line on stderr. File names and problems quote the user's data: control characters
    (ESC sequences), bidirectional overrides and undecodable bytes are shown as escapes."""
    from coralcheck.render.escape import escaped

    print(f"coralcheck: error: {escaped(' '.join(message.split()))}", file=sys.stderr)


def write_stdout(text: str) -> None:
    """Write command output to stdout. A stdout that cannot take it (`> /dev/full`, a full
    disk, a closed file) is a usage error (exit 2), not a crash; a reader that went away
    (`| head`) is left to main()."""
    try:
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:  # a terminal that cannot show ↔, ×, —
            sys.stdout.flush()
            sys.stdout.buffer.write(text.encode(sys.stdout.encoding or "utf-8", "replace"))
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        # What is still buffered would fail again when the interpreter exits: send it nowhere.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        raise UsageError("<stdout>", f"cannot write the output: {e.strerror or e}") from None


def _subcommand(argv: list[str]) -> tuple[str, list[str]]:
    """`coralcheck MODEL...` lints; `coralcheck NAME ...` runs subcommand NAME (unless a file:
    a directory named like a subcommand, e.g. rules/, is linted as `./rules`)."""
    if argv and argv[0] in SUBCOMMANDS and not os.path.isfile(argv[0]):
        return argv[0], argv[1:]
    return "lint", argv


def _summary(name: str) -> str:
    """The first line of a subcommand module's docstring."""
    import importlib

    module = importlib.import_module(f"coralcheck.commands.{SUBCOMMANDS[name]}")
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


def subcommands_help() -> str:
    """The `coralcheck --help` epilog: every subcommand with one line."""
    import textwrap

    width = max(map(len, SUBCOMMANDS))
    summaries = {name: _summary(name) for name in SUBCOMMANDS if name != "lint"}
    summaries["lint"] = "the default: `coralcheck lint MODEL...` is `coralcheck MODEL...`"
    lines = ["subcommands (coralcheck NAME --help for each):"]
    for name, summary in summaries.items():
        lines += textwrap.wrap(
            summary,
            79,
            initial_indent=f"  {name:<{width}}  ",
            subsequent_indent=" " * (width + 4),
        )
    return "\n".join(lines)


class _TopLevelParser(argparse.ArgumentParser):
    """`coralcheck`'s own parser: its --help also lists the subcommands (their modules are
    imported for their one-line summaries only when help is shown)."""

    def format_help(self) -> str:
        self.epilog = subcommands_help()
        return super().format_help()


def build_parser(name: str) -> argparse.ArgumentParser:
    import importlib

    module = importlib.import_module(f"coralcheck.commands.{SUBCOMMANDS[name]}")
    prog = "coralcheck" if name == "lint" else f"coralcheck {name}"
    parser_class = _TopLevelParser if name == "lint" else argparse.ArgumentParser
    parser = parser_class(
        prog=prog,
        description=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if name == "lint":
        parser.add_argument("--version", action="version", version=f"coralcheck {__version__}")
    module.register(parser)
    parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command on `argv`; None: the program's own arguments (and its process ends next).
    Returns the exit code."""
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    finally:
        if argv is None:
            # The interpreter's exit scans every object for reference cycles before freeing them
            # all anyway (about 15 ms after a large model): the ones alive now need no scan.
            gc.freeze()


def _run(args_list: list[str]) -> int:
    if args_list in (["--version"], ["-V"]):  # fast path: import nothing else
        print(f"coralcheck {__version__}")
        return EXIT_OK
    name, rest = _subcommand(args_list)
    try:
        parser = build_parser(name)
        args = parser.parse_args(rest)
        return int(args._run(args))
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    except CoralcheckError as e:
        error_line(e.one_line())
        return e.exit_code
    except KeyboardInterrupt:
        error_line("interrupted")
        return 130
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`): not an error of ours.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_OK
    except Exception as e:  # a bug: one line, never a traceback unless asked
        if os.environ.get("CORALCHECK_DEBUG"):
            raise
        error_line(
            f"internal error: {type(e).__name__}: {e} "
            "(a bug in coralcheck; set CORALCHECK_DEBUG=1 for the traceback)"
        )
        return EXIT_INTERNAL
