"""Compiled models for the tests: corpus models inspected as coralcheck does (`inspect`,
`corpus_path`), and synthetic ones no compiler writes (`one_segment_model` with a package from
helpers.edgetpu_builder) with their findings by code (`findings_of`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS

from coralcheck.model import load
from coralcheck.options import Options
from coralcheck.pipeline.compiled import inspect_compiled
from helpers.edgetpu_builder import CustomOptionsSpec, custom_options
from helpers.tflite_builder import OpSpec, TensorSpec, build_model

GROUPER = "models/coral_test_data_grouper"


def inspect(relative: str, **options: object):  # type: ignore[no-untyped-def]
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not in the shared corpus")
    return inspect_compiled(load(path), Options(**options))  # type: ignore[arg-type]


def corpus_path(relative: str) -> Path:
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not in the shared corpus")
    return path


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
