"""Source ↔ compiled pairs: the real placement of every source op, pair validation, the diff.

Ground truth: shared/corpus/groundtruth.json (per-op placement derived by the corpus
maintainers) and the real compiler's own `.log` files in shared/corpus/logs/.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import CORPUS
from helpers.pairs import MAPPED, pair_report, prediction, two_segment_pair, yolo

from coralcheck.analyze.logcompare import log_vs_placement
from coralcheck.analyze.pair import diff_placements, log_statuses, map_pair
from coralcheck.api import check_model
from coralcheck.cli import main
from coralcheck.compiler.log import parse_log
from coralcheck.model import load
from coralcheck.options import Options
from coralcheck.pipeline.pair import compare_with_compiled


def groundtruth() -> dict[str, dict]:
    path = CORPUS / "groundtruth.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


USABLE = [(k, v) for k, v in groundtruth().items() if v["usable"]]
UNUSABLE = [(k, v) for k, v in groundtruth().items() if not v["usable"]]
LOGGED = [
    ("models/goalbuddy/yolov8n_full_integer_quant", "logs/goalbuddy/yolov8n_full_integer_quant"),
    ("models/sandhya_modelnew/yolov5n-int8", "logs/sandhya_modelnew/yolov5n-int8"),
]


@pytest.mark.parametrize(("compiled", "truth"), USABLE, ids=[k for k, _ in USABLE])
def test_every_usable_pair_matches_the_ground_truth(compiled: str, truth: dict) -> None:
    mapping = map_pair(load(CORPUS / truth["source"]), load(CORPUS / compiled))
    assert mapping.valid, mapping.problems
    assert [list(x) for x in mapping.per_op()] == truth["per_op"]
    assert mapping.tpu_segments == truth["segments"]
    assert mapping.unassigned == []
    placement = mapping.placement_dict()
    assert (placement["ops_tpu"], placement["ops_cpu"]) == (truth["tpu_ops"], truth["cpu_ops"])


@pytest.mark.parametrize(("compiled", "truth"), UNUSABLE, ids=[k for k, _ in UNUSABLE])
def test_the_unusable_pair_is_rejected(compiled: str, truth: dict) -> None:
    """eel posenet: the committed source is not the file that was compiled (§5)."""
    mapping = map_pair(load(CORPUS / truth["source"]), load(CORPUS / compiled))
    assert not mapping.valid
    assert "not in the source" in mapping.problems[0]
    assert "quant_heatmaps" in mapping.problems[0]


@pytest.mark.parametrize(("model", "log"), LOGGED)
def test_pair_placement_equals_the_real_compiler_log(model: str, log: str) -> None:
    """Per op type, mapped and unmapped counts from the pair equal the compiler's own .log."""
    source_path = CORPUS / f"{model}.tflite"
    if not source_path.exists():
        pytest.skip("the shared corpus is not here")
    source = load(source_path)
    mapping = map_pair(source, load(CORPUS / f"{model}_edgetpu.tflite"))
    real: Counter[tuple[str, bool]] = Counter()
    for op, placement in zip(source.main.operators, mapping.placements, strict=True):
        real[(op.log_name, placement == "tpu")] += 1
    logged: Counter[tuple[str, bool]] = Counter()
    compiler_log = parse_log((CORPUS / f"{log}_edgetpu.log").read_text())
    for row in compiler_log.rows:
        logged[(row.operator, row.mapped)] += row.count
    assert real == logged
    assert log_vs_placement(compiler_log, source, mapping.placements) == []
    moved = ["cpu", *mapping.placements[1:]]  # op 0 (a TPU op) moved to the CPU
    name = source.main.operators[0].log_name
    assert {
        (d["operator"], d["mapped"]) for d in log_vs_placement(compiler_log, source, moved)
    } == {
        (name, True),
        (name, False),
    }


def test_bodypix_pair_is_usable_but_quantized_differently() -> None:
    """pairs.csv: one (1,33,33,24) output has other scale/zero point: a different export."""
    truth = groundtruth().get(
        "models/coral_test_data_grouper/bodypix_mobilenet_v1_075_512_512_16_quant_decoder_edgetpu.tflite"
    )
    if truth is None:
        pytest.skip("the shared corpus is not here")
    source = load(CORPUS / truth["source"])
    mapping = map_pair(
        source,
        load(
            CORPUS / "models/coral_test_data_grouper/"
            "bodypix_mobilenet_v1_075_512_512_16_quant_decoder_edgetpu.tflite"
        ),
    )
    assert mapping.valid
    shapes = {t.name: t.shape for t in source.main.tensors}
    assert (1, 33, 33, 24) in [shapes[name] for name in mapping.quantization_differs]


# --- the diff, with hand-made predictions -------------------------------------------------------


def test_diff_lists_exactly_the_disagreements() -> None:
    source, compiled, log = yolo()
    mapping = map_pair(source, compiled)
    truth = list(mapping.placements)
    predicted = list(truth)
    flipped = [0, 100, 233, 240]  # two TPU ops predicted CPU, two CPU ops predicted TPU
    for i in flipped:
        predicted[i] = "cpu" if truth[i] == "tpu" else "tpu"
    ops = prediction(source, predicted)
    names = [op.log_name for op in source.main.operators]
    diff = diff_placements(ops, mapping, log_statuses(log), names)
    assert [d["index"] for d in diff] == flipped
    for d in diff:
        assert d["actual"] == truth[d["index"]] and d["predicted"] != d["actual"]
        assert d["opcode"] == source.main.operators[d["index"]].opcode
        assert d["predicted_reason"] == "why"
        if d["actual"] == "tpu":
            assert d["actual_status"] == MAPPED and d["segment"] == 1
        else:
            # The log gives this op type one non-mapped status, or several (then unknown).
            statuses = log_statuses(log).get(names[d["index"]], [])
            assert d["actual_status"] == (statuses[0] if len(statuses) == 1 else None)
    assert diff_placements(prediction(source, truth), mapping) == []


def test_without_a_prediction_there_is_no_diff() -> None:
    source, compiled, _ = yolo()
    report = pair_report(source, [])
    compare_with_compiled(report, source, compiled, Options())
    assert report.diff is None
    assert report.compiled["placement"]["ops_tpu"] == 233


def test_a_changed_shape_rejects_the_pair() -> None:
    source, compiled = two_segment_pair(renamed_shape=True)
    mapping = map_pair(source, compiled)
    assert not mapping.valid and "'out'" in mapping.problems[0]


# --- through check_model and the CLI ----------------------------------------------------------


def test_check_model_with_compiled_twin(capsys: pytest.CaptureFixture[str]) -> None:
    if not USABLE:
        pytest.skip("no corpus")
    compiled, truth = next((k, v) for k, v in USABLE if "movenet" in k)
    report = check_model(
        str(CORPUS / truth["source"]), Options(compiled_path=str(CORPUS / compiled))
    )
    assert report.kind == "source"
    real = report.compiled["placement"]
    assert (real["ops_tpu"], real["ops_cpu"]) == (truth["tpu_ops"], truth["cpu_ops"])
    if report.ops:  # once the predictor gives ops, the diff is exactly the disagreements
        expected = [i for i, _, p in truth["per_op"] if report.ops[i].placement != p]
        assert [d["index"] for d in report.diff] == expected
    else:
        assert report.diff is None


def test_cli_pair_with_a_foreign_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not UNUSABLE:
        pytest.skip("no corpus")
    compiled, truth = UNUSABLE[0]
    main([str(CORPUS / truth["source"]), "--compiled", str(CORPUS / compiled), "--format", "json"])
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert "C020" in [f["code"] for f in model["findings"]]
    assert model["compiled"]["pair"]["valid"] is False
    assert main([str(CORPUS / truth["source"]), "--compiled", str(tmp_path / "none.tflite")]) == 2


MULTI_SEGMENT = [(k, v) for k, v in USABLE if v["segments"] > 1]
SINGLE_SEGMENT_PARTIAL = [(k, v) for k, v in USABLE if v["segments"] == 1 and v["cpu_ops"]][:3]


@pytest.mark.parametrize(("compiled", "truth"), MULTI_SEGMENT, ids=[k for k, _ in MULTI_SEGMENT])
def test_a_twin_with_several_segments_is_predicted_as_compiled_with_dash_a(
    compiled: str, truth: dict
) -> None:
    """A compiled twin with several Edge TPU segments was compiled with `-a`: `--compiled`
    predicts for `-a` without being told, so the prediction agrees with the twin op by op
    (the single-segment prediction leaves everything after the first CPU op on the CPU)."""
    report = check_model(
        str(CORPUS / truth["source"]), Options(compiled_path=str(CORPUS / compiled))
    )
    assert [op.placement for op in report.ops] == [p for _, _, p in truth["per_op"]]
    assert report.summary.tpu_segments == truth["segments"]
    assert report.diff == []


@pytest.mark.parametrize(
    ("compiled", "truth"), SINGLE_SEGMENT_PARTIAL, ids=[k for k, _ in SINGLE_SEGMENT_PARTIAL]
)
def test_a_twin_with_one_segment_keeps_the_single_segment_prediction(
    compiled: str, truth: dict
) -> None:
    report = check_model(
        str(CORPUS / truth["source"]), Options(compiled_path=str(CORPUS / compiled))
    )
    alone = check_model(str(CORPUS / truth["source"]), Options())
    assert report.summary.tpu_segments == 1
    assert [op.placement for op in report.ops] == [op.placement for op in alone.ops]
