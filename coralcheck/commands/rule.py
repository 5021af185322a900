"""Explain a rule: why it matters, an example, and the fix."""

from __future__ import annotations

import argparse
import sys

from coralcheck.checks.catalogue import rules_by_code
from coralcheck.cli import write_stdout
from coralcheck.errors import UsageError
from coralcheck.gates import GATES, PREFIX, find_gate
from coralcheck.render.ruledocs import rule_dict, rule_markdown


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "code",
        metavar="CODE",
        help="rule code (or name), e.g. from a finding, or a gate (gate/max-cpu-ops)",
    )
    parser.add_argument(
        "--format", choices=("text", "json", "markdown"), default="text", help="(default: text)"
    )


def find_rule(code: str):  # type: ignore[no-untyped-def]
    """The registered rule with this code or name (any case), or the gate with this id
    (`gate/max-cpu-ops`, as SARIF names it). Raises UsageError."""

    rules = rules_by_code()
    wanted = code.strip()
    for rule in rules.values():
        if wanted.upper() == rule.code.upper() or wanted.lower() == rule.name.lower():
            return rule
    gate = find_gate(wanted)
    if gate is not None:
        return gate
    valid = [*rules, *(PREFIX + name for name in GATES)]
    raise UsageError(code, f"unknown rule (valid: {', '.join(valid)})")


def run(args: argparse.Namespace) -> int:
    import json

    rule = find_rule(args.code)

    if args.format == "json":
        write_stdout(json.dumps(rule_dict(rule), indent=2, ensure_ascii=False) + "\n")
    elif args.format == "text" and sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(rule_markdown(rule)))
    else:
        write_stdout(rule_markdown(rule))
    return 0
