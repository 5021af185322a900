"""The C rules, one section per group: a compiled model on its own (C001–C011), a (source,
compiled) pair (C020–C024), the compiler's runs and failures (C030–C041), a committed log (C050).

Each rule is checked here on what it reports: real compiled models and pairs of
../shared/corpus, the real compiler logs of ../shared/edgetpu/compiler-logs, and models no
compiler writes (helpers.edgetpu_builder). The compiler runs themselves (a stand-in compiler:
timeouts, unwritable output, garbage) are tests/test_compiler_run.py's; `coralcheck log`'s
comparison tests/test_log_command.py's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import CORPUS, REPO
from helpers.compiled import (
    GROUPER,
    corpus_path,
    findings_of,
    inspect,
    one_segment_model,
    q,
    segment,
)
from helpers.edgetpu_builder import (
    EXECUTION_ONLY,
    PARAMETER_CACHING,
    ExecSpec,
    LayerSpec,
    executable_bytes,
    package_bytes,
    simple_package,
)
from helpers.pairs import pair_report, prediction, two_segment_pair, yolo
from helpers.tflite_builder import OpSpec, build_model

from coralcheck.analyze.pair import map_pair
from coralcheck.api import check_model
from coralcheck.checks.compiler import compiler_failure, log_disagrees
from coralcheck.cli import main
from coralcheck.compiler.failures import classify_error
from coralcheck.compiler.log import parse_log
from coralcheck.model import load
from coralcheck.options import Options
from coralcheck.pipeline.compiled import inspect_compiled
from coralcheck.pipeline.pair import compare_with_compiled
from coralcheck.registry import codes as rule_codes
from coralcheck.registry import entry, failure_code

SHARED = REPO.parent / "shared"


def groundtruth() -> dict[str, dict]:
    path = CORPUS / "groundtruth.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


UNUSABLE = [(k, v) for k, v in groundtruth().items() if not v["usable"]]
BODYPIX = "models/coral_test_data_grouper/bodypix_mobilenet_v1_075_512_512_16_quant_decoder"


def test_every_c_rule_is_tested_here() -> None:
    """Each C rule's code appears in a test of this module."""
    source = Path(__file__).read_text(encoding="utf-8")
    missing = [c for c in rule_codes() if c.startswith("C") and f'"{c}"' not in source]
    assert not missing


# --- C001–C011: a compiled model on its own ---------------------------------------------------


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


def test_streamed_parameters_and_already_compiled() -> None:
    """C002 where a segment streams parameters (movenet: 2368 bytes off-chip), C004 always."""
    report = inspect(f"{GROUPER}/movenet_single_pose_lightning_ptq_edgetpu.tflite")
    (c002,) = [f for f in report.findings if f.code == "C002"]
    assert "2.31 KiB" in c002.message and c002.opcode == "CUSTOM:edgetpu-custom-op"
    assert [f.severity for f in report.findings if f.code == "C004"] == ["info"]
    cached_only = inspect(f"{GROUPER}/split_concat_edgetpu.tflite")
    assert "C002" not in [f.code for f in cached_only.findings]


def test_no_latency_estimate_without_the_compilers_cycles() -> None:
    """C011: compilers 15.0 and 16.0 record no cycle estimate (the builder's executables
    neither), so a compiled model alone has no latency estimate and says why."""
    found = findings_of(one_segment_model(segment(simple_package([LayerSpec("in")], []))))
    assert "1 of 1 Edge TPU segment(s) record no compiler cycle estimate" in found["C011"][0]


# --- C020–C024: a (source, compiled) pair ----------------------------------------------------


def test_a_rejected_pair_gives_c020_and_no_diff() -> None:
    (compiled, truth) = UNUSABLE[0] if UNUSABLE else pytest.skip("no corpus")
    source = load(CORPUS / truth["source"])
    report = pair_report(source, prediction(source, ["tpu"] * len(source.main.operators)))
    compare_with_compiled(report, source, load(CORPUS / compiled), Options())
    assert report.diff is None and "placement" not in report.compiled
    (c020,) = [f for f in report.findings if f.code == "C020"]
    assert c020.severity == "error" and "was not compiled from this model" in c020.message


def test_compare_fills_placement_diff_and_findings() -> None:
    source, compiled, log = yolo()
    truth = map_pair(source, compiled).placements
    predicted = ["tpu"] * len(truth)  # an optimistic prediction: the CPU tail is missed
    report = pair_report(source, prediction(source, predicted))
    compare_with_compiled(report, source, compiled, Options(), "pair", log)
    assert report.compiled["placement"]["ops_cpu"] == truth.count("cpu")
    assert report.compiled["pair"]["valid"] is True
    assert [d["index"] for d in report.diff] == [i for i, p in enumerate(truth) if p == "cpu"]
    (c021,) = [f for f in report.findings if f.code == "C021"]
    assert f"{truth.count('cpu')} op(s)" in c021.message
    assert "C022" not in [f.code for f in report.findings]


def test_two_segments_and_a_cpu_op_between() -> None:
    source, compiled = two_segment_pair()
    mapping = map_pair(source, compiled)
    assert mapping.valid
    assert mapping.placements == ["tpu", "tpu", "cpu", "tpu"]
    assert mapping.segment_of == [1, 1, None, 2]
    report = pair_report(source, prediction(source, ["tpu", "tpu", "cpu", "tpu"]))
    compare_with_compiled(report, source, compiled, Options())
    assert report.diff == []
    (c001,) = [f for f in report.findings if f.code == "C001"]
    assert c001.op == 2 and c001.opcode == "RELU"  # the source op, not the compiled one


def test_dead_source_ops_are_reported_unassigned() -> None:
    source, compiled = two_segment_pair(dead_op=True)
    report = pair_report(source, [])
    mapping = compare_with_compiled(report, source, compiled, Options())
    assert mapping.valid and mapping.unassigned == [4]
    (c023,) = [f for f in report.findings if f.code == "C023"]
    assert c023.op == 4


def test_a_pessimistic_prediction_gives_c022() -> None:
    source, compiled, log = yolo()
    truth = map_pair(source, compiled).placements
    flipped = [i for i, p in enumerate(truth) if p == "tpu"][:10]
    predicted = ["cpu" if i in flipped else (p or "cpu") for i, p in enumerate(truth)]
    report = pair_report(source, prediction(source, predicted))
    compare_with_compiled(report, source, compiled, Options(), "pair", log)
    (c022,) = [f for f in report.findings if f.code == "C022"]
    assert c022.severity == "info" and "10 op(s) predicted for the CPU" in c022.message
    assert c022.op == flipped[0]
    assert "C021" not in [f.code for f in report.findings]


def test_a_pair_quantized_differently_gives_c024() -> None:
    """pairs.csv: one (1,33,33,24) output of the bodypix pair has other scale/zero point."""
    if not (CORPUS / f"{BODYPIX}_edgetpu.tflite").exists():
        pytest.skip("the shared corpus is not here")
    source = load(CORPUS / f"{BODYPIX}.tflite")
    compiled = load(CORPUS / f"{BODYPIX}_edgetpu.tflite")
    report = pair_report(source, [])
    mapping = compare_with_compiled(report, source, compiled, Options())
    assert mapping.valid  # the op-by-op comparison stands
    (c024,) = [f for f in report.findings if f.code == "C024"]
    assert c024.severity == "warning" and c024.tensor == mapping.quantization_differs[0]
    shapes = {t.name: t.shape for t in source.main.tensors}
    assert (1, 33, 33, 24) in [shapes[name] for name in mapping.quantization_differs]
    count = len(mapping.quantization_differs)
    assert f"{count} tensor(s) are quantized differently than in the source" in c024.message


def test_an_identical_pair_gives_no_c024() -> None:
    source, compiled = two_segment_pair()
    report = pair_report(source, [])
    compare_with_compiled(report, source, compiled, Options())
    assert "C024" not in [f.code for f in report.findings]


# --- C030–C041: the compiler's runs and failures --------------------------------------------


def test_a_missing_compiler_is_c030_and_the_prediction_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no edgetpu_compiler on it
    report = check_model(str(REPO / "fixtures" / "demo_int8.tflite"), Options(compile=True))
    (c030,) = [f for f in report.findings if f.code == "C030"]
    assert c030.severity == "warning" and "showing the prediction only" in c030.message
    assert report.ops and report.compiler is not None
    assert report.compiler["install_hint"] == entry("C030")["fix"]


# Real failure logs (../shared/edgetpu/compiler-logs) and the rule each failure is.
FAILURE_LOGS = [
    ("06_v16_error_dynamic_sized_tensors.log", "C036"),
    ("07_v16_error_large_activation_tensors.log", "C035"),
    ("10_v14_1_internal_compiler_error.log", "C034"),
    ("12_v14_1_model_not_quantized.log", "C031"),
    ("13_v15_didnt_find_op_reverse_v2.log", "C032"),
    ("14_v16_didnt_find_op_exp_v2.log", "C032"),
    ("15_v15_num_segments_prints_version_only.log", "C038"),
]


@pytest.mark.parametrize(("name", "code"), FAILURE_LOGS)
def test_each_real_compiler_failure_is_its_rule(name: str, code: str) -> None:
    path = SHARED / "edgetpu" / "compiler-logs" / name
    if not path.exists():
        pytest.skip("../shared is not here")
    log = parse_log(path.read_text(encoding="utf-8"))
    found = [compiler_failure(f.kind, f.message, None, log.compiler_version) for f in log.failures]
    (finding,) = [f for f in found if f.code == code]
    assert finding.severity == "error" and finding.message.startswith("edgetpu_compiler: ")
    assert entry(code)["fix"] in finding.fix


FAILURE_RULES = ["C031", "C032", "C033", "C034", "C035", "C036", "C037", "C038", "C039", "C040"]


def test_the_failure_rules_are_the_catalogues() -> None:
    assert [c for c in rule_codes() if "failure_kind" in entry(c)] == FAILURE_RULES


@pytest.mark.parametrize("code", FAILURE_RULES)
def test_every_failure_rule_reports_its_own_example(code: str) -> None:
    """C031–C040: the catalogue's example message is classified as the rule's failure kind,
    and the finding for it is that rule, with the compiler's message."""
    kind, example = entry(code)["failure_kind"], entry(code)["example"]
    if kind == "version_only":  # a run that printed its version line and nothing else
        (failure,) = parse_log(example).failures
    else:
        failure = classify_error(example)
    assert failure is not None and failure.kind == kind
    assert failure_code(kind) == code
    finding = compiler_failure(failure.kind, failure.message, None, "16.0.384591198")
    assert finding.code == code and finding.message == f"edgetpu_compiler: {example}"


def test_the_op_the_prediction_blames_leads_the_fix() -> None:
    finding = compiler_failure("internal_error", "Internal compiler error. Aborting!", "RESHAPE")
    assert finding.code == "C034" and finding.fix.startswith("RESHAPE: Retry once")
    unknown = compiler_failure("a kind nobody knows", "")
    assert unknown.code == "C040"
    assert unknown.message == f"edgetpu_compiler: {entry('C040')['title']}"


def test_compile_and_compiled_options_on_a_compiled_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = corpus_path(f"{GROUPER}/split_concat_edgetpu.tflite")
    main([str(path), "--compile", "--compiler", "/nonexistent/compiler", "--format", "json"])
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert "C041" in [f["code"] for f in model["findings"]]  # not run: no missing-compiler error
    assert main([str(path), "--compiled", str(path)]) == 2
    assert "is itself compiled" in capsys.readouterr().err


# --- C050: a committed compiler log -------------------------------------------------------------


def test_a_log_that_disagrees_is_c050() -> None:
    assert list(log_disagrees([])) == []
    (c050,) = log_disagrees(
        [
            {"what": "ops on the CPU", "quantity": "ops_cpu", "predicted": 3, "logged": 4},
            {"operator": "CONCATENATION", "status": "Mapped to Edge TPU"}
            | {"predicted": 17, "logged": 16},
        ]
    )
    assert c050.code == "C050" and c050.severity == "warning"
    assert c050.message == (
        "2 count(s) differ from the log: ops on the CPU: predicted 3, logged 4, "
        "CONCATENATION 'Mapped to Edge TPU': predicted 17, logged 16"
    )
