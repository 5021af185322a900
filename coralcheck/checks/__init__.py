"""The rules: one documented function per rule code, grouped in one module per family.

- Source models: Q quantization (`quantization.py`), S shapes (`shapes.py`), O ops (`ops.py`),
  G graph (`graph.py`), I model inputs/outputs (`io.py`), A activations (`activations.py`),
  M memory (`memory.py`). `run_checks(ctx)` runs them on a `CheckContext` (`context.py`).
- The C family: a compiled model on its own (`compiled.py`, C001–C011), a (source, compiled)
  pair (`pair.py`, C020–C024), the compiler's runs and logs (`compiler.py`, C030–C041, C050);
  the analysis that computes what they report runs them.

Every rule function is registered with `@rule("CODE")` (coralcheck.registry) and has its
`[rule.CODE]` entry in rules/catalogue.toml; `coralcheck.checks.catalogue.all_rules()` documents
them all.
"""

from __future__ import annotations

from coralcheck import registry
from coralcheck.checks import activations, graph, io, memory, ops, quantization, shapes
from coralcheck.checks.context import CheckContext
from coralcheck.report import Finding

# The families of the source-model rules (code letters), each module registering its rules.
SOURCE_FAMILIES = {
    "Q": quantization,
    "S": shapes,
    "O": ops,
    "G": graph,
    "I": io,
    "A": activations,
    "M": memory,
}


def run_checks(ctx: CheckContext) -> list[Finding]:
    """Every source-model rule's findings, family by family, each in op order."""
    found: list[Finding] = []
    for code, check in sorted(registry.functions().items()):
        if code[0] in SOURCE_FAMILIES:
            found.extend(check(ctx))
    return found


__all__ = ["SOURCE_FAMILIES", "CheckContext", "run_checks"]
