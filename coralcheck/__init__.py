"""coralcheck: will this TFLite model run well on a Coral Edge TPU, and what to change if not.

Public API: `load(path) -> Model`, `check(path, ...) -> Report`. Importing this package is
cheap: the reader, the analysis and the renderers are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coralcheck._version import __version__
from coralcheck.errors import CoralcheckError, ModelError, UsageError

if TYPE_CHECKING:
    from coralcheck.model import Model
    from coralcheck.report import Report

__all__ = ["CoralcheckError", "ModelError", "UsageError", "__version__", "check", "load"]


def load(source: Any) -> Model:
    """Read and verify a TFLite model (path or bytes). Raises `ModelError` on bad input."""
    from coralcheck.model import load as _load

    return _load(source)


def check(path: Any, **options: Any) -> Report:
    """Lint one model: placement prediction, findings, memory. Options: see `Options`."""
    from coralcheck.api import check as _check

    return _check(path, **options)
