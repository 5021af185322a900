"""Layers point one way: each module of coralcheck imports only modules of its own layer or of
the layers below, and no module imports itself back through others. Every import counts: at
module level, inside a function (a lazy import), or under `if TYPE_CHECKING:`.

The layers, bottom to top (README "Architecture"):
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from conftest import REPO

# (layer, the modules in it: a name covers its submodules), bottom first.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "base",
        (
            "coralcheck._version",
            "coralcheck.errors",
            "coralcheck.options",
            "coralcheck.fileio",
            "coralcheck.datacache",
            "coralcheck.wording",
        ),
    ),
    ("model", ("coralcheck.model",)),
    ("knowledge", ("coralcheck.rules", "coralcheck.edgetpu")),
    ("records", ("coralcheck.records", "coralcheck.report", "coralcheck.registry")),
    ("compiler", ("coralcheck.compiler",)),
    (
        "outcome",
        (
            "coralcheck.config_keys",
            "coralcheck.config",
            "coralcheck.gates",
            "coralcheck.baseline",
            "coralcheck.outcome",
        ),
    ),
    ("analysis", ("coralcheck.analyze", "coralcheck.checks")),
    ("render", ("coralcheck.render",)),
    ("pipeline", ("coralcheck.pipeline", "coralcheck.api")),
    ("extras", ("coralcheck.keras", "coralcheck.convert", "coralcheck.numeric")),
    ("commands", ("coralcheck.commands", "coralcheck.cli", "coralcheck.__main__", "coralcheck")),
)
__doc__ += "\n".join(f"    {name}: {', '.join(mods)}" for name, mods in LAYERS) + "\n"


def _modules() -> dict[str, Path]:
    found = {}
    for path in (REPO / "coralcheck").rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    found["coralcheck.rules"] = REPO / "rules" / "__init__.py"  # the data, shipped as a package
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the coralcheck modules it imports (a submodule, not its package, for
    `from package import submodule`)."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
                targets = subs if len(subs) == len(node.names) else [*subs, base]
            for target in targets:
                found = known(target) if target.startswith("coralcheck") else None
                if found and found != name:
                    graph[name].add(found)
    return graph


def _layer_of(module: str) -> int:
    best = None
    for rank, (_, names) in enumerate(LAYERS):
        for prefix in names:
            covers = module == prefix or module.startswith(prefix + ".")
            if covers and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        _layer_of(module)


def test_no_module_imports_a_layer_above_its_own() -> None:
    graph = _imports(_modules())
    upward = [
        f"{module} ({LAYERS[_layer_of(module)][0]}) imports {target} "
        f"({LAYERS[_layer_of(target)][0]})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if _layer_of(target) > _layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle() -> None:
    assert _cycles(_imports(_modules())) == []


def test_the_checks_catch_an_upward_import_and_a_cycle() -> None:
    """The graph is read as the tests above read it: a rule importing the renderers is an
    upward import, two modules importing each other (lazily) a cycle."""
    graph = {
        "coralcheck.checks.ops": {"coralcheck.render.phrases"},
        "coralcheck.analyze.a": {"coralcheck.analyze.b"},
        "coralcheck.analyze.b": {"coralcheck.analyze.a"},
    }
    assert _layer_of("coralcheck.render.phrases") > _layer_of("coralcheck.checks.ops")
    assert _cycles(graph) == [["coralcheck.analyze.a", "coralcheck.analyze.b"]]
    real = _imports(_modules())
    assert "coralcheck.registry" in real["coralcheck.checks.ops"]  # `from x import y` read
    assert "coralcheck.render.html" in real["coralcheck.api"]  # a lazy import read
    assert "coralcheck.analyze.prediction" in real["coralcheck.checks.context"]  # TYPE_CHECKING


def test_no_test_module_imports_another() -> None:
    """What tests share is in tests/helpers/ (and tests/conftest.py)."""
    tests = REPO / "tests"
    imports = {
        path.name: [
            alias.name if isinstance(node, ast.Import) else node.module or ""
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (node.names if isinstance(node, ast.Import) else [node])
        ]
        for path in [*tests.glob("*.py"), *(tests / "helpers").glob("*.py")]
    }
    assert any("helpers.nets" in names for names in imports.values())
    offenders = {
        name: [m for m in names if m.split(".")[0].startswith("test_")]
        for name, names in imports.items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


# coralcheck/model/ (the reader and the Edge TPU segment decoding) is split separately (issue 16's
# speed part); until then its modules are not held to these sizes.
MOST_LINES = 400  # a module's, unless its docstring says why in a line starting "Longer:"
MOST_FUNCTION_LINES = 80


def test_no_module_is_long_without_a_reason() -> None:
    long = []
    for path in sorted((REPO / "coralcheck").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= MOST_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.startswith("Longer:") for line in doc.splitlines()):
            long.append(f"{relative}: {text.count(chr(10))} lines")
    assert not long, long


def test_no_function_is_long_without_a_reason() -> None:
    """A hot loop may stay in one piece when its docstring says why (a line starting
    "Longer:"), as the reader's fast table reads do: a call per table costs a tenth of a read."""
    long = []
    for path in sorted((REPO / "coralcheck").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                doc = ast.get_docstring(node) or ""
                if lines > MOST_FUNCTION_LINES and "\nLonger:" not in "\n" + doc:
                    long.append(f"{relative}:{node.lineno} {node.name}: {lines} lines")
    assert not long, long
