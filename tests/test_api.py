"""The public API: `coralcheck.check(path, ...) -> Report` and `coralcheck.load`."""

from __future__ import annotations

from pathlib import Path

import pytest

import coralcheck
from coralcheck.render.phrases import recovery

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def codes(report: coralcheck.report.Report) -> list[str]:  # type: ignore[name-defined]
    return [f.code for f in report.models[0].findings]


def test_check_returns_the_prediction_and_findings_for_a_source_model() -> None:
    report = coralcheck.check(FIXTURES / "gelu_int8.tflite")
    (model,) = report.models
    assert model.kind == "source"
    assert report.tool_version == coralcheck.__version__
    # GELU is not an Edge TPU op: both GELU ops get the activation advice, and everything
    # after the first one falls to the CPU, blamed on it.
    assert codes(report).count("A004") == 2
    gelu = [op for op in model.ops if op.opcode == "GELU"]
    assert gelu and all(op.placement == "cpu" for op in gelu)
    after = [op for op in model.ops if op.index > gelu[0].index and op.placement == "cpu"]
    assert any(op.blamed_on == gelu[0].index for op in after)
    assert model.summary.ops_tpu + model.summary.ops_cpu == model.summary.ops_total


def test_check_applies_ignore_select_and_severity_like_the_cli_config() -> None:
    everything = codes(coralcheck.check(FIXTURES / "gelu_int8.tflite"))
    assert {"A004", "G001"} <= set(everything)

    no_activations = codes(coralcheck.check(FIXTURES / "gelu_int8.tflite", ignore=("A",)))
    assert "A004" not in no_activations and "G001" in no_activations

    only_graph = coralcheck.check(
        FIXTURES / "gelu_int8.tflite", select=("G",), severity={"G001": "info"}
    )
    findings = only_graph.models[0].findings
    assert {f.code for f in findings} == {"G001"}
    assert all(f.severity == "info" for f in findings)


def test_check_raises_model_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all, just text")
    with pytest.raises(coralcheck.ModelError) as err:
        coralcheck.check(bad)
    assert str(bad) in err.value.one_line()


@pytest.mark.parametrize(
    ("ops", "phrase"),
    [
        (3, "fixing it alone brings 3 ops to the Edge TPU"),
        (1, "fixing it alone brings 1 op to the Edge TPU"),
        (0, "fixing it alone brings no op back: other root causes block the same ops"),
    ],
)
def test_recovery_phrase_never_promises_zero_ops(ops: int, phrase: str) -> None:
    assert recovery(ops) == phrase
