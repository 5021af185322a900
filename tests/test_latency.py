"""The latency estimate (coralcheck.analyze.latency, rules/devices.toml): pinned on corpus models
against the published latencies of ../shared/latency/ground_truth.csv, its invariants on every
fixture and corpus model, the options that choose it (--device, --clock, config keys), the
--max-latency-ms gate, and how each report format carries it.

The benchmark (benchmarks/latency_agreement.py) runs here too: on the corpus rows always, and in
its --quick mode (corpus rows + fast Keras rebuilds, ~2 minutes with TensorFlow the first time)
where TensorFlow is installed.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, FIXTURES, REPO, run_cli

from coralcheck.api import check
from coralcheck.edgetpu.devices import device_names, latency_model
from coralcheck.errors import UsageError
from coralcheck.render import render

GROUND_TRUTH = REPO.parent / "shared" / "latency" / "ground_truth.csv"
FROGFISH = CORPUS / "models" / "coral_test_data_frogfish"
GROUPER = CORPUS / "models" / "coral_test_data_grouper"
MNV2 = FROGFISH / "mobilenet_v2_1.0_224_quant.tflite"
MNV2_COMPILED = FROGFISH / "mobilenet_v2_1.0_224_quant_edgetpu.tflite"  # records its cycles
DEEPLAB = GROUPER / "deeplabv3_mnv2_pascal_quant.tflite"
DEEPLAB_COMPILED = GROUPER / "deeplabv3_mnv2_pascal_quant_edgetpu.tflite"
NO_CYCLES_COMPILED = GROUPER / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"  # compiler 16.0
DEVICE_OF_ROW = {"USB3-desktop": "usb3", "DevBoard": "devboard"}


def needs(*paths: Path) -> None:
    for path in paths:
        if not path.exists():
            pytest.skip(f"{path} is not here")


def measured(model: str, device: str) -> list[float]:
    """Every published latency of `model` on a coralcheck device (ground_truth.csv)."""
    with GROUND_TRUTH.open(encoding="utf-8") as f:
        return [
            float(r["latency_ms"])
            for r in csv.DictReader(f)
            if r["model"] == model and DEVICE_OF_ROW.get(r["device"]) == device
        ]


def latency_of(path: Path, **options: object):
    return check(path, **options).models[0]


# --- pinned on corpus models against published measurements ------------------------------------


@pytest.mark.parametrize("device", ["usb3", "devboard"])
def test_mobilenet_v2_pair_is_within_the_target_of_every_published_figure(device: str) -> None:
    needs(MNV2, MNV2_COMPILED, GROUND_TRUTH)
    report = latency_of(MNV2, compiled_path=str(MNV2_COMPILED), device=device)
    figures = measured("MobileNet v2 1.0", device)
    assert figures, "ground_truth.csv has MobileNet v2 rows for this device"
    for ms in figures:
        assert abs(report.latency.estimate_ms / ms - 1) <= 0.15, (report.latency, ms)
        assert report.latency.low_ms <= ms <= report.latency.high_ms
    assert report.latency_detail.compute_from == "ops"
    assert [s.ops for s in report.latency_detail.segments] == [report.summary.ops_total]


@pytest.mark.parametrize("device", ["usb3", "devboard"])
def test_partly_cpu_deeplab_range_contains_the_published_latency(device: str) -> None:
    """DeepLab v3 leaves its head (resize to 513x513, arg max, two convolutions) on the CPU:
    the CPU part is a range, and it must contain the measured total."""
    needs(DEEPLAB, DEEPLAB_COMPILED, GROUND_TRUTH)
    report = latency_of(DEEPLAB, compiled_path=str(DEEPLAB_COMPILED), device=device)
    latency = report.latency
    (ms,) = measured("DeepLab v3 MNv2 1.0", device)
    assert latency.low_ms <= ms <= latency.high_ms, (latency, ms)
    assert latency.dominant == "cpu" and latency.cpu_ms > 0
    assert report.latency_detail.cpu_low_ms < latency.cpu_ms < report.latency_detail.cpu_high_ms


def test_the_dev_board_cpu_is_slower_than_the_desktop_cpu() -> None:
    needs(DEEPLAB)
    desktop, board = (latency_of(DEEPLAB, device=d).latency for d in ("usb3", "devboard"))
    assert board.cpu_ms / desktop.cpu_ms == pytest.approx(3.8, rel=0.01)  # Coral's table


def test_a_compiled_model_uses_the_compilers_own_cycle_estimate() -> None:
    needs(MNV2_COMPILED, GROUND_TRUTH)
    report = latency_of(MNV2_COMPILED)
    detail = report.latency_detail
    assert detail.compute_from == "compiler-cycles"
    assert detail.compiler_cycles == report.compiled["estimated_cycles"] == 458040
    assert detail.compiler_ms == pytest.approx(458040 / 500e3, rel=1e-3)
    scale = latency_model().compiler_cycles_scale
    assert report.latency.tpu_ms == pytest.approx(detail.compiler_ms * scale, rel=1e-3)
    for ms in measured("MobileNet v2 1.0", "usb3"):
        assert abs(report.latency.estimate_ms / ms - 1) <= 0.25


def test_a_compiled_model_without_cycles_gets_no_estimate_and_says_why() -> None:
    needs(NO_CYCLES_COMPILED)
    report = latency_of(NO_CYCLES_COMPILED)
    assert report.latency is None and report.latency_detail is None
    (finding,) = [f for f in report.findings if f.code == "C011"]
    assert "no compiler cycle estimate" in finding.message
    assert "--compiled" in finding.fix


def test_its_source_with_it_has_an_estimate() -> None:
    source = GROUPER / "mobilenet_v1_0.25_128_quant.tflite"
    needs(source, NO_CYCLES_COMPILED)
    report = latency_of(source, compiled_path=str(NO_CYCLES_COMPILED))
    assert report.latency is not None
    assert "C011" not in {f.code for f in report.findings}


def test_pad_before_a_convolution_costs_nothing() -> None:
    """Keras' MobileNet v2 has 5 PADs that TF-slim's folds into its convolutions; the compiler
    gives both the same cycle estimate (458,040), and so does the latency model."""
    keras_mnv2 = (
        CORPUS
        / "models/iwatake2222_EdgeTPU_Analysis/1f5fbce4bd9a/InOut/model_mobilenet_v2"
        / "model_mobilenet_v2_w_fc_224x224x3.tflite"
    )
    needs(keras_mnv2, MNV2)
    with_pads, without = latency_of(keras_mnv2), latency_of(MNV2)
    assert with_pads.op_histogram.get("PAD") == 5 and "PAD" not in without.op_histogram
    assert with_pads.latency.tpu_ms == pytest.approx(without.latency.tpu_ms, rel=0.02)


def test_several_segments_each_cost_an_invocation_and_a_transfer() -> None:
    """A model compiled with -a: every CPU op between two segments is a round trip."""
    folder = (
        CORPUS / "models/R-e-d-a-X_EdgeTPU-and-NCS/043bbbfdf41f/saved_models/edgetpu"
        "/random_forest/gemm/float32/final_eval/benchmarked"
    )
    source, compiled = folder / "model_64_16_2_1.tflite", folder / "model_64_16_2_1_edgetpu.tflite"
    needs(source, compiled)
    report = latency_of(source, compiled_path=str(compiled))
    segments = report.latency_detail.segments
    assert len(segments) == report.compiled["tpu_segments"] == 3
    invoke = latency_model().devices["usb3"].invoke_ms
    assert all(s.io_ms >= invoke for s in segments)
    assert report.latency.io_ms == pytest.approx(sum(s.io_ms for s in segments), rel=1e-3)
    # segment k's output is what feeds the CPU ops before segment k+1
    assert segments[0].output_bytes > 0 and segments[1].input_bytes > 0


# --- invariants ---------------------------------------------------------------------------------


def every_model() -> list[Path]:
    models = sorted(FIXTURES.glob("*.tflite"))
    if CORPUS.exists():
        models += sorted((CORPUS / "models").rglob("*.tflite"))
    return models


def test_parts_add_up_and_the_range_holds_the_estimate_for_every_model() -> None:
    seen = 0
    for path in every_model():
        report = latency_of(path)
        latency = report.latency
        if latency is None:
            assert any(f.code == "C011" for f in report.findings), path
            continue
        seen += 1
        parts = latency.tpu_ms + latency.streaming_ms + latency.io_ms + latency.cpu_ms
        assert latency.estimate_ms == pytest.approx(parts, rel=2e-3, abs=1e-3), path
        assert latency.low_ms <= latency.estimate_ms <= latency.high_ms, path
        assert all(math.isfinite(v) and v >= 0 for v in latency[2:9]), path
        largest = max(
            ("compute", latency.tpu_ms),
            ("streaming", latency.streaming_ms),
            ("io", latency.io_ms),
            ("cpu", latency.cpu_ms),
            key=lambda kv: kv[1],
        )
        assert (
            latency.dominant == largest[0]
            or getattr(latency, _FIELD[latency.dominant]) == (largest[1])
        ), path
        detail = report.latency_detail
        assert len(detail.op_ms) == len(report.ops), path
    assert seen > 20


_FIELD = {"compute": "tpu_ms", "streaming": "streaming_ms", "io": "io_ms", "cpu": "cpu_ms"}


def test_a_model_left_wholly_on_the_cpu_is_all_cpu() -> None:
    report = latency_of(FIXTURES / "float32.tflite")
    assert report.summary.ops_tpu == 0
    latency = report.latency
    assert latency.tpu_ms == latency.io_ms == latency.streaming_ms == 0
    assert latency.dominant == "cpu" and latency.cpu_ms > 0
    assert report.latency_detail.segments == []


def test_the_reduced_clock_doubles_compute_only() -> None:
    needs(MNV2)
    fast, slow = (latency_of(MNV2, clock=c).latency for c in ("max", "std"))
    assert slow.clock == "std" and fast.clock == "max"
    assert slow.tpu_ms == pytest.approx(2 * fast.tpu_ms, rel=1e-3)
    assert (slow.io_ms, slow.streaming_ms, slow.cpu_ms) == (
        fast.io_ms,
        fast.streaming_ms,
        fast.cpu_ms,
    )


def test_streamed_parameters_cost_the_devices_link() -> None:
    """Parameters the compiler streams cross the link every inference: USB 2 is ~14x slower."""
    folder = CORPUS / "models/iwatake2222_EdgeTPU_Analysis/1f5fbce4bd9a/Ops/model_dense"
    source = folder / "model_dense_2x2x3x150x100.tflite"
    compiled = folder / "model_dense_2x2x3x150x100_edgetpu.tflite"
    needs(source, compiled)
    usb3, usb2 = (
        latency_of(source, compiled_path=str(compiled), device=d) for d in ("usb3", "usb2")
    )
    streamed = usb3.compiled["off_chip_parameter_bytes"]
    assert streamed > 1_000_000
    assert sum(s.streamed_bytes for s in usb3.latency_detail.segments) == streamed
    links = latency_model().devices
    ratio = links["usb3"].link_mb_per_s / links["usb2"].link_mb_per_s
    assert usb2.latency.streaming_ms == pytest.approx(usb3.latency.streaming_ms * ratio, rel=1e-2)
    expected = streamed / (links["usb3"].link_mb_per_s * 1e3)
    assert usb3.latency.streaming_ms == pytest.approx(expected, rel=1e-2)
    assert usb2.latency.dominant == "streaming"


# --- the device data ------------------------------------------------------------------------------


def test_devices_toml_has_every_device_with_provenance() -> None:
    from coralcheck.edgetpu.knowledge import load_toml

    data = load_toml("devices.toml")
    assert device_names() == ["usb3", "usb2", "rpi4", "rpi3", "devboard", "pcie"]
    for name, entry in data["device"].items():
        assert entry["host"] in data["host"], name
        assert entry["link_mb_per_s"] > 0 and entry["invoke_ms"] > 0, name
        assert 0 < entry["relative_error"] < 1, name
        # calibrated on ground-truth rows, or says where its numbers come from
        assert entry["calibrated_on"] or "provenance" in entry, name
    for host in data["host"].values():
        assert host["low"] <= host["scale"] <= host["high"] and host["provenance"]
    assert data["tpu"]["provenance"] and data["cpu"]["provenance"]
    # no kind of compute faster than the Edge TPU's 4 TOPS peak (0.5 ms per billion MACs)
    assert data["tpu"]["conv_ms_per_gmac"] >= 0.5
    assert data["tpu"]["depthwise_ms_per_gmac"] >= 0.5


def test_calibrated_devices_name_real_ground_truth_devices() -> None:
    needs(GROUND_TRUTH)
    from coralcheck.edgetpu.knowledge import load_toml

    with GROUND_TRUTH.open(encoding="utf-8") as f:
        published = {r["device"] for r in csv.DictReader(f)}
    for entry in load_toml("devices.toml")["device"].values():
        assert set(entry["calibrated_on"]) <= published


# --- options: --device, --clock, config -----------------------------------------------------------


def test_an_unknown_device_is_a_usage_error_naming_the_valid_ones() -> None:
    with pytest.raises(UsageError) as error:
        check(FIXTURES / "demo_int8.tflite", device="tpu9000")
    assert "usb3, usb2, rpi4, rpi3, devboard, pcie" in error.value.problem
    result = run_cli(str(FIXTURES / "demo_int8.tflite"), "--device", "tpu9000")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "coralcheck: error: --device: unknown device 'tpu9000' "
        "(valid: usb3, usb2, rpi4, rpi3, devboard, pcie)"
    )
    result = run_cli(str(FIXTURES / "demo_int8.tflite"), "--clock", "turbo")
    assert result.returncode == 2 and "max, std" in result.stderr


def test_device_clock_and_budget_come_from_the_config(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes((FIXTURES / "demo_int8.tflite").read_bytes())
    (tmp_path / "coralcheck.toml").write_text(
        'device = "rpi3"\nclock = "std"\nmax-latency-ms = 0.5\n', encoding="utf-8"
    )
    result = run_cli(str(model), "--format", "json")
    assert result.returncode == 1  # the budget gate failed
    doc = json.loads(result.stdout)
    model_doc = doc["models"][0]
    assert model_doc["latency"]["device"] == "rpi3" and model_doc["latency"]["clock"] == "std"
    (gate,) = model_doc["verdict"]["gates"]
    assert gate["name"] == "max-latency-ms" and not gate["passed"]
    # the command line wins over the file
    result = run_cli(str(model), "--device", "usb3", "--max-latency-ms", "100", "--format", "json")
    assert result.returncode == 0
    model_doc = json.loads(result.stdout)["models"][0]
    assert model_doc["latency"]["device"] == "usb3"
    assert model_doc["verdict"]["gates"][0]["passed"]


def test_a_bad_config_device_exits_2(tmp_path: Path) -> None:
    (tmp_path / "coralcheck.toml").write_text('device = "coral-max"\n', encoding="utf-8")
    model = tmp_path / "m.tflite"
    model.write_bytes((FIXTURES / "demo_int8.tflite").read_bytes())
    result = run_cli(str(model))
    assert result.returncode == 2
    assert "unknown device 'coral-max' (valid: usb3, usb2" in result.stderr


@pytest.mark.parametrize("value", ["0", "-3", "fast", "nan"])
def test_a_bad_budget_is_a_usage_error(value: str) -> None:
    result = run_cli(str(FIXTURES / "demo_int8.tflite"), f"--max-latency-ms={value}")
    assert result.returncode == 2
    assert "--max-latency-ms" in result.stderr and "milliseconds" in result.stderr


def test_the_gate_fails_a_model_without_an_estimate() -> None:
    needs(NO_CYCLES_COMPILED)
    result = run_cli(str(NO_CYCLES_COMPILED), "--max-latency-ms", "1000", "--format", "json")
    assert result.returncode == 1
    (gate,) = json.loads(result.stdout)["models"][0]["verdict"]["gates"]
    assert not gate["passed"] and "no latency estimate" in gate["message"]


# --- report formats ------------------------------------------------------------------------------

LINE = re.compile(
    r"~[\d.,]+ ms/inference on usb3 \([\d.,]+–[\d.,]+ ms; "
    r"(compute|streaming|I/O|CPU ops) \d+%(, (compute|streaming|I/O|CPU ops) \d+%)*\)"
)


def test_text_has_the_verdict_line_and_verbose_the_breakdown() -> None:
    needs(DEEPLAB)
    result = run_cli(str(DEEPLAB))
    header = result.stdout.split("\n\n")[0]
    assert LINE.search(header), header
    assert "Latency on usb3" in result.stdout and "costliest ops" not in result.stdout
    verbose = run_cli(str(DEEPLAB), "-v").stdout
    assert "costliest ops" in verbose and "segments" in verbose
    # the costliest op is on the CPU: the resize to 513x513
    costly = verbose.split("costliest ops", 1)[1].splitlines()[2]
    assert "RESIZE_BILINEAR" in costly and "CPU" in costly


def test_json_latency_has_exactly_the_issue_fields_and_validates() -> None:
    import jsonschema

    needs(MNV2, MNV2_COMPILED, NO_CYCLES_COMPILED)
    schema = json.loads((REPO / "coralcheck" / "report.schema.json").read_text(encoding="utf-8"))
    for args in (
        [str(MNV2)],
        [str(MNV2), "--compiled", str(MNV2_COMPILED)],
        [str(MNV2_COMPILED)],
        [str(NO_CYCLES_COMPILED)],
    ):
        doc = json.loads(run_cli(*args, "--format", "json").stdout)
        jsonschema.Draft202012Validator(schema).validate(doc)
        latency = doc["models"][0]["latency"]
        if latency is not None:
            assert list(latency) == [
                "device",
                "clock",
                "estimate_ms",
                "low_ms",
                "high_ms",
                "tpu_ms",
                "streaming_ms",
                "io_ms",
                "cpu_ms",
                "dominant",
            ]


@pytest.mark.parametrize("fmt", ["markdown", "junit", "sarif"])
def test_summary_formats_carry_the_estimate(fmt: str) -> None:
    report = check(FIXTURES / "silu_int8.tflite")
    text = render(report, fmt)
    assert LINE.search(text), text
    if fmt == "sarif":
        artifact = json.loads(text)["runs"][0]["artifacts"][0]
        assert artifact["properties"]["latency"] == report.models[0].latency._asdict()


def test_compare_has_rows_for_the_estimate_and_its_parts() -> None:
    models = [str(FIXTURES / n) for n in ("silu_int8.tflite", "demo_int8.tflite")]
    result = run_cli("compare", *models, "--device", "rpi3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    row = next(line for line in lines if line.lstrip().startswith("latency (rpi3, max clock)"))
    assert len(re.findall(r"~[\d.]+ ms", row)) == 2
    for part in ("compute", "streaming", "I/O", "CPU ops", "dominant"):
        assert any(line.lstrip().startswith(part) for line in lines), part
    doc = json.loads(run_cli("compare", *models, "--format", "json").stdout)
    assert [m["latency"]["device"] for m in doc["models"]] == ["usb3", "usb3"]
    bad = run_cli("compare", *models, "--device", "nope")
    assert bad.returncode == 2 and "valid: usb3" in bad.stderr


# --- the benchmark --------------------------------------------------------------------------------


def _benchmark(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import latency_agreement

    code = latency_agreement.main(list(args))
    return code, capsys.readouterr().out


def test_benchmark_on_corpus_rows_meets_the_median_bound(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without TensorFlow: the corpus' MobileNets and DeepLab (too few models to hold out, so
    the shipped coefficients are checked, and the output says so)."""
    needs(GROUND_TRUTH, MNV2)
    code, out = _benchmark("--corpus-only", "--check", capsys=capsys)
    assert code == 0, out
    assert "checking the shipped coefficients' error (in-sample)" in out
    assert "DeepLab v3 MNv2 1.0  USB3-desktop" in out and "inside the range" in out


@pytest.mark.tensorflow
@pytest.mark.slow
def test_benchmark_quick_mode_meets_the_held_out_median_bound(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """CI's run of the benchmark: corpus rows plus the Keras rebuilds that convert fast (cached
    in benchmarks/_work after the first run); median held-out error <= 15% on usb3/devboard."""
    needs(GROUND_TRUTH, MNV2)
    code, out = _benchmark("--quick", "--check", capsys=capsys)
    assert code == 0, out
    assert "held out (leave one model out)" in out
    table = out.split("held out (leave one model out):", 1)[1].split("\n\n", 1)[0]
    rows = {
        line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")
    }
    for device in ("usb3", "devboard"):
        median = float(rows[device].split("|")[3].strip().rstrip("%"))
        assert median <= 15.0, rows[device]
