"""Inspecting compiled models: placement, facts, the CLI's view of them (their C rules:
tests/test_checks_compiled.py).

Expected values come from the shared corpus's own records (pairs.csv: the ops the compiled
twin leaves on the CPU) and from compiled-model-format.md §4, not from this code.
"""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest
from conftest import CORPUS, run_cli
from helpers.compiled import GROUPER, corpus_path, inspect

from coralcheck.cli import main
from coralcheck.model import load


def corpus_pairs() -> list[dict[str, str]]:
    path = CORPUS / "pairs.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if row["compiled_path"]]


def counts(field: str) -> Counter[str]:
    """pairs.csv's "OP:n;OP:n" lists."""
    out: Counter[str] = Counter()
    for item in filter(None, field.split(";")):
        name, n = item.rsplit(":", 1)
        out[name] += int(n)
    return out


@pytest.mark.parametrize("pair", corpus_pairs(), ids=lambda p: p["compiled_path"])
def test_cpu_ops_and_segments_match_the_corpus_record(pair: dict[str, str]) -> None:
    report = inspect(pair["compiled_path"])
    assert report.kind == "compiled"
    expected_cpu = counts(pair["compiled_cpu_builtin_ops"]) + Counter(
        {f"CUSTOM:{k}": v for k, v in counts(pair["compiled_other_custom_ops"]).items()}
    )
    tpu = [p for p in report.ops if p.placement == "tpu"]
    cpu = [p for p in report.ops if p.placement == "cpu"]
    assert len(tpu) == int(pair["compiled_edgetpu_custom_ops"]) == report.summary.tpu_segments
    assert all(p.opcode == "CUSTOM:edgetpu-custom-op" for p in tpu)
    assert Counter(p.opcode for p in cpu) == expected_cpu
    assert report.compiled is not None
    assert report.compiled["cpu_op_counts"] == dict(expected_cpu)
    between = report.compiled["cpu_ops_between_segments"]
    if len(tpu) == 1:
        assert between == []  # one segment: nothing between
    else:  # several (edgetpu_compiler -a): each listed op has a segment before and after it
        assert between
        sg = load(CORPUS / pair["compiled_path"]).main
        for index in between:
            assert not sg.operators[index].is_edgetpu
            assert _reaches_a_segment(sg, index, sg.predecessors)
            assert _reaches_a_segment(sg, index, sg.successors)
    assert report.summary.ops_cpu == sum(expected_cpu.values())


def _reaches_a_segment(sg, index: int, step) -> bool:  # type: ignore[no-untyped-def]
    """Whether walking `step` (predecessors or successors) from op `index` meets a segment."""
    seen, todo = set(), [index]
    while todo:
        for nxt in step(sg.operators[todo.pop()]):
            if sg.operators[nxt].is_edgetpu:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


@pytest.mark.parametrize(
    ("relative", "on_chip", "off_chip", "runtime"),
    [
        (f"{GROUPER}/deeplab_mobilenet_edgetpu_slim_cityscapes_quant_edgetpu.tflite",
         2654784, 0, 12),
        (f"{GROUPER}/movenet_single_pose_lightning_ptq_edgetpu.tflite", 2862656, 2368, 12),
        (f"{GROUPER}/split_concat_edgetpu.tflite", 192, 0, 13),
    ],
)  # fmt: skip
def test_parameter_memory_and_runtime_as_in_the_format_reference(
    relative: str, on_chip: int, off_chip: int, runtime: int
) -> None:
    report = inspect(relative)
    facts = report.compiled
    assert facts["on_chip_parameter_bytes"] == on_chip
    assert facts["off_chip_parameter_bytes"] == off_chip
    assert facts["min_runtime_version"] == runtime
    assert report.memory is not None and report.memory.source == "compiled"
    assert (report.memory.on_chip_bytes, report.memory.off_chip_bytes) == (on_chip, off_chip)
    codes = [f.code for f in report.findings]
    assert ("C002" in codes) == (off_chip > 0)
    assert "C004" in codes  # always: do not recompile this file


def test_estimated_cycles_become_ms_at_a_stated_clock() -> None:
    """§4b: eel mobilenet_v1_0.25 records 21,568 cycles; the grouper files record none."""
    facts = inspect("models/coral_edgetpu_eel/mobilenet_v1_0.25_128_quant_edgetpu.tflite").compiled
    assert facts["estimated_cycles"] == 21568
    assert facts["clock_assumed"] is True
    assert facts["estimated_ms"] == pytest.approx(21568 / (facts["clock_mhz"] * 1000), abs=1e-3)
    none = inspect(f"{GROUPER}/mobilenet_v1_0.25_128_quant_edgetpu.tflite").compiled
    assert none["estimated_cycles"] is None and none["estimated_ms"] is None


def test_segment_tensors_carry_tensor_and_layer_views() -> None:
    facts = inspect(f"{GROUPER}/keras_lstm_mnist_ptq_edgetpu.tflite").compiled
    rows = facts["segment_tensors"]
    roles = Counter(r["role"] for r in rows)
    assert roles == {"input": 3, "output": 1, "state_output": 2}
    (out,) = [r for r in rows if r["role"] == "output"]
    assert out["name"] == "StatefulPartitionedCall:0" and out["layer_dims"] == [1, 1, 10]
    assert facts["parameter_caching_tokens"] == ["0x6cad28922f0b3db3"]
    types = sorted(e["type"] for e in facts["executables"])
    assert types == ["EXECUTION_ONLY", "PARAMETER_CACHING"]


# --- through the CLI ---------------------------------------------------------------------------


def test_cli_json_of_a_compiled_model(capsys: pytest.CaptureFixture[str]) -> None:
    path = corpus_path(f"{GROUPER}/deeplab_mobilenet_edgetpu_slim_cityscapes_quant_edgetpu.tflite")
    main([str(path), "--format", "json"])
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert model["kind"] == "compiled"
    assert [(op["opcode"], op["placement"]) for op in model["ops"]] == [
        ("CUSTOM:edgetpu-custom-op", "tpu"),
        ("RESIZE_BILINEAR", "cpu"),
        ("ARG_MAX", "cpu"),
    ]
    assert model["compiled"]["segments"][0]["on_chip_parameter_bytes"] == 2654784
    assert model["compiled"]["segments"][0]["parameter_caching_token"] == "0x3ba7c14e02c13bf3"


def test_cli_text_of_a_compiled_model() -> None:
    path = corpus_path(f"{GROUPER}/movenet_single_pose_lightning_ptq_edgetpu.tflite")
    result = run_cli(str(path))
    assert result.returncode in (0, 1), result.stderr
    assert "Compiled model" in result.stdout and "C002" in result.stdout
