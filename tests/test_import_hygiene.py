"""The lint path stays light: it never imports TensorFlow, LiteRT or Keras, nor coralcheck's
optional `convert`/`numeric` extras; `--version` imports none of numpy, tflite, rich.

Each check runs in a fresh interpreter and looks at `sys.modules` when the process exits.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLI_LISTING_MODULES, CORPUS, FIXTURES, REPO, run_listing_modules

HEAVY = ("tensorflow", "tflite_runtime", "ai_edge_litert", "keras")
OPTIONAL = ("coralcheck.convert", "coralcheck.numeric")

_API = """
import atexit, json, sys
out, path = sys.argv[1], sys.argv[2]
import coralcheck
report = coralcheck.check(path)
assert report.models[0].path == path
with open(out, "w") as f:
    json.dump(sorted(sys.modules), f)
"""


def _modules(script: str, tmp_path: Path, *args: str) -> tuple[set[str], int]:
    result, modules = run_listing_modules(script, tmp_path, *args)
    return modules, result.returncode


def _forbidden(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == r or m.startswith(r + ".") for r in roots))


LINT_TARGETS = [FIXTURES / "demo_int8.tflite", FIXTURES / "while_loop.tflite"]
COMPILED = CORPUS / "models/coral_test_data_grouper/mobilenet_v1_0.25_128_quant_edgetpu.tflite"


@pytest.mark.parametrize("model", LINT_TARGETS, ids=lambda p: p.name)
def test_api_check_imports_no_heavy_module(tmp_path: Path, model: Path) -> None:
    modules, code = _modules(_API, tmp_path, str(model))
    assert code == 0
    assert "coralcheck.model.reader" in modules  # the model really was read
    assert _forbidden(modules, HEAVY + OPTIONAL) == []


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_cli_lint_imports_no_heavy_module(tmp_path: Path, fmt: str) -> None:
    modules, code = _modules(
        CLI_LISTING_MODULES, tmp_path, str(FIXTURES / "demo_int8.tflite"), "--format", fmt
    )
    assert code in (0, 1)
    assert "coralcheck.model.reader" in modules
    assert _forbidden(modules, HEAVY + OPTIONAL) == []


def test_cli_lint_of_a_compiled_model_imports_no_heavy_module(tmp_path: Path) -> None:
    if not COMPILED.exists():
        pytest.skip("the shared corpus is not here")
    modules, code = _modules(CLI_LISTING_MODULES, tmp_path, str(COMPILED))
    assert code in (0, 1)
    assert _forbidden(modules, HEAVY + OPTIONAL) == []


def test_cli_bad_input_imports_no_heavy_module(tmp_path: Path) -> None:
    modules, code = _modules(CLI_LISTING_MODULES, tmp_path, str(tmp_path / "absent.tflite"))
    assert code == 2
    assert _forbidden(modules, HEAVY + OPTIONAL) == []


def test_version_imports_almost_nothing(tmp_path: Path) -> None:
    modules, code = _modules(CLI_LISTING_MODULES, tmp_path, "--version")
    assert code == 0
    assert _forbidden(modules, ("numpy", "tflite", "rich", "flatbuffers", *HEAVY, *OPTIONAL)) == []
    assert "coralcheck.model" not in modules


def test_importing_the_package_is_cheap(tmp_path: Path) -> None:
    script = "import json, sys, coralcheck\njson.dump(sorted(sys.modules), open(sys.argv[1], 'w'))"
    modules, code = _modules(script, tmp_path)
    assert code == 0
    assert _forbidden(modules, ("numpy", "tflite", "rich", "coralcheck.model", *HEAVY)) == []


# What made the plain lint ~2.5× faster stays out of it: rich (~29 ms: the text report imports it
# only for colour), dataclasses (pulls inspect/ast/dis/tokenize; records are NamedTuples and
# __slots__ classes) and numpy (imported only when tensor data is asked for).
LEAN_OUT = ("rich", "dataclasses", "inspect", "numpy", "tflite", "flatbuffers")


# sarif too: it describes every rule (tool.driver.rules), from the rule functions' docstrings.
@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "github", "junit", "sarif"])
def test_piped_lint_imports_no_rich_dataclasses_or_numpy(tmp_path: Path, fmt: str) -> None:
    # One model: several are checked in worker processes, whose modules are not seen here.
    # stridedslice reads small constant tensors (its begin/end/strides) without numpy.
    model = FIXTURES / "stridedslice_int8.tflite"
    modules, code = _modules(CLI_LISTING_MODULES, tmp_path, str(model), "--format", fmt)
    assert code in (0, 1)
    assert {"coralcheck.model.reader", "coralcheck.analyze.placement"} <= modules
    assert _forbidden(modules, LEAN_OUT) == []


def test_piped_lint_of_many_ops_imports_no_rich_dataclasses_or_numpy(tmp_path: Path) -> None:
    from helpers.tflite_builder import OpSpec, TensorSpec, build_model

    tensors = [TensorSpec("x", [1, 8, 8, 4], "INT8", scale=[0.1], zero_point=[0])]
    ops = []
    for i in range(40):
        tensors.append(TensorSpec(f"y{i}", [1, 8, 8, 4], "INT8", scale=[0.1], zero_point=[0]))
        ops.append(OpSpec("ADD", [i, i], [i + 1], {"fused_activation_function": "RELU"}))
    path = tmp_path / "adds.tflite"
    path.write_bytes(build_model(tensors, ops, [0], [40]))
    modules, code = _modules(CLI_LISTING_MODULES, tmp_path, str(path), "-v")
    assert code in (0, 1)
    assert _forbidden(modules, LEAN_OUT) == []


# The HTML report and the data flow it draws are for --format html / model-explorer only.
GRAPH_ONLY = (
    "coralcheck.render.html",
    "coralcheck.render.modelexplorer",
    "coralcheck.analyze.opgraph",
)


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_plain_lint_imports_no_html_renderer(tmp_path: Path, fmt: str) -> None:
    model = FIXTURES / "stridedslice_int8.tflite"
    modules, code = _modules(CLI_LISTING_MODULES, tmp_path, str(model), "--format", fmt)
    assert code in (0, 1)
    assert "coralcheck.analyze.placement" in modules
    assert _forbidden(modules, GRAPH_ONLY) == []


def test_html_lint_imports_the_html_renderer_and_no_heavy_module(tmp_path: Path) -> None:
    model = FIXTURES / "stridedslice_int8.tflite"
    out = str(tmp_path / "r.html")
    modules, code = _modules(
        CLI_LISTING_MODULES, tmp_path, str(model), "--format", "html", "-o", out
    )
    assert code in (0, 1)
    assert {"coralcheck.render.html", "coralcheck.analyze.opgraph"} <= modules
    assert _forbidden(modules, HEAVY + OPTIONAL + ("dataclasses", "rich")) == []


# --- lazy imports as a policy ------------------------------------------------------------------

# The only modules that import coralcheck's own modules inside functions, and why: the entry
# points whose start-up is measured, the renderer dispatch, and the optional extras. Everywhere
# else imports sit at the top of the module (and heavy third-party packages inside functions:
# ruff's TID253, pyproject.toml).
LAZY_ENTRY_POINTS = {
    "coralcheck/__init__.py": "importing the package is cheap: load() and check() load on use",
    "coralcheck/cli.py": "--version and usage errors import nothing of the lint",
    "coralcheck/api.py": "a source model's lint loads no compiled-model, pair or compiler code",
    "coralcheck/render/__init__.py": "the renderer dispatch loads the one format asked for",
    "coralcheck/commands/lint.py": "the statistics renderers and the baseline (hashlib) on use",
    "coralcheck/commands/compare.py": "the [numeric] extra (numpy, LiteRT) only for --data",
    "coralcheck/commands/quant.py": "the [numeric] extra",
    "coralcheck/commands/convert.py": "the [convert] extra (numpy, TensorFlow in a child)",
    "coralcheck/edgetpu/knowledge.py": "the rules data package, or rules/ in a source checkout",
    "coralcheck/model/schema.py": "(coralcheck/model/ is split separately, issue 16's speed part)",
}


def _lazy_coralcheck_imports() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "coralcheck").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(node) for node in tree.body}
        for node in tree.body:  # `if TYPE_CHECKING:` blocks are module level
            if isinstance(node, ast.If):
                top |= {id(inner) for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top:
                name = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                if name and name.startswith("coralcheck"):
                    found.setdefault(path.relative_to(REPO).as_posix(), []).append(name)
    return found


def test_own_modules_are_imported_lazily_only_at_the_entry_points() -> None:
    lazy = _lazy_coralcheck_imports()
    assert "coralcheck/api.py" in lazy  # (the check reads function-local imports)
    assert set(lazy) <= set(LAZY_ENTRY_POINTS), {
        path: names for path, names in lazy.items() if path not in LAZY_ENTRY_POINTS
    }


def test_ruff_bans_module_level_imports_of_the_heavy_packages() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]
    assert "TID" in config["lint"]["select"]
    banned = config["lint"]["flake8-tidy-imports"]["banned-module-level-imports"]
    assert {*HEAVY, "rich", "numpy"} <= set(banned)
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    snippet = "import numpy\n\n\ndef f():\n    import rich\n\n    return numpy, rich\n"
    result = subprocess.run(
        [ruff, "check", "--no-cache", "--stdin-filename", "coralcheck/new_module.py", "-"],
        input=snippet,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert "TID253 `numpy` is banned at the module level" in result.stdout
    assert "rich" not in result.stdout  # inside a function: allowed
