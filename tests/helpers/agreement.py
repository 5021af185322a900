"""The corpus comparison of benchmarks/compiler_agreement.py (the mapping of every usable pair
and the comparison with the real compiler live there once), as a module for the tests."""

from __future__ import annotations

import importlib.util
from typing import Any

from conftest import REPO


def _agreement_module() -> Any:
    """benchmarks/compiler_agreement.py (the corpus mapping and comparison live there once)."""
    path = REPO / "benchmarks" / "compiler_agreement.py"
    spec = importlib.util.spec_from_file_location("compiler_agreement", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


agreement = _agreement_module()
