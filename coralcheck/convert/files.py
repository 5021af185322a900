"""Writing the converted model: all or nothing, and never over a file without being asked."""

from __future__ import annotations

import contextlib
import os
import tempfile

from coralcheck.errors import UsageError


def check_output(path: str, *, force: bool, inputs: tuple[str, ...] = ()) -> None:
    """Refuse an output path before any work: existing (without --force), an input, no dir."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(path, f"the output directory {directory} does not exist")
    if os.path.isdir(path):
        raise UsageError(path, "is a directory: give the output .tflite file name")
    if not os.path.exists(path):
        check_writable(path)
        return
    if any(os.path.exists(source) and os.path.samefile(source, path) for source in inputs):
        raise UsageError(path, "is one of the inputs: coralcheck never overwrites its input")
    if not force:
        raise UsageError(path, "already exists (use --force to overwrite it)")
    check_writable(path)


def check_writable(path: str) -> None:
    """Refuse an output directory we cannot create files in, before any work is done.

    Tried for real (a file made and removed at once): permission bits say nothing for root,
    and a read-only file system or a full disk show only when a file is made.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    except OSError as e:
        raise UsageError(
            path, f"cannot write to the output directory {directory}: {e.strerror or e}"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def write_atomically(path: str, data: bytes, *, force: bool) -> None:
    """Write `data` to a temporary file in the target directory, then rename it over `path`.

    Readers never see a half-written model, and a failure leaves no temporary file behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
        )
    except OSError as e:
        raise UsageError(path, f"cannot write it: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it 0600; give it normal modes
        if os.path.exists(path) and not force:  # appeared while we were converting
            raise UsageError(path, "already exists (use --force to overwrite it)")
        os.replace(temporary, path)
    except OSError as e:  # a full disk, a directory made read-only meanwhile
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise UsageError(path, f"cannot write it: {e.strerror or e}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    """The process umask (reading it means setting it; put it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
