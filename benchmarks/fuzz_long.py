"""Fuzz the whole lint for hours: `python benchmarks/fuzz_long.py --hours 8`.

The same mutation engine and invariant as the CI run (tests/helpers/fuzzing.py, tests/test_fuzz.py),
over every model in fixtures/ and ../shared/corpus (not only the small ones), for as long as
asked. Each mutant is linted in a worker process, so a segfault, an out-of-memory kill or a
hang costs one worker, not the run; every `--cli-every`-th mutant also goes through the real
CLI in a subprocess to check exit codes, stderr and peak RSS.

Every new crasher (a new exception type and place, a hang, a memory blow-up) is written to
`tests/crashers/<hash>.tflite` with a one-line `.txt` note; tests/test_fuzz.py replays them.
Review them, fix the bug, keep the fixture.

`--engine atheris` runs libFuzzer (atheris) instead, coverage-guided, with the engine's
structural mutations as its custom mutator: `python benchmarks/fuzz_long.py --engine atheris
--hours 1`.

`--engine hostile` builds structure-aware hostile models instead of mutating real ones
(tests/helpers/hostile.py, issue 12): packages listing one executable thousands of times, Edge
TPU ops sharing one package (large or ordinary custom options), tensors read by thousands of ops
or many times by one op, at random sizes, half of them then mutated once by the engine's strategies:
`python benchmarks/fuzz_long.py --engine hostile --hours 1`.

Reproduce one mutant: `python benchmarks/fuzz_long.py --replay MODEL STRATEGY SEED` (MODEL
`hostile` and STRATEGY `none` for the hostile engine's models).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from helpers import fuzzing  # noqa: E402  (tests/ is put on the path just above)

WORKER_AS_LIMIT = 4 * 2**30  # address space of a worker: a runaway allocation fails, not the box


def _signature(err: BaseException) -> str:
    """Where a violation came from: exception type and the innermost coralcheck frame."""
    cause = err.__cause__ or err
    frames = traceback.extract_tb(cause.__traceback__) if cause.__traceback__ else []
    ours = [f for f in frames if "coralcheck" in f.filename and "tests" not in f.filename]
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    first = str(err).split(":", 1)[0]
    return f"{type(cause).__name__} at {where} ({first})"


HOSTILE = "hostile"  # the seed name of `--engine hostile` jobs
UNMUTATED = "none"  # their strategy when the hostile model is linted as built


def build_hostile(strategy: str, seed: int) -> tuple[bytes, str]:
    """The hostile model of a `--engine hostile` job, mutated once by `strategy` (or not)."""
    from helpers import hostile

    data, what = hostile.random_hostile(random.Random(seed))
    if strategy == UNMUTATED:
        return data, what
    mutated, how = fuzzing.mutate(data, fuzzing.walk(data), strategy, seed)
    return mutated, f"{what}, then {how}"


def _mutant(job: tuple[str, str, int]) -> tuple[bytes, str]:
    name, strategy, seed = job
    if name == HOSTILE:
        return build_hostile(strategy, seed)
    data = fuzzing.seed_data(name)
    return fuzzing.mutate(data, fuzzing.walk(data), strategy, seed)


def _worker(jobs: mp.Queue, results: mp.Queue, names: list[str], tmpdir: str) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_AS_LIMIT, WORKER_AS_LIMIT))
    cache: dict[str, tuple[bytes, list[fuzzing.Node]]] = {}
    mutant = Path(tmpdir) / f"mutant-{os.getpid()}.tflite"
    while True:
        job = jobs.get()
        if job is None:
            return
        name, strategy, seed = job
        try:
            if name == HOSTILE:
                mutated, _ = build_hostile(strategy, seed)
            else:
                if name not in cache:
                    data = fuzzing.seed_data(name)
                    cache[name] = (data, fuzzing.walk(data))
                data, nodes = cache[name]
                mutated, _ = fuzzing.mutate(data, nodes, strategy, seed)
        except fuzzing.NoTarget:
            results.put((job, "skip", "", ""))
            continue
        mutant.write_bytes(mutated)
        try:
            outcome = fuzzing.lint_in_process(mutant)  # checks time and memory growth too
            status, detail, sig = outcome.kind, "", ""
        except fuzzing.Violation as err:
            status, detail, sig = "violation", str(err), _signature(err)
        except MemoryError:
            status, detail, sig = "violation", "MemoryError", "MemoryError"
        results.put((job, status, detail, sig))


class Pool:
    """One worker process; replaced when it dies, hangs or blows its memory."""

    def __init__(self, names: list[str], tmpdir: str) -> None:
        self.names, self.tmpdir = names, tmpdir
        self.ctx = mp.get_context("fork")
        self.start()

    def start(self) -> None:
        self.jobs, self.results = self.ctx.Queue(), self.ctx.Queue()
        self.proc = self.ctx.Process(
            target=_worker, args=(self.jobs, self.results, self.names, self.tmpdir), daemon=True
        )
        self.proc.start()

    def run(self, job: tuple[str, str, int]) -> tuple[str, str, str]:
        import queue

        self.jobs.put(job)
        deadline = time.monotonic() + fuzzing.HANG_ALARM_S + 20
        status, detail, sig = "violation", "no answer: hang", "hang"
        while time.monotonic() < deadline:
            try:
                _, status, detail, sig = self.results.get(timeout=0.2)
                break
            except queue.Empty:
                if not self.proc.is_alive():
                    status, detail, sig = "violation", "worker died", "died"
                    break
        if sig in ("hang", "died"):
            code = self.proc.exitcode
            self.proc.kill()
            self.proc.join()
            if sig == "died":
                status, detail, sig = "violation", f"worker died (exit {code})", f"died {code}"
            self.start()
        return status, detail, sig

    def close(self) -> None:
        self.jobs.put(None)
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()


def _next_job(args: argparse.Namespace, names: list[str], rng: random.Random) -> tuple:
    if args.engine == HOSTILE:
        strategy = rng.choice((UNMUTATED, *fuzzing.ALL_STRATEGIES))
        return HOSTILE, strategy, rng.randrange(2**32)
    return rng.choice(names), rng.choice(fuzzing.ALL_STRATEGIES), rng.randrange(2**32)


def run_mutations(args: argparse.Namespace) -> int:
    names = fuzzing.seed_names(small=not args.all_models)
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.hours * 3600
    seen: dict[str, int] = {}
    counts = {"report": 0, "error": 0, "skip": 0, "violation": 0}
    out = Path(args.out)
    last_print = time.monotonic()
    n = 0
    with tempfile.TemporaryDirectory() as tmpdir:
        pool = Pool(names, tmpdir)
        try:
            while time.monotonic() < deadline and (not args.max or n < args.max):
                n += 1
                job = _next_job(args, names, rng)
                status, detail, sig = pool.run(job)
                if status in ("report", "error") and args.cli_every and n % args.cli_every == 0:
                    status, detail, sig = _cli_check(job, tmpdir)
                counts[status] += 1
                if status == "violation":
                    _record(job, detail, sig, seen, out)
                if time.monotonic() - last_print > 30:
                    last_print = time.monotonic()
                    print(f"{n} mutants {counts} signatures {len(seen)}", flush=True)
        finally:
            pool.close()
    print(f"done: {n} mutants {counts}")
    for sig, hits in sorted(seen.items(), key=lambda kv: -kv[1]):
        print(f"  {hits:6d}  {sig}")
    return 1 if seen else 0


def _cli_check(job: tuple[str, str, int], tmpdir: str) -> tuple:
    mutated, _ = _mutant(job)
    path = Path(tmpdir) / "cli-mutant.tflite"
    path.write_bytes(mutated)
    try:
        outcome = fuzzing.lint_subprocess(path)
    except fuzzing.Violation as err:
        return "violation", f"CLI: {err}", f"CLI {str(err)[:40]}"
    return outcome.kind, "", ""


def _record(job: tuple[str, str, int], detail: str, sig: str, seen: dict, out: Path) -> None:
    name, strategy, seed = job
    seen[sig] = seen.get(sig, 0) + 1
    if seen[sig] > 1:
        return
    mutated, what = _mutant(job)
    note = f"{name} {strategy} seed {seed} ({what}): {detail}"
    base = None if name == HOSTILE else name
    path = fuzzing.save_crasher(mutated, note[:400], out, base=base)
    print(f"NEW CRASHER {path.name}: {sig}\n    {note[:300]}", flush=True)


_EXTRAS = ("coralcheck.convert", "coralcheck.numeric", "coralcheck.keras")


def _import_lint_modules() -> None:
    """Import every module of the lint path now (they are lazily imported), so that atheris
    instruments them all; the TensorFlow/LiteRT extras are left out."""
    import contextlib
    import importlib
    import pkgutil

    import coralcheck

    for info in pkgutil.walk_packages(coralcheck.__path__, "coralcheck."):
        if info.name.endswith("__main__") or info.name.startswith(_EXTRAS):
            continue
        with contextlib.suppress(ImportError):
            importlib.import_module(info.name)


def run_atheris(args: argparse.Namespace) -> int:
    import atheris

    with atheris.instrument_imports(include=["coralcheck"]):
        _import_lint_modules()

    seeds = [fuzzing.seed_data(n) for n in fuzzing.seed_names(small=not args.all_models)]
    out = Path(args.out)
    tmp = Path(tempfile.mkdtemp()) / "mutant.tflite"
    seen: set[str] = set()

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        base = data if len(data) > 16 and rng.random() < 0.5 else rng.choice(seeds)
        if rng.random() < 0.3:
            return atheris.Mutate(base, max(max_size, len(base)))
        try:
            return fuzzing.mutate(
                base, fuzzing.walk(base), rng.choice(fuzzing.ALL_STRATEGIES), seed
            )[0]
        except fuzzing.NoTarget:
            return atheris.Mutate(base, max(max_size, len(base)))

    def test_one_input(data: bytes) -> None:
        tmp.write_bytes(data)
        try:
            fuzzing.lint_in_process(tmp)
        except fuzzing.Violation as err:
            sig = _signature(err)
            if sig not in seen:
                seen.add(sig)
                path = fuzzing.save_crasher(data, f"atheris: {err}"[:400], out)
                print(f"NEW CRASHER {path.name}: {sig}", flush=True)

    corpus_dir = Path(tempfile.mkdtemp())
    for i, data in enumerate(seeds):
        (corpus_dir / f"seed{i}").write_bytes(data)
    argv = [
        sys.argv[0],
        str(corpus_dir),
        f"-max_total_time={int(args.hours * 3600)}",
        f"-seed={args.seed or 1}",
        f"-max_len={max(len(s) for s in seeds) + 4096}",
        f"-rss_limit_mb={4096}",
    ]
    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
    return 0


def replay(model: str, strategy: str, seed: int) -> int:
    mutated, what = _mutant((model, strategy, seed))
    path = Path(tempfile.mkdtemp()) / "mutant.tflite"
    path.write_bytes(mutated)
    print(f"{what}\nwritten to {path}")
    os.environ["CORALCHECK_DEBUG"] = "1"
    from coralcheck.cli import main

    return main([str(path)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0, help="how long to run (1)")
    parser.add_argument("--max", type=int, default=0, help="stop after this many mutants")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--engine", choices=("mutate", "atheris", HOSTILE), default="mutate")
    parser.add_argument(
        "--small", dest="all_models", action="store_false", help="only the CI run's seed models"
    )
    parser.add_argument(
        "--cli-every", type=int, default=200, help="every Nth mutant also through the CLI (200)"
    )
    parser.add_argument("--out", default=str(fuzzing.CRASHERS), help="where crashers are saved")
    parser.add_argument("--replay", nargs=3, metavar=("MODEL", "STRATEGY", "SEED"))
    args = parser.parse_args()
    if args.replay:
        return replay(args.replay[0], args.replay[1], int(args.replay[2]))
    if args.engine == "atheris":
        return run_atheris(args)
    return run_mutations(args)


if __name__ == "__main__":
    sys.exit(main())
