"""Explain a rule: why it matters, an example, and the fix."""

from __future__ import annotations

import argparse
import sys


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", metavar="CODE", help="rule code (or name), e.g. from a finding")
    parser.add_argument(
        "--format", choices=("text", "json", "markdown"), default="text", help="(default: text)"
    )


def find_rule(code: str):  # type: ignore[no-untyped-def]
    """The registered rule with this code or name (any case). Raises UsageError."""
    from coralcheck.config import registry
    from coralcheck.errors import UsageError

    rules = registry()
    wanted = code.strip()
    for rule in rules.values():
        if wanted.upper() == rule.code.upper() or wanted.lower() == rule.name.lower():
            return rule
    raise UsageError(
        code, f"unknown rule (valid: {', '.join(rules) or 'no rule is registered yet'})"
    )


def run(args: argparse.Namespace) -> int:
    import json

    from coralcheck.render.ruledocs import rule_dict, rule_markdown

    rule = find_rule(args.code)
    from coralcheck.cli import write_stdout

    if args.format == "json":
        write_stdout(json.dumps(rule_dict(rule), indent=2, ensure_ascii=False) + "\n")
    elif args.format == "text" and sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(rule_markdown(rule)))
    else:
        write_stdout(rule_markdown(rule))
    return 0
