"""Which model files a lint checks: the paths as given, the `*.tflite` files (any case) of
directories, and what globs match; an argument that names no model is one failure."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from coralcheck.outcome import ModelFailure

MODEL_SUFFIX = ".tflite"


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def is_model_name(name: str) -> bool:
    """A `.tflite` file name, in any case (`model.TFLITE` from a Windows or camera export)."""
    return name.lower().endswith(MODEL_SUFFIX)


def _models_in(directory: str) -> list[str]:
    return sorted(
        str(p) for p in Path(directory).rglob("*") if is_model_name(p.name) and p.is_file()
    )


def _any_case_suffix(pattern: str) -> str:
    """A glob ending in `.tflite` (any case) made to match the extension in any case."""
    if not is_model_name(pattern):
        return pattern
    stem = pattern[: -len(MODEL_SUFFIX)]
    return stem + "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in MODEL_SUFFIX)


def _glob(pattern: str) -> list[str]:
    """The paths a glob matches, sorted. `**` does not follow symbolic links to directories
    (pathlib's rule, as for directory arguments), so a link back up the tree (`a/b/up -> ../..`)
    cannot make the expansion endless; `glob.glob` follows them."""
    anchor = Path(pattern).anchor
    base = Path(anchor) if anchor else Path()
    relative = pattern[len(anchor) :] if anchor else pattern
    if not relative:
        return []
    try:
        return sorted(str(p) for p in base.glob(relative))
    except (OSError, ValueError):  # an unreadable directory, a pattern pathlib refuses
        return []


def expand_paths(paths: Sequence[str]) -> tuple[list[str], list[ModelFailure]]:
    """Model files to check, in order and without duplicates, and the arguments that name none.
    Files are taken as given; directories and globs contribute their `*.tflite` files."""
    models: dict[str, str] = {}  # real path -> path as the user spelled it
    failures = []

    def add(path: str) -> None:
        models.setdefault(os.path.realpath(path), path)

    for arg in paths:
        if os.path.isdir(arg):
            found = _models_in(arg)
            if not found:
                failures.append(ModelFailure(arg, f"no {MODEL_SUFFIX} files in this directory"))
            for path in found:
                add(path)
        elif os.path.lexists(arg) or not _is_glob(arg):
            add(arg)  # a missing file gets the reader's own error
        else:
            found = []
            for match in _glob(_any_case_suffix(arg)):
                if os.path.isdir(match):
                    found += _models_in(match)
                elif is_model_name(match):
                    found.append(match)
            if not found:
                failures.append(ModelFailure(arg, f"no {MODEL_SUFFIX} files match this pattern"))
            for path in found:
                add(path)
    return list(models.values()), failures
