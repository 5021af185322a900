"""The stand-in edgetpu_compiler (tests/fake_compiler/edgetpu_compiler.py) put first on PATH, and
the corpus models and logs it answers for. The `fake_compiler` fixture (tests/conftest.py)
installs it for a test."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, REPO

FAKE = REPO / "tests" / "fake_compiler" / "edgetpu_compiler.py"
YOLO8 = "models/goalbuddy/yolov8n_full_integer_quant"
YOLO5 = "models/sandhya_modelnew/yolov5n-int8"
SLIM = "models/coral_test_data_grouper/deeplab_mobilenet_edgetpu_slim_cityscapes_quant"
LOGS = {
    YOLO8: "logs/goalbuddy/yolov8n_full_integer_quant",
    YOLO5: "logs/sandhya_modelnew/yolov5n-int8",
}


def install_fake_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`edgetpu_compiler` first on PATH; returns the file its calls' argv are logged to."""
    if not (CORPUS / "pairs.csv").exists():
        pytest.skip("the shared corpus is not here")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "edgetpu_compiler"
    exe.write_text(
        f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(FAKE)!r}, run_name='__main__')\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    argv_log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("FAKE_EDGETPU_ARGV_LOG", str(argv_log))
    monkeypatch.delenv("FAKE_EDGETPU_MODE", raising=False)
    return argv_log
