"""The HTML report as a person sees it: opened from file:// in real headless Chromium (Debian's
`chromium`, driven by Playwright; see tests/helpers/browser.py). Skipped, with the reason, where no
browser is installed; .ci/run installs one.

The screenshot of the corpus YOLO taken here is the README's (`python tests/helpers/browser.py`
writes docs/html-report.png through the same functions).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO
from helpers.browser import YOLO, browser, open_report, screenshot, write_report
from helpers.hostile import hostile_tensor_model

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium():
    with browser() as b:
        yield b


def report_pair(model: Path, tmp_path: Path) -> tuple[Path, dict]:
    """The HTML page of `model` and its JSON report (same settings)."""
    page, doc = tmp_path / f"{model.stem}.html", tmp_path / f"{model.stem}.json"
    write_report(model, page)
    write_report(model, doc, "json")
    return page, json.loads(doc.read_text(encoding="utf-8"))["models"][0]


def test_the_yolo_page_in_chromium(chromium, tmp_path: Path) -> None:
    if not YOLO.exists():
        pytest.skip("the corpus YOLO (../shared/corpus) is not here")
    page_path, doc = report_pair(YOLO, tmp_path)
    visit = open_report(chromium, page_path)
    page = visit.page
    # Every op is a node with the JSON's index and placement; as many CPU nodes as ops_cpu.
    nodes = page.eval_on_selector_all(
        "[data-op]", "els => els.map(e => [+e.dataset.op, e.dataset.placement])"
    )
    assert sorted(nodes) == [[op["index"], op["placement"]] for op in doc["ops"]]
    cpu = page.locator('[data-placement="cpu"]')
    assert cpu.count() == doc["summary"]["ops_cpu"] > 0
    # Hovering a CPU op shows why it is there.
    op = next(o for o in doc["ops"] if o["placement"] == "cpu" and o["reason"])
    page.fill(".search", f"#{op['index']}")  # brings it into view, as a reader would
    page.locator(f'g.op[data-op="{op["index"]}"]').hover()
    tip = page.locator(".tip")
    tip.wait_for(state="visible")
    assert op["reason"] in tip.inner_text().replace("\n", " ")
    assert op["status"] in tip.inner_text()
    # The Edge TPU segment is shaded, the root cause marked and linked to what it drags.
    assert page.locator('rect.segment[data-segment="1"]').count() >= 1
    root = doc["root_causes"][0]["op"]
    assert "root" in page.get_attribute(f'g.op[data-op="{root}"]', "class")
    dragged = [o["index"] for o in doc["ops"] if o["blamed_on"] is not None]
    links = page.eval_on_selector_all(
        "path.drag", "els => els.map(e => [+e.dataset.fromOp, +e.dataset.toOp])"
    )
    assert sorted(links) == sorted([doc["ops"][i]["blamed_on"], i] for i in dragged)
    shot = screenshot(visit, tmp_path / "yolov8n.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    # Nothing went wrong, and nothing was fetched but the page itself.
    assert visit.errors == []
    assert {url.split(":", 1)[0] for url in visit.requests} == {"file"}


def test_search_findings_links_and_collapsing(chromium, tmp_path: Path) -> None:
    model = REPO / "fixtures" / "dynamic_batch_int8.tflite"  # 6 ops on the TPU, then the CPU
    page_path, doc = report_pair(model, tmp_path)
    visit = open_report(chromium, page_path)
    page = visit.page
    last = len(doc["ops"]) - 1
    page.fill(".search", f"#{last}")
    assert page.locator(f'g.op.selected[data-op="{last}"]').count() == 1
    assert f"op {last} {doc['ops'][last]['opcode']}" in page.inner_text("aside.details")
    # A tensor name finds the ops that read or write it.
    graph_in = json.loads(page.locator("script.cc-data").text_content())["graphIn"][0]
    name = json.loads(page.locator("script.cc-data").text_content())["tensors"][graph_in][0]
    page.fill(".search", name)
    assert page.locator("g.op.match").count() >= 1
    # A finding's link selects its op.
    link = page.locator(".findings a[data-goto]").first
    target = link.get_attribute("data-goto")
    link.click()
    assert page.locator(f'g.op.selected[data-op="{target}"]').count() == 1
    # Collapsing the runs of Edge TPU ops keeps every op node (hidden inside its run).
    page.check(".collapse-runs")
    assert page.locator("g.run").count() >= 1
    assert page.locator("[data-op]").count() == len(doc["ops"])
    assert page.locator('[data-placement="cpu"]').count() == doc["summary"]["ops_cpu"]
    # Clicking a run expands it.
    runs = page.locator("g.run").count()
    page.locator("g.run").first.click()
    assert page.locator("g.run").count() == runs - 1
    assert page.locator("[data-op]").count() == len(doc["ops"])
    assert visit.errors == []


def test_pan_zoom_and_dark(chromium, tmp_path: Path) -> None:
    page_path, _ = report_pair(REPO / "fixtures" / "demo_int8.tflite", tmp_path)
    visit = open_report(chromium, page_path, color_scheme="dark")
    page = visit.page
    before = page.get_attribute("g.viewport", "transform")
    box = page.locator(".graph").bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(box["x"] + 130, box["y"] + 90, steps=5)
    page.mouse.up()
    panned = page.get_attribute("g.viewport", "transform")
    assert panned != before
    page.click(".zoom-in")
    assert "scale(" in page.get_attribute("g.viewport", "transform")
    assert page.get_attribute("g.viewport", "transform") != panned
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 21, 26)"  # the dark palette
    page.click("button.theme")
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") != background
    assert visit.errors == []


def test_a_hostile_tensor_name_runs_no_script(chromium, tmp_path: Path) -> None:
    name = "</script><script>window.pwned=1</script><img src=x onerror=window.pwned=2>"
    model = hostile_tensor_model(tmp_path, name)
    page_path, _ = report_pair(model, tmp_path)
    visit = open_report(chromium, page_path)
    visit.page.locator('g.op[data-op="1"]').hover()
    assert name in visit.page.inner_text(".tip")  # shown as text
    assert visit.page.evaluate("() => window.pwned") is None
    assert visit.errors == []


def test_the_3500_op_page_opens_collapsed_and_expands(chromium, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_load import many_ops_model

    model = tmp_path / "many_ops.tflite"
    model.write_bytes(many_ops_model())
    page_path, doc = report_pair(model, tmp_path)
    visit = open_report(chromium, page_path)
    page = visit.page
    assert page.locator("g.run").count() >= 1
    assert page.locator("[data-op]").count() == len(doc["ops"]) == 3500
    page.uncheck(".collapse-runs")
    assert page.locator("g.run").count() == 0
    assert page.locator("g.op:not([data-run])").count() == 3500
    assert visit.errors == []


def test_each_edge_tpu_segment_is_shaded_by_its_number(chromium, tmp_path: Path) -> None:
    from conftest import CORPUS

    record = CORPUS / "groundtruth.json"
    if not record.exists():
        pytest.skip("the shared corpus is not here")
    pairs = json.loads(record.read_text(encoding="utf-8"))
    compiled = next(
        (CORPUS / k for k, v in sorted(pairs.items()) if v.get("usable") and v["segments"] > 1),
        None,
    )
    if compiled is None:
        pytest.skip("no compiled model with several Edge TPU segments in the corpus")
    page_path, doc = report_pair(compiled, tmp_path)
    visit = open_report(chromium, page_path)
    shaded = visit.page.eval_on_selector_all(
        "rect.segment",
        "els => [...new Set(els.map(e => +e.dataset.segment))].sort((a, b) => a - b)",
    )
    assert shaded == sorted({op["segment"] for op in doc["ops"] if op["placement"] == "tpu"})
    assert len(shaded) == pairs[str(compiled.relative_to(CORPUS))]["segments"]
    assert visit.errors == []
