"""The model file: read whole or mapped (`reader.read_or_map`), and told apart from files that
are no model.

A file up to `READ_WHOLE_BYTES` (64 MiB) is read whole, in one read: nothing can change it
under the reader. A larger one is mapped, and its weight pages are never touched, so a 300 MB
model loads about as fast as a 3 MB one (a mapped file truncated meanwhile would be SIGBUS: see
`refuse_mapping`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from coralcheck.errors import ModelError

IDENTIFIER = b"TFL3"

# Magic numbers of files people mistake for (or rename to) .tflite.
_OTHER_FORMATS = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a zip archive (a .keras file or a zipped model?)"),
    (b"\x89HDF", "an HDF5 file (a Keras .h5 model?)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{", "a JSON/text file"),
    (b"ONNX", "an ONNX model"),
    (b"\x08", "an ONNX (protobuf) model"),
)

# Files up to this size are read whole; larger ones are mapped (a 200 MB model loads in
# milliseconds: its weights are never touched). A mapped file that someone truncates while it is
# read kills the process with SIGBUS, so the CLI checks the models it maps in worker processes
# (`coralcheck.commands.lint.check_all`); a file that is read cannot change under the reader.
READ_WHOLE_BYTES = 64 << 20
# False where a file must not be mapped (the CLI's own process): see `refuse_mapping`.
MAY_MAP: ContextVar[bool] = ContextVar("coralcheck_may_map", default=True)


class MappingRefused(ModelError):
    """The file is larger than `READ_WHOLE_BYTES` and mapping it was refused here."""


@contextlib.contextmanager
def refuse_mapping() -> Iterator[None]:
    """Within: a file too large to read whole raises `MappingRefused` instead of being mapped
    (the caller checks it in a worker process instead)."""
    token = MAY_MAP.set(False)
    try:
        yield
    finally:
        MAY_MAP.reset(token)


def has_identifier(data: Any) -> bool:
    """The file says it is a TFLite flatbuffer ("TFL3" at bytes 4-8)."""
    return bytes(data[4:8]) == IDENTIFIER


def other_format(data: Any) -> str | None:
    """What the file looks like when it is not a model ("a PNG image"), from its first bytes."""
    head = bytes(data[:8])
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            return what
    return None
