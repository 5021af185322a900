"""The rule registry: every rule coralcheck reports is one documented function plus one entry.

- `@rule("S001")` registers the function that reports rule S001; its docstring is the rule's
  explanation (what `coralcheck rule S001` prints under "Why").
- `[rule.S001]` in rules/catalogue.toml gives its name, severity, title, fix, example and the
  tests that check it (`tests`), and for a compiler-failure rule the failure kind it reports
  (`failure_kind`, see coralcheck.compiler.log).

Both are required: tests/test_rule_docs.py fails on a decorator without an entry or an entry
without a decorator. `finding(code, message)` makes a finding with the entry's severity and fix;
`describe(code)` is the whole documentation of a registered rule (`coralcheck.checks.catalogue`
imports every rule module and describes them all). The settings read the codes from the
catalogue alone (`codes()`): validating `select = ["Q"]` imports no rule.
"""

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, NamedTuple, TypeVar

from coralcheck.edgetpu.knowledge import knowledge
from coralcheck.report import Finding, Severity

F = TypeVar("F", bound=Callable[..., Any])


class Rule(NamedTuple):
    """The documentation of one rule (or of a gate, see coralcheck.gates)."""

    code: str  # stable, e.g. "Q001"
    name: str  # kebab-case, e.g. "not-integer-quantized"
    family: str  # "quantization", "shapes", ... ("compiled" for the C family)
    severity: Severity
    title: str
    explanation: str  # the rule function's docstring: why it matters, for a user
    fix: str
    example: str = ""
    source: str = ""  # where it is implemented: "coralcheck/checks/shapes.py::dynamic_shape"
    tests: tuple[str, ...] = ()  # the tests that check it: "tests/test_checks.py::test_x"


_FUNCTIONS: dict[str, Callable[..., Any]] = {}
# Rules whose explanation has `{name}` fields, filled from the knowledge data when documented.
_DOC_ARGS: dict[str, Callable[[], Mapping[str, str]]] = {}


def rule(code: str, *, doc_args: Callable[[], Mapping[str, str]] | None = None) -> Callable[[F], F]:
    """Register the function that reports rule `code` (an entry of rules/catalogue.toml).

    `doc_args`, when given, returns the values of the `{name}` fields in the function's
    docstring (as ethos-u-vela formats its limits into its constraint texts): the explanation
    then lists what the data says, e.g. O003 the size limits of rules/ops.toml."""

    def register(fn: F) -> F:
        if code in _FUNCTIONS:
            raise ValueError(f"rule {code} registered twice")
        _FUNCTIONS[code] = fn
        if doc_args is not None:
            _DOC_ARGS[code] = doc_args
        return fn

    return register


def functions() -> Mapping[str, Callable[..., Any]]:
    """The rule functions registered so far (their modules imported), by code."""
    return _FUNCTIONS


def codes() -> list[str]:
    """Every rule code of the catalogue, sorted."""
    return sorted(knowledge().rule_texts)


def entry(code: str) -> Mapping[str, Any]:
    """The catalogue entry of `code` ([rule.CODE]); KeyError for an unknown code."""
    return knowledge().rule_texts[code]


def title(code: str) -> str:
    """The rule's title ("" for a code the catalogue does not have)."""
    text = knowledge().rule_texts.get(code)
    return str(text["title"]) if text is not None else ""


@cache
def severity_and_fix(code: str) -> tuple[Severity, str]:
    """What `finding` takes from the catalogue: the rule's severity and fix."""
    text = entry(code)
    return text["severity"], text.get("fix", "")  # type: ignore[return-value]


def finding(
    code: str,
    message: str,
    *,
    op: int | None = None,
    tensor: str | None = None,
    fix: str | None = None,
    opcode: str | None = None,
    subgraph: int = 0,
) -> Finding:
    """A finding of rule `code`, with the rule's severity and (unless given) its fix."""
    severity, default_fix = severity_and_fix(code)
    return Finding(
        code=code,
        severity=severity,
        message=message,
        op=op,
        tensor=tensor,
        fix=default_fix if fix is None else fix,
        subgraph=subgraph,
        opcode=opcode,
    )


@cache
def failure_code(kind: str) -> str:
    """The rule code of a compiler failure kind (catalogue `failure_kind`); an unknown kind is
    the catch-all compiler failure, "other"."""
    by_kind = {
        text["failure_kind"]: code
        for code, text in knowledge().rule_texts.items()
        if "failure_kind" in text
    }
    return by_kind.get(kind, by_kind["other"])


def paragraphs(doc: str) -> str:
    """A docstring as text: paragraphs kept, the lines of a paragraph joined."""
    found: list[str] = []
    lines: list[str] = []
    for line in doc.splitlines():
        if line.strip():
            lines.append(line)
        elif lines:
            found.append(" ".join(" ".join(lines).split()))
            lines = []
    if lines:
        found.append(" ".join(" ".join(lines).split()))
    return "\n\n".join(found)


def describe(code: str) -> Rule:
    """The documentation of a registered rule: its catalogue entry and its function's docstring
    (`{name}` fields filled by its `doc_args`), where it is implemented and tested."""
    fn = _FUNCTIONS[code]
    text = entry(code)
    explanation = paragraphs(fn.__doc__ or "")
    if code in _DOC_ARGS:
        explanation = explanation.format(**_DOC_ARGS[code]())
    module = fn.__module__.replace(".", "/") + ".py"
    return Rule(
        code=code,
        name=text["name"],
        family=knowledge().families[code[0]],
        severity=text["severity"],
        title=text["title"],
        explanation=explanation,
        fix=text.get("fix", ""),
        example=text.get("example", ""),
        source=f"{module}::{fn.__name__}",
        tests=tuple(text.get("tests", ())),
    )
