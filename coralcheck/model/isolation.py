"""Work on a mapped model file in a forked child process, so that the file being truncated by
another process meanwhile (which kills the process reading the mapping with SIGBUS, a signal
Python cannot recover from) is an error of that file and not the end of the program.

Files up to `coralcheck.model.reader.READ_WHOLE_BYTES` are read whole and cannot change under
the reader: work on them runs in this process. The lint checks its models through
`coralcheck.commands.workers` (one child, or a process pool for several); `call_isolated` is the
same protection for the commands that read one model at a time (`compare`, `log --model`,
`view`). Only on Linux: elsewhere the work runs in this process (as it always did).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
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
    """`work(*args)`, which reads the model files `paths`: here when none of them is mapped,
    else in a forked child (Linux). Its exceptions are raised here; a child that dies is tried
    once more, then it is a ModelError of the first of `paths` (WORKER_DIED)."""
    if sys.platform != "linux":
        return work(*args)
    if not maps_a_file(paths):
        try:
            with refuse_mapping():  # (a file may grow between the look above and the read)
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
