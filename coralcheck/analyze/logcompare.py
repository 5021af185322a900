"""A compiler log's op counts against a placement: for each op type and status (or op type and
mapped / not mapped), how many ops the log counts and how many the placement has.

One comparison for the three places that hold a log against ops: `coralcheck log` (the log
against the prediction, coralcheck.pipeline.log), `--compile` (the log against the real
placement of the compiled twin, `log_vs_placement`) and benchmarks/compiler_agreement.py (the
corpus logs against the prediction).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from coralcheck.compiler.records import OpRow
from coralcheck.model.graph import Model


class Count(NamedTuple):
    """How many ops of type `operator` with `key` (a status, or mapped True/False) the log
    counts and the placement has."""

    operator: str
    key: Any
    logged: int
    placed: int


def logged_counts(rows: Iterable[OpRow], *, by_status: bool = True) -> Counter[tuple[str, Any]]:
    """(operator, status) → ops, from a log's table rows; (operator, mapped) with `by_status`
    False."""
    counts: Counter[tuple[str, Any]] = Counter()
    for row in rows:
        counts[(row.operator, row.status if by_status else row.mapped)] += row.count
    return counts


def side_by_side(logged: Counter[tuple[str, Any]], placed: Counter[tuple[str, Any]]) -> list[Count]:
    """Every (operator, key) either side has: the log's in its order, then the placement's."""
    keys = dict.fromkeys([*logged, *placed])
    return [Count(op, key, logged[(op, key)], placed[(op, key)]) for op, key in keys]


def differences(logged: Counter[tuple[str, Any]], placed: Counter[tuple[str, Any]]) -> list[Count]:
    """The counts that differ, by operator and key."""
    differ = [c for c in side_by_side(logged, placed) if c.logged != c.placed]
    return sorted(differ, key=lambda c: (c.operator, c.key))


def log_vs_placement(log: Any, model: Model, placements: Sequence[str | None]) -> list[dict]:
    """Op types whose mapped / not-mapped counts differ between a CompilerLog and a real
    placement ("tpu" | "cpu" | None per op of the main subgraph): [{`operator`, `mapped`,
    `logged`, `real`}]."""
    real: Counter[tuple[str, Any]] = Counter()
    for op, placement in zip(model.main.operators, placements, strict=True):
        if placement is not None:
            real[(op.log_name, placement == "tpu")] += 1
    return [
        {"operator": c.operator, "mapped": c.key, "logged": c.logged, "real": c.placed}
        for c in differences(logged_counts(log.rows, by_status=False), real)
    ]
