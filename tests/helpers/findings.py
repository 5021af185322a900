"""A source model's report as the tests read it (`source_report`), and its findings by code."""

from __future__ import annotations

from conftest import FIXTURES

from coralcheck.model import Model, load
from coralcheck.options import Options
from coralcheck.pipeline.source import analyze
from coralcheck.report import Finding, ModelReport


def source_report(model: Model | str, compiler: str = "16.0") -> ModelReport:
    if isinstance(model, str):
        model = load(FIXTURES / model)
    return analyze(model, Options(compiler_version=compiler))


def found(report: ModelReport, code: str) -> list[Finding]:
    return [f for f in report.findings if f.code == code]


def codes(report: ModelReport) -> set[str]:
    return {f.code for f in report.findings}
