"""The gates: what they check (`check_gates`) and their documentation (`GATES`, read by
`coralcheck rule gate/max-cpu-ops` and SARIF's `gate/<name>` rule descriptors).

A gate is not a rule that finds a problem in a model: it is a pass/fail threshold the settings
ask for (`--max-cpu-ops`, `require-full-mapping`, ...) or the comparison with a `--baseline`
file (coralcheck.baseline). A failed gate fails the run (exit 1) whatever `--fail-on` says.
"""

from typing import NamedTuple

from coralcheck.config import Config
from coralcheck.registry import Rule
from coralcheck.report import ModelReport
from coralcheck.wording import plural


class GateResult(NamedTuple):
    """One pass/fail check on the whole model (a gate, or a comparison with the baseline)."""

    name: str  # "max-cpu-ops", "require-full-mapping", "min-tpu-mac-share", "max-latency-ms",
    # "baseline"
    passed: bool
    message: str


PREFIX = "gate/"
FAMILY = "gate"

GATES: dict[str, Rule] = {
    gate.name: gate
    for gate in (
        Rule(
            code="gate/max-cpu-ops",
            name="max-cpu-ops",
            family=FAMILY,
            severity="error",
            title="At most N ops may run on the CPU",
            explanation=(
                "A gate you set with `--max-cpu-ops N` or `max-cpu-ops = N` in the settings. It "
                "fails when more than N ops of the model are predicted to run on the CPU (for a "
                "compiled model: are left on the CPU). Every op on the CPU is slow and cuts the "
                "Edge TPU part short; 0 requires every op to map."
            ),
            fix=(
                "Bring the ops back to the Edge TPU (see the findings and the biggest wins), or "
                "raise N when those CPU ops are accepted."
            ),
            example="gate max-cpu-ops failed: 3 ops on the CPU (at most 0 allowed)",
        ),
        Rule(
            code="gate/require-full-mapping",
            name="require-full-mapping",
            family=FAMILY,
            severity="error",
            title="Every op must run on the Edge TPU",
            explanation=(
                "A gate you set with `--require-full-mapping` or `require-full-mapping = true` "
                "in the settings. It fails when any op of the model would run on the CPU."
            ),
            fix=(
                "Make the CPU ops mappable (see the findings and the biggest wins), or drop the "
                "gate (`--no-require-full-mapping`) and use `--max-cpu-ops N` instead."
            ),
            example="gate require-full-mapping failed: 38 of 41 ops on the Edge TPU (all required)",
        ),
        Rule(
            code="gate/min-tpu-mac-share",
            name="min-tpu-mac-share",
            family=FAMILY,
            severity="error",
            title="At least this share of the multiply-accumulates must run on the Edge TPU",
            explanation=(
                "A gate you set with `--min-tpu-mac-share P` or `min-tpu-mac-share = P` (0-1 or "
                "a percentage). It fails when the ops predicted for the Edge TPU do less than "
                "that share of the model's multiply-accumulates: a few cheap ops on the CPU may "
                "pass, a convolution on the CPU does not."
            ),
            fix=(
                "Bring the compute-heavy ops (convolutions, fully connected layers) back to the "
                "Edge TPU; see the biggest wins, which count the MACs each fix brings back."
            ),
            example=(
                "gate min-tpu-mac-share failed: 85.0% of multiply-accumulates on the Edge TPU "
                "(at least 90.0% required)"
            ),
        ),
        Rule(
            code="gate/max-latency-ms",
            name="max-latency-ms",
            family=FAMILY,
            severity="error",
            title="The estimated milliseconds per inference must be at most N",
            explanation=(
                "A gate you set with `--max-latency-ms N` or `max-latency-ms = N` in the "
                "settings. It fails when coralcheck's latency estimate for the device "
                "(`--device`, `--clock`) is above N ms per inference, and when no estimate is "
                "possible (a compiled model that records no cycle count: see C011)."
            ),
            fix=(
                "Bring CPU ops back to the Edge TPU and stop parameter streaming (the estimate "
                "says which part dominates), choose a faster device or link, or raise N."
            ),
            example=(
                "gate max-latency-ms failed: ~83 ms/inference on usb3 (at most 20 ms allowed)"
            ),
        ),
        Rule(
            code="gate/baseline",
            name="baseline",
            family=FAMILY,
            severity="error",
            title="No Edge TPU op lost and no new CPU op since the baseline",
            explanation=(
                "With `--baseline FILE`, each model is compared with what `--write-baseline` "
                "recorded: it fails when the model has fewer ops on the Edge TPU, or an op type "
                "more often on the CPU, than in the baseline (new findings fail on their own, "
                "by --fail-on)."
            ),
            fix=(
                "Undo the change that moved ops to the CPU, or, when it is accepted, record a new "
                "baseline with `--write-baseline FILE`."
            ),
            example="gate baseline failed: new CPU op: RESIZE_BILINEAR runs on the CPU 1x "
            "(baseline: 0x)",
        ),
    )
}


def find_gate(text: str) -> Rule | None:
    """The gate `gate/NAME` (or NAME) names, any case; None when it names none."""
    wanted = text.strip().lower()
    return GATES.get(wanted.removeprefix(PREFIX))


def gate_rule(name: str) -> Rule:
    """The documentation of gate `name`; a bare entry for a gate this module does not know."""
    return GATES.get(name) or Rule(f"{PREFIX}{name}", name, FAMILY, "error", name, "", "")


# --- checking them ---------------------------------------------------------------------------


def check_gates(report: ModelReport, config: Config) -> list[GateResult]:
    """The gates the settings ask for, each passed or failed with the model's numbers."""
    s = report.summary
    results = []
    if config.max_cpu_ops is not None:
        results.append(
            GateResult(
                "max-cpu-ops",
                s.ops_cpu <= config.max_cpu_ops,
                f"{plural(s.ops_cpu, 'op')} on the CPU (at most {config.max_cpu_ops} allowed)",
            )
        )
    if config.require_full_mapping:
        results.append(
            GateResult(
                "require-full-mapping",
                s.ops_cpu == 0 and s.ops_tpu == s.ops_total,
                f"{s.ops_tpu} of {plural(s.ops_total, 'op')} on the Edge TPU (all required)",
            )
        )
    if config.min_tpu_mac_share is not None:
        what = (
            "of multiply-accumulates"
            if s.macs_total
            else "of ops (the model has no multiply-accumulates)"
        )
        results.append(
            GateResult(
                "min-tpu-mac-share",
                s.tpu_mac_share >= config.min_tpu_mac_share,
                f"{s.tpu_mac_share:.1%} {what} on the Edge TPU "
                f"(at least {config.min_tpu_mac_share:.1%} required)",
            )
        )
    if config.max_latency_ms is not None:
        results.append(latency_gate(report, config.max_latency_ms))
    return results


def latency_gate(report: ModelReport, limit_ms: float) -> GateResult:
    """The estimate must be at most `limit_ms`; a model without an estimate fails (nothing
    shows that it meets the budget; its C011 finding says why)."""
    latency = report.latency
    if latency is None:
        return GateResult(
            "max-latency-ms", False, f"no latency estimate (at most {limit_ms:g} ms allowed)"
        )
    return GateResult(
        "max-latency-ms",
        latency.estimate_ms <= limit_ms,
        f"~{latency.estimate_ms:.3g} ms per inference on {latency.device} "
        f"({latency.low_ms:.3g}–{latency.high_ms:.3g} ms; at most {limit_ms:g} ms allowed)",
    )
