"""List every rule: code, name, severity, family and title."""

from __future__ import annotations

import argparse

from coralcheck.checks.catalogue import rules_by_code
from coralcheck.cli import write_stdout
from coralcheck.errors import UsageError
from coralcheck.render import terminal
from coralcheck.render.ruledocs import rules_json, rules_markdown
from coralcheck.render.text import render_rules


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="text (a table), json, or markdown (docs/rules.md)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE")


def run(args: argparse.Namespace) -> int:

    rules = list(rules_by_code().values())
    if args.format == "json":
        text = rules_json(rules)
    elif args.format == "markdown":
        text = rules_markdown(rules)
    else:
        color, width = terminal(to_file=bool(args.output))
        text = render_rules(rules, color=color, width=width)
    if not args.output:
        write_stdout(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise UsageError(args.output, f"cannot write: {e.strerror or e}") from None
    return 0
