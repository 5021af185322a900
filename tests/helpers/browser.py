"""Headless Chromium for the HTML report's tests, its benchmark and the README's screenshot.

Chromium is Debian's (`apt-get install chromium`, which .ci/run does), driven through Playwright's
Python package (`playwright`, from the `test` extra) with `executable_path`: nothing downloads a
browser. Playwright gives every launch a fresh, empty profile (user data directory). As root,
Chromium needs `--no-sandbox`; the other flags keep it from reaching for the network (this
machine has none) and from first-run work.

    python tests/helpers/browser.py [MODEL] [OUT.png]   # the README's screenshot
                                                        # (docs/html-report.png)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
# The YOLO of the README's screenshot (and of the browser test).
YOLO = CORPUS / "models/goalbuddy/yolov8n_full_integer_quant.tflite"
SCREENSHOT = REPO / "docs" / "html-report.png"

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
VIEWPORT = {"width": 1360, "height": 900}


def chromium_path() -> str | None:
    """Debian's chromium (or $CHROMIUM), if installed."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def missing() -> str | None:
    """Why no browser test can run here (None: they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs the playwright package (pip install -e '.[test]')"
    if chromium_path() is None:
        return "needs a Chromium browser (apt-get install chromium); none is installed"
    return None


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium (Playwright's Browser), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS, timeout=60_000
        )
        try:
            yield b
        finally:
            b.close()


class Visit:
    """A page opened on a report, with what it logged and requested."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []  # console errors and uncaught exceptions
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("request", lambda r: self.requests.append(r.url))


def open_report(b: Any, html_path: Path, *, color_scheme: str = "light") -> Visit:
    """`html_path` opened from file:// and laid out (every model section ready)."""
    page = b.new_page(viewport=VIEWPORT, color_scheme=color_scheme)
    visit = Visit(page)
    page.goto(html_path.resolve().as_uri())
    page.wait_for_function(
        "() => [...document.querySelectorAll('section.model')]"
        ".every(s => !s.querySelector('.graph') || s.dataset.ready === 'true')",
        timeout=30_000,
    )
    return visit


def write_report(model: Path, out: Path, fmt: str = "html") -> int:
    """`coralcheck MODEL --format FMT -o OUT`; its exit code."""
    from coralcheck.cli import main

    return main([str(model), "--format", fmt, "-o", str(out), "--isolated"])


def screenshot(visit: Visit, out: Path) -> Path:
    """The page as a reader first sees it, graph included: the verdict at the top, the graph
    open where most ops on the CPU are, the first root cause's details pinned beside it."""
    page = visit.page
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1500})
    page.evaluate(
        "() => window.coralcheck.graphs.forEach(g => { g.initialView();"
        " if (g.d.roots.length) g.select(g.d.roots[0][0], false); })"
    )
    page.screenshot(path=str(out), full_page=False)
    return out


def screenshot_report(model: Path, out: Path, workdir: Path) -> Path:
    """The HTML report of `model`, opened in Chromium, as a PNG at `out`."""
    html_path = workdir / (model.stem + ".html")
    write_report(model, html_path)
    with browser() as b:
        return screenshot(open_report(b, html_path), out)


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(REPO))
    model = Path(os.path.relpath(sys.argv[1] if len(sys.argv) > 1 else YOLO))  # as a user types it
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else SCREENSHOT
    reason = missing()
    if reason:
        sys.exit(f"browser.py: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        print(screenshot_report(model, out, Path(tmp)))
