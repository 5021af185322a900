"""HTML report benchmark: page size, and the time headless Chromium takes to open and lay out
the page of bench_load's `many_ops` model (3,500 ops, 10,001 tensors) and of the corpus YOLO.

Targets (issue 15): a 3,500-op model's page at most 5 MB, opened and laid out in under 3 s.
"Open" is wall-clock from `page.goto(file://...)` until every model section says it is laid out
(`data-ready`, set by the page's script after it has drawn the SVG), plus one animation frame
(the browser has painted). "Layout" is the script's own time (`data-layout-ms`: units, layers,
order, coordinates and the SVG string). The many_ops page opens with its Edge TPU runs collapsed
(more than 1,500 ops); "expanded" is the time to draw all 3,500 op nodes after unticking
"collapse Edge TPU runs". Chromium is Debian's, driven as in tests/helpers/browser.py; each page is
opened `--runs` times in a fresh tab and the median is reported.

    python benchmarks/bench_html.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from bench_load import many_ops_model  # noqa: E402
from helpers import browser  # noqa: E402

TARGET_BYTES = 5 * 1024 * 1024
TARGET_OPEN_S = 3.0
NEXT_FRAME = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def measure(b, page_path: Path, expand: bool) -> tuple[float, float, float | None]:
    """(open s, script layout ms, expand s or None) for one fresh tab."""
    page = b.new_page(viewport=browser.VIEWPORT)
    start = time.perf_counter()
    page.goto(page_path.as_uri())
    page.wait_for_function(
        "() => [...document.querySelectorAll('section.model')].every(s => s.dataset.ready)"
    )
    page.evaluate(NEXT_FRAME)
    opened = time.perf_counter() - start
    layout_ms = float(page.get_attribute("section.model", "data-layout-ms"))
    expanded = None
    if expand and page.locator("g.run").count():
        start = time.perf_counter()
        page.uncheck(".collapse-runs")
        page.evaluate(NEXT_FRAME)
        expanded = time.perf_counter() - start
    page.close()
    return opened, layout_ms, expanded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    reason = browser.missing()
    if reason:
        print(f"bench_html: {reason}", file=sys.stderr)
        return 2
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        models = {"many_ops (3,500 ops)": Path(tmp) / "many_ops.tflite"}
        models["many_ops (3,500 ops)"].write_bytes(many_ops_model())
        if browser.YOLO.exists():
            models["yolov8n (256 ops)"] = browser.YOLO
        print("| page | size MB | open s (median) | script layout ms | expand all s |")
        print("|---|---:|---:|---:|---:|")
        with browser.browser() as b:
            for name, model in models.items():
                page_path = Path(tmp) / (model.stem + ".html")
                browser.write_report(model, page_path)
                size = page_path.stat().st_size
                rows = [measure(b, page_path, expand=True) for _ in range(args.runs)]
                opened = statistics.median(r[0] for r in rows)
                layout = statistics.median(r[1] for r in rows)
                expands = [r[2] for r in rows if r[2] is not None]
                expand = f"{statistics.median(expands):.2f}" if expands else "—"
                print(f"| {name} | {size / 2**20:.2f} | {opened:.2f} | {layout:.0f} | {expand} |")
                if "3,500" in name:
                    slow = opened > TARGET_OPEN_S or (expands and max(expands) > TARGET_OPEN_S)
                    failed |= size > TARGET_BYTES or bool(slow)
    print(f"\ntargets: ≤ {TARGET_BYTES / 2**20:.0f} MB, open ≤ {TARGET_OPEN_S} s: "
          f"{'MISSED' if failed else 'met'}")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
