"""The command's basics: --version, `python -m coralcheck`, and the summary of a model, checked
against TensorFlow's own view of the fixtures (fixtures/manifest.json), not pasted output."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import CORPUS, FIXTURES, cli_env, manifest_entry, run_cli

import coralcheck

DEMO = "demo_int8.tflite"


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"coralcheck {coralcheck.__version__}\n"
    assert result.stderr == ""
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", coralcheck.__version__)


def test_console_script_matches_python_m() -> None:
    exe = shutil.which("coralcheck")
    if exe is None:
        pytest.skip("coralcheck is not installed as a command here")
    result = subprocess.run(
        [exe, "--version"], capture_output=True, text=True, env=cli_env(), timeout=60, check=False
    )
    assert result.returncode == 0
    assert result.stdout == run_cli("--version").stdout


def test_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: coralcheck")
    assert "--format" in result.stdout


def test_no_arguments_is_a_usage_error() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage: coralcheck" in result.stderr


def _histogram(entry: dict) -> Counter[str]:
    return Counter(name for _, name, _ in entry["ops"])


@pytest.mark.parametrize("file", [DEMO, "float_io_int8.tflite", "while_loop.tflite"])
def test_json_summary_matches_the_manifest(file: str) -> None:
    entry = manifest_entry(file)
    path = str(FIXTURES / file)
    result = run_cli(path, "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    (model,) = json.loads(result.stdout)["models"]
    assert model["path"] == path
    assert model["file_size"] == entry["size_bytes"]
    assert model["kind"] == "source"
    assert model["subgraphs"] == entry["subgraphs"]
    assert model["summary"]["ops_total"] == len(entry["ops"])
    assert model["op_histogram"] == dict(_histogram(entry))
    tensors = {t["index"]: t for t in entry["tensors"]}
    io = [(t["role"], t["index"]) for t in model["io"]]
    want_io = [("input", i) for i in entry["inputs"]] + [("output", i) for i in entry["outputs"]]
    assert io == want_io
    for got in model["io"]:
        want = tensors[got["index"]]
        assert got["name"] == want["name"]
        assert got["dtype"] == want["dtype"]
        assert got["shape"] == want["shape"]
        scales = want["quantization"]["scales"]
        assert got["scale"] == (scales[0] if len(scales) == 1 else None)
        zero_points = want["quantization"]["zero_points"]
        assert got["zero_point"] == (zero_points[0] if len(zero_points) == 1 else None)


def test_text_summary_shows_the_model(tmp_path: Path) -> None:
    entry = manifest_entry(DEMO)
    path = str(FIXTURES / DEMO)
    result = run_cli(path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert result.stderr == ""
    assert path in text
    assert "source" in text
    size = entry["size_bytes"]
    assert any(s in text for s in (f"{size:,}", str(size), f"{size / 1024:.2f} KiB")), text
    tensors = {t["index"]: t for t in entry["tensors"]}
    for index in entry["inputs"] + entry["outputs"]:
        want = tensors[index]
        line = next(ln for ln in text.splitlines() if f" {want['name']} " in f" {ln} ")
        assert want["dtype"].lower() in line.lower()
        assert "x".join(str(d) for d in want["shape"]) in line
        numbers = [float(n) for n in re.findall(r"(?<![\w.])-?\d+\.\d+(?:e-?\d+)?", line)]
        scale = want["quantization"]["scales"][0]
        assert any(abs(n - scale) <= 1e-6 * scale for n in numbers), line
        assert line.split()[-1] == str(want["quantization"]["zero_points"][0])
    for name, count in _histogram(entry).items():
        assert name in text
        if count > 1:
            assert f"{name}×{count}" in text or f"{name} ×{count}" in text


def test_text_output_has_no_colour_codes_when_piped() -> None:
    result = run_cli(str(FIXTURES / DEMO))
    assert "\x1b[" not in result.stdout


def test_compiled_model_is_reported_as_compiled() -> None:
    compiled = CORPUS / "models/coral_test_data_grouper/mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    if not compiled.exists():
        pytest.skip("the shared corpus is not here")
    result = run_cli(str(compiled), "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    (model,) = json.loads(result.stdout)["models"]
    assert model["kind"] == "compiled"
    assert model["file_size"] == compiled.stat().st_size


def test_python_m_runs_from_any_directory(tmp_path: Path) -> None:
    """`python -m coralcheck` works outside the repository too (paths relative to the cwd)."""
    model = tmp_path / "m.tflite"
    model.write_bytes((FIXTURES / DEMO).read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "coralcheck", "m.tflite", "--format", "json"],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    assert json.loads(result.stdout)["models"][0]["path"] == "m.tflite"
