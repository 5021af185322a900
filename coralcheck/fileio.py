"""Reading the user's files without hanging, and writing their names in any output.

- `open_regular(path)`: a read-only descriptor, opened with O_NONBLOCK so that a FIFO does not
  block until a writer comes (a pipe, a device or a directory is then refused).
- `read_regular(path, limit)`: at most `limit + 1` bytes of a regular file (the caller tells a
  file over the limit by the extra byte): `/dev/zero` or a FIFO cannot make a read endless.
- File names are not always UTF-8 (`m\\xff.tflite`): Python decodes them with surrogate escapes.
  `name_bytes` gives the original bytes back (for hashes), `json_safe` writes the escapes of a
  JSON document as `\\udcff` (Python's json reads them back as the same name).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from functools import cache

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """(descriptor, its stat) of the regular file at `path`. Raises FileNotFoundError,
    PermissionError, IsADirectoryError, or OSError(EINVAL, "not a regular file ...")."""
    fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC | _BINARY)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a pipe or a device?)", path)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_regular(path: str, limit: int) -> bytes:
    """Up to `limit + 1` bytes of the regular file at `path` (see `open_regular`)."""
    fd, _ = open_regular(path)
    with open(fd, "rb", closefd=True) as f:
        return f.read(limit + 1)


@cache
def _surrogate() -> re.Pattern[str]:
    """A lone surrogate; compiled on first use (~0.4 ms: a plain text lint never needs it)."""
    return re.compile("[\ud800-\udfff]")


def name_bytes(name: str) -> bytes:
    """A name as bytes: UTF-8, with surrogate escapes turned back into the bytes they stand
    for (the same bytes for the same file name on every run: stable fingerprints)."""
    if not _surrogate().search(name):
        return name.encode("utf-8")
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no file name decodes to (from a JSON file)
        return name.encode("utf-8", "surrogatepass")


def json_safe(text: str) -> str:
    """A JSON document (written with ensure_ascii=False) with every lone surrogate as a
    `\\udcff` escape: valid UTF-8 to write, and the same string when read back."""
    if not _surrogate().search(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
