"""`coralcheck MODEL...` end to end: files, directories and globs, formats, output files, exit
codes, gates, colour, many models with bad ones among them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, cli_env, run_cli
from helpers.reports import ANSI, sarif_validator, validate_report_json

from coralcheck.cli import main

ALL_FIXTURES = sorted(str(p) for p in FIXTURES.glob("*.tflite"))
ERROR_LINE = re.compile(r"^coralcheck: error: (.+?): (.+)$")


def json_of(*args: str) -> tuple[int, dict]:
    result = run_cli(*args, "--format", "json")
    return result.returncode, json.loads(result.stdout)


# --- the terminal report -----------------------------------------------------------------------


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_every_fixture_plain_report_fits_80_columns(verbose: list[str]) -> None:
    result = run_cli(*ALL_FIXTURES, *verbose)
    assert result.returncode in (0, 1), result.stderr
    assert result.stderr == ""
    assert not ANSI.search(result.stdout)
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    for path in ALL_FIXTURES:
        assert path in result.stdout
    assert f"{len(ALL_FIXTURES)} models:" in result.stdout  # the summary at the end


def test_colour_follows_no_color_and_force_color() -> None:
    def run(**env: str) -> str:
        environment = cli_env()
        environment.pop("NO_COLOR")
        environment.update(env)
        return subprocess.run(
            [sys.executable, "-m", "coralcheck", str(FIXTURES / "demo_int8.tflite")],
            capture_output=True,
            text=True,
            env=environment,
            cwd=REPO,
            check=False,
        ).stdout

    assert not ANSI.search(run())  # piped: plain
    assert ANSI.search(run(FORCE_COLOR="1"))
    assert not ANSI.search(run(FORCE_COLOR="1", NO_COLOR="1"))


# --- many models -------------------------------------------------------------------------------


def model_tree(root: Path) -> list[Path]:
    """demo and silu at two depths, plus files that are not models."""
    paths = [root / "a.tflite", root / "sub" / "deeper" / "b.tflite", root / "sub" / "c.tflite"]
    for path, fixture in zip(paths, ("demo_int8", "silu_int8", "demo_int8"), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / f"{fixture}.tflite", path)
    (root / "README.md").write_text("not a model", encoding="utf-8")
    (root / "sub" / "weights.bin").write_bytes(b"\0" * 16)
    return sorted(paths)


def test_directories_are_searched_recursively_for_tflite_files(tmp_path: Path) -> None:
    expected = [str(p) for p in model_tree(tmp_path)]
    code, doc = json_of(str(tmp_path))
    assert code == 0 or code == 1
    assert [m["path"] for m in doc["models"]] == expected
    assert doc["errors"] == []


def test_globs_and_duplicates(tmp_path: Path) -> None:
    expected = [str(p) for p in model_tree(tmp_path)]
    _, doc = json_of(str(tmp_path / "**" / "*.tflite"), str(tmp_path / "a.tflite"))
    assert [m["path"] for m in doc["models"]] == expected  # a.tflite once
    _, doc = json_of(str(tmp_path / "sub" / "*"))  # matches a dir and a .bin: only models
    assert sorted(m["path"] for m in doc["models"]) == [
        str(tmp_path / "sub" / "c.tflite"),
        str(tmp_path / "sub" / "deeper" / "b.tflite"),
    ]


def test_models_keep_the_command_line_order() -> None:
    order = [
        str(FIXTURES / f) for f in ("silu_int8.tflite", "demo_int8.tflite", "gelu_int8.tflite")
    ]
    _, doc = json_of(*order)
    assert [m["path"] for m in doc["models"]] == order


def test_a_bad_model_among_good_ones(tmp_path: Path) -> None:
    model_tree(tmp_path)
    (tmp_path / "empty.tflite").write_bytes(b"")
    (tmp_path / "text.tflite").write_text("hello", encoding="utf-8")
    demo = (FIXTURES / "demo_int8.tflite").read_bytes()
    (tmp_path / "sub" / "cut.tflite").write_bytes(demo[: len(demo) // 3])
    result = run_cli(str(tmp_path), str(tmp_path / "missing.tflite"), str(tmp_path / "nothing*"))
    assert result.returncode == 2
    errors = [ERROR_LINE.match(line) for line in result.stderr.splitlines()]
    assert all(errors), result.stderr
    assert sorted(e[1] for e in errors) == sorted(
        str(p)
        for p in (
            tmp_path / "empty.tflite",
            tmp_path / "text.tflite",
            tmp_path / "sub" / "cut.tflite",
            tmp_path / "missing.tflite",
            tmp_path / "nothing*",
        )
    )
    assert "Traceback" not in result.stderr
    # the good models are still reported, and the summary counts the bad ones
    compact = "".join(result.stdout.split())  # long paths are folded at 80 columns
    for good in ("a.tflite", "sub/c.tflite", "sub/deeper/b.tflite"):
        assert f"{tmp_path / good}sourcemodel" in compact
    assert re.search(r"^8 models: \d+ failed, 5 could not be checked$", result.stdout, re.M)
    # in JSON too
    _, doc = json_of(str(tmp_path))
    assert len(doc["models"]) == 3 and len(doc["errors"]) == 3 and doc["exit_code"] == 2
    validate_report_json(doc)


def test_an_internal_error_in_one_model_is_exit_3_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(path: str, options: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("coralcheck.api.check_model", broken)
    monkeypatch.delenv("CORALCHECK_DEBUG", raising=False)
    assert main([str(FIXTURES / "demo_int8.tflite"), "--isolated"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    model = FIXTURES / "demo_int8.tflite"
    assert err[0].startswith(f"coralcheck: error: {model}: internal error: ZeroDivisionError: boom")


# --- formats and output files ------------------------------------------------------------------


def test_json_of_every_fixture_validates() -> None:
    code, doc = json_of(*ALL_FIXTURES)
    validate_report_json(doc)
    assert doc["exit_code"] == code
    assert [m["path"] for m in doc["models"]] == ALL_FIXTURES


def test_sarif_of_every_fixture_validates() -> None:
    validator = sarif_validator()
    result = run_cli(*ALL_FIXTURES, "--format", "sarif")
    doc = json.loads(result.stdout)
    assert not [e.message for e in validator.iter_errors(doc)]
    run = doc["runs"][0]
    assert len(run["artifacts"]) == len(ALL_FIXTURES)
    # run from the repository: URIs are relative to it
    assert run["artifacts"][0]["location"]["uri"].startswith("fixtures/")
    assert run["invocations"][0]["exitCode"] == result.returncode


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "junit", "markdown"])
def test_output_file_and_models_untouched(tmp_path: Path, fmt: str) -> None:
    model = tmp_path / "m.tflite"
    shutil.copy(FIXTURES / "silu_int8.tflite", model)
    before = model.read_bytes(), model.stat().st_mtime_ns
    out = tmp_path / f"report.{fmt}"
    result = run_cli(str(model), "--format", fmt, "-o", str(out))
    assert result.returncode in (0, 1)
    assert result.stdout == ""
    assert out.exists()
    if fmt != "github":
        assert out.stat().st_size > 0
    assert (model.read_bytes(), model.stat().st_mtime_ns) == before
    assert not ANSI.search(out.read_text(encoding="utf-8"))


def test_refuses_to_write_the_report_over_a_model(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    shutil.copy(FIXTURES / "demo_int8.tflite", model)
    before = model.read_bytes()
    result = run_cli(str(model), "-o", str(model))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"coralcheck: error: {model}: is one of the models being checked; refusing to overwrite it"
    )
    assert model.read_bytes() == before


def test_statistics_count_the_findings_of_the_report() -> None:
    _, doc = json_of(*ALL_FIXTURES)
    counts: Counter[str] = Counter()
    for f in (f for m in doc["models"] for f in m["findings"]):
        counts[f["code"]] += len(f["places"]) or 1  # a grouped finding: each of its places
    stats = json.loads(run_cli(*ALL_FIXTURES, "--statistics", "--format", "json").stdout)
    assert {s["code"]: s["count"] for s in stats} == dict(counts)
    assert [s["count"] for s in stats] == sorted((s["count"] for s in stats), reverse=True)
    text = run_cli(*ALL_FIXTURES, "--statistics").stdout
    for code, n in counts.items():
        assert re.search(rf"^\s*{n}\s+{code}\s", text, re.M)
    if not counts:
        assert text.strip() == "No findings."


# --- usage errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-on", "fatal"], "invalid choice: 'fatal'"),
        (["--format", "xml"], "invalid choice: 'xml'"),
        (["--min-tpu-mac-share", "lots"], "--min-tpu-mac-share: min-tpu-mac-share must be 0-1"),
        (["--max-cpu-ops", "-1"], "--max-cpu-ops: must be a whole number >= 0"),
        (["--statistics", "--format", "sarif"], "--statistics: works with --format text or json"),
        (["--baseline", "a", "--write-baseline", "b"], "not allowed with argument"),
        (["--config", "/nonexistent/coralcheck.toml"], "no such config file"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run_cli(str(FIXTURES / "demo_int8.tflite"), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_existing_target_flags_still_map_into_options() -> None:
    from coralcheck.cli import build_parser
    from coralcheck.commands.lint import options_from_args

    parser = build_parser("lint")
    args = parser.parse_args(
        [
            "m.tflite",
            "--compiler-version",
            "15.0",
            "--runtime-version",
            "13",
            "--compile",
            "--compiled",
            "m_edgetpu.tflite",
            "--compiler-flag=-a",
            "--compiler-timeout",
            "9",
        ]
    )
    options = options_from_args(args)
    assert (options.compiler_version, options.runtime_version) == ("15.0", 13)
    assert options.compile and options.compiled_path == "m_edgetpu.tflite"
    assert options.compiler_flags == ("-a",) and options.compiler_timeout == 9.0


@pytest.mark.parametrize(
    "flags,given",
    [([], None), (["-a"], True), (["--enable-multiple-subgraphs"], True),
     (["--no-enable-multiple-subgraphs"], False)],
)  # fmt: skip
def test_multiple_subgraphs_flag_maps_into_options_and_settings(
    flags: list[str], given: bool | None
) -> None:
    from coralcheck.cli import build_parser
    from coralcheck.commands.lint import cli_settings, options_from_args

    args = build_parser("lint").parse_args(["m.tflite", *flags])
    assert options_from_args(args).enable_multiple_subgraphs is bool(given)
    assert cli_settings(args)["enable_multiple_subgraphs"] is given  # None: the config decides


# --- exit codes and gates on real models -------------------------------------------------------


def test_fail_on_decides_the_exit_code() -> None:
    gelu = str(FIXTURES / "gelu_int8.tflite")
    assert run_cli(gelu).returncode == 1
    assert run_cli(gelu, "--fail-on", "never").returncode == 0
    _, doc = json_of(gelu)
    severities = {f["severity"] for f in doc["models"][0]["findings"]}
    assert "error" in severities


def test_gates_exit_1_and_show_in_every_format() -> None:
    gelu = str(FIXTURES / "gelu_int8.tflite")
    gate = ["--fail-on", "never", "--max-cpu-ops", "0"]
    text = run_cli(gelu, *gate)
    assert text.returncode == 1
    assert re.search(r"FAILED\s+max-cpu-ops", text.stdout)
    assert run_cli(gelu, "--fail-on", "never", "--max-cpu-ops", "1000").returncode == 0
    _, doc = json_of(gelu, *gate)
    assert doc["models"][0]["verdict"]["gates"][0]["passed"] is False
    github = run_cli(gelu, *gate, "--format", "github").stdout
    assert "title=coralcheck gate max-cpu-ops::gate max-cpu-ops failed" in github
    junit = run_cli(gelu, *gate, "--format", "junit").stdout
    assert '<failure message="' in junit and 'type="gate/max-cpu-ops"' in junit
    markdown = run_cli(gelu, *gate, "--format", "markdown").stdout
    assert "gate **max-cpu-ops** failed" in markdown
    sarif = json.loads(run_cli(gelu, *gate, "--format", "sarif").stdout)
    assert "gate/max-cpu-ops" in {r["ruleId"] for r in sarif["runs"][0]["results"]}
    full = run_cli(gelu, "--fail-on", "never", "--require-full-mapping")
    assert full.returncode == 1
    share = run_cli(gelu, "--fail-on", "never", "--min-tpu-mac-share", "100%")
    assert share.returncode == 1


def test_select_and_ignore_from_the_command_line() -> None:
    gelu = str(FIXTURES / "gelu_int8.tflite")
    _, doc = json_of(gelu)
    codes = sorted({f["code"] for f in doc["models"][0]["findings"]})
    assert codes
    _, ignored = json_of(gelu, "--ignore", ",".join(codes))
    assert ignored["models"][0]["findings"] == []
    _, selected = json_of(gelu, "--select", codes[0])
    assert {f["code"] for f in selected["models"][0]["findings"]} == {codes[0]}


def test_compiled_corpus_models_render_in_every_format(corpus_dir: Path) -> None:
    compiled = sorted((corpus_dir / "models" / "coral_test_data_grouper").glob("*_edgetpu.tflite"))
    compiled = [str(p) for p in compiled if p.stat().st_size < 2_000_000][:3]
    if not compiled:
        pytest.skip("no small compiled model in the corpus")
    text = run_cli(*compiled, "-v")
    assert text.returncode in (0, 1), text.stderr
    assert max(len(line) for line in text.stdout.splitlines()) <= 80
    assert text.stdout.count("compiled model") >= len(compiled)
    _, doc = json_of(*compiled)
    validate_report_json(doc)
    assert {m["kind"] for m in doc["models"]} == {"compiled"}
    sarif = json.loads(run_cli(*compiled, "--format", "sarif").stdout)
    assert not [e.message for e in sarif_validator().iter_errors(sarif)]
