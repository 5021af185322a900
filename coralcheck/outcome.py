"""What a run decides: each model's verdict (its failing findings and gates), the run's exit
code, and the statistics of its findings.

Below both the analysis and the renderers: the renderers show an `Outcome`, they do not decide
it; the commands make it (`judge` per model) and return its `exit_code`.
"""

from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from coralcheck import registry
from coralcheck.config import Config
from coralcheck.errors import EXIT_FINDINGS, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from coralcheck.gates import GateResult, check_gates
from coralcheck.records import MutableRecord
from coralcheck.report import SEVERITY_RANK, Finding, ModelReport, Report


class Verdict(NamedTuple):
    """What the settings decide about one model's report."""

    fail_on: str
    failing: frozenset[int]  # indices of findings at or above fail-on that are not known
    known: frozenset[int] = frozenset()  # indices of findings found in the baseline
    gates: tuple[GateResult, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.failing) or any(not g.passed for g in self.gates)

    @property
    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]


def fails(finding: Finding, fail_on: str) -> bool:
    """Whether a finding of this severity fails the run under `fail_on`."""
    return fail_on != "never" and SEVERITY_RANK[finding.severity] >= SEVERITY_RANK[fail_on]


def judge(
    report: ModelReport,
    config: Config,
    *,
    known: frozenset[int] = frozenset(),
    regressions: Iterable[GateResult] = (),
) -> Verdict:
    """Pass or fail for one (already `apply`-ed) report: failing findings, gates, baseline."""
    failing = frozenset(
        i for i, f in enumerate(report.findings) if i not in known and fails(f, config.fail_on)
    )
    return Verdict(
        fail_on=config.fail_on,
        failing=failing,
        known=known,
        gates=(*check_gates(report, config), *regressions),
    )


class ModelFailure(NamedTuple):
    """A model that could not be checked: its one-line error."""

    path: str
    problem: str
    internal: bool = False  # a bug in coralcheck rather than bad input


class Outcome(MutableRecord):
    """What a run decided: one verdict per model of the report (same order), and the models
    that could not be checked at all."""

    __slots__ = _fields = ("verdicts", "failures", "baseline")

    def __init__(
        self,
        verdicts: list[Verdict],
        failures: list[ModelFailure] | None = None,
        baseline: str | None = None,  # the --baseline file, when findings were compared with one
    ) -> None:
        self.verdicts = verdicts
        self.failures: list[ModelFailure] = [] if failures is None else failures
        self.baseline = baseline

    @property
    def exit_code(self) -> int:
        """3 for a bug, 2 for bad input, 1 for a failed model, else 0 (see the README)."""
        if any(f.internal for f in self.failures):
            return EXIT_INTERNAL
        if self.failures:
            return EXIT_USAGE
        return EXIT_FINDINGS if any(v.failed for v in self.verdicts) else EXIT_OK


def default_outcome(report: Report) -> Outcome:
    """The default settings' verdicts (fail on errors, no gates), for callers with no config."""
    return Outcome([judge(m, Config()) for m in report.models])


class Statistic(NamedTuple):
    code: str
    count: int
    severity: str
    title: str


def statistics(report: Report) -> list[Statistic]:
    """Findings per rule code over all models, most frequent first (like `ruff --statistics`);
    a finding that stands for several places counts each of them."""
    counts: Counter[str] = Counter()
    severity: dict[str, str] = {}
    for m in report.models:
        for f in m.findings:
            counts[f.code] += len(f.places) or 1
            severity.setdefault(f.code, f.severity)
    return [
        Statistic(code, n, severity[code], registry.title(code))
        for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
