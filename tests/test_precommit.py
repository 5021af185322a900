"""The pre-commit hook, through the real `pre-commit` in a throwaway git repository.

The hook repository is a copy of this checkout (the files `pip install .` needs plus
.pre-commit-hooks.yaml), committed in a temporary git repository, so the test runs exactly what a
user's `.pre-commit-config.yaml` would: pre-commit clones it, builds coralcheck into a fresh
virtualenv (dependencies from the package index) and runs the hook on the staged models.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO

pytestmark = pytest.mark.slow

HOOK_REPO_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "coralcheck", "rules")


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PRE_COMMIT"))}
    env.update(
        PRE_COMMIT_HOME=str(home / "pre-commit-cache"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
        GIT_CONFIG_GLOBAL=str(home / "gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        NO_COLOR="1",
    )
    return env


def run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def git(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = run(cwd, env, "git", *args)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A git repository with the coralcheck hook installed from a copy of this checkout."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    pre_commit = [sys.executable, "-m", "pre_commit"]
    if run(REPO, dict(os.environ), *pre_commit, "--version").returncode != 0:
        pytest.skip("pre-commit is not installed")
    home = tmp_path_factory.mktemp("precommit")
    env = environment(home)
    hook_repo = home / "coralcheck-hook"
    hook_repo.mkdir()
    for name in HOOK_REPO_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(
                source, hook_repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy(source, hook_repo / name)
    git(hook_repo, env, "init", "-q")
    git(hook_repo, env, "add", ".")
    git(hook_repo, env, "commit", "-q", "-m", "coralcheck")
    rev = git(hook_repo, env, "rev-parse", "HEAD").stdout.strip()

    repo = home / "project"
    repo.mkdir()
    git(repo, env, "init", "-q")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hook_repo}\n  rev: {rev}\n  hooks:\n  - id: coralcheck\n",
        encoding="utf-8",
    )
    installed = run(repo, env, *pre_commit, "install")
    assert installed.returncode == 0, installed.stderr
    # Build the hook's environment now (pip install of the copy), so a failure here is explicit.
    ready = run(repo, env, *pre_commit, "install-hooks")
    assert ready.returncode == 0, ready.stdout + ready.stderr
    git(repo, env, "add", ".pre-commit-config.yaml")
    git(repo, env, "commit", "-q", "-m", "pre-commit config")
    return repo, env


def commit(repo: Path, env: dict[str, str], name: str, data: bytes):  # type: ignore[no-untyped-def]
    path = repo / "models" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    git(repo, env, "add", str(path))
    return run(repo, env, "git", "commit", "-m", f"add {name}")


def output(result: subprocess.CompletedProcess[str]) -> str:
    """What the user sees (the hook's lines go to git's stderr)."""
    return result.stdout + result.stderr


def test_a_clean_model_commits(project: tuple[Path, dict[str, str]]) -> None:
    repo, env = project
    result = commit(repo, env, "demo.tflite", (FIXTURES / "demo_int8.tflite").read_bytes())
    assert result.returncode == 0, output(result)
    assert "coralcheck (Edge TPU model check)" in output(result)
    assert "Passed" in output(result)
    log = git(repo, env, "log", "--format=%s").stdout.splitlines()
    assert log[0] == "add demo.tflite"


def test_other_files_skip_the_hook(project: tuple[Path, dict[str, str]]) -> None:
    repo, env = project
    (repo / "notes.txt").write_text("hello", encoding="utf-8")
    git(repo, env, "add", "notes.txt")
    result = run(repo, env, "git", "commit", "-m", "notes")
    assert result.returncode == 0
    assert "(no files to check)Skipped" in output(result).replace(".", "")


def test_a_broken_model_is_blocked_with_its_error(project: tuple[Path, dict[str, str]]) -> None:
    repo, env = project
    demo = (FIXTURES / "demo_int8.tflite").read_bytes()
    result = commit(repo, env, "cut.tflite", demo[:100])
    assert result.returncode != 0
    assert "Failed" in output(result)
    assert "- exit code: 2" in output(result)
    assert "coralcheck: error: models/cut.tflite:" in output(result)
    log = git(repo, env, "log", "--format=%s").stdout.splitlines()
    assert "add cut.tflite" not in log
    git(repo, env, "reset", "-q", "HEAD", "--", "models/cut.tflite")


def test_a_model_with_errors_is_blocked_and_the_report_shown(
    project: tuple[Path, dict[str, str]],
) -> None:
    repo, env = project
    result = commit(repo, env, "gelu.tflite", (FIXTURES / "gelu_int8.tflite").read_bytes())
    seen = output(result)
    assert result.returncode != 0
    assert "Failed" in seen
    assert "- exit code: 1" in seen
    assert "models/gelu.tflite" in seen
    assert "GELU" in seen
    assert "Result: FAILED" in seen
    log = git(repo, env, "log", "--format=%s").stdout.splitlines()
    assert "add gelu.tflite" not in log
