"""Peak private (anonymous) memory of a process and the processes it starts, for the benchmarks.

Peak RSS (`ru_maxrss`) counts every page of a mapped file the process touched, and on this
machine's kernel a mapped file's page cache comes in 2 MB folios: mapping a 70 MB model and
reading its few hundred kilobytes of tables shows tens of MB of RSS that are the page cache's,
shared and reclaimable, although not one weight byte is read. What the process itself costs is
its anonymous memory (heap, Python objects, a file read whole into a `bytes`): this module
samples `Pss_Anon` of /proc/PID/smaps_rollup for the process and all its descendants (a worker
forked by the CLI shares pages with its parent copy-on-write: the proportional share counts
each page once) every millisecond, and reports the highest sum seen.

Sampling costs CPU (a read of smaps_rollup walks the process's mappings): run it in runs of
its own, not in the timed ones.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

POLL_SECONDS = 0.001


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        found += [int(p) for p in text.split()]
    return found


def _anonymous_kb(pid: int) -> int:
    """Pss_Anon of one process in kB (0 once it has gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss_Anon:"):
            return int(line.split()[1])
    return 0


def tree_anonymous_kb(pid: int) -> int:
    """Pss_Anon summed over `pid` and its descendants, in kB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += _anonymous_kb(current)
        todo += _children(current)
    return total


def available() -> bool:
    return Path(f"/proc/{os.getpid()}/smaps_rollup").exists()


def peak_private_mb(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> float:
    """Run `argv` (output discarded) and return its peak private memory in MB (MiB, as the
    benchmarks' peak RSS), sampled every millisecond over the process tree."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=str(cwd) if cwd else None,
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_anonymous_kb(proc.pid))
        time.sleep(POLL_SECONDS)
    return peak / 1024
