"""CLI rough edges of issue 11: --help lists the subcommands, gates are explained like rules, the
job-summary recipe does not call failing models passed, upper-case extensions are found, -o
makes its directory, a misspelled [tool.coralcheck] is named, the README's pre-commit example
pins something that exists."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, run_cli
from helpers.reports import sarif_validator

from coralcheck import config
from coralcheck.baseline import Baseline, BaselineEntry
from coralcheck.cli import SUBCOMMANDS, main
from coralcheck.config import Config
from coralcheck.gates import GATES, check_gates
from coralcheck.render.ruledocs import rule_dict

DEMO = FIXTURES / "demo_int8.tflite"
FLOAT = FIXTURES / "float32.tflite"  # Q001, an error


def test_help_lists_every_subcommand_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    listed = text[text.index("subcommands") :]
    for name in SUBCOMMANDS:
        assert re.search(rf"^  {name} +\S", listed, re.MULTILINE), name
    assert "coralcheck log" not in text.split("subcommands")[0]  # listed, not mixed in the flags
    assert max(len(line) for line in listed.splitlines()) <= 80


def test_every_gate_sarif_can_name_is_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = json.loads(run_cli(str(FLOAT), "--format", "json").stdout)
    from coralcheck.api import check

    model = check(FLOAT).models[0]
    gates = check_gates(
        model,
        Config(max_cpu_ops=0, require_full_mapping=True, min_tpu_mac_share=1.0, max_latency_ms=0),
    )
    entry = BaselineEntry(model.summary.ops_total, model.summary.ops_tpu + 1, {}, frozenset())
    base = Baseline(str(tmp_path / "b.json"), {"float32.tflite": entry})
    shutil.copy(FLOAT, tmp_path / "float32.tflite")
    regressions = base.compare(model._replace(path=str(tmp_path / "float32.tflite")))[1]
    names = {g.name for g in [*gates, *regressions]}
    assert names == set(GATES) and report["exit_code"] == 1
    for name in names:
        assert main(["rule", f"gate/{name}"]) == 0
        text = capsys.readouterr().out
        assert f"# {name} (gate/{name})" in text and "## Why" in text and "## Fix" in text
        assert main(["rule", f"gate/{name}", "--format", "json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc == rule_dict(GATES[name]) and doc["family"] == "gate"
    assert main(["rule", "gate/nonsense"]) == 2
    assert "gate/max-cpu-ops" in capsys.readouterr().err


def test_sarif_describes_failed_gates_with_their_explanation(tmp_path: Path) -> None:
    result = run_cli(str(FLOAT), "--format", "sarif", "--max-cpu-ops", "0")
    sarif = json.loads(result.stdout)
    sarif_validator().validate(sarif)
    rules = {r["id"]: r for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    gate = rules["gate/max-cpu-ops"]
    assert gate["fullDescription"]["text"] == GATES["max-cpu-ops"].explanation
    assert GATES["max-cpu-ops"].fix in gate["help"]["text"]


def test_job_summary_with_fail_on_never_says_what_was_found(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([str(FLOAT), str(DEMO), "--format", "markdown", "--fail-on", "never"]) == 0
    text = capsys.readouterr().out
    headline = text.splitlines()[0]
    assert "passed" not in headline and "✅" not in headline
    # The float model's errors (Q001, G003), counted: not "passed".
    assert re.search(r"2 models checked, [1-9]\d* errors? found", headline), headline
    assert "--fail-on never" in headline
    (float_row,) = [line for line in text.splitlines() if line.startswith("| `" + str(FLOAT))]
    assert "passed" not in float_row and "--fail-on never" in float_row
    # The default gate: the same models fail, and a clean run still says passed.
    assert main([str(FLOAT), str(DEMO), "--format", "markdown"]) == 1
    assert capsys.readouterr().out.startswith("## ❌ coralcheck: 1 of 2 models failed")
    assert main([str(DEMO), "--format", "markdown", "--select", "Q001"]) == 0
    assert capsys.readouterr().out.startswith("## ✅ coralcheck: 1 model passed")


def test_upper_case_extensions_are_found_in_directories_and_globs(tmp_path: Path) -> None:
    names = ["A.TFLITE", "sub/b.Tflite", "c.tflite"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEMO, tmp_path / name)
    (tmp_path / "notes.TXT").write_text("not a model")
    for args, expected in [
        ([str(tmp_path)], names),
        ([str(tmp_path / "*.tflite")], ["A.TFLITE", "c.tflite"]),
        ([str(tmp_path / "**" / "*.TFLITE")], names),
        ([str(tmp_path / "*")], names),
    ]:
        doc = json.loads(run_cli(*args, "--format", "json").stdout)
        found = sorted(Path(m["path"]).relative_to(tmp_path).as_posix() for m in doc["models"])
        assert found == sorted(expected), args


def test_output_into_a_missing_directory_makes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "reports" / "ci" / "coralcheck.sarif"
    assert main([str(DEMO), "--format", "sarif", "-o", str(report)]) == 0
    assert json.loads(report.read_text())["version"] == "2.1.0"
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([str(DEMO), "-o", str(blocker / "report.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a directory" in err and "Traceback" not in err


def test_a_misspelled_tool_table_is_named_in_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    shutil.copy(FLOAT, project / "models" / "a.tflite")
    shutil.copy(FLOAT, project / "models" / "b.tflite")
    (project / "pyproject.toml").write_text('[tool.coralchek]\nfail-on = "never"\n')
    assert main([str(project / "models")]) == 1  # the table is not read: the error fails
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("coralcheck: warning: ")
    assert "[tool.coralchek]" in err and "[tool.coralcheck]" in err
    # Other tools' tables are not misspellings.
    (project / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n[tool.coverage]\n")
    assert main([str(project / "models")]) == 1
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[tool.coralcheck]\nfail-on = "never"\n', "[tool.coralcheck] is for pyproject.toml"),
        ('[severty]\nA001 = "info"\n', "unknown table [severty]"),
        ('fail_on = "never"\n', "did you mean 'fail-on'?"),
    ],
)
def test_unknown_tables_in_coralcheck_toml_are_named(
    tmp_path: Path, toml: str, expected: str
) -> None:
    path = tmp_path / "coralcheck.toml"
    path.write_text(toml)
    with pytest.raises(config.UsageError) as error:
        config.load_config(path)
    assert expected in error.value.one_line() and "\n" not in error.value.one_line()


def test_readme_pre_commit_example_pins_no_missing_tag() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## pre-commit") : readme.index("## GitHub Actions")]
    (rev,) = re.findall(r"^\s+rev: (\S+)", section, re.MULTILINE)
    assert re.fullmatch(r"[0-9a-f]{40}", rev), rev  # a commit SHA: no release tag exists yet
    assert "commit SHA" in section or "SHA" in section


def test_readme_documents_every_subcommand() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in SUBCOMMANDS:
        if name != "lint":
            assert f"coralcheck {name}" in readme, name
