"""The rules: one small check function per rule, grouped in one module per family.

- Q quantization (`quantization.py`), S shapes (`shapes.py`), O ops (`ops.py`), G graph
  (`graph.py`), I model inputs/outputs (`io.py`), A activations (`activations.py`), M memory
  (`memory.py`) check a source model; C (`compiled.py`) checks compiled models and compiler runs.
- `all_rules()` is the registry every consumer reads (`coralcheck rule CODE`, `coralcheck rules`,
  docs/rules.md, SARIF rule metadata, `select`/`ignore` by code prefix). A rule's code, name,
  severity, title, fix and example come from rules/catalogue.toml; its explanation is the check
  function's docstring.
- `run_checks(ctx)` runs the source-model rules on an analysis (`CheckContext`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

from coralcheck.report import Finding, Memory, Severity
from coralcheck.wording import op_label

if TYPE_CHECKING:
    from coralcheck.analyze.placement import Prediction
    from coralcheck.edgetpu.constraints import OpView
    from coralcheck.edgetpu.knowledge import Target
    from coralcheck.model.graph import Model, Subgraph, Tensor
    from coralcheck.options import Options


class Rule(NamedTuple):
    """One rule of the registry."""

    code: str  # stable, e.g. "Q001"
    name: str  # kebab-case, e.g. "not-integer-quantized"
    family: str  # "quantization", "shapes", ... ("compiled" for the C family)
    severity: Severity
    title: str
    explanation: str  # the check function's docstring: why it matters, for a user
    fix: str
    example: str = ""


class CheckContext:
    """What the source-model checks look at: the model, the target and the prediction."""

    __slots__ = ("_integer_model", "memory", "model", "options", "prediction", "target")

    def __init__(
        self,
        model: Model,
        options: Options,
        target: Target,
        prediction: Prediction,
        memory: Memory,
    ) -> None:
        self.model = model
        self.options = options
        self.target = target
        self.prediction = prediction
        self.memory = memory
        self._integer_model: bool | None = None  # computed when a check first asks

    @property
    def sg(self) -> Subgraph:
        return self.model.main

    @property
    def views(self) -> list[OpView]:
        """Every op of the main subgraph with its tensors (shared with the prediction)."""
        return self.prediction.views

    @property
    def integer_model(self) -> bool:
        """Some op computes on 8-bit tensors (the model was integer-quantized, fully or partly)."""
        if self._integer_model is None:
            self._integer_model = any(
                t.dtype in ("INT8", "UINT8") for v in self.views for t in v.activations
            )
        return self._integer_model

    def consumers(self, tensor: Tensor) -> list[int]:
        return list(self.sg.consumers[tensor.index])

    def producer(self, tensor: Tensor) -> int | None:
        return self.sg.producers[tensor.index]

    def label(self, index: int) -> str:
        """Op `index` of the main subgraph in a message: `CONV_2D (op 3)`."""
        return op_label(index, self.sg.operators[index].opcode)


Check = Callable[[CheckContext], Iterable[Finding]]

# The source-model families, in report order; each module registers its checks on import.
FAMILY_MODULES = ("quantization", "shapes", "ops", "graph", "io", "activations", "memory")
_CHECKS: dict[str, Check] = {}


def rule(code: str) -> Callable[[Check], Check]:
    """Register a check function under a rule code of rules/catalogue.toml."""

    def register(fn: Check) -> Check:
        if code in _CHECKS:
            raise ValueError(f"rule {code} registered twice")
        _CHECKS[code] = fn
        return fn

    return register


@cache
def _load_families() -> dict[str, Check]:
    for module in FAMILY_MODULES:
        importlib.import_module(f"coralcheck.checks.{module}")
    return dict(_CHECKS)


def _paragraphs(doc: str) -> str:
    """A docstring as text: paragraphs kept, lines within a paragraph joined."""
    import inspect  # only for the registry's explanations (~4 ms: ast, dis, tokenize)

    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n"))


@cache
def rule_of(code: str) -> Rule:
    """The registry entry of a source-model rule."""
    from coralcheck.edgetpu.knowledge import knowledge

    severity, fix = _severity_and_fix(code)
    kb = knowledge()
    text = kb.rule_texts[code]
    return Rule(
        code=code,
        name=text["name"],
        family=kb.families[code[0]],
        severity=severity,
        title=text["title"],
        explanation=_paragraphs(_load_families()[code].__doc__ or ""),
        fix=fix,
        example=text.get("example", ""),
    )


def source_rules() -> list[Rule]:
    """The rules of the source-model families (Q, S, O, G, I, A, M), by code."""
    return [rule_of(code) for code in sorted(_load_families())]


def all_rules() -> list[Rule]:
    """Every rule coralcheck can report, by code (source-model families and the C family)."""
    from coralcheck.checks import compiled

    return sorted([*source_rules(), *compiled.rules()], key=lambda r: r.code)


def finding(
    code: str,
    message: str,
    *,
    op: int | None = None,
    tensor: str | None = None,
    fix: str | None = None,
    opcode: str | None = None,
) -> Finding:
    """A finding of rule `code`, with the rule's severity and (unless given) its fix."""
    severity, default_fix = _severity_and_fix(code)
    return Finding(
        code=code,
        severity=severity,
        message=message,
        op=op,
        tensor=tensor,
        fix=default_fix if fix is None else fix,
        opcode=opcode,
    )


@cache
def _severity_and_fix(code: str) -> tuple[Severity, str]:
    """What `finding` takes from a source-model rule: as `rule_of(code)` has them, without
    building the explanation (which needs `inspect`)."""
    if code not in _load_families():
        raise KeyError(code)
    from coralcheck.edgetpu.knowledge import knowledge

    text = knowledge().rule_texts[code]
    return text["severity"], text.get("fix", "")  # type: ignore[return-value]


def run_checks(ctx: CheckContext) -> list[Finding]:
    """Every source-model rule's findings, family by family, each in op order."""
    found: list[Finding] = []
    for _code, check in sorted(_load_families().items()):
        found.extend(check(ctx))
    return found


def chain(ctx: CheckContext, indices: Iterable[int], limit: int = 6, sep: str = " -> ") -> str:
    """Ops as `DEQUANTIZE (op 2) -> WHILE (op 3) -> QUANTIZE (op 4)`, shortened after `limit`;
    `sep=", "` lists ops that do not form a data flow."""
    ordered = sorted(set(indices))
    shown = sep.join(ctx.label(i) for i in ordered[:limit])
    return shown + (f"{sep}... ({len(ordered) - limit} more)" if len(ordered) > limit else "")


def regions(
    ctx: CheckContext, members: set[int], via: Callable[[Tensor], bool]
) -> Iterator[list[int]]:
    """Connected groups of the ops in `members`, joined through tensors for which `via` holds.

    Linear in the ops and their tensors: each tensor's producer and consumers are visited once,
    however many ops read it (one tensor read by 10,000 ops, or 60 times by the same op)."""
    sg = ctx.sg
    seen: set[int] = set()
    tensors_seen: set[int] = set()
    for start in sorted(members):
        if start in seen:
            continue
        group, todo = [], [start]
        seen.add(start)
        while todo:
            i = todo.pop()
            group.append(i)
            op = sg.operators[i]
            for t in (*op.inputs, *op.outputs):
                if t < 0 or t in tensors_seen:
                    continue
                tensors_seen.add(t)
                if not via(sg.tensors[t]):
                    continue
                producer = sg.producers[t]
                for j in ([producer] if producer is not None else []) + list(sg.consumers[t]):
                    if j in members and j not in seen:
                        seen.add(j)
                        todo.append(j)
        yield sorted(group)


__all__ = [
    "FAMILY_MODULES",
    "CheckContext",
    "Rule",
    "all_rules",
    "chain",
    "finding",
    "regions",
    "rule",
    "rule_of",
    "run_checks",
    "source_rules",
]
