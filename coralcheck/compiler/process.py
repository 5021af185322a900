"""Running a tool as `coralcheck --compile` runs edgetpu_compiler: without a shell, its output
read through pipes (at most `MAX_OUTPUT_BYTES` of each: a runaway process must not fill our
memory), killed with every process it started after a timeout or when it prints too much.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

# Output beyond this is not read.
MAX_OUTPUT_BYTES = 4 << 20


@dataclass
class Process:
    """What one subprocess did. `flooded`: it printed more than MAX_OUTPUT_BYTES on stdout or
    stderr and was stopped."""

    returncode: int | None
    timed_out: bool
    duration_s: float
    stdout: str
    stderr: str
    flooded: bool = False


class _Capture:
    """Reads one output pipe of a process in a thread, keeping its first MAX_OUTPUT_BYTES; a
    process that prints more is killed (nothing it prints is written to disk or kept)."""

    def __init__(self, stream: Any, proc: subprocess.Popen[bytes]) -> None:
        self.data = bytearray()
        self.flooded = False
        self.thread = threading.Thread(target=self._read, args=(stream, proc), daemon=True)
        self.thread.start()

    def _read(self, stream: Any, proc: subprocess.Popen[bytes]) -> None:
        with stream:
            while chunk := stream.read1(1 << 16):
                room = MAX_OUTPUT_BYTES - len(self.data)
                self.data += chunk[: max(room, 0)]
                if len(chunk) > room and not self.flooded:
                    self.flooded = True
                    _kill_group(proc)

    def text(self) -> str:
        # (a grandchild that left the process group may still hold the pipe: not waited for)
        self.thread.join(timeout=5)
        return bytes(self.data).decode("utf-8", errors="replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the process and every process it started (its own session / process group)."""
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def run_process(argv: list[str], cwd: str, timeout: float) -> Process:
    """Run `argv` (no shell), its output read through pipes (at most MAX_OUTPUT_BYTES each),
    killed with its process group after `timeout` seconds."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        start_new_session=hasattr(os, "killpg"),
    )
    out, err = _Capture(proc.stdout, proc), _Capture(proc.stderr, proc)
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        proc.wait()
    stdout, stderr = out.text(), err.text()
    flooded = out.flooded or err.flooded
    return Process(
        None if timed_out or flooded else proc.returncode,
        timed_out,
        round(time.monotonic() - start, 3),
        stdout,
        stderr,
        flooded,
    )
