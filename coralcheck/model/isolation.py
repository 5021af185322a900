"""Work on a mapped model file without a file truncated by another process meanwhile (which kills
the process reading the mapping with SIGBUS, a signal Python cannot recover from) ending the
program.

Files up to `coralcheck.model.reader.READ_WHOLE_BYTES` are read whole and cannot change under
the reader: work on them runs in this process. A larger file is mapped, and the work runs

- here, under a read lease on the file (`leased`, Linux's F_SETLEASE): while coralcheck holds
  it, another process that opens the file for writing or truncates it waits until the work is
  done (the kernel tells the holder with SIGIO, ignored meanwhile, and lets the other process go
  when the lease is released, or after /proc/sys/fs/lease-break-time seconds at the latest);
- else in a forked child (the file is open for writing somewhere, not the user's own, or on a
  file system without leases): a child that dies is that file's error, not the program's end.

The lint checks its models through `coralcheck.commands.workers` (one model: as above; several:
a process pool); `call_isolated` is the same protection for the commands that read one model at a
time (`compare`, `log --model`, `view`). Only on Linux: elsewhere the work runs in this process
(as it always did).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from coralcheck.errors import ModelError
from coralcheck.model.reader import READ_WHOLE_BYTES, MappingRefused, refuse_mapping

T = TypeVar("T")

# What a model whose reading process died is told (the lint: that model's failure, exit 2).
WORKER_DIED = (
    "the process reading it was killed (was the file truncated or replaced while it was read? "
    "or out of memory)"
)


def maps_a_file(paths: Sequence[str | None]) -> bool:
    """Whether reading these model files maps one of them instead of reading it whole."""
    for name in paths:
        try:
            if name and os.stat(name).st_size > READ_WHOLE_BYTES:
                return True
        except OSError:
            continue  # (the reader reports it)
    return False


def call_isolated(paths: Sequence[str | None], work: Callable[..., T], *args: Any) -> T:
    """`work(*args)`, which reads the model files `paths`: here when none of them is mapped or
    this process holds read leases on those that are (`leased`), else in a forked child (Linux).
    Its exceptions are raised here; a child that dies is tried once more, then it is a
    ModelError of the first of `paths` (WORKER_DIED)."""
    if sys.platform != "linux":
        return work(*args)
    none_mapped: frozenset[tuple[int, int]] = frozenset()  # (all read whole)
    with leased(paths) if maps_a_file(paths) else contextlib.nullcontext(none_mapped) as files:
        if files is not None:
            try:
                with refuse_mapping(but=files):  # (a file may grow or be replaced meanwhile)
                    return work(*args)
            except MappingRefused:
                pass
    for _attempt in range(2):
        outcome = in_child(work, args)
        if outcome is not None:
            ok, result = outcome
            if not ok:
                raise result
            return result  # type: ignore[no-any-return]
    raise ModelError(next(p for p in paths if p), WORKER_DIED)


# The least lease-break time (/proc/sys/fs/lease-break-time, 45 s by default) under which a
# lease is worth taking: the kernel breaks a lease its holder keeps longer than that, and a check
# of the largest models takes a few seconds at most.
LEAST_LEASE_BREAK_SECONDS = 10


@contextlib.contextmanager
def leased(paths: Sequence[str | None]) -> Iterator[frozenset[tuple[int, int]] | None]:
    """Within: read leases on those of the files `paths` that are too large to read whole; gives
    their (st_dev, st_ino) for `reader.refuse_mapping(but=...)`, or None when one of them could
    not be leased (the caller then works in a child process). Empty when no file is that large.

    A read lease is granted on a file that nobody has open for writing, to its owner (or with
    CAP_LEASE), on file systems that support leases (not NFS, for one). SIGIO, which the kernel
    sends the holder when another process wants to write, would end this process: it is ignored
    while the leases are held (only in the main thread, where signal handlers can be set)."""
    import signal  # (only for a large model: its enums cost every start ~0.5 ms)

    try:
        previous = signal.signal(signal.SIGIO, signal.SIG_IGN)
    except (ValueError, AttributeError):  # not the main thread; no SIGIO
        yield None
        return
    descriptors: list[int] = []
    try:
        yield _take_leases(paths, descriptors)
    finally:
        for fd in descriptors:  # (closing a descriptor ends its lease)
            os.close(fd)
        signal.signal(signal.SIGIO, signal.SIG_DFL if previous is None else previous)


def _take_leases(paths: Sequence[str | None], descriptors: list[int]) -> frozenset | None:
    """Read leases on the large files of `paths` (their descriptors appended to `descriptors`):
    their (st_dev, st_ino), or None when a lease was refused or leases are not to be had."""
    import fcntl

    files = set()
    for name in paths:
        if not name:
            continue
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue  # (the reader reports it)
        descriptors.append(fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size <= READ_WHOLE_BYTES:
                continue  # read whole (a file that grows meanwhile is refused a mapping)
            if _lease_break_seconds() < LEAST_LEASE_BREAK_SECONDS:
                return None
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        except (OSError, AttributeError):  # refused (EAGAIN: open for writing), no F_SETLEASE
            return None
        files.add((st.st_dev, st.st_ino))
    return frozenset(files)


def _lease_break_seconds() -> int:
    try:
        with open("/proc/sys/fs/lease-break-time", "rb") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def in_child(
    work: Callable[..., Any], args: Sequence[Any], meanwhile: Callable[[], object] | None = None
) -> tuple[bool, Any] | None:
    """`work(*args)` run once in a forked child: (True, its result) or (False, the exception it
    raised), both pickled back through a pipe; None when the child died. `meanwhile` runs here
    while the child works.

    One forked child, not a process pool: importing concurrent.futures and multiprocessing
    and starting a pool cost more than checking a 70 MB model."""
    import pickle

    read_end, write_end = os.pipe()
    _flush_std_streams()  # (else the child has a copy of what is not written yet)
    pid = os.fork()
    if pid == 0:  # the child: the outcome, pickled, then gone without any clean-up
        try:
            os.close(read_end)
            try:
                outcome = (True, work(*args))
            except BaseException as e:  # (CORALCHECK_DEBUG: the parent raises it)
                outcome = (False, e)
            with open(write_end, "wb") as pipe:  # (pickled in frames, read as they come)
                pickle.dump(outcome, pipe, pickle.HIGHEST_PROTOCOL)
        finally:
            _flush_std_streams()
            os._exit(0)
    os.close(write_end)
    if meanwhile is not None:
        meanwhile()
    with open(read_end, "rb") as pipe:
        try:
            outcome = pickle.load(pipe)
        except Exception:  # nothing, or cut short: the child died
            outcome = None
    _, status = os.waitpid(pid, 0)  # (after: the child's exit overlaps the unpickling)
    return outcome if os.waitstatus_to_exitcode(status) == 0 else None


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # none, or closed
            stream.flush()
