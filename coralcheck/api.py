"""`check()`: path → Report. The one place that strings load → analyze together."""

from __future__ import annotations

import os
from typing import Any

from coralcheck._version import __version__
from coralcheck.options import Options
from coralcheck.report import ModelReport, Report


def check(path: str | os.PathLike[str], **options: Any) -> Report:
    """Lint one model file. Keyword options are the fields of `Options`."""
    opts = options.pop("options", None) or Options(**options)
    return Report(models=[check_model(os.fspath(path), opts)], tool_version=__version__)


def check_model(path: str, options: Options) -> ModelReport:
    from coralcheck.analyze import analyze
    from coralcheck.model import load

    return analyze(load(path), options)
