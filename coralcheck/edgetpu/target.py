"""What one compiler release, producing models for one runtime version, maps: `target(compiler,
runtime)` gives its `Target`, read from the knowledge (coralcheck.edgetpu.knowledge)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from coralcheck.edgetpu.knowledge import (
    Constraint,
    Knowledge,
    OpSpec,
    Release,
    VersionLimit,
    knowledge,
)


class Target:
    """What one compiler release, producing models for one runtime version, maps. Read-only
    (one per compiler and runtime version, from `target()`), but it remembers its answers."""

    __slots__ = (
        "_constraints",
        "_flagged",
        "_ops",
        "_parse_limits",
        "_supported",
        "_version_limits",
        "knowledge",
        "release",
        "runtime",
    )

    def __init__(self, release: Release, runtime: int, knowledge: Knowledge) -> None:
        self.release = release
        # The runtime the compiled model may need (-m): min(release default, option).
        self.runtime = runtime
        self.knowledge = knowledge
        self._ops = knowledge.ops
        # Per-opcode answers of `supports`, `constraints`, `version_limit` and `parse_limit`:
        # the predictor asks them for every op (about 30,000 questions for 3,500 ops), and a
        # model has thousands of ops but only a few dozen opcodes. One dict per question: a
        # plain lookup (~35 ns) instead of working the answer out again (~250-400 ns).
        self._supported: dict[str, bool] = {}
        self._constraints: dict[str, tuple[Constraint, ...]] = {}
        self._version_limits: dict[str, VersionLimit | None] = {}
        self._parse_limits: dict[str, VersionLimit | None] = {}
        self._flagged: dict[str, frozenset[str]] = {}

    def spec(self, opcode: str) -> OpSpec | None:
        """The op-table row of `opcode`, whether or not this release supports it."""
        return self._ops.get(opcode)

    def supports(self, opcode: str) -> bool:
        try:
            return self._supported[opcode]
        except KeyError:
            spec = self._ops.get(opcode)
            supported = self._supported[opcode] = (
                spec is not None
                and self.release.version >= spec.since
                and self.runtime >= spec.runtime
            )
            return supported

    def first_release(self, opcode: str) -> Release | None:
        """The oldest release that maps `opcode` (None if none does)."""
        spec = self._ops.get(opcode)
        if spec is None:
            return None
        return next((r for r in self.knowledge.releases if r.version >= spec.since), None)

    def constraints(self, opcode: str) -> tuple[Constraint, ...]:
        """The op's own constraints for this release, then those common to every op."""
        try:
            return self._constraints[opcode]
        except KeyError:
            spec = self._ops.get(opcode)
            every = (*spec.constraints, *self.knowledge.common_constraints) if spec else ()
            found = self._constraints[opcode] = tuple(
                c for c in every if c.applies_to(self.release)
            )
            return found

    def _limit(
        self, table: Mapping[str, tuple[VersionLimit, ...]], opcode: str
    ) -> VersionLimit | None:
        applicable = [v for v in table.get(opcode, ()) if self.release.version <= v.until]
        return min(applicable, key=lambda v: v.max_version) if applicable else None

    def version_limit(self, opcode: str) -> VersionLimit | None:
        """The highest version of `opcode` this release maps, when known."""
        try:
            return self._version_limits[opcode]
        except KeyError:
            found = self._version_limits[opcode] = self._limit(
                self.knowledge.version_limits, opcode
            )
            return found

    def parse_limit(self, opcode: str) -> VersionLimit | None:
        """The highest version of `opcode` this release can parse at all, when known."""
        try:
            return self._parse_limits[opcode]
        except KeyError:
            found = self._parse_limits[opcode] = self._limit(self.knowledge.parse_limits, opcode)
            return found

    def newer_release_for(self, opcode: str, version: int, *, parse: bool) -> Release | None:
        """The oldest release newer than this one that maps (`parse`: can parse) version
        `version` of `opcode`, as far as the limits in compilers.toml tell; None when no known
        release does, or when no limit is known for the op (then nothing says a newer one helps).
        """
        table = self.knowledge.parse_limits if parse else self.knowledge.version_limits
        limits = table.get(opcode, ())
        if not limits:
            return None
        for r in self.knowledge.releases:
            if r.version <= self.release.version:
                continue
            if not any(r.version <= lim.until and version > lim.max_version for lim in limits):
                return r
        return None

    def flag(self, opcode: str, name: str, default: Any = None) -> Any:
        spec = self._ops.get(opcode)
        return default if spec is None else spec.flags.get(name, default)

    def ops_with_flag(self, name: str) -> frozenset[str]:
        """The opcodes whose flag `name` is set (true)."""
        try:
            return self._flagged[name]
        except KeyError:
            found = self._flagged[name] = frozenset(
                op for op, spec in self._ops.items() if spec.flags.get(name)
            )
            return found


@cache
def target(compiler_version: str, runtime_version: int = 14) -> Target:
    """The knowledge for one target compiler (Options.compiler_version / runtime_version)."""
    kb = knowledge()
    release = kb.release(compiler_version)
    return Target(release, min(release.runtime, int(runtime_version)), kb)
