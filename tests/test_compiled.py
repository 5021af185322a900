"""Inspecting compiled models: placement, facts, C001–C010 findings, the CLI's view of them.

Expected values come from the shared corpus's own records (pairs.csv: the ops the compiled
twin leaves on the CPU) and from compiled-model-format.md §4, not from this code.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import CORPUS, run_cli
from helpers.edgetpu_builder import (
    EXECUTION_ONLY,
    PARAMETER_CACHING,
    CustomOptionsSpec,
    ExecSpec,
    LayerSpec,
    custom_options,
    executable_bytes,
    package_bytes,
    simple_package,
)
from helpers.tflite_builder import OpSpec, TensorSpec, build_model

from coralcheck.cli import main
from coralcheck.model import load
from coralcheck.options import Options
from coralcheck.pipeline.compiled import inspect_compiled

GROUPER = "models/coral_test_data_grouper"


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


def inspect(relative: str, **options: object):  # type: ignore[no-untyped-def]
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not in the shared corpus")
    return inspect_compiled(load(path), Options(**options))  # type: ignore[arg-type]


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


def test_runtime_newer_than_the_target_is_an_error() -> None:
    relative = "models/goalbuddy/yolov8n_full_integer_quant_edgetpu.tflite"  # min runtime 14
    assert "C003" not in [f.code for f in inspect(relative, runtime_version=14).findings]
    (finding,) = [f for f in inspect(relative, runtime_version=13).findings if f.code == "C003"]
    assert finding.severity == "error" and "14" in finding.message and "13" in finding.message


def test_no_integrity_finding_on_any_real_compiled_model() -> None:
    files = sorted((CORPUS / "models").glob("*/*_edgetpu.tflite"))
    if not files:
        pytest.skip("the shared corpus is not here")
    for path in files:
        codes = {f.code for f in inspect_compiled(load(path), Options()).findings}
        assert not codes & {"C001", "C005", "C006", "C007", "C008", "C009"}, path


# --- synthetic compiled models --------------------------------------------------------------------


def q(name: str, dtype: str = "UINT8", zp: int = 128, scale: float = 0.5) -> TensorSpec:
    return TensorSpec(name, [1, 4], dtype, scale=[scale], zero_point=[zp])


def segment(package: bytes, **spec: object) -> bytes:
    return custom_options(CustomOptionsSpec(package, **spec))  # type: ignore[arg-type]


def one_segment_model(options: bytes, tensors: list[TensorSpec] | None = None) -> bytes:
    return build_model(
        tensors=tensors or [q("in"), q("out")],
        ops=[OpSpec("CUSTOM:edgetpu-custom-op", [0], [1], custom_options=options)],
        inputs=[0],
        outputs=[1],
    )


def findings_of(data: bytes, **options: object) -> dict[str, list[str]]:
    report = inspect_compiled(load(data), Options(**options))  # type: ignore[arg-type]
    out: dict[str, list[str]] = {}
    for f in report.findings:
        out.setdefault(f.code, []).append(f.message)
    return out


def test_cpu_op_between_two_segments() -> None:
    def seg(i: str, o: str) -> bytes:
        return segment(simple_package([LayerSpec(i)], [LayerSpec(o)]))

    data = build_model(
        tensors=[q("in"), q("a"), q("b"), q("out"), q("tail")],
        ops=[
            OpSpec("CUSTOM:edgetpu-custom-op", [0], [1], custom_options=seg("in", "a")),
            OpSpec("RELU", [1], [2]),
            OpSpec("CUSTOM:edgetpu-custom-op", [2], [3], custom_options=seg("b", "out")),
            OpSpec("RELU", [3], [4]),  # after the last segment: not between
        ],
        inputs=[0],
        outputs=[4],
    )
    report = inspect_compiled(load(data), Options())
    assert report.summary.tpu_segments == 2
    (between,) = [f for f in report.findings if f.code == "C001"]
    assert between.op == 1 and between.opcode == "RELU"
    assert report.compiled["cpu_ops_between_segments"] == [1]
    assert "between two Edge TPU segments" in report.ops[1].reason
    assert "between" not in report.ops[3].reason


def test_legacy_and_unidentified_packages_are_flagged() -> None:
    legacy = segment(
        executable_bytes(ExecSpec(0, 0, 0, chip=None, inputs=[LayerSpec("in")])),
        chip_name="beagle",
        legacy_caching=executable_bytes(ExecSpec(0, 4096, 0, chip=None)),
        chips=None,
    )
    assert "2019 legacy" in findings_of(one_segment_model(legacy))["C005"][0]
    plain = segment(simple_package([LayerSpec("in")], [LayerSpec("out")], identifier=None))
    assert '"DWN1"' in findings_of(one_segment_model(plain))["C005"][0]


@pytest.mark.parametrize(
    ("execs", "kwargs", "expected"),
    [
        ([ExecSpec(EXECUTION_ONLY), ExecSpec(EXECUTION_ONLY)], {}, "rejects"),
        ([ExecSpec(EXECUTION_ONLY, batch_size=0)], {}, "batch size 0"),
        ([ExecSpec(EXECUTION_ONLY)], {"virtual_chip_id": -1}, "multi-chip"),
        ([], {}, "no executable"),
    ],
)
def test_executable_sets_the_runtime_rejects(execs: list, kwargs: dict, expected: str) -> None:
    for spec in execs:
        spec.inputs, spec.outputs = [LayerSpec("in")], [LayerSpec("out")]
    pkg = package_bytes([executable_bytes(s) for s in execs], **kwargs)
    found = findings_of(one_segment_model(segment(pkg)))
    assert any(expected in m for m in found["C006"])


@pytest.mark.parametrize(
    ("inputs", "tensors", "expected"),
    [
        ([LayerSpec("image")], None, "bound to tensor 'in'"),
        ([LayerSpec("in", scale=0.25)], None, "scale"),
        ([LayerSpec("in", zero_point=0, data_type=8)], [q("in", "INT8", -128), q("out")], None),
        ([LayerSpec("in", zero_point=1, data_type=8)], [q("in", "INT8", -128), q("out")], "zero"),
        ([LayerSpec("in", dims=(1, 1, 8))], None, "holds 8 bytes"),
        ([LayerSpec("in"), LayerSpec("extra")], None, "2 input layers for 1 input"),
    ],
)
def test_layer_tensor_binding(inputs: list, tensors: list | None, expected: str | None) -> None:
    """Signed layers shift the zero point by 128 (format doc §1 quirk): -128 ↔ 0 is correct."""
    pkg = simple_package(inputs, [LayerSpec("out")])
    found = findings_of(one_segment_model(segment(pkg), tensors))
    if expected is None:
        assert "C007" not in found
    else:
        assert any(expected in m for m in found["C007"]), found


def test_chip_list_and_token_mismatches() -> None:
    pkg = simple_package([LayerSpec("in")], [LayerSpec("out")])
    assert (
        "2 chips for 1 packages"
        in findings_of(one_segment_model(segment(pkg, chips=(18, 18))))["C008"][0]
    )
    main = ExecSpec(EXECUTION_ONLY, token=1, inputs=[LayerSpec("in")], outputs=[LayerSpec("out")])
    cache = ExecSpec(PARAMETER_CACHING, 64, token=2)
    split = package_bytes([executable_bytes(main), executable_bytes(cache)])
    assert "C009" in findings_of(one_segment_model(segment(split)))


# --- through the CLI ---------------------------------------------------------------------------


def corpus_path(relative: str) -> Path:
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not in the shared corpus")
    return path


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


def test_a_file_named_compiled_without_segments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = corpus_path(f"{GROUPER}/split_concat.tflite")
    fake = tmp_path / "split_concat_edgetpu.tflite"
    shutil.copyfile(source, fake)
    main([str(fake), "--format", "json"])
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert model["kind"] == "source"
    assert "C010" in [f["code"] for f in model["findings"]]


def test_compile_and_compiled_options_on_a_compiled_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = corpus_path(f"{GROUPER}/split_concat_edgetpu.tflite")
    main([str(path), "--compile", "--compiler", "/nonexistent/compiler", "--format", "json"])
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert "C041" in [f["code"] for f in model["findings"]]  # not run: no missing-compiler error
    assert main([str(path), "--compiled", str(path)]) == 2
    assert "is itself compiled" in capsys.readouterr().err
