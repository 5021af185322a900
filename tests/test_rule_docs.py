"""Rule documentation: `coralcheck rule CODE`, `coralcheck rules`, and docs/rules.md generated
from the registry (stale docs fail here: regenerate, don't hand-edit)."""

from __future__ import annotations

import json
import re

from conftest import REPO, run_cli
from helpers.reports import fake_rule

from coralcheck.checks.catalogue import rules_by_code
from coralcheck.render.ruledocs import DOCS_COMMAND, anchor, rule_markdown, rules_markdown

DOCS = REPO / "docs" / "rules.md"


def registered() -> list:
    rules = list(rules_by_code().values())
    assert rules, "coralcheck.checks.catalogue.all_rules() is empty"
    return rules


def test_docs_rules_md_is_generated_from_the_registry() -> None:
    expected = rules_markdown(rules_by_code().values())
    assert DOCS.read_text(encoding="utf-8") == expected, (
        f"docs/rules.md is stale: regenerate it with `{DOCS_COMMAND}`"
    )


def test_rules_command_writes_exactly_the_docs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "rules.md"
    result = run_cli("rules", "--format", "markdown", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == DOCS.read_text(encoding="utf-8")


def test_rules_lists_every_registered_rule() -> None:
    rules = registered()
    listing = json.loads(run_cli("rules", "--format", "json").stdout)
    assert [r["code"] for r in listing] == sorted(r.code for r in rules)
    table = run_cli("rules").stdout
    assert not re.search(r"\x1b\[", table)
    for rule in rules:
        pattern = rf"^{re.escape(rule.code)}\s+{rule.severity}\s+{re.escape(rule.name)}\s"
        assert re.search(pattern, table, re.M)


def test_every_rule_is_documented() -> None:
    for rule in registered():
        assert rule.title.strip(), rule.code
        assert rule.explanation.strip(), rule.code
        assert rule.fix.strip(), rule.code
        assert rule.severity in ("error", "warning", "info"), rule.code
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name), rule.name


def test_rule_explains_one_rule() -> None:
    rules = registered()
    for rule in (rules[0], rules[-1]):
        result = run_cli("rule", rule.code.lower())
        assert result.returncode == 0
        assert result.stdout == rule_markdown(rule)
        assert result.stdout.startswith(f"# {rule.name} ({rule.code})\n")
        by_name = run_cli("rule", rule.name)
        assert by_name.stdout == result.stdout
        data = json.loads(run_cli("rule", rule.code, "--format", "json").stdout)
        assert data["code"] == rule.code and data["fix"] == rule.fix


def test_unknown_rule_is_one_line_listing_the_valid_codes() -> None:
    result = run_cli("rule", "ZZ999")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("coralcheck: error: ZZ999: unknown rule (valid: ")
    for code in rules_by_code():
        assert code in lines[0]


def test_markdown_layout_with_a_known_registry() -> None:
    rules = [fake_rule("B002"), fake_rule("A001", "warning"), fake_rule("A010", "info")]
    rules[1].family = "activations"
    text = rules_markdown(rules)
    index = [line for line in text.splitlines() if line.startswith("| [")]
    assert [line.split("]")[0] for line in index] == ["| [A001", "| [A010", "| [B002"]
    assert "| [A001](#a001-rule-a001) | rule-a001 | warning | activations | Title of A001 |" in text
    headings = re.findall(r"^### (\S+) (\S+)$", text, re.M)
    assert headings == [("A001", "rule-a001"), ("A010", "rule-a010"), ("B002", "rule-b002")]
    assert text.index("## activations") < text.index("### A001") < text.index("## ops")
    assert anchor(rules[0]) == "b002-rule-b002"
    one = rule_markdown(rules[0])
    assert one.index("## Why") < one.index("## Example") < one.index("## Fix")
    assert "How to fix B002." in one


def test_every_code_greps_to_one_decorator_and_one_catalogue_entry() -> None:
    """One registry: each code is one `@rule("CODE")` in coralcheck/ and one [rule.CODE]."""
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "coralcheck").rglob("*.py"))
    decorated = re.findall(r'^@rule\("(\w+)"', sources, re.M)
    catalogue = (REPO / "rules" / "catalogue.toml").read_text(encoding="utf-8")
    entries = re.findall(r"^\[rule\.(\w+)\]$", catalogue, re.M)
    assert sorted(decorated) == sorted(set(decorated)) == sorted(entries)
    assert sorted(entries) == sorted(rules_by_code())


def test_o002_and_o003_list_the_constraints_and_limits_of_the_op_table() -> None:
    """As ethos-u-vela writes its limits into its constraint texts: the documentation of O002
    and O003 is made from rules/ops.toml, numbers included."""
    from coralcheck.edgetpu.constraints import limit_text
    from coralcheck.edgetpu.knowledge import knowledge

    rules = rules_by_code()
    kb = knowledge()
    unmapping = [
        c
        for c in (*kb.common_constraints, *(c for s in kb.ops.values() for c in s.constraints))
        if c.effect == "unmap"
    ]
    inferred = [c for c in unmapping if c.inferred]
    assert inferred and all(limit_text(c) for c in inferred)
    for c in inferred:
        line = f"- {'Every op' if c.op == '*' else c.op}"
        assert f"{limit_text(c)}. {c.text}" in rules["O003"].explanation
        assert line in rules["O003"].explanation
    documented = [c for c in unmapping if not c.inferred]
    for c in documented:
        if c.check in ("constant-weights", "integer-input"):  # Q007's, I001's and Q002's
            assert c.text not in rules["O002"].explanation
        else:
            assert f"{c.op}" in rules["O002"].explanation and c.text in rules["O002"].explanation
    assert "{" not in rules["O002"].explanation + rules["O003"].explanation
    assert "196,608" in rules["O003"].explanation  # ops.toml [limits] row_elements


def test_every_rule_names_its_source_and_its_tests() -> None:
    """`coralcheck rule CODE` says where a rule is implemented and which tests check it (the
    catalogue's `tests`): the function exists there, and each test exists and names the code."""
    for rule in registered():
        path, _, function = rule.source.partition("::")
        assert re.search(rf"^def {function}\(", (REPO / path).read_text(), re.M), rule.source
        assert rule.tests, f"{rule.code} names no test"
        for test in rule.tests:
            test_path, _, name = test.partition("::")
            source = (REPO / test_path).read_text(encoding="utf-8")
            assert re.search(rf"^def {name}\(", source, re.M), test
            assert f'"{rule.code}"' in source or rule.code.lower() in name, test
        assert f"- Rule: `{rule.source}`" in rule_markdown(rule)
