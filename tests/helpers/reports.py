"""Hand-made reports (every field known, so that each test knows exactly what a report holds),
their outcomes, a fake rule, and the validators of the JSON report and of SARIF."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from conftest import REPO

from coralcheck.config import Config
from coralcheck.gates import GateResult
from coralcheck.outcome import ModelFailure, Outcome, judge
from coralcheck.report import (
    Finding,
    IOTensor,
    Memory,
    ModelReport,
    OpPlacement,
    Report,
    RootCause,
    Summary,
    TpuSegment,
)

ANSI = re.compile(r"\x1b\[")
MAPPED = "Mapped to Edge TPU"
UNSPECIFIED = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
MORE_THAN_ONE = "More than one subgraph is not supported"

# --- hand-made reports -------------------------------------------------------------------------


def partly_mapped(path: str = "models/deeplab_quant.tflite", shift: int = 0) -> ModelReport:
    """27 ops on the TPU, then RESIZE_BILINEAR (root cause), ARG_MAX and QUANTIZE on the CPU.
    `shift` inserts that many TPU ops in front (to test that op indices don't leak into ids)."""
    names = ["QUANTIZE"] * (1 + shift) + ["CONV_2D", "DEPTHWISE_CONV_2D"] * 13
    ops = [OpPlacement(i, n, 1, "tpu", MAPPED, "", None, 1000) for i, n in enumerate(names)]
    r = len(ops)
    ops += [
        OpPlacement(r, "RESIZE_BILINEAR", 3, "cpu", UNSPECIFIED, "output 513x513x21 too big"),
        OpPlacement(r + 1, "ARG_MAX", 1, "cpu", MORE_THAN_ONE, f"after op {r} RESIZE_BILINEAR", r),
        OpPlacement(r + 2, "QUANTIZE", 1, "cpu", MORE_THAN_ONE, f"after op {r} RESIZE_BILINEAR", r),
    ]
    findings = [
        Finding(
            "CC101",
            "error",
            "RESIZE_BILINEAR output is too large to map",
            op=r,
            tensor="ResizeBilinear:0",
            fix="Resize to 257x257 on the TPU",
            opcode="RESIZE_BILINEAR",
        ),
        Finding("CC302", "warning", "ARG_MAX runs on the CPU", op=r + 1, fix="Do it in the app"),
        Finding("CC900", "info", "input expects [0, 255]", tensor="sub_7"),
    ]
    io = [
        IOTensor("input", 0, "sub_7", "UINT8", (1, 513, 513, 3), (1, 513, 513, 3), 0.0078125, 128),
        IOTensor("output", 90, "ArgMax", "INT64", (1, 513, 513), None, None, None),
        IOTensor("output", 91, "probs", "INT8", (1, 10), (-1, 10), 0.00390625, -128),
    ]
    causes = [
        RootCause(r, "RESIZE_BILINEAR", UNSPECIFIED, "output too big", 2, 0, "Resize to 257x257"),
        RootCause(r + 1, "ARG_MAX", MORE_THAN_ONE, "second cause", 1, 0, ""),
        RootCause(r + 2, "QUANTIZE", MORE_THAN_ONE, "third cause", 1, 0, ""),
        RootCause(r + 2, "QUANTIZE", MORE_THAN_ONE, "fourth cause", 1, 0, ""),
    ]
    return ModelReport(
        path=path,
        kind="source",
        file_size=2_157_328,
        compiler_version="16.0",
        summary=Summary(len(ops), len(ops) - 3, 3, 1, 30_000, 27_000),
        ops=ops,
        findings=findings,
        io=io,
        memory=Memory(2_100_000, 8_000_000, 2_100_000, 0),
        root_causes=causes,
        compiled={
            "segments": [
                {"name": "edgetpu-custom-op", "on_chip_parameter_bytes": 4_055_040, "cycles": 0}
            ],
            "cpu_ops": {"ARG_MAX": 1, "RESIZE_BILINEAR": 1},
            "min_runtime_version": 12,
        },
        diff=[{"op": r + 1, "opcode": "ARG_MAX", "predicted": "tpu", "compiler": "cpu"}],
    )


def clean(path: str = "models/clean.tflite") -> ModelReport:
    ops = [OpPlacement(i, "CONV_2D", 3, "tpu", MAPPED, "") for i in range(5)]
    return ModelReport(path, "source", 9000, "16.0", Summary(5, 5, 0, 1), ops=ops)


def segmented(path: str = "models/forest.tflite") -> ModelReport:
    """Predicted for edgetpu_compiler -a: ops 0-2 and 5-6 on the Edge TPU, two segments; the
    GATHER and CAST between them on the CPU."""
    names = ["FULLY_CONNECTED", "SUB", "LOGISTIC", "GATHER", "CAST", "RESHAPE", "SUM"]
    ops = [
        OpPlacement(i, n, 1, "cpu", "Operation not supported", "not an Edge TPU operation")
        if n in ("GATHER", "CAST")
        else OpPlacement(i, n, 1, "tpu", MAPPED, "", None, 1000 if i == 0 else 0)
        for i, n in enumerate(names)
    ]
    segments = [
        TpuSegment(1, (0, 1, 2), (0,), (4,), (3, 4), 1000),
        TpuSegment(2, (5, 6), (6,), (8,), (), 0),
    ]
    summary = Summary(7, 5, 2, 2, 1000, 1000)
    return ModelReport(path, "source", 4000, "16.0", summary, ops=ops, segments=segments)


HOSTILE_NAME = "a|b,c:d%e\nf`g<script>*h*\x00\x1b[31m"


def hostile(path: str = "models/we,ird:name%.tflite") -> ModelReport:
    """Names and messages with every character some format must escape."""
    ops = [
        OpPlacement(0, "CONV_2D", 3, "tpu", MAPPED, ""),
        OpPlacement(1, "CUSTOM:My|Op", 1, "cpu", "Operation not supported", HOSTILE_NAME),
    ]
    finding = Finding("CC101", "error", HOSTILE_NAME, op=1, tensor=HOSTILE_NAME, fix=HOSTILE_NAME)
    io = [IOTensor("input", 0, HOSTILE_NAME, "UINT8", (1, 8), None, 0.5, 3)]
    return ModelReport(
        path, "source", 10, "16.0", Summary(2, 1, 1, 1), ops=ops, findings=[finding], io=io
    )


def report_of(*models: ModelReport) -> Report:
    return Report(list(models), tool_version="9.9.9")


def outcome_for(
    report: Report,
    config: Config | None = None,
    *,
    failures: tuple[ModelFailure, ...] = (),
    baseline: str | None = None,
    known: frozenset[int] = frozenset(),
    regressions: tuple[GateResult, ...] = (),
) -> Outcome:
    config = config or Config()
    verdicts = [judge(m, config, known=known, regressions=regressions) for m in report.models]
    return Outcome(verdicts, list(failures), baseline=baseline)


def fake_rule(code: str, severity: str = "error") -> SimpleNamespace:
    return SimpleNamespace(
        code=code,
        name=f"rule-{code.lower()}",
        family="ops",
        severity=severity,
        title=f"Title of {code}",
        explanation=f"Why {code} matters.",
        fix=f"How to fix {code}.",
        example=f"An example of {code}.",
    )


def report_schema() -> dict:
    return json.loads((REPO / "coralcheck" / "report.schema.json").read_text(encoding="utf-8"))


def validate_report_json(doc: dict) -> None:
    import jsonschema

    jsonschema.Draft202012Validator(report_schema()).validate(doc)


SARIF_SCHEMA = REPO.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"


def sarif_validator():  # type: ignore[no-untyped-def]
    import jsonschema

    if not SARIF_SCHEMA.exists():
        pytest.skip("the official SARIF schema (../shared/schemas) is not here")
    return jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text(encoding="utf-8")))
