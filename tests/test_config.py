"""Settings: finding the config file, validating it, merging it with the CLI, and what it decides
(selection, severities, per-file ignores, fail-on, gates)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, REPO
from helpers.reports import clean, partly_mapped

from coralcheck import config as cfg
from coralcheck import config_keys
from coralcheck.cli import main
from coralcheck.errors import UsageError
from coralcheck.gates import check_gates
from coralcheck.outcome import judge
from coralcheck.report import Summary

CODES = ("CC101", "CC102", "CC302", "CC900")


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("coralcheck.registry.codes", lambda: list(CODES))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- finding and reading -----------------------------------------------------------------------


def test_nearest_config_file_wins(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.coralcheck]\nfail-on = "info"\n')
    write(tmp_path / "a" / "pyproject.toml", "[project]\nname = 'x'\n")  # no [tool.coralcheck]
    write(tmp_path / "a" / "b" / "coralcheck.toml", 'fail-on = "warning"\n')
    write(tmp_path / "a" / "b" / "pyproject.toml", '[tool.coralcheck]\nfail-on = "never"\n')
    model = tmp_path / "a" / "b" / "c" / "m.tflite"
    assert cfg.find_config(model) == tmp_path / "a" / "b" / "coralcheck.toml"
    assert cfg.find_config(tmp_path / "a" / "m.tflite") == tmp_path / "pyproject.toml"
    assert cfg.resolve(str(model), {}).fail_on == "warning"
    assert cfg.resolve(str(tmp_path / "a" / "m.tflite"), {}).fail_on == "info"
    assert cfg.resolve(str(model), {}, isolated=True).fail_on == "error"


def test_every_key_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "pyproject.toml",
        """
[tool.coralcheck]
select = ["CC1", "CC3"]
ignore = ["cc102"]
fail-on = "Warning"
compiler-version = "15.0"
runtime-version = 13
enable-multiple-subgraphs = true
max-cpu-ops = 2
require-full-mapping = true
min-tpu-mac-share = "90%"

[tool.coralcheck.severity]
CC3 = "error"

[tool.coralcheck.per-file-ignores]
"legacy/*.tflite" = ["CC9"]
""",
    )
    config = cfg.load_config(path)
    assert config == cfg.Config(
        select=("CC1", "CC3"),
        ignore=("CC102",),
        severity={"CC3": "error"},
        per_file_ignores={"legacy/*.tflite": ("CC9",)},
        fail_on="warning",
        compiler_version="15.0",
        runtime_version=13,
        enable_multiple_subgraphs=True,
        max_cpu_ops=2,
        require_full_mapping=True,
        min_tpu_mac_share=0.9,
        source=str(path),
    )
    options = config.options(cfg.Options())
    assert (options.compiler_version, options.runtime_version) == ("15.0", 13)
    assert options.enable_multiple_subgraphs is True
    assert options.select == ("CC1", "CC3") and options.ignore == ("CC102",)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('fail_on = "warning"', "unknown key 'fail_on'"),
        ('select = ["XX1"]', "unknown rule code 'XX1' in select"),
        ('ignore = ["CC1", 7]', "ignore must be a list of rule codes"),
        ('fail-on = "fatal"', "fail-on must be one of error, warning, info, never"),
        ("max-cpu-ops = -1", "max-cpu-ops must be a whole number >= 0"),
        ("max-cpu-ops = true", "max-cpu-ops must be a whole number >= 0"),
        ('require-full-mapping = "yes"', "require-full-mapping must be true or false"),
        ("enable-multiple-subgraphs = 1", "enable-multiple-subgraphs must be true or false"),
        ("min-tpu-mac-share = 150", "min-tpu-mac-share must be 0-1 or a percentage"),
        ('severity = { CC101 = "fatal" }', "severity of CC101 must be one of error, warning"),
        ('severity = { ZZ = "info" }', "unknown rule code 'ZZ' in severity"),
        ('per-file-ignores = { "*.tflite" = ["QQ"] }', "unknown rule code 'QQ'"),
        ("select = [", "invalid TOML"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_valid_choices(
    tmp_path: Path, toml: str, expected: str
) -> None:
    path = write(tmp_path / "coralcheck.toml", toml + "\n")
    with pytest.raises(UsageError) as error:
        cfg.load_config(path)
    assert expected in error.value.problem
    assert "\n" not in error.value.one_line()
    if "unknown key" in expected:
        listed = error.value.problem.split("(valid: ", 1)[1].split(")", 1)[0]
        valid = listed.split(", ")
        assert valid[: len(config_keys.KEYS)] == sorted(config_keys.KEYS)  # every key, sorted
        assert {"compiler-version", "fail-on", "ignore", "max-cpu-ops"} <= set(valid)
    if "unknown rule code" in expected:
        assert "CC101, CC102, CC302, CC900" in error.value.problem


def test_cli_reports_a_bad_config_in_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "coralcheck.toml", "fail_on = 'warning'\n")
    model = tmp_path / "m.tflite"
    model.write_bytes((FIXTURES / "demo_int8.tflite").read_bytes())
    assert main([str(model)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"coralcheck: error: {tmp_path / 'coralcheck.toml'}: unknown key")
    assert "valid: clock, compiler-version" in lines[0]


def test_cli_rejects_unknown_codes_in_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(FIXTURES / "demo_int8.tflite"), "--select", "CC1,NOPE"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "coralcheck: error: --select: unknown rule code 'NOPE' in --select "
        "(valid: ALL or a prefix of CC101, CC102, CC302, CC900)"
    ]


# --- merging with the command line ---------------------------------------------------------------


def test_command_line_replaces_config_values(tmp_path: Path) -> None:
    write(tmp_path / "coralcheck.toml", 'fail-on = "info"\nmax-cpu-ops = 3\nselect = ["CC1"]\n')
    model = str(tmp_path / "m.tflite")
    merged = cfg.resolve(model, {"fail_on": "never", "max_cpu_ops": None, "select": ("CC3",)})
    assert (merged.fail_on, merged.max_cpu_ops, merged.select) == ("never", 3, ("CC3",))


def test_explicit_config_file_and_its_errors(tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere" / "pyproject.toml", '[tool.coralcheck]\nfail-on = "info"')
    model = str(tmp_path / "m.tflite")
    assert cfg.resolve(model, {}, config_file=str(other)).fail_on == "info"
    with pytest.raises(UsageError, match="no such config file"):
        cfg.resolve(model, {}, config_file=str(tmp_path / "missing.toml"))
    bare = write(tmp_path / "bare" / "pyproject.toml", "[project]\n")
    with pytest.raises(UsageError, match=r"no \[tool.coralcheck\] table"):
        cfg.resolve(model, {}, config_file=str(bare))


@pytest.mark.parametrize(
    ("given", "share"), [(0.9, 0.9), ("0.9", 0.9), ("90%", 0.9), (90, 0.9), ("1", 1.0), (0, 0.0)]
)
def test_mac_share_as_fraction_or_percentage(given: object, share: float) -> None:
    assert config_keys.parse_share(given, "--min-tpu-mac-share") == pytest.approx(share)


@pytest.mark.parametrize("given", [101, "-5%", "lots", True])
def test_bad_mac_share(given: object) -> None:
    with pytest.raises(UsageError):
        config_keys.parse_share(given, "x")


# --- what the settings decide -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("select", "ignore", "selected"),
    [
        (("ALL",), (), {"CC101", "CC102", "CC302", "CC900"}),
        (("CC1",), (), {"CC101", "CC102"}),
        (("CC1",), ("CC102",), {"CC101"}),  # the more specific ignore wins
        (("CC102",), ("CC1",), {"CC102"}),  # the more specific select wins
        (("CC1",), ("CC1",), set()),  # a tie: ignore wins
        (("ALL",), ("CC",), set()),
    ],
)
def test_selection_follows_ruff(select: tuple, ignore: tuple, selected: set) -> None:
    assert {c for c in CODES if cfg.is_selected(c, select, ignore)} == selected


def test_apply_filters_overrides_severity_and_leaves_the_input_alone(tmp_path: Path) -> None:
    report = partly_mapped(path=str(tmp_path / "legacy" / "old.tflite"))
    config = cfg.Config(
        ignore=("CC3",),
        severity={"CC1": "warning", "CC101": "info"},
        per_file_ignores={"legacy/*.tflite": ("CC9",), "other/*": ("CC101",)},
        source=str(tmp_path / "coralcheck.toml"),
    )
    applied = cfg.apply(report, config)
    assert [(f.code, f.severity) for f in applied.findings] == [("CC101", "info")]
    assert [f.code for f in report.findings] == ["CC101", "CC302", "CC900"]
    # a glob without a directory also matches the file name
    by_name = config._replace(per_file_ignores={"old.tflite": ("CC",)})
    assert cfg.apply(report, by_name).findings == []


def test_fail_on_decides_which_findings_fail() -> None:
    report = partly_mapped()  # one error, one warning, one info
    levels = config_keys.FAIL_ON
    failing = {level: len(judge(report, cfg.Config(fail_on=level)).failing) for level in levels}
    assert failing == {"error": 1, "warning": 2, "info": 3, "never": 0}
    assert judge(report, cfg.Config(fail_on="never")).failed is False
    known = judge(report, cfg.Config(), known=frozenset({0}))
    assert known.failing == frozenset() and known.failed is False


def test_gates_pass_and_fail_on_the_models_numbers() -> None:
    report = partly_mapped()  # 27 of 30 on the TPU, 90 % of the MACs

    def gates(**settings: object) -> dict[str, bool]:
        verdict = judge(report, cfg.Config(fail_on="never", **settings))
        return {g.name: g.passed for g in verdict.gates}

    assert gates() == {}
    assert gates(max_cpu_ops=3) == {"max-cpu-ops": True}
    assert gates(max_cpu_ops=2) == {"max-cpu-ops": False}
    assert gates(require_full_mapping=True) == {"require-full-mapping": False}
    assert gates(min_tpu_mac_share=0.9) == {"min-tpu-mac-share": True}
    assert gates(min_tpu_mac_share=0.91) == {"min-tpu-mac-share": False}
    assert judge(report, cfg.Config(fail_on="never", max_cpu_ops=2)).failed
    full = judge(clean(), cfg.Config(require_full_mapping=True, max_cpu_ops=0))
    assert [g.passed for g in full.gates] == [True, True] and not full.failed
    message = check_gates(report, cfg.Config(min_tpu_mac_share=0.95))[0].message
    assert message == ("90.0% of multiply-accumulates on the Edge TPU (at least 95.0% required)")


def test_full_mapping_needs_every_op_on_the_tpu() -> None:
    report = clean()._replace(summary=Summary(5, 4, 0, 1))  # one op unaccounted
    verdict = judge(report, cfg.Config(require_full_mapping=True))
    assert verdict.failed


def test_the_readme_example_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Configuration section of the README, read with the real rule registry."""
    monkeypatch.undo()  # the real registry, not the fake one
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Configuration") :]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = cfg.load_config(write(tmp_path / "pyproject.toml", example))
    assert config.fail_on == "warning" and config.min_tpu_mac_share == pytest.approx(0.9)
    assert config.per_file_ignores and config.severity
