"""The settings' keys (`[tool.coralcheck]`, coralcheck.toml, the matching CLI flags) and how
each value is checked: `parse_table` turns a table into Config fields, or raises a UsageError
naming the key and the valid choices (an unknown key suggests the closest one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from coralcheck import registry
from coralcheck.edgetpu.devices import CLOCKS, latency_model
from coralcheck.errors import UsageError

FAIL_ON = ("error", "warning", "info", "never")
SEVERITIES = ("error", "warning", "info")
SELECT_ALL = "ALL"


def _check_selectors(codes: Iterable[str], where: str, key: str, valid: list[str]) -> None:
    for code in codes:
        if code == SELECT_ALL or any(v.startswith(code) for v in valid):
            continue
        raise UsageError(
            where,
            f"unknown rule code {code!r} in {key} "
            f"(valid: {SELECT_ALL} or a prefix of {', '.join(valid) or 'no registered rule'})",
        )


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
    names = list(latency_model().devices)
    if not isinstance(value, str) or value.strip().lower() not in names:
        raise UsageError(where, f"unknown {key} {value!r} (valid: {', '.join(names)})")
    return value.strip().lower()


def parse_clock(value: Any, where: str, key: str = "clock", valid: Any = None) -> str:
    """The Edge TPU clock: "max" or "std"."""
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
    import difflib  # only for this error message (~1 ms)

    valid = f"valid: {', '.join(sorted(KEYS))}"
    if key == "tool":
        return (
            "in coralcheck.toml: its settings are top-level keys, [tool.coralcheck] is for "
            f"pyproject.toml ({valid})"
        )
    close = difflib.get_close_matches(str(key).lower(), list(KEYS), n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"in the coralcheck settings ({valid}){hint}"
