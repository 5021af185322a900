"""The Edge TPU knowledge base: rules/*.toml (package `coralcheck.rules`) as typed read-only data.

- `knowledge()`: everything, loaded once: compiler releases, the op table with per-op constraints,
  version limits, the inferred size limits, activation lowering, the memory model.
- the view of one compiler release (which ops it maps, which constraints apply, which op
  versions it accepts or cannot even parse) is coralcheck.edgetpu.target.

Knowledge is data: this module only reads and indexes it. The constraint functions that the data
names live in `coralcheck.edgetpu.constraints`.
"""

import sys
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Any, NamedTuple

from coralcheck.datacache import cached
from coralcheck.errors import UsageError

Version = tuple[int, ...]

# Constraint fields that are metadata; every other key of a constraint table is a check parameter.
_CONSTRAINT_META = {
    "check",
    "kind",
    "effect",
    "text",
    "fix",
    "source",
    "confidence",
    "since",
    "until",
    "status",
}
_OP_META = {"since", "runtime", "source", "confidence", "constraint"}


def parse_version(text: str) -> Version | None:
    """ "16.0.384591198" → (16, 0, 384591198); None if it is not dotted non-negative integers."""
    try:
        parts = tuple(int(p) for p in text.strip().split("."))
    except ValueError:
        return None
    return parts if parts and all(p >= 0 for p in parts) else None


@cache
def _rules_dir() -> Any:
    """The data files: package `coralcheck.rules` when installed (the wheel maps rules/ to it),
    else rules/ beside the package in a source checkout run with PYTHONPATH=.

    Found from the package's `__file__` when it is a real file: `importlib.resources` imports
    `inspect` on Python 3.13 (~5 ms of every lint); it serves a package inside a zip."""
    from pathlib import Path

    try:
        import coralcheck.rules as package
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "rules"
    location = getattr(package, "__file__", None)
    if location and Path(location).is_file():
        return Path(location).parent
    from importlib import resources

    return resources.files(package)


def load_toml(name: str) -> dict[str, Any]:
    """One data file of the `coralcheck.rules` package, as parsed TOML: every read of the
    knowledge data goes through here. The result is shared: read it, never change it.
    The parse is kept in the per-user data cache (coralcheck.datacache): no tomllib import and
    no parse while the file is unchanged."""

    source = _rules_dir().joinpath(name)
    return cached(f"rules-{name}", [source], lambda: _parse_toml(source))


def _parse_toml(source: Any) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    return tomllib.loads(source.read_text(encoding="utf-8"))


class Release(NamedTuple):
    """One edgetpu_compiler release."""

    version: Version
    name: str  # the full version string the compiler prints
    date: str
    runtime: int  # the Edge TPU runtime its output needs by default
    parameter_cache_bytes: int
    # How it stores a conv/FC filter, where it differs from `[memory]` (None: as there).
    channel_padding: int | None = None
    bytes_per_channel: int | None = None

    @property
    def short(self) -> str:
        """ "16.0" for 16.0.384591198."""
        return f"{self.version[0]}.{self.version[1]}"


class Constraint(NamedTuple):
    """One rule that can keep a supported op off the Edge TPU (or annotate it: effect "note")."""

    op: str
    check: str  # the name of its function in coralcheck.edgetpu.constraints
    kind: str  # "documented" | "inferred"
    effect: str  # "unmap" | "note"
    text: str
    fix: str
    source: str
    confidence: str
    since: Version | None
    until: Version | None
    params: Mapping[str, Any]
    # The status the compiler prints when the constraint fails ("" = "Operation is otherwise
    # supported, but not mapped due to some unspecified limitation").
    status: str = ""

    def applies_to(self, release: Release) -> bool:
        v = release.version
        return (self.since is None or v >= self.since) and (self.until is None or v <= self.until)

    @property
    def inferred(self) -> bool:
        return self.kind == "inferred"


class OpSpec(NamedTuple):
    """A row of the Edge TPU op table."""

    name: str
    since: Version
    runtime: int
    source: str
    confidence: str
    constraints: tuple[Constraint, ...]
    flags: Mapping[str, Any]  # other per-op facts (e.g. QUANTIZE's float_input_allowed)


class VersionLimit(NamedTuple):
    """The highest version of `op` that releases up to `until` accept."""

    op: str
    max_version: int
    until: Version
    source: str
    confidence: str


class Knowledge(NamedTuple):
    releases: tuple[Release, ...]  # oldest first
    ops: Mapping[str, OpSpec]
    common_constraints: tuple[Constraint, ...]  # apply to every supported op, after its own
    unsupported_advice: Mapping[str, str]
    index_inputs: Mapping[str, tuple[int, ...]]  # op -> input positions holding indices
    version_limits: Mapping[str, tuple[VersionLimit, ...]]
    parse_limits: Mapping[str, tuple[VersionLimit, ...]]
    limits: Mapping[str, int]
    memory: Mapping[str, Any]
    activations: Mapping[str, Mapping[str, Any]]
    rule_texts: Mapping[str, Mapping[str, str]]  # catalogue.toml [rule.CODE]
    families: Mapping[str, str]  # code letter → family name
    verdict: Mapping[str, Any]  # catalogue.toml [verdict]: what decides the severity of G001
    foreign_accelerators: tuple[Mapping[str, str], ...]  # ops.toml [[foreign_accelerator]]

    def label(self, release: Release) -> str:
        """How messages name a release: "16.0", or the full version where builds of one
        major.minor differ (2.0.267685300 and 2.0.291256449)."""
        same_line = sum(1 for r in self.releases if r.short == release.short)
        return release.short if same_line < 2 else release.name

    def release(self, text: str) -> Release:
        """The release a user-given version names. Raises UsageError for unknown versions.

        A major.minor ("2.0") or a bare major ("16") names the newest build of that line; a full
        version names that build, or the newest build of its line not newer than it (the oldest
        when all are newer)."""
        wanted = parse_version(text)
        lines = ", ".join(dict.fromkeys(r.short for r in self.releases))
        known = f"{lines} (or a full version)"
        if wanted is None:
            raise UsageError("--compiler-version", f"{text!r} is not a version (known: {known})")
        prefix = wanted[:2]
        same_line = [r for r in self.releases if r.version[: len(prefix)] == prefix]
        if same_line and len(wanted) <= 2:
            return same_line[-1]
        not_newer = [r for r in same_line if r.version <= wanted]
        if not_newer:
            return not_newer[-1]
        if same_line:
            return same_line[0]
        raise UsageError(
            "--compiler-version", f"unknown Edge TPU compiler version {text!r} (known: {known})"
        )


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _version(text: str | None, where: str) -> Version | None:
    if text is None:
        return None
    v = parse_version(str(text))
    if v is None:
        raise ValueError(f"rules data: bad version {text!r} in {where}")
    return v


def _constraint(op: str, table: Mapping[str, Any], limits: Mapping[str, int]) -> Constraint:
    params = {k: v for k, v in table.items() if k not in _CONSTRAINT_META}
    # A limit may name a shared number of ops.toml [limits] instead of repeating it.
    if isinstance(params.get("limit"), str):
        params["limit"] = limits[params["limit"]]
    return Constraint(
        op=op,
        check=table["check"],
        kind=table.get("kind", "documented"),
        effect=table.get("effect", "unmap"),
        text=table.get("text", ""),
        fix=table.get("fix", ""),
        source=table.get("source", ""),
        confidence=table.get("confidence", "unconfirmed"),
        since=_version(table.get("since"), f"{op} constraint"),
        until=_version(table.get("until"), f"{op} constraint"),
        params=MappingProxyType(params),
        status=str(table.get("status", "")),
    )


def _limits(rows: list[dict[str, Any]]) -> Mapping[str, tuple[VersionLimit, ...]]:
    by_op: dict[str, list[VersionLimit]] = {}
    for row in rows:
        limit = VersionLimit(
            op=row["op"],
            max_version=int(row["max_version"]),
            until=_version(row["until"], row["op"]) or (),
            source=row.get("source", ""),
            confidence=row.get("confidence", "unconfirmed"),
        )
        by_op.setdefault(limit.op, []).append(limit)
    return MappingProxyType({op: tuple(v) for op, v in by_op.items()})


@cache
def knowledge() -> Knowledge:
    """The whole knowledge base (read once per process)."""
    compilers = load_toml("compilers.toml")
    ops_data = load_toml("ops.toml")
    activations = load_toml("activations.toml")
    catalogue = load_toml("catalogue.toml")

    releases = tuple(
        sorted(
            (
                Release(
                    version=_version(r["version"], "release") or (),
                    name=r["version"],
                    date=r.get("date", ""),
                    runtime=int(r["runtime"]),
                    parameter_cache_bytes=int(r["parameter_cache_bytes"]),
                    channel_padding=_optional_int(r.get("channel_padding")),
                    bytes_per_channel=_optional_int(r.get("bytes_per_channel")),
                )
                for r in compilers["release"]
            ),
            key=lambda r: r.version,
        )
    )
    limits = MappingProxyType(dict(ops_data.get("limits", {})))
    ops = {
        name: OpSpec(
            name=name,
            since=_version(row["since"], name) or (),
            runtime=int(row.get("runtime", 10)),
            source=row.get("source", ""),
            confidence=row.get("confidence", "confirmed"),
            constraints=tuple(_constraint(name, c, limits) for c in row.get("constraint", ())),
            flags=MappingProxyType({k: v for k, v in row.items() if k not in _OP_META}),
        )
        for name, row in ops_data["ops"].items()
    }
    return Knowledge(
        releases=releases,
        ops=MappingProxyType(ops),
        common_constraints=tuple(
            _constraint("*", c, limits) for c in ops_data.get("common", {}).get("constraint", ())
        ),
        unsupported_advice=MappingProxyType(dict(ops_data.get("unsupported", {}))),
        index_inputs=MappingProxyType(
            {op: tuple(int(i) for i in at) for op, at in ops_data.get("index_inputs", {}).items()}
        ),
        version_limits=_limits(compilers.get("version_limit", [])),
        parse_limits=_limits(compilers.get("parse_limit", [])),
        limits=limits,
        memory=MappingProxyType(dict(compilers.get("memory", {}))),
        activations=MappingProxyType(
            {k: MappingProxyType(v) for k, v in activations["activation"].items()}
        ),
        rule_texts=MappingProxyType({k: MappingProxyType(v) for k, v in catalogue["rule"].items()}),
        families=MappingProxyType(dict(catalogue["families"])),
        verdict=MappingProxyType(dict(catalogue["verdict"])),
        foreign_accelerators=tuple(
            MappingProxyType(dict(row)) for row in ops_data.get("foreign_accelerator", ())
        ),
    )
