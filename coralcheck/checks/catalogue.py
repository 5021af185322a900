"""Every rule, documented: `all_rules()` for `coralcheck rule`, `coralcheck rules`, docs/rules.md
and SARIF's rule descriptors.

Importing this module imports every rule module (each registers its functions with `@rule`):
the source-model families with the `coralcheck.checks` package, and the C family. The lint itself
imports only the rules it runs.
"""

from __future__ import annotations

from coralcheck import registry

# Imported for the rules they register.
from coralcheck.checks import compiled, compiler, pair  # noqa: F401
from coralcheck.registry import Rule


def all_rules() -> list[Rule]:
    """Every rule coralcheck can report, by code: each catalogue entry with its function."""
    return [registry.describe(code) for code in registry.codes()]


def rules_by_code() -> dict[str, Rule]:
    """`all_rules()` by code."""
    return {rule.code: rule for rule in all_rules()}
