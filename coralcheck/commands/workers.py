"""Checking the models of a run: in parallel over the cores when there is more than one, with a
progress bar on a terminal, each failure (bad input, a bug, a worker killed by a truncated
mapped file) that model's `ModelFailure` and not the end of the run."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

from coralcheck import api
from coralcheck.errors import CoralcheckError
from coralcheck.model.isolation import WORKER_DIED, in_child, leased, maps_a_file
from coralcheck.model.reader import MappingRefused, refuse_mapping
from coralcheck.options import Options
from coralcheck.outcome import ModelFailure
from coralcheck.report import ModelReport


def check_one(path: str, options: Options) -> ModelReport | ModelFailure:
    """One model's report, or its ModelFailure (picklable: runs in worker processes)."""
    try:
        return api.check_model(path, options)
    except MappingRefused:
        raise  # (check_all checks it in a worker process)
    except CoralcheckError as e:
        return ModelFailure(e.path, " ".join(e.problem.split()))
    except Exception as e:
        if os.environ.get("CORALCHECK_DEBUG"):
            raise
        return ModelFailure(
            path,
            f"internal error: {type(e).__name__}: {e} "
            "(a bug in coralcheck; set CORALCHECK_DEBUG=1 for the traceback)",
            internal=True,
        )


def _progress() -> Any:
    """A progress bar on stderr (rich: only on a terminal, ~29 ms of imports)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    )


def check_all(
    jobs: list[tuple[str, Options]], meanwhile: Callable[[], object] | None = None
) -> list[ModelReport | ModelFailure]:
    """Reports (or failures) for every job, in job order: in parallel over the cores when there
    is more than one model, with a progress bar when stderr is a terminal. `meanwhile` (say,
    importing the renderer) runs while a worker process checks a single large model, else
    before the check.

    Large models are mapped, not read, and a mapped file truncated by another process kills the
    process reading it (SIGBUS): a single one is checked here under a read lease
    (`isolation.leased`: nobody can truncate it meanwhile), else (no lease to be had, or
    `--compile`, whose compiler may run longer than the kernel lets a lease be held) in a worker
    process, as several always are, so that such a death is that model's error and not the end
    of the run.

    (The report of a model checked here must not hold anything that reads the file after the
    lease ends: it holds numbers and text only, tests/test_per_channel.py checks.)"""
    workers = min(len(jobs), os.cpu_count() or 1)
    mapped = any(maps_a_file([path, options.compiled_path]) for path, options in jobs)
    if len(jobs) == 1 and sys.platform == "linux" and mapped:
        path, options = jobs[0]
        # (Not while the real compiler runs: that may outlast the kernel's lease-break time.)
        lease = (
            contextlib.nullcontext(None)
            if options.compile
            else leased([path, options.compiled_path])
        )
        with lease as files:
            if files is not None:  # nobody can truncate them meanwhile: checked here
                if meanwhile is not None:
                    meanwhile()
                    meanwhile = None
                try:
                    with refuse_mapping(but=files):  # (but a file replaced meanwhile)
                        return [check_one(path, options)]
                except MappingRefused:
                    pass
        return [_check_in_child(path, options, meanwhile)]
    if meanwhile is not None:
        meanwhile()
    if workers <= 1 and not mapped:
        try:
            with refuse_mapping():  # (a file may grow between the look above and the read)
                return [check_one(path, options) for path, options in jobs]
        except MappingRefused:
            pass
    if len(jobs) == 1 and sys.platform == "linux":
        return [_check_in_child(*jobs[0])]
    # The process pool (multiprocessing, ~10 ms of imports) only for several models.
    from concurrent.futures.process import BrokenProcessPool

    results: list[Any] = [None] * len(jobs)
    try:
        _check_in_pool(jobs, range(len(jobs)), results, max(1, workers))
    except BrokenProcessPool:
        for n in [n for n, result in enumerate(results) if result is None]:
            try:
                _check_in_pool(jobs, [n], results, 1)
            except BrokenProcessPool:
                results[n] = ModelFailure(jobs[n][0], WORKER_DIED)
    return results


def _check_in_child(
    path: str, options: Options, meanwhile: Callable[[], object] | None = None
) -> ModelReport | ModelFailure:
    """One job checked in one forked process (`isolation.in_child`), as a pool of one would check
    it but without the pool: a child that dies is tried once more, then it is the job's
    WORKER_DIED failure. `meanwhile` runs in this process while the first child checks."""
    for _attempt in range(2):
        outcome = in_child(check_one, (path, options), meanwhile)
        meanwhile = None
        if outcome is not None:
            ok, result = outcome
            if not ok:
                raise result
            return result  # type: ignore[no-any-return]
    return ModelFailure(path, WORKER_DIED)


def _check_in_pool(
    jobs: list[tuple[str, Options]], which: Any, results: list[Any], workers: int
) -> None:
    """Check `jobs[n]` for each n in `which` in a pool of `workers` processes into `results[n]`.
    Raises BrokenProcessPool when a worker dies (the results so far are kept)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(check_one, *jobs[n]): n for n in which}
        progress = _progress() if sys.stderr.isatty() and len(futures) > 1 else None
        task = progress.add_task("", total=len(futures)) if progress else None
        if progress:
            progress.start()
        try:
            for future in as_completed(futures):
                n = futures[future]
                results[n] = future.result()
                if progress:
                    progress.update(task, advance=1, description=os.path.basename(jobs[n][0]))
        finally:
            if progress:
                progress.stop()
