"""Settings: `[tool.coralcheck]` in pyproject.toml or a `coralcheck.toml`, merged with the CLI,
and which findings they keep for each model (`apply`: select, ignore, severity overrides). Each
key's value is checked by coralcheck.config_keys; the gates are coralcheck.gates, pass or fail
coralcheck.outcome.

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

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from coralcheck.config_keys import SELECT_ALL, parse_table
from coralcheck.errors import UsageError
from coralcheck.fileio import read_regular
from coralcheck.options import Options
from coralcheck.report import ModelReport

CONFIG_FILE = "coralcheck.toml"
PYPROJECT = "pyproject.toml"


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
