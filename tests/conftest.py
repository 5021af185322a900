"""Shared test helpers: where the fixtures and the corpus are, and how to run the CLI.

- `FIXTURES` / `manifest_entries()`: the converter-made models in fixtures/ and TensorFlow's own
  view of each (fixtures/manifest.json).
- `CORPUS`: the real compiled models in ../shared/corpus (tests using `corpus_dir` skip when
  it is absent).
- `run_cli(*args)`: `python -m coralcheck ARGS` in a fresh process (result with returncode,
  stdout, stderr).
- `helpers/` holds what tests share: builders of models no converter emits (`tflite_builder`,
  `edgetpu_builder`, `hostile`, `Net` in `nets`), hand-made reports (`reports`), the fuzzing
  engine; test modules never import each other.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

# tests/ on the path so that test modules can import `helpers` in any pytest import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
CORPUS = REPO.parent / "shared" / "corpus"

# The suite's own data cache (coralcheck.datacache), for in-process runs and for subprocesses
# (cli_env copies os.environ): the user's ~/.cache/coralcheck is never read or written. Set on
# import, before collection, because collecting some test modules already loads the rules.
_SESSION_CACHE = tempfile.mkdtemp(prefix="coralcheck-test-cache-")
os.environ["CORALCHECK_CACHE_DIR"] = os.path.join(_SESSION_CACHE, "cache")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


# Marker -> the module an extra installs. A marked test is skipped, not failed, where its extra
# is not installed (e.g. `pip install -e '.[test]'` alone, or a Python TensorFlow does not support).
_EXTRA_MODULES = {
    "tensorflow": "tensorflow",
    "litert": "ai_edge_litert",
    "view": "model_explorer",
}


def pytest_runtest_setup(item: pytest.Item) -> None:
    import importlib.util

    for marker, module in _EXTRA_MODULES.items():
        if item.get_closest_marker(marker) and importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module} (not installed)")
    if item.get_closest_marker("browser"):
        from helpers import browser

        reason = browser.missing()
        if reason:
            pytest.skip(f"browser test: {reason}")


@cache
def manifest() -> dict[str, Any]:
    """fixtures/manifest.json (TensorFlow's own view of every fixture)."""
    return json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))


def manifest_entries() -> list[dict[str, Any]]:
    """One manifest entry per fixture file; [] when the manifest is missing."""
    if not (FIXTURES / "manifest.json").exists():
        return []
    return list(manifest()["fixtures"])


def manifest_entry(file: str) -> dict[str, Any]:
    for entry in manifest_entries():
        if entry["file"] == file:
            return entry
    pytest.skip(f"{file} is not in fixtures/manifest.json")


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not (CORPUS / "summary.csv").exists():
        pytest.skip("the shared corpus (../shared/corpus) is not here")
    return CORPUS


def cli_env() -> dict[str, str]:
    """The environment for a coralcheck subprocess: the repo importable, no colour."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    env.pop("CORALCHECK_DEBUG", None)
    return env


# Runs `coralcheck ARGS` as the console script would, then writes the loaded modules to OUT.
CLI_LISTING_MODULES = """
import atexit, json, runpy, sys
out, args = sys.argv[1], sys.argv[2:]
def dump():
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(dump)
sys.argv = ["coralcheck", *args]
runpy.run_module("coralcheck", run_name="__main__", alter_sys=True)
"""


def run_listing_modules(
    script: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `python -c SCRIPT OUT ARGS` in a fresh interpreter (`env`: default `cli_env()`);
    SCRIPT writes the names in `sys.modules` to OUT as a JSON list (see CLI_LISTING_MODULES).
    Returns the finished process and those module names."""
    out = tmp_path / "modules.json"
    out.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", script, str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env() if env is None else env,
        cwd=REPO,
        check=False,
    )
    assert out.exists(), result.stderr
    return result, set(json.loads(out.read_text()))


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m coralcheck ARGS` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "coralcheck", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=REPO,
        check=False,
    )


@pytest.fixture
def fake_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in `edgetpu_compiler` first on PATH (tests/helpers/compiler.py); returns the file
    its calls' argv are logged to."""
    from helpers.compiler import install_fake_compiler

    return install_fake_compiler(tmp_path, monkeypatch)


@pytest.fixture
def no_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large models are not leased (as on a file system without leases, or a file someone has
    open for writing): the work on them runs in a forked child, as these tests need."""
    from coralcheck.model import isolation

    monkeypatch.setattr(isolation, "_take_leases", lambda paths, descriptors: None)


def leases_work(folder: Path) -> bool:
    """Whether this process can take a read lease on a file in `folder` (Linux, a file system
    with leases, a lease-break time coralcheck accepts): where it cannot, the large models go to
    worker processes and only that path can be tested."""
    import fcntl

    from coralcheck.model.isolation import LEAST_LEASE_BREAK_SECONDS, _lease_break_seconds

    if sys.platform != "linux" or _lease_break_seconds() < LEAST_LEASE_BREAK_SECONDS:
        return False
    probe = folder / "lease-probe"
    probe.write_bytes(b"x")
    fd = os.open(probe, os.O_RDONLY)
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink()


@pytest.fixture
def leases(tmp_path: Path) -> None:
    """Skips the test where read leases cannot be taken here (see `leases_work`)."""
    if not leases_work(tmp_path):
        pytest.skip("no read leases on this file system (large models go to worker processes)")
