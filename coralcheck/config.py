"""Settings: `[tool.coralcheck]` in pyproject.toml or a `coralcheck.toml`, merged with the CLI,
and what they decide for each model: which findings count, which gates pass, pass or fail.

The configuration file is the nearest one above the model (`coralcheck.toml` wins over a
`pyproject.toml` with a `[tool.coralcheck]` table in the same directory), or `--config FILE`.
A flag given on the command line replaces the same key from the file. Unknown keys, unknown
rule codes and bad values are usage errors (exit 2) that name the valid choices.

    [tool.coralcheck]
    select = ["ALL"]                  # rule codes or prefixes to report (ruff-style)
    ignore = ["I002"]                 # codes or prefixes not to report
    fail-on = "warning"               # error | warning | info | never
    compiler-version = "16.0"         # the edgetpu_compiler the prediction is for
    runtime-version = 14              # the Edge TPU runtime on the device
    enable-multiple-subgraphs = false # predict for edgetpu_compiler -a (several segments)
    max-cpu-ops = 0                   # gate: at most N ops on the CPU
    require-full-mapping = true       # gate: every op on the Edge TPU
    min-tpu-mac-share = "90%"         # gate: share of multiply-accumulates on the Edge TPU
    device = "usb3"                   # the latency estimate's device (usb3, usb2, rpi4, rpi3,
                                      # devboard, pcie)
    clock = "max"                     # Edge TPU clock: max (libedgetpu1-max) or std
    max-latency-ms = 20               # gate: estimated ms per inference on the device

    [tool.coralcheck.severity]        # severity overrides, by code or prefix
    A001 = "warning"

    [tool.coralcheck.per-file-ignores] # glob (relative to this file) -> codes or prefixes
    "legacy/*.tflite" = ["A"]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from coralcheck import registry
from coralcheck.errors import UsageError
from coralcheck.options import Options
from coralcheck.report import SEVERITY_RANK, Finding, ModelReport

CONFIG_FILE = "coralcheck.toml"
PYPROJECT = "pyproject.toml"
FAIL_ON = ("error", "warning", "info", "never")
SEVERITIES = ("error", "warning", "info")
SELECT_ALL = "ALL"


# The read-only empty table the settings' mappings default to.
_EMPTY_TABLE: Mapping[str, Any] = MappingProxyType({})


class Config(NamedTuple):
    """The merged settings for one model (defaults <- config file <- command line)."""

    select: tuple[str, ...] = (SELECT_ALL,)
    ignore: tuple[str, ...] = ()
    severity: Mapping[str, str] = _EMPTY_TABLE
    per_file_ignores: Mapping[str, tuple[str, ...]] = _EMPTY_TABLE
    fail_on: str = "error"
    compiler_version: str | None = None
    runtime_version: int | None = None
    enable_multiple_subgraphs: bool | None = None
    max_cpu_ops: int | None = None
    require_full_mapping: bool = False
    min_tpu_mac_share: float | None = None
    device: str | None = None
    clock: str | None = None
    max_latency_ms: float | None = None
    # The file these settings came from; per-file-ignores globs are relative to its directory.
    source: str | None = None

    def options(self, base: Options) -> Options:
        """The analysis options: `base` (from the CLI) with this config's target and rules."""
        changes: dict[str, Any] = {
            "select": () if self.select == (SELECT_ALL,) else self.select,
            "ignore": self.ignore,
            "severity": dict(self.severity),
        }
        if self.compiler_version is not None:
            changes["compiler_version"] = self.compiler_version
        if self.runtime_version is not None:
            changes["runtime_version"] = self.runtime_version
        if self.enable_multiple_subgraphs is not None:
            changes["enable_multiple_subgraphs"] = self.enable_multiple_subgraphs
        if self.device is not None:
            changes["device"] = self.device
        if self.clock is not None:
            changes["clock"] = self.clock
        return base._replace(**changes)

    @property
    def gates(self) -> bool:
        """Whether any gate is set."""
        return (
            self.max_cpu_ops is not None
            or self.require_full_mapping
            or self.min_tpu_mac_share is not None
            or self.max_latency_ms is not None
        )


def _check_selectors(codes: Iterable[str], where: str, key: str, valid: list[str]) -> None:
    for code in codes:
        if code == SELECT_ALL or any(v.startswith(code) for v in valid):
            continue
        raise UsageError(
            where,
            f"unknown rule code {code!r} in {key} "
            f"(valid: {SELECT_ALL} or a prefix of {', '.join(valid) or 'no registered rule'})",
        )


# --- reading and validating ----------------------------------------------------------------------


# Configuration files are small; a larger one is not read (nor is a pipe or a device).
MAX_CONFIG_BYTES = 4 << 20


def _toml_load(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; anything wrong with it is one line (exit 2): unreadable, too
    large, not UTF-8, not TOML, nested too deep for the parser, integers too long to convert."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    from coralcheck.fileio import read_regular

    try:
        data = read_regular(str(path), MAX_CONFIG_BYTES)
    except OSError as e:
        raise UsageError(str(path), f"cannot read config: {e.strerror or e}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise UsageError(str(path), f"config file larger than {MAX_CONFIG_BYTES >> 20} MiB")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UsageError(str(path), f"invalid TOML: not UTF-8 text (byte {e.start})") from None
    except RecursionError:
        raise UsageError(str(path), "invalid TOML: arrays or tables nested too deep") from None
    except ValueError as e:  # TOMLDecodeError, or int()'s digit limit
        raise UsageError(str(path), f"invalid TOML: {e}") from None


def _section(path: Path) -> dict[str, Any] | None:
    """The coralcheck table of a config file, or None when a pyproject.toml has none (with a
    warning when it has a table whose name is close to [tool.coralcheck]: a misspelling)."""
    data = _toml_load(path)
    if path.name != PYPROJECT:
        return data
    tools = data.get("tool")  # not a table: some other tool's business (no coralcheck table)
    section = tools.get("coralcheck") if isinstance(tools, dict) else None
    if section is not None and not isinstance(section, dict):
        raise UsageError(str(path), "[tool.coralcheck] must be a table")
    if section is None and isinstance(tools, dict):
        _warn_misspelled(path, tools)
    return section


_WARNED: set[tuple[str, str]] = set()  # (file, table) already warned about in this run


def _warn_misspelled(path: Path, tools: Mapping[str, Any]) -> None:
    """One line on stderr for a [tool.X] that looks like a misspelled [tool.coralcheck]."""
    import difflib

    names = {str(name).lower(): str(name) for name in tools}
    for close in difflib.get_close_matches("coralcheck", names, n=1, cutoff=0.75):
        table = f"[tool.{names[close]}]"
        if (str(path), table) not in _WARNED:
            _WARNED.add((str(path), table))
            print(
                f"coralcheck: warning: {path}: {table} is not read; did you mean "
                "[tool.coralcheck]?",
                file=sys.stderr,
            )


def find_config(model_path: str | os.PathLike[str]) -> Path | None:
    """The nearest config file above the model: coralcheck.toml, else a pyproject.toml that
    has a [tool.coralcheck] table."""
    directory = Path(os.path.abspath(model_path)).parent
    for d in (directory, *directory.parents):
        if (d / CONFIG_FILE).is_file():
            return d / CONFIG_FILE
        pyproject = d / PYPROJECT
        if pyproject.is_file() and _section(pyproject) is not None:
            return pyproject
    return None


def parse_codes(value: Any, where: str, key: str, valid: list[str]) -> tuple[str, ...]:
    """A list of rule codes or prefixes (a single string is a list of one), all known."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(where, f"{key} must be a list of rule codes")
    # (each once, in order: a list of 50,000 repeated codes checks as fast as its few codes)
    codes = tuple(dict.fromkeys(v.strip().upper() for v in value if v.strip()))
    _check_selectors(codes, where, key, valid)
    return codes


def parse_select(value: Any, where: str, key: str, valid: list[str]) -> tuple[str, ...]:
    """`select`: like `parse_codes`, but never empty. An empty selection would report nothing
    and pass every model: an empty CI variable (`--select "$CODES"`) must not turn the gate off
    unnoticed."""
    codes = parse_codes(value, where, key, valid)
    if not codes:
        raise UsageError(
            where,
            f"{key} is empty, which would report no finding at all; name rule codes or "
            f"prefixes, or {SELECT_ALL} (leaving {key} out selects every rule)",
        )
    return codes


def _severities(value: Any, where: str, key: str, valid: list[str]) -> dict[str, str]:
    if not isinstance(value, dict):
        raise UsageError(where, f"{key} must be a table of CODE = level")
    overrides = {}
    for code, level in value.items():
        if level not in SEVERITIES:
            raise UsageError(
                where, f"{key} of {code} must be one of {', '.join(SEVERITIES)}, not {level!r}"
            )
        overrides.update(dict.fromkeys(parse_codes(code, where, key, valid), level))
    return overrides


def _per_file_ignores(value: Any, where: str, key: str, valid: list[str]) -> dict:
    if not isinstance(value, dict):
        raise UsageError(where, f"{key} must be a table of glob = [codes]")
    return {pattern: parse_codes(codes, where, key, valid) for pattern, codes in value.items()}


def parse_fail_on(value: Any, where: str, key: str = "fail-on", valid: Any = None) -> str:
    if not isinstance(value, str) or value.lower() not in FAIL_ON:
        raise UsageError(where, f"{key} must be one of {', '.join(FAIL_ON)}, not {value!r}")
    return value.lower()


def parse_share(value: Any, where: str, key: str = "min-tpu-mac-share", valid: Any = None) -> float:
    """A fraction from 0 to 1, or a percentage: 0.9, "90%" and 90 all mean 90 %."""
    text = str(value).strip()
    try:
        share = float(text.removesuffix("%"))
    except ValueError:
        share = -1.0
    if text.endswith("%") or share > 1:
        share /= 100
    if isinstance(value, bool) or not 0 <= share <= 1:
        raise UsageError(
            where, f"{key} must be 0-1 or a percentage (like 0.9 or 90%), not {value!r}"
        )
    return share


def parse_milliseconds(
    value: Any, where: str, key: str = "max-latency-ms", valid: Any = None
) -> float:
    """A positive number of milliseconds (12, 12.5 or "12ms")."""
    text = str(value).strip().lower().removesuffix("ms").strip()
    try:
        ms = float(text)
    except ValueError:
        ms = -1.0
    if isinstance(value, bool) or not (ms > 0 and ms < float("inf")):
        raise UsageError(where, f"{key} must be a positive number of milliseconds, not {value!r}")
    return ms


def parse_device(value: Any, where: str, key: str = "device", valid: Any = None) -> str:
    """A device of rules/devices.toml; an unknown one names the valid ones."""
    from coralcheck.analyze.latency import device_names

    names = device_names()
    if not isinstance(value, str) or value.strip().lower() not in names:
        raise UsageError(where, f"unknown {key} {value!r} (valid: {', '.join(names)})")
    return value.strip().lower()


def parse_clock(value: Any, where: str, key: str = "clock", valid: Any = None) -> str:
    """The Edge TPU clock: "max" or "std"."""
    from coralcheck.analyze.latency import CLOCKS

    if not isinstance(value, str) or value.strip().lower() not in CLOCKS:
        raise UsageError(where, f"{key} must be one of {', '.join(CLOCKS)}, not {value!r}")
    return value.strip().lower()


def _version(value: Any, where: str, key: str, valid: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(where, f"{key} must be a version string like '16.0'")
    return str(value)


def _count(value: Any, where: str, key: str, valid: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(where, f"{key} must be a whole number >= 0, not {value!r}")
    return value


def _flag(value: Any, where: str, key: str, valid: Any) -> bool:
    if not isinstance(value, bool):
        raise UsageError(where, f"{key} must be true or false, not {value!r}")
    return value


# TOML key -> (Config field, parser(value, where, key, valid codes)). Keys are kebab-case, as in
# ruff.
KEYS: dict[str, tuple[str, Callable[[Any, str, str, list[str]], Any]]] = {
    "select": ("select", parse_select),
    "ignore": ("ignore", parse_codes),
    "severity": ("severity", _severities),
    "per-file-ignores": ("per_file_ignores", _per_file_ignores),
    "fail-on": ("fail_on", parse_fail_on),
    "compiler-version": ("compiler_version", _version),
    "runtime-version": ("runtime_version", _count),
    "enable-multiple-subgraphs": ("enable_multiple_subgraphs", _flag),
    "max-cpu-ops": ("max_cpu_ops", _count),
    "require-full-mapping": ("require_full_mapping", _flag),
    "min-tpu-mac-share": ("min_tpu_mac_share", parse_share),
    "device": ("device", parse_device),
    "clock": ("clock", parse_clock),
    "max-latency-ms": ("max_latency_ms", parse_milliseconds),
}


def parse_table(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate a coralcheck table and turn it into Config field values."""
    valid = registry.codes()
    fields: dict[str, Any] = {}
    for key, value in table.items():
        if key not in KEYS:
            raise UsageError(where, f"unknown {_key_kind(key, value)} {_suggestion(key)}")
        name, parse = KEYS[key]
        fields[name] = parse(value, where, key, valid)
    return fields


def _key_kind(key: str, value: Any) -> str:
    """`key 'x'`, or `table [x]` for a table (`[tool]` in a coralcheck.toml)."""
    return f"table [{key}]" if isinstance(value, dict) else f"key {key!r}"


def _suggestion(key: str) -> str:
    """The end of an unknown-key message: what to write instead, and the valid keys."""
    import difflib

    valid = f"valid: {', '.join(sorted(KEYS))}"
    if key == "tool":
        return (
            "in coralcheck.toml: its settings are top-level keys, [tool.coralcheck] is for "
            f"pyproject.toml ({valid})"
        )
    close = difflib.get_close_matches(str(key).lower(), list(KEYS), n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"in the coralcheck settings ({valid}){hint}"


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read one config file (coralcheck.toml or pyproject.toml)."""
    path = Path(path)
    if not path.is_file():
        what = "not a regular file" if path.exists() else "no such config file"
        raise UsageError(str(path), what)
    section = _section(path)
    if section is None:
        raise UsageError(str(path), "no [tool.coralcheck] table")
    return Config(**parse_table(section, str(path)), source=str(path))


def resolve(
    model_path: str,
    cli: Mapping[str, Any],
    *,
    config_file: str | None = None,
    isolated: bool = False,
    cache: dict[Any, Any] | None = None,
) -> Config:
    """The settings for one model: its config file (or `config_file`), then the CLI values
    (`cli`: Config field -> value; None means "not given"). `cache` (one per run) keeps each
    directory's lookup and each file's settings, for runs over many models."""
    cache = {} if cache is None else cache
    if isolated:
        path = None
    elif config_file:
        path = Path(config_file)
    else:
        directory = ("directory", os.path.dirname(os.path.abspath(model_path)))
        if directory not in cache:
            cache[directory] = find_config(model_path)
        path = cache[directory]
    if path not in cache:
        cache[path] = load_config(path) if path else Config()
    given = {k: v for k, v in cli.items() if v is not None}
    return cache[path]._replace(**given)


# --- what the settings decide --------------------------------------------------------------------


def _longest_match(code: str, selectors: set[str] | frozenset[str]) -> int:
    """Length of the longest selector that is a prefix of `code` (-1: none; ALL counts as 0).
    Looks up the code's own prefixes (a few), whatever the number of selectors."""
    for n in range(len(code), 0, -1):
        if code[:n] in selectors:
            return n
    return 0 if SELECT_ALL in selectors else -1


def is_selected(code: str, select: Iterable[str], ignore: Iterable[str]) -> bool:
    """Ruff's rule: the most specific matching selector wins; on a tie, ignore wins."""
    select = select if isinstance(select, set | frozenset) else frozenset(select)
    ignore = ignore if isinstance(ignore, set | frozenset) else frozenset(ignore)
    chosen = _longest_match(code, select)
    return chosen >= 0 and chosen > _longest_match(code, ignore)


def _model_relpath(model_path: str, config: Config) -> str:
    root = Path(config.source).parent if config.source else Path.cwd()
    return Path(os.path.relpath(os.path.abspath(model_path), os.path.abspath(root))).as_posix()


def file_ignores(model_path: str, config: Config) -> tuple[str, ...]:
    """The codes per-file-ignores switch off for this model. A glob matches the path relative to
    the config file's directory (`*` also crosses `/`), or the file name alone."""
    if not config.per_file_ignores:
        return ()
    import fnmatch  # only for settings with per-file-ignores

    relpath = _model_relpath(model_path, config)
    name = relpath.rsplit("/", 1)[-1]
    codes: list[str] = []
    for pattern, ignored in config.per_file_ignores.items():
        if fnmatch.fnmatchcase(relpath, pattern) or fnmatch.fnmatchcase(name, pattern):
            codes.extend(ignored)
    return tuple(codes)


def effective_severity(code: str, default: str, overrides: Mapping[str, str]) -> str:
    best, level = -1, default
    for selector, value in overrides.items():
        if code.startswith(selector) and len(selector) > best:
            best, level = len(selector), value
    return level


def apply(report: ModelReport, config: Config) -> ModelReport:
    """The report as the settings want it: unselected or ignored findings dropped, severity
    overrides applied. The input is not changed."""
    select = frozenset(config.select)
    ignore = frozenset(config.ignore + file_ignores(report.path, config))
    findings = []
    for f in report.findings:
        if is_selected(f.code, select, ignore):
            severity = effective_severity(f.code, f.severity, config.severity)
            findings.append(f if severity == f.severity else f._replace(severity=severity))
    return report._replace(findings=findings)


class GateResult(NamedTuple):
    """One pass/fail check on the whole model (a gate, or a comparison with the baseline)."""

    name: str  # "max-cpu-ops", "require-full-mapping", "min-tpu-mac-share", "max-latency-ms",
    # "baseline"
    passed: bool
    message: str


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


def _ops(n: int) -> str:
    return f"{n} op" if n == 1 else f"{n} ops"


def check_gates(report: ModelReport, config: Config) -> list[GateResult]:
    """The gates the settings ask for, each passed or failed with the model's numbers."""
    s = report.summary
    results = []
    if config.max_cpu_ops is not None:
        results.append(
            GateResult(
                "max-cpu-ops",
                s.ops_cpu <= config.max_cpu_ops,
                f"{_ops(s.ops_cpu)} on the CPU (at most {config.max_cpu_ops} allowed)",
            )
        )
    if config.require_full_mapping:
        results.append(
            GateResult(
                "require-full-mapping",
                s.ops_cpu == 0 and s.ops_tpu == s.ops_total,
                f"{s.ops_tpu} of {_ops(s.ops_total)} on the Edge TPU (all required)",
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
