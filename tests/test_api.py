"""The public API: `coralcheck.check(path, ...) -> Report` and `coralcheck.load`."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, cli_env

import coralcheck
from coralcheck.options import Options
from coralcheck.render.phrases import recovery
from coralcheck.report import ModelReport, Summary

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


def test_report_records_copy_compare_and_show_like_dataclasses() -> None:
    model = ModelReport("m.tflite", "source", 10, "16.0", Summary(1, 1, 0, 1))
    moved = model._replace(path="n.tflite")
    assert (moved.path, model.path) == ("n.tflite", "m.tflite")
    assert moved != model and moved._replace(path="m.tflite") == model
    other = ModelReport("x", "source", 1, "1", model.summary)
    assert model.ops == other.ops == [] and model.ops is not other.ops  # one list each
    assert repr(model).startswith("ModelReport(path='m.tflite', kind='source', file_size=10,")
    with pytest.raises(ValueError, match="unexpected field names: \\['colour'\\]"):
        model._replace(colour="red")
    with pytest.raises(AttributeError):
        model.colour = "red"  # type: ignore[attr-defined]  # __slots__: no typos land silently


def test_options_default_severity_is_read_only_and_options_pickle() -> None:
    """Options go to worker processes (more than one model), with the default severity too."""
    default = Options()
    with pytest.raises(TypeError):
        default.severity["A001"] = "info"  # type: ignore[index]
    assert pickle.loads(pickle.dumps(default)) == default
    chosen = Options(select=("A",), severity={"A001": "info"})
    assert pickle.loads(pickle.dumps(chosen)) == chosen
    model = ModelReport("m.tflite", "source", 10, "16.0", Summary(1, 1, 0, 1))
    assert pickle.loads(pickle.dumps(model)) == model


def test_a_report_of_many_ops_pickles_as_rows_and_comes_back_equal(tmp_path) -> None:
    """A worker process sends its report back pickled: the op placements go as plain rows (a
    NamedTuple pickles through Python code, 6 ms for 3,500 ops) and come back as records."""
    from coralcheck.report import OpPlacement, Report

    ops = [
        OpPlacement(i, "CONV_2D", 1, "tpu", "Mapped to Edge TPU", "", None, i) for i in range(40)
    ]
    ops[7] = ops[7]._replace(reason="\x1b[2J odd", blamed_on=3)
    model = ModelReport("m.tflite", "source", 10, "16.0", Summary(40, 40, 0, 1), ops=ops)
    data = pickle.dumps(Report(models=[model], tool_version="x"), pickle.HIGHEST_PROTOCOL)
    back = pickle.loads(data).models[0]
    assert back == model and back is not model
    assert type(back.ops) is list and {type(op) for op in back.ops} == {OpPlacement}
    assert back.ops[7].reason == "\x1b[2J odd" and back.ops[7].blamed_on == 3
    assert b"_record_list" in data and data.count(b"OpPlacement") == 1  # one class, rows
    # Records of different classes in one list pickle one by one, and still come back equal.
    model.ops = [*ops[:20], Summary(1, 1, 0, 1), *ops[20:]]  # type: ignore[list-item]
    assert pickle.loads(pickle.dumps(model)) == model


def test_report_settings_and_render_modules_import_no_dataclasses() -> None:
    """Importing `dataclasses` (it imports inspect, ast, dis, tokenize) and creating dataclasses
    costs the command milliseconds at every start: the records here are NamedTuples and slotted
    classes."""
    modules = ", ".join(
        [
            "coralcheck.cli",
            "coralcheck.commands.lint",
            "coralcheck.report",
            "coralcheck.options",
            "coralcheck.config",
            "coralcheck.render",
            "coralcheck.render.phrases",
            "coralcheck.render.json",
            "coralcheck.edgetpu.knowledge",
            "coralcheck.checks",
            "coralcheck.baseline",
        ]
    )
    script = (
        f"import sys, {modules}; print(sorted({{'dataclasses', 'inspect'}} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
        cwd=REPO,
        check=True,
    )
    assert result.stdout.strip() == "[]"
