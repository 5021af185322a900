"""Repeated findings of one rule as one finding (coralcheck.analyze.repeats): the first places
named, every place in JSON, the fingerprint of the first place kept for baselines and SARIF."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import FIXTURES
from helpers.reports import sarif_validator, validate_report_json

from coralcheck import baseline
from coralcheck.analyze.repeats import GROUP_FROM, SHOWN_PLACES, group_repeats
from coralcheck.api import check
from coralcheck.cli import main
from coralcheck.model import load
from coralcheck.options import Options
from coralcheck.pipeline.source import analyze
from coralcheck.report import Finding

RANK5 = FIXTURES / "rank5_int8.tflite"  # RESHAPE to 5-D, MUL, ADD, RESHAPE back: 4 x S002


def s002(op: int, opcode: str, shape: str = "[1, 2, 8, 16, 8]") -> Finding:
    return Finding(
        "S002",
        "warning",
        f"{opcode} (op {op}): tensor 't{op}' has shape {shape}: 4 dimensions larger than 1, "
        "but only the 3 innermost may be",
        op=op,
        tensor=f"t{op}",
        fix="Keep every tensor at most 3-D.",
        opcode=opcode,
    )


def test_findings_of_one_shape_become_one_at_the_first_place() -> None:
    findings = [
        s002(2, "RESHAPE"),
        Finding("O001", "warning", "GATHER (op 3) is not an Edge TPU operation", op=3),
        *(s002(i, "ADD", f"[1, {i}, 8, 16, 8]") for i in range(4, 10)),
    ]
    (other, group) = sorted(group_repeats(findings), key=lambda f: f.code)
    assert other == findings[1]
    assert (group.code, group.op, group.tensor, group.opcode) == ("S002", 2, "t2", "RESHAPE")
    assert [p.op for p in group.places] == [2, 4, 5, 6, 7, 8, 9]
    assert [p.message for p in group.places] == [f.message for f in findings if f.code == "S002"]
    assert group.message.startswith(findings[0].message)
    named = [f"op {i} ADD" for i in range(4, 4 + SHOWN_PLACES)]
    assert all(label in group.message for label in named)
    assert "op 7 ADD" not in group.message and "6 more places" in group.message
    assert f"and {6 - SHOWN_PLACES} more" in group.message


def test_few_or_different_findings_stay_as_they_are() -> None:
    few = [s002(i, "ADD") for i in range(GROUP_FROM - 1)]
    assert group_repeats(few) == few
    # Another fix, another severity or a different sentence: not the same finding.
    mixed = [
        s002(1, "ADD"),
        s002(2, "ADD")._replace(fix="Something else."),
        s002(3, "ADD")._replace(severity="error"),
        s002(4, "ADD")._replace(message="ADD (op 4): a different problem"),
    ]
    assert group_repeats(mixed) == mixed


def test_a_converted_5d_model_reports_its_rank_problem_once() -> None:
    report = check(RANK5).models[0]
    s002s = [f for f in report.findings if f.code == "S002"]
    assert len(s002s) == 1
    rank_ops = [op.index for op in report.ops if "rank" in op.status]
    assert [p.op for p in s002s[0].places] == rank_ops and len(rank_ops) >= GROUP_FROM


def test_json_lists_every_place(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(RANK5), "--format", "json", "--fail-on", "never"]) == 0
    doc = json.loads(capsys.readouterr().out)
    validate_report_json(doc)
    (finding,) = [f for f in doc["models"][0]["findings"] if f["code"] == "S002"]
    assert [p["opcode"] for p in finding["places"]] == ["RESHAPE", "MUL", "ADD", "RESHAPE"]
    assert all(set(p) == {"op", "opcode", "tensor", "message"} for p in finding["places"])
    single = [f for f in doc["models"][0]["findings"] if f["code"] != "S002"]
    assert single and all(f["places"] == [] for f in single)
    # --statistics counts the places, as often as the rule fired.
    assert main([str(RANK5), "--statistics", "--format", "json"]) == 1
    stats = {s["code"]: s["count"] for s in json.loads(capsys.readouterr().out)}
    assert stats["S002"] == 4


def test_a_baseline_written_before_grouping_knows_the_grouped_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "rank5.tflite"
    model.write_bytes(RANK5.read_bytes())
    monkeypatch.chdir(tmp_path)
    ungrouped = analyze(load(str(model)), Options())  # the findings one by one, as before
    assert sum(f.code == "S002" for f in ungrouped.findings) == 4
    old = tmp_path / "baseline.json"
    old.write_text(baseline.dumps([ungrouped], str(old)))
    old_prints = {
        f["fingerprint"] for f in json.loads(old.read_text())["models"]["rank5.tflite"]["findings"]
    }

    assert main(["rank5.tflite", "--baseline", "baseline.json", "--fail-on", "info"]) == 0
    assert "S002" in (text := capsys.readouterr().out) and "[in baseline]" in text
    assert main(["rank5.tflite", "--format", "sarif", "--fail-on", "never"]) == 0
    sarif = json.loads(capsys.readouterr().out)
    sarif_validator().validate(sarif)
    (result,) = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "S002"]
    assert result["partialFingerprints"]["coralcheck/v1"] in old_prints
    related = result["relatedLocations"]
    assert [r["logicalLocations"][0]["fullyQualifiedName"].split("/")[1] for r in related] == [
        "op[2]:RESHAPE",
        "op[3]:MUL",
        "op[4]:ADD",
        "op[5]:RESHAPE",
    ]
    assert (
        os.path.basename(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
        == "rank5.tflite"
    )


@pytest.mark.tensorflow
def test_keras_time_distributed_and_hard_swish_models_are_not_noisy(tmp_path: Path) -> None:
    """Issue 11: 8 identical S002 for one TimeDistributed layer; one A002 per HardSwish."""
    from helpers.keras_toys import keras_module

    keras = keras_module()
    import numpy as np
    import tensorflow as tf

    def convert(model: object, shape: tuple[int, ...]) -> Path:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        rng = np.random.default_rng(0)
        converter.representative_dataset = lambda: (
            [rng.random(shape, dtype=np.float32)] for _ in range(4)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.uint8
        path = tmp_path / f"{model.name}.tflite"
        path.write_bytes(converter.convert())
        return path

    frames = keras.Input((8, 16, 16, 3), batch_size=1)
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, activation="relu"))(frames)
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D())(x)
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    distributed = convert(keras.Model(frames, outputs, name="distributed"), (1, 8, 16, 16, 3))

    image = keras.Input((16, 16, 3), batch_size=1)
    x = image
    for _ in range(6):
        x = keras.layers.Conv2D(8, 3, padding="same")(x)
        x = keras.layers.Activation("hard_swish")(x)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    swish = convert(keras.Model(image, outputs, name="swish"), (1, 16, 16, 3))

    report = check(distributed).models[0]
    rank_ops = [op.index for op in report.ops if "rank" in op.status]
    assert len(rank_ops) >= 8
    s002s = [f for f in report.findings if f.code == "S002"]
    assert len(s002s) <= 2 and sorted(p.op for f in s002s for p in f.places or [f]) == sorted(
        f.op for f in analyze(load(str(distributed)), Options()).findings if f.code == "S002"
    )

    report = check(swish).models[0]
    hard_swish = [op.index for op in report.ops if op.opcode == "HARD_SWISH"]
    assert len(hard_swish) == 6
    a002s = [f for f in report.findings if f.code == "A002"]
    # One finding for the six (what the first keeps off the Edge TPU is G001's).
    assert len(a002s) == 1
    assert sorted(p.op for f in a002s for p in (f.places or [f])) == hard_swish
