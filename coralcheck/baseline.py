"""Baselines: accept today's findings, fail on tomorrow's.

`--write-baseline FILE` records, per model, every finding's fingerprint, the number of ops on the
Edge TPU and the ops on the CPU. `--baseline FILE` then lets known findings pass; new findings
fail as usual, and so does a model that lost Edge TPU ops or gained a CPU op.

Models are keyed by their path relative to the baseline file's directory, so the file works from
any working directory. A fingerprint names the rule, the model, the op type and the tensor —
never the op index, so inserting an op upstream does not make every finding "new".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from coralcheck.errors import UsageError
from coralcheck.fileio import json_safe, name_bytes, read_regular
from coralcheck.gates import GateResult
from coralcheck.report import Finding, ModelReport

FORMAT_KEY = "coralcheck_baseline"
FORMAT_VERSION = 1


def finding_opcode(report: ModelReport, finding: Finding) -> str:
    """The op type a finding is about ("" for model-level findings)."""
    if finding.opcode:
        return finding.opcode
    if finding.op is not None and finding.subgraph == 0:
        for op in report.ops:
            if op.index == finding.op:
                return op.opcode
    return ""


def fingerprints(report: ModelReport, path: str) -> list[str]:
    """One stable id per finding, in order: a hash of (rule code, model path, op type, tensor
    name), then `:n` for the n-th finding with that hash (two identical ops give two ids)."""
    seen: Counter[str] = Counter()
    out = []
    for f in report.findings:
        key = "\0".join((f.code, path, finding_opcode(report, f), f.tensor or ""))
        digest = hashlib.sha256(name_bytes(key)).hexdigest()[:16]
        seen[digest] += 1
        out.append(f"{digest}:{seen[digest]}")
    return out


def cpu_ops(report: ModelReport) -> Counter[str]:
    return Counter(op.opcode for op in report.ops if op.placement == "cpu")


def model_key(model_path: str, base_dir: str | os.PathLike[str]) -> str:
    """The model's path relative to `base_dir`, with forward slashes."""
    rel = os.path.relpath(os.path.abspath(model_path), os.path.abspath(base_dir))
    return Path(rel).as_posix()


class BaselineEntry(NamedTuple):
    ops_total: int
    ops_tpu: int
    cpu_ops: dict[str, int]
    fingerprints: frozenset[str]


class Baseline(NamedTuple):
    path: str
    models: dict[str, BaselineEntry]

    @property
    def base_dir(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    def compare(self, report: ModelReport) -> tuple[frozenset[int], list[GateResult]]:
        """Which findings of `report` are known, and the regressions against the baseline."""
        key = model_key(report.path, self.base_dir)
        entry = self.models.get(key)
        if entry is None:
            return frozenset(), []
        known = frozenset(
            i for i, fp in enumerate(fingerprints(report, key)) if fp in entry.fingerprints
        )
        regressions = []
        if report.summary.ops_tpu < entry.ops_tpu:
            regressions.append(
                GateResult(
                    "baseline",
                    False,
                    f"Edge TPU ops dropped from {entry.ops_tpu} (baseline) to "
                    f"{report.summary.ops_tpu}",
                )
            )
        for opcode, n in sorted(cpu_ops(report).items()):
            before = entry.cpu_ops.get(opcode, 0)
            if n > before:
                regressions.append(
                    GateResult(
                        "baseline",
                        False,
                        f"new CPU op: {opcode} runs on the CPU {n}x (baseline: {before}x)",
                    )
                )
        if not regressions:
            regressions.append(GateResult("baseline", True, "no Edge TPU op lost, no new CPU op"))
        return known, regressions


def _entry(report: ModelReport, key: str) -> dict[str, Any]:
    findings = [
        {
            "fingerprint": fp,
            "code": f.code,
            "severity": f.severity,
            "opcode": finding_opcode(report, f) or None,
            "tensor": f.tensor,
            "message": f.message,
        }
        for f, fp in zip(report.findings, fingerprints(report, key), strict=True)
    ]
    findings.sort(key=lambda d: (d["code"], d["fingerprint"]))
    return {
        "ops_total": report.summary.ops_total,
        "ops_tpu": report.summary.ops_tpu,
        "cpu_ops": dict(sorted(cpu_ops(report).items())),
        "findings": findings,
    }


def dumps(reports: Iterable[ModelReport], baseline_path: str) -> str:
    """The baseline file for these reports: JSON with sorted keys, so reruns are byte-equal."""
    base_dir = os.path.dirname(os.path.abspath(baseline_path))
    models = {}
    for report in reports:
        key = model_key(report.path, base_dir)
        models[key] = _entry(report, key)
    doc = {FORMAT_KEY: FORMAT_VERSION, "models": models}
    return json_safe(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)) + "\n"


def write(reports: Iterable[ModelReport], baseline_path: str) -> None:
    text = dumps(reports, baseline_path)
    try:
        with open(baseline_path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise UsageError(baseline_path, f"cannot write baseline: {e.strerror or e}") from None


# A baseline of thousands of models is a few MB; a larger file is not read (nor a pipe, or a
# device such as /dev/zero that never ends).
MAX_BASELINE_BYTES = 64 << 20


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def _whole(value: Any) -> int:
    """A count of the baseline: a whole number >= 0 (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a whole number >= 0")
    return value


def load(baseline_path: str) -> Baseline:
    """Read a baseline file written by `--write-baseline`. Anything else is one line (exit 2):
    not a regular file, too large, not UTF-8 JSON (nor NaN, Infinity or numbers beyond a
    float), nested too deep, or entries of the wrong shape."""

    try:
        data = read_regular(baseline_path, MAX_BASELINE_BYTES)
    except FileNotFoundError:
        raise UsageError(baseline_path, "no such baseline file") from None
    except OSError as e:
        raise UsageError(baseline_path, f"cannot read baseline: {e.strerror or e}") from None
    if len(data) > MAX_BASELINE_BYTES:
        raise UsageError(
            baseline_path, f"not a coralcheck baseline (larger than {MAX_BASELINE_BYTES >> 20} MiB)"
        )
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite)
    except RecursionError:
        raise UsageError(baseline_path, "not a coralcheck baseline (nested too deep)") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, the checks above
        raise UsageError(baseline_path, f"not a coralcheck baseline (invalid JSON: {e})") from None
    if not isinstance(doc, dict) or doc.get(FORMAT_KEY) != FORMAT_VERSION:
        raise UsageError(
            baseline_path,
            f"not a coralcheck baseline (version {FORMAT_VERSION}; write one with "
            "--write-baseline)",
        )
    models = {}
    try:
        for key, entry in doc["models"].items():
            models[key] = BaselineEntry(
                ops_total=_whole(entry["ops_total"]),
                ops_tpu=_whole(entry["ops_tpu"]),
                cpu_ops={str(k): _whole(v) for k, v in entry["cpu_ops"].items()},
                fingerprints=frozenset(str(f["fingerprint"]) for f in entry["findings"]),
            )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UsageError(baseline_path, f"malformed baseline entry ({e!r})") from None
    return Baseline(baseline_path, models)
