"""`coralcheck compare`: model variants side by side, with and without numeric errors.

The lint facts are checked against coralcheck's own lint report and reader (the placement
predictor may not be there yet: nothing here assumes ops were placed); the activation column
against what the fixtures are documented to contain (fixtures/README.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from helpers.keras_toys import CALIBRATION_SAMPLES, Toys, run_without_ml_libraries, toys

from coralcheck import load
from coralcheck.api import check
from coralcheck.cli import main

SILU, DEMO = str(FIXTURES / "silu_int8.tflite"), str(FIXTURES / "demo_int8.tflite")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Toys:
    pytest.importorskip("tensorflow")
    return toys(tmp_path_factory.getbasetemp() / "keras_toys")


def test_lint_facts_without_tensorflow_or_litert() -> None:
    """The comparison without --data runs where TF and LiteRT cannot even be imported."""
    result = run_without_ml_libraries("compare", SILU, DEMO, "--format", "json")
    assert result.returncode == 0, result.stderr
    silu, demo = json.loads(result.stdout)["models"]
    assert (silu["path"], demo["path"]) == (SILU, DEMO)
    for row, path in ((silu, SILU), (demo, DEMO)):
        report = check(path).models[0]
        assert row["file_size"] == os.path.getsize(path)
        assert row["ops_total"] == len(load(path).main.operators)
        assert (row["ops_tpu"], row["ops_cpu"]) == (report.summary.ops_tpu, report.summary.ops_cpu)
        assert row["tpu_segments"] == report.summary.tpu_segments
        assert row["finding_codes"] == sorted({f.code for f in report.findings})
        assert sum(row["findings"].values()) == len(report.findings)
        assert row["numeric"] is None
    # fixtures/README.md: SiLU after conv1 and the depthwise conv; the demo fuses ReLU/ReLU6.
    assert silu["activations"] == {"SiLU": 2}
    assert demo["activations"] == {"ReLU (fused)": 1, "ReLU6 (fused)": 1}


def test_text_table_has_a_column_per_model(capsys: pytest.CaptureFixture[str]) -> None:
    hardswish = str(FIXTURES / "hardswish_int8.tflite")
    assert main(["compare", SILU, DEMO, hardswish]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert header.index("silu_int8") < header.index("demo_int8") < header.index("hardswish")
    for label in ("ops on TPU", "TPU segments", "parameters streamed", "file size", "findings"):
        assert label in out
    activations = next(line for line in out.splitlines() if line.strip().startswith("activations"))
    assert "SiLU×2" in activations and "HardSwish×2" in activations
    assert "output cosine" not in out  # no --data: no numeric rows


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([SILU], "at least two models"),
        ([SILU, DEMO, "--data", "x.npy"], "--data and --reference go together"),
        ([SILU, DEMO, "--reference", SILU], "--data and --reference go together"),
        (
            [SILU, DEMO, "--data", "x.npy", *["--reference", SILU] * 3],
            "once per model (2), not 3",
        ),
        ([SILU, str(FIXTURES / "no_such.tflite")], "no_such.tflite"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("coralcheck: error: ") and expected in err


@pytest.mark.tensorflow
def test_silu_vs_relu_with_each_own_float_reference(
    built: Toys, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(built.int8["silu"]), str(built.int8["relu"]), "--data", str(built.calibration)]
    args += ["--reference", str(built.float["silu"]), "--reference", str(built.float["relu"])]
    assert main(["compare", *args, "--format", "json"]) == 0
    silu, relu = json.loads(capsys.readouterr().out)["models"]
    assert silu["activations"] == {"SiLU": 2}
    assert relu["activations"] == {"ReLU (fused)": 2}
    assert silu["file_size"] == built.int8["silu"].stat().st_size
    for row, variant in ((silu, "silu"), (relu, "relu")):
        numeric = row["numeric"]
        assert numeric["reference"] == str(built.float[variant])
        assert numeric["samples"] == CALIBRATION_SAMPLES
        assert numeric["cosine"] > 0.9 and numeric["snr_db"] > 10
        assert 0.0 <= numeric["top1_agreement"] <= 1.0


@pytest.mark.tensorflow
def test_shared_reference_measures_the_other_variant_as_different(
    built: Toys, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against the SiLU float model, the SiLU int8 model is closer than the ReLU one."""
    args = [str(built.int8["silu"]), str(built.int8["relu"]), "--data", str(built.calibration)]
    assert (
        main(["compare", *args, "--reference", str(built.float["silu"]), "--format", "json"]) == 0
    )
    silu, relu = (row["numeric"] for row in json.loads(capsys.readouterr().out)["models"])
    assert silu["reference"] == relu["reference"] == str(built.float["silu"])
    assert silu["max_abs_error"] < relu["max_abs_error"]


@pytest.mark.tensorflow
def test_text_table_with_numeric_rows(built: Toys, capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(built.int8["silu"]), str(built.int8["relu"]), "--data", str(built.calibration)]
    assert main(["compare", *args, "--reference", str(built.float["silu"])]) == 0
    out = capsys.readouterr().out
    for label in ("output cosine (worst)", "output SNR dB (worst)", "top-1 agreement"):
        assert label in out


def test_numeric_mismatched_inputs_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A candidate whose input differs from the reference's cannot be measured against it."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        pytest.importorskip("tensorflow")
    np.save(tmp_path / "data.npy", np.zeros((2, 32, 32, 3), np.float32))
    batch4 = str(FIXTURES / "batch4_int8.tflite")
    reference = str(FIXTURES / "float32.tflite")
    args = [DEMO, batch4, "--data", str(tmp_path / "data.npy"), "--reference", reference]
    assert main(["compare", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batch4_int8.tflite" in err and "shape" in err


def test_column_headers_are_file_names_unless_they_clash() -> None:
    from coralcheck.commands.compare import column_labels

    deep = "/a/very/long/directory/that/would/fold/the/header"
    assert column_labels([f"{deep}/silu.tflite", f"{deep}/relu.tflite"]) == [
        "silu.tflite",
        "relu.tflite",
    ]
    # Same file name in two folders: only the paths tell them apart.
    assert column_labels(["a/model.tflite", "b/model.tflite"]) == [
        "a/model.tflite",
        "b/model.tflite",
    ]
