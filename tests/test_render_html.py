"""`--format html` without a browser: what the page holds, that it needs nothing else, that
model-provided names cannot break out of it, and its size budget. The page as a browser shows
it is tested in tests/test_browser.py; the data flow the report records, here too."""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
from conftest import CORPUS, FIXTURES, REPO
from helpers.hostile import hostile_tensor_model
from helpers.reports import hostile, outcome_for, partly_mapped, report_of
from helpers.tflite_builder import OpSpec, SignatureSpec, TensorSpec, build_model

import coralcheck
from coralcheck.cli import main
from coralcheck.render import render
from coralcheck.render.html import CONTENT_SECURITY_POLICY
from coralcheck.report import ModelReport

DATA_ISLAND = re.compile(r'<script type="application/json" class="cc-data">(.*?)</script>', re.S)
SCHEMA = json.loads((REPO / "coralcheck" / "report.schema.json").read_text(encoding="utf-8"))
YOLO = CORPUS / "models/goalbuddy/yolov8n_full_integer_quant.tflite"
GRAPH_CARD = '<div class="card graph-card">'


def islands(page: str) -> list[dict]:
    return [json.loads(m) for m in DATA_ISLAND.findall(page)]


def lint(tmp_path: Path, model: Path, fmt: str, *extra: str) -> tuple[int, str]:
    out = tmp_path / f"report.{fmt}"
    code = main([str(model), "--format", fmt, "-o", str(out), "--isolated", *extra])
    return code, out.read_text(encoding="utf-8")


# --- the page --------------------------------------------------------------------------------


def test_the_page_needs_nothing_but_itself(tmp_path: Path) -> None:
    code, page = lint(tmp_path, FIXTURES / "unsupported_op_int8.tflite", "html")
    assert code in (0, 1)
    assert page.startswith("<!DOCTYPE html>")
    # Style and script inline; no file, font or script to fetch, and the browser is told so.
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page)
    assert "@import" not in page and "url(" not in page
    assert f'content="{CONTENT_SECURITY_POLICY}"' in page
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}  # a namespace name, never fetched


def test_the_graph_data_is_the_reports(tmp_path: Path) -> None:
    model = FIXTURES / "unsupported_op_int8.tflite"
    _, page = lint(tmp_path, model, "html")
    _, text = lint(tmp_path, model, "json")
    doc = json.loads(text)["models"][0]
    (data,) = islands(page)
    assert [op[1] for op in data["ops"]] == [op["placement"] for op in doc["ops"]]
    assert [op[0] for op in data["ops"]] == [op["opcode"] for op in doc["ops"]]
    assert [data["statuses"][op[2]] for op in data["ops"]] == [op["status"] for op in doc["ops"]]
    assert [op[3] for op in data["ops"]] == [op["reason"] for op in doc["ops"]]
    assert [op[4] for op in data["ops"]] == [op["blamed_on"] for op in doc["ops"]]
    assert [r[0] for r in data["roots"]] == [r["op"] for r in doc["root_causes"]]
    loaded = coralcheck.load(model)
    assert data["ins"] == [list(op.inputs) for op in loaded.main.operators]
    assert data["outs"] == [list(op.outputs) for op in loaded.main.operators]
    assert [t[0] for t in data["tensors"]] == [t.name for t in loaded.main.tensors]
    # The CPU op is in the page, with its reason, and the verdict line at the top.
    cpu = [op for op in doc["ops"] if op["placement"] == "cpu"]
    assert cpu and doc["summary"]["ops_cpu"] == len(cpu)
    assert html.escape(doc["verdict"]["placement"]) in page.split(GRAPH_CARD)[0]


def test_the_top_shows_verdict_gates_io_and_memory() -> None:
    from coralcheck.config import Config

    report = report_of(partly_mapped())
    outcome = outcome_for(report, Config(max_cpu_ops=0))
    page = render(report, "html", outcome=outcome)
    top = page.split(GRAPH_CARD)[0]
    assert "27 of 30 ops on the Edge TPU" in top
    assert 'class="badge failed">failed</span> gate <b>max-cpu-ops</b>: 3 ops on the CPU' in top
    assert "Inputs and outputs" in top and "Parameter memory" in top
    # Findings by severity, each linked to its op; the biggest wins.
    rest = page.split(GRAPH_CARD)[1]
    assert rest.index("Errors (1)") < rest.index("Warnings (1)")
    assert 'href="#m0-op-27" class="goto" data-goto="27">op 27 RESIZE_BILINEAR</a>' in rest
    assert "Biggest wins" in rest and "Fix:</b> Resize to 257x257 on the TPU" in rest


def test_a_latency_estimate_is_shown_when_the_report_has_one() -> None:
    class WithLatency(ModelReport):  # the field of the latency estimate (issue 13)
        __slots__ = ("latency",)
        _fields = (*ModelReport._fields, "latency")

    m = partly_mapped()
    timed = WithLatency(**{name: getattr(m, name) for name in m._fields})
    timed.latency = {"device": "usb3", "estimate_ms": 12.3, "low_ms": 8.0, "high_ms": 16.0,
                     "dominant": "compute"}  # fmt: skip
    page = render(report_of(timed), "html")
    assert "~12.3 ms per inference on usb3 (8–16 ms; dominated by compute)" in page
    assert "Latency estimate" not in render(report_of(partly_mapped()), "html")


def test_one_section_per_model_and_the_failures(tmp_path: Path) -> None:
    from coralcheck.outcome import ModelFailure

    report = report_of(partly_mapped("a.tflite"), partly_mapped("b.tflite"))
    failures = (ModelFailure("c.tflite", "not a TFLite model"),)
    page = render(report, "html", outcome=outcome_for(report, failures=failures))
    assert re.findall(r'<section class="model" id="(m\d+)"', page) == ["m0", "m1"]
    assert len(islands(page)) == 2
    assert "2 of 3 models failed, 1 could not be checked" in page
    assert "<code>c.tflite</code>: not a TFLite model" in page


def test_without_the_data_flow_the_ops_are_still_drawn() -> None:
    page = render(report_of(partly_mapped()), "html")  # a hand-made report: no graph
    (data,) = islands(page)
    assert len(data["ops"]) == 30 and "tensors" not in data
    assert "The data flow was not recorded" in page


def test_names_from_the_model_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    name = "</script><script>window.pwned=1</script><img src=x onerror=alert(1)>&amp;\u2028"
    code, page = lint(tmp_path, hostile_tensor_model(tmp_path, name), "html")
    assert code in (0, 1)
    assert "<script>window.pwned" not in page and "<img src=x" not in page
    assert page.count("</script>") == page.count("<script") == 2  # the data and the script
    (data,) = islands(page)
    assert name in [t[0] for t in data["tensors"]]  # ...and the name arrives intact


def test_hand_made_hostile_names_are_escaped() -> None:
    page = render(report_of(hostile()), "html")
    assert "<script>*h*" not in page
    assert "f`g&lt;script&gt;*h*" in page  # printable(): control characters as escapes too
    assert "\x1b" not in page and "\x00" not in page


def test_a_3500_op_model_page_stays_under_5_mb(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_load import many_ops_model

    model = tmp_path / "many_ops.tflite"
    model.write_bytes(many_ops_model())
    code, page = lint(tmp_path, model, "html")
    assert code in (0, 1)
    (data,) = islands(page)
    assert len(data["ops"]) == 3500 and len(data["tensors"]) > 10_000
    assert len(page.encode("utf-8")) <= 5 * 1024 * 1024
    assert data["collapseAbove"] < 3500  # opens with its Edge TPU runs collapsed


def test_a_notebook_shows_the_same_page_in_a_frame_of_its_own() -> None:
    report = coralcheck.check(FIXTURES / "unsupported_op_int8.tflite")
    frame = report._repr_html_()
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)" style="[^"]*" title="coralcheck report">'
                         r"</iframe>", frame)  # fmt: skip
    assert match
    assert html.unescape(match.group(1)) == render(report, "html")
    assert islands(render(report, "html"))[0]["tensors"]  # check() records the data flow


def test_other_formats_do_not_record_the_data_flow(tmp_path: Path) -> None:
    _, text = lint(tmp_path, FIXTURES / "demo_int8.tflite", "json")
    assert json.loads(text)["models"][0]["graph"] is None


# --- what the report records for it -------------------------------------------------------


def test_the_data_flow_is_in_the_json_and_valid(tmp_path: Path) -> None:
    report = coralcheck.check(FIXTURES / "unsupported_op_int8.tflite")
    doc = json.loads(render(report, "json"))
    jsonschema.validate(doc, SCHEMA)
    graph = doc["models"][0]["graph"]
    assert graph["subgraph"] == "main" and graph["signature"] is None
    assert len(graph["op_inputs"]) == len(doc["models"][0]["ops"])


def test_boundary_ops_are_the_cpu_ops_next_to_the_edge_tpu(corpus_dir: Path) -> None:
    if not YOLO.exists():
        pytest.skip("the YOLO of the corpus is not here")
    report = coralcheck.check(YOLO).models[0]
    sg = coralcheck.load(YOLO).main
    placement = {op.index: op.placement for op in report.ops}
    neighbours = {
        op.index: {p for t in op.inputs if t >= 0 and (p := sg.producers[t]) is not None}
        | {c for t in op.outputs for c in sg.consumers[t]}
        for op in sg.operators
    }
    expected = [
        i
        for i, p in placement.items()
        if p == "cpu" and any(placement[n] == "tpu" for n in neighbours[i])
    ]
    assert report.graph is not None
    assert list(report.graph.boundary) == expected
    assert expected  # the YOLO's CPU tail reads what the segment writes


def test_the_json_of_a_report_with_a_named_signature(tmp_path: Path) -> None:
    data = build_model(
        tensors=[TensorSpec("x", [1, 4], "INT8", scale=[0.5], zero_point=[0]),
                 TensorSpec("y", [1, 4], "INT8", scale=[0.5], zero_point=[0])],
        ops=[OpSpec("RELU", [0], [1])],
        inputs=[0],
        outputs=[1],
        name="",
        signature_defs=[SignatureSpec("serving_default", {"x": 0}, {"y": 1})],
    )  # fmt: skip
    path = tmp_path / "sig.tflite"
    path.write_bytes(data)
    graph = coralcheck.check(path).models[0].graph
    assert graph is not None and (graph.subgraph, graph.signature) == ("", "serving_default")


def test_every_tpu_op_names_its_segment(corpus_dir: Path) -> None:
    predicted = coralcheck.check(FIXTURES / "unsupported_op_int8.tflite").models[0]
    assert all((op.segment == 1) == (op.placement == "tpu") for op in predicted.ops)
    gt = json.loads((corpus_dir / "groundtruth.json").read_text(encoding="utf-8"))
    compiled = next(
        (corpus_dir / k for k, v in gt.items() if v.get("usable") and v["segments"] > 1), None
    )
    if compiled is None or not compiled.exists():
        pytest.skip("no compiled model with several segments in the corpus")
    report = coralcheck.check(compiled).models[0]
    numbers = [op.segment for op in report.ops if op.placement == "tpu"]
    assert numbers == list(range(1, len(report.compiled["segments"]) + 1))
    assert all(op.segment is None for op in report.ops if op.placement == "cpu")


# --- the README ----------------------------------------------------------------------------


def readme_yaml_blocks() -> list:
    yaml = pytest.importorskip("yaml")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", readme, re.S)]


def test_the_ci_recipes_upload_the_html_report() -> None:
    blocks = readme_yaml_blocks()
    github = next(b for b in blocks if isinstance(b, dict) and "jobs" in b)
    steps = [s for job in github["jobs"].values() for s in job["steps"]]
    written = [s["run"].split("--output ")[1].split()[0] for s in steps
               if "--format html" in s.get("run", "")]  # fmt: skip
    uploads = [s["with"]["path"] for s in steps if s.get("uses", "").startswith(
        "actions/upload-artifact@")]  # fmt: skip
    assert written and written == uploads
    gitlab = next(b for b in blocks if isinstance(b, dict) and "coralcheck" in b)["coralcheck"]
    html_out = [c.split("--output ")[1].split()[0] for c in gitlab["script"] if "format html" in c]
    assert html_out and html_out == gitlab["artifacts"]["paths"]


def test_the_readme_shows_the_screenshot() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (image,) = re.findall(r"!\[[^\]]*\]\((docs/[^)]+\.png)\)", readme)
    assert (REPO / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_nan_scale_from_a_corrupt_file_still_makes_a_valid_page(tmp_path: Path) -> None:
    data = build_model(
        tensors=[TensorSpec("x", [1, 4], "INT8", scale=[float("nan")], zero_point=[0]),
                 TensorSpec("y", [1, 4], "INT8", scale=[float("inf")], zero_point=[0])],
        ops=[OpSpec("RELU", [0], [1])],
        inputs=[0],
        outputs=[1],
    )  # fmt: skip
    model = tmp_path / "nan.tflite"
    model.write_bytes(data)
    _, page = lint(tmp_path, model, "html")
    (island,) = islands(page)  # strict JSON: no NaN literal
    assert [t[3] for t in island["tensors"]] == ["nan", "inf"]
