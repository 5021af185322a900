"""The rule catalogue as documents: `coralcheck rule CODE`, `coralcheck rules` and docs/rules.md.

docs/rules.md is generated from the registry (`coralcheck rules --format markdown -o
docs/rules.md`); a test fails when it is stale, so edit the rule, not the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

DOCS_COMMAND = "coralcheck rules --format markdown -o docs/rules.md"


def rule_dict(rule: Any) -> dict[str, Any]:
    """A rule as plain data (the `--format json` of `rule` and `rules`)."""
    return {
        "code": rule.code,
        "name": rule.name,
        "family": rule.family,
        "severity": rule.severity,
        "title": rule.title,
        "explanation": rule.explanation,
        "example": rule.example,
        "fix": rule.fix,
        "source": getattr(rule, "source", ""),
        "tests": list(getattr(rule, "tests", ())),
    }


def anchor(rule: Any) -> str:
    """The GitHub anchor of the rule's heading in docs/rules.md."""
    return re.sub(r"[^a-z0-9 _-]", "", f"{rule.code} {rule.name}".lower()).replace(" ", "-")


def _body(rule: Any, level: str) -> list[str]:
    lines = [f"{rule.title}", "", f"Severity: **{rule.severity}** · family: **{rule.family}**", ""]
    for heading, text in (("Why", rule.explanation), ("Example", rule.example), ("Fix", rule.fix)):
        if text and text.strip():
            lines += [f"{level} {heading}", "", text.strip(), ""]
    source, tests = getattr(rule, "source", ""), getattr(rule, "tests", ())
    if source or tests:
        lines += [f"{level} Source", ""]
        lines += [f"- Rule: `{source}`"] if source else []
        lines += [f"- Tests: {', '.join(f'`{t}`' for t in tests)}"] if tests else []
        lines.append("")
    return lines


def rule_markdown(rule: Any) -> str:
    """One rule as `coralcheck rule CODE` prints it (Markdown, as `ruff rule` does)."""
    return "\n".join([f"# {rule.name} ({rule.code})", "", *_body(rule, "##")]).rstrip() + "\n"


def rules_markdown(rules: Iterable[Any]) -> str:
    """docs/rules.md: an index table, then every rule by family."""
    rules = sorted(rules, key=lambda r: r.code)
    families: dict[str, list[Any]] = {}
    for rule in rules:
        families.setdefault(rule.family, []).append(rule)
    lines = [
        "# Rules",
        "",
        f"<!-- Generated from the rule registry by `{DOCS_COMMAND}`. Do not edit by hand. -->",
        "",
        f"{len(rules)} rules. `coralcheck rule CODE` shows one in the terminal; select or ignore "
        "them by code or prefix (`--select`, `--ignore`, `[tool.coralcheck]`).",
        "",
        "| Code | Name | Severity | Family | Title |",
        "|---|---|---|---|---|",
    ]
    for r in rules:
        title = r.title.replace("|", "\\|")
        lines.append(
            f"| [{r.code}](#{anchor(r)}) | {r.name} | {r.severity} | {r.family} | {title} |"
        )
    lines.append("")
    for family in sorted(families):
        lines += [f"## {family}", ""]
        for rule in families[family]:
            lines += [f"### {rule.code} {rule.name}", "", *_body(rule, "####")]
    return "\n".join(lines).rstrip() + "\n"


def rules_json(rules: Iterable[Any]) -> str:
    return json.dumps([rule_dict(r) for r in rules], indent=2, ensure_ascii=False) + "\n"
