"""How fast the whole lint is, as ratios against peers measured in the same run.

    python benchmarks/bench_lint.py              # everything, medians of 5 runs
    python benchmarks/bench_lint.py --runs 7 --only peers,sizes
    python benchmarks/bench_lint.py --profile    # where the time goes (importtime, cProfile)

Sections (see benchmarks/README.md, "Lint", for the numbers and the targets):

- peers: whole-process `python -m coralcheck MODEL` against whole-process
  `tf.lite.experimental.Analyzer.analyze` and LiteRT `Interpreter(model_path).allocate_tensors()`,
  plus the same comparison in-process (after imports); a peer that is not installed is skipped.
- generated: the same comparison on bench_load.py's generated models of 3,500 ops and 10,000+
  tensors: `many_ops` (quantized per tensor, 2.3 MB) and `per_channel` (convolutions and fully
  connected layers quantized per channel, 70 MB: the CLI checks it in a worker process, as every
  model over 64 MiB).
- sizes: models from 1 MB to 500 MB of constant weights (bench_load.py's FULLY_CONNECTED chain,
  generated in a temporary directory, never committed): lint time and peak RSS should be flat
  in weight bytes.
- startup: `coralcheck --version` and a lint of the smallest fixture.
- many: 1,000 small models in one CLI invocation on 2 cores.

Every number is the median of `--runs` runs (at least 5). Peak RSS is the child's own (wait4).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
CORPUS = REPO.parent / "shared" / "corpus" / "models"
# coralcheck; tests/helpers/fuzzing.py (process measurement) and tflite_builder; bench_load (models)
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]

from helpers import fuzzing  # noqa: E402  (tests/ is put on the path just above)

# Real models for the peer comparison: a fixture and source models from the corpus (LiteRT
# cannot allocate compiled models without the Edge TPU delegate, so those are left out).
PEER_MODELS = (
    FIXTURES / "demo_int8.tflite",
    CORPUS / "coral_test_data_grouper/mobilenet_v1_0.25_128_quant.tflite",
    CORPUS / "coral_test_data_grouper/deeplabv3_mnv2_dm05_pascal_quant.tflite",
    CORPUS / "sandhya_modelnew/yolov5n-int8.tflite",
    CORPUS / "goalbuddy/yolov8n_full_integer_quant.tflite",
)
SIZES_MB = (1, 10, 100, 250, 500)
TARGETS = {
    "analyzer_speedup": 10.0,  # lint at least 10x faster than the TF Analyzer
    "litert_ratio": 1.0,  # lint time / LiteRT load+allocate time at most 1.0
    "big_model_s": 0.25,  # a 500 MB model linted in at most 0.25 s
    "big_model_rss_mb": 80.0,
    "version_s": 0.15,
    "many_s": 20.0,  # 1,000 models on 2 cores
}


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the in-process peers: no TensorFlow banners

# Children byte-compile coralcheck once into a temporary cache, as an installed package is.
PYCACHE = tempfile.mkdtemp(prefix="bench_lint_pycache_")


def bench_env() -> dict[str, str]:
    from conftest import cli_env

    env = cli_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = PYCACHE
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def run_process(argv: Sequence[str], cpus: set[int] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB of the process itself, exit code), output discarded."""

    def pin() -> None:
        os.sched_setaffinity(0, cpus or set())

    run = fuzzing.measure_process(
        list(argv), REPO, bench_env(), timeout=3600, preexec_fn=pin if cpus else None
    )
    return run.seconds, run.rss_mb, run.exit_code


def median_process(
    argv: Sequence[str], runs: int, cpus: set[int] | None = None
) -> tuple[float, float, int]:
    """Median wall time and median peak RSS over `runs` runs (after one warm-up run)."""
    run_process(argv, cpus)  # warm the page cache and .pyc files
    samples = [run_process(argv, cpus) for _ in range(runs)]
    codes = {s[2] for s in samples}
    return (
        statistics.median(s[0] for s in samples),
        statistics.median(s[1] for s in samples),
        codes.pop() if len(codes) == 1 else -1,
    )


def median_call(fn: Callable[[], object], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- peers ---------------------------------------------------------------------------------


def lint_argv(path: Path) -> list[str]:
    return [sys.executable, "-m", "coralcheck", str(path)]


ANALYZER = (
    "import sys, tensorflow as tf; "
    "tf.lite.experimental.Analyzer.analyze(model_path=sys.argv[1], gpu_compatibility=False)"
)
LITERT = (
    "import sys; from ai_edge_litert.interpreter import Interpreter; "
    "Interpreter(model_path=sys.argv[1]).allocate_tensors()"
)


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def lint_in_process(path: Path) -> None:
    from coralcheck.api import check
    from coralcheck.render import render

    render(check(path), "text")


def litert_in_process(path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    Interpreter(model_path=str(path)).allocate_tensors()


def analyzer_in_process(path: Path) -> None:
    import contextlib
    import io

    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()):
        tf.lite.experimental.Analyzer.analyze(model_path=str(path), gpu_compatibility=False)


def bench_peers(models: Sequence[Path], runs: int, in_process: bool = True) -> list[dict]:
    rows = []
    has_tf, has_litert = installed("tensorflow"), installed("ai_edge_litert")
    for path in models:
        if not path.is_file():
            continue
        row: dict = {"model": path.name, "mb": path.stat().st_size / 2**20}
        row["lint_s"], row["lint_rss"], _ = median_process(lint_argv(path), runs)
        if has_tf:
            row["tf_s"], row["tf_rss"], _ = median_process(
                [sys.executable, "-c", ANALYZER, str(path)], runs
            )
        if has_litert:
            row["litert_s"], row["litert_rss"], _ = median_process(
                [sys.executable, "-c", LITERT, str(path)], runs
            )
        if in_process:
            row["lint_ip_s"] = median_call(lambda p=path: lint_in_process(p), runs)
            if has_litert:
                row["litert_ip_s"] = median_call(lambda p=path: litert_in_process(p), runs)
            if has_tf:
                row["tf_ip_s"] = median_call(lambda p=path: analyzer_in_process(p), runs)
        rows.append(row)
        print(_fmt_peer(row), flush=True)
    return rows


def _fmt_peer(r: dict) -> str:
    def ratio(a: str, b: str) -> str:
        return f"{r[b] / r[a]:.1f}x" if a in r and b in r else "-"

    return (
        f"| {r['model']} | {r['mb']:.2f} | {r['lint_s']:.3f} | {r.get('tf_s', float('nan')):.3f} "
        f"| {ratio('lint_s', 'tf_s')} | {r.get('litert_s', float('nan')):.3f} "
        f"| {r['lint_s'] / r['litert_s'] if 'litert_s' in r else float('nan'):.2f} "
        f"| {r.get('lint_ip_s', float('nan')) * 1000:.1f} "
        f"| {r.get('litert_ip_s', float('nan')) * 1000:.1f} "
        f"| {r.get('tf_ip_s', float('nan')) * 1000:.1f} |"
    )


PEER_HEADER = (
    "| model | MB | lint s | TF Analyzer s | lint speed-up | LiteRT s | lint/LiteRT "
    "| lint in-process ms | LiteRT load+allocate ms | Analyzer in-process ms |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


# --- model size sweep ------------------------------------------------------------------------


def make_sized_model(path: Path, megabytes: float, layers: int = 4) -> None:
    """A valid int8 model with `megabytes` of constant weights: bench_load's chain of
    FULLY_CONNECTED layers, each with [units, units] int8 weights."""
    from bench_load import large_model

    units = max(16, int((megabytes * 2**20 / layers) ** 0.5) // 16 * 16)
    path.write_bytes(large_model(units, layers))


def bench_sizes(workdir: Path, runs: int, sizes: Sequence[float]) -> list[dict]:
    rows = []
    has_litert = installed("ai_edge_litert")
    for mb in sizes:
        path = workdir / f"weights_{mb:g}mb.tflite"
        make_sized_model(path, mb)
        row: dict = {"target_mb": mb, "mb": path.stat().st_size / 2**20}
        row["lint_s"], row["lint_rss"], row["exit"] = median_process(lint_argv(path), runs)
        row["lint_ip_s"] = median_call(lambda p=path: lint_in_process(p), runs)
        if has_litert:
            row["litert_s"], row["litert_rss"], _ = median_process(
                [sys.executable, "-c", LITERT, str(path)], runs
            )
        path.unlink()
        rows.append(row)
        print(
            f"| {row['mb']:.0f} | {row['lint_s']:.3f} | {row['lint_ip_s'] * 1000:.1f} "
            f"| {row['lint_rss']:.0f} | {row.get('litert_s', float('nan')):.3f} "
            f"| {row.get('litert_rss', float('nan')):.0f} |",
            flush=True,
        )
    return rows


def make_generated(workdir: Path) -> list[Path]:
    """bench_load.py's many_ops and per_channel models, written to `workdir`."""
    from bench_load import MODELS

    paths = []
    for name in ("many_ops", "per_channel"):
        path = workdir / f"{name}.tflite"
        path.write_bytes(MODELS[name]())
        paths.append(path)
    return paths


SIZE_HEADER = (
    "| model MB | lint s (process) | lint in-process ms | lint peak RSS MB | LiteRT s "
    "| LiteRT peak RSS MB |\n|---:|---:|---:|---:|---:|---:|"
)


# --- start-up and many models ---------------------------------------------------------------


def bench_startup(runs: int) -> dict:
    version, version_rss, _ = median_process(
        [sys.executable, "-m", "coralcheck", "--version"], runs
    )
    bare, _, _ = median_process([sys.executable, "-c", "pass"], runs)
    smallest = min(FIXTURES.glob("*.tflite"), key=lambda p: p.stat().st_size)
    lint, lint_rss, _ = median_process(lint_argv(smallest), runs)
    row = {
        "version_s": version,
        "version_rss": version_rss,
        "python_s": bare,
        "fixture": smallest.name,
        "fixture_s": lint,
        "fixture_rss": lint_rss,
    }
    print(
        f"| `coralcheck --version` | {version:.3f} | {version_rss:.0f} |\n"
        f"| `python -c pass` (interpreter alone) | {bare:.3f} | - |\n"
        f"| `coralcheck fixtures/{smallest.name}` | {lint:.3f} | {lint_rss:.0f} |",
        flush=True,
    )
    return row


def make_many(workdir: Path, count: int) -> Path:
    """`count` small models: copies of every fixture in turn, each under its own name."""
    fixtures = sorted(FIXTURES.glob("*.tflite"))
    many = workdir / "many"
    many.mkdir()
    for i in range(count):
        src = fixtures[i % len(fixtures)]
        shutil.copyfile(src, many / f"{i:04d}_{src.name}")
    return many


def bench_many(workdir: Path, runs: int, count: int = 1000) -> dict:
    """One invocation over a directory of `count` models, pinned to 2 cores. Falls back to
    every path as an argument when the CLI does not take directories (exit 2)."""
    many = make_many(workdir, count)
    cpus = set(sorted(os.sched_getaffinity(0))[:2])
    argv = [sys.executable, "-m", "coralcheck", str(many), "--format", "json"]
    mode = "a directory of"
    if run_process(argv, cpus)[2] == 2:
        argv = [*argv[:3], *sorted(str(p) for p in many.iterdir()), "--format", "json"]
        mode = "paths as arguments:"
    seconds, rss, code = median_process(argv, runs, cpus)
    row = {"count": count, "cpus": len(cpus), "s": seconds, "rss": rss, "exit": code, "mode": mode}
    print(
        f"| {mode} {count} models, one invocation, {len(cpus)} cores "
        f"| {seconds:.2f} | {rss:.0f} | exit {code} |"
    )
    return row


# --- profiles ---------------------------------------------------------------------------------


def profile(big_mb: float = 100) -> None:
    """Import-time top list for `--version`, a fixture lint and a yolov5n lint, and the
    cProfile top list of in-process lints of the fixture, yolov5n and a `big_mb` model."""
    smallest = min(FIXTURES.glob("*.tflite"), key=lambda p: p.stat().st_size)
    slowest = PEER_MODELS[3]  # yolov5n: the peer comparison's worst ratio
    for argv in (["--version"], [str(smallest)], [str(slowest)] if slowest.is_file() else []):
        if not argv:
            continue
        for _warm_then_measure in range(2):  # the first run fills the bytecode cache
            proc = subprocess.run(
                [sys.executable, "-X", "importtime", "-m", "coralcheck", *argv],
                capture_output=True,
                text=True,
                env=bench_env(),
                cwd=str(REPO),
                check=False,
            )
        rows = []
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            self_us, cumulative, name = (p.strip() for p in line.split("|"))
            rows.append((int(cumulative), int(self_us.split(":")[1]), name))
        total = sum(r[1] for r in rows)
        print(f"\n### python -X importtime -m coralcheck {' '.join(argv)}")
        print(f"total self import time {total / 1000:.1f} ms; top cumulative:")
        for cumulative, _self_us, name in sorted(rows, reverse=True)[:15]:
            print(f"  {cumulative / 1000:8.1f} ms  {name}")
    import cProfile
    import pstats

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.tflite"
        make_sized_model(big, big_mb)
        for path in (FIXTURES / "demo_int8.tflite", slowest, big):
            if not path.is_file():
                continue
            lint_in_process(path)  # imports and caches out of the way
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(5):
                lint_in_process(path)
            prof.disable()
            print(f"\n### cProfile: 5 in-process lints of {path.name}")
            pstats.Stats(prof).sort_stats("cumulative").print_stats(18)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (>= 5)")
    parser.add_argument(
        "--only", default="peers,generated,sizes,startup,many", help="sections to run"
    )
    parser.add_argument("--sizes", default=",".join(map(str, SIZES_MB)), help="model sizes, MB")
    parser.add_argument("--many", type=int, default=1000, help="models for the 'many' section")
    parser.add_argument("--profile", action="store_true", help="print profiles instead")
    args = parser.parse_args()
    try:
        return _run(args)
    finally:
        shutil.rmtree(PYCACHE, ignore_errors=True)


def _run(args: argparse.Namespace) -> int:
    if args.profile:
        profile()
        return 0
    runs = max(args.runs, 5)
    only = set(args.only.split(","))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, medians of {runs} runs")
    with tempfile.TemporaryDirectory(prefix="bench_lint_") as tmp:
        work = Path(tmp)
        if "startup" in only:
            print("\n| start-up | s | peak RSS MB |\n|---|---:|---:|")
            bench_startup(runs)
        if "peers" in only:
            print("\n" + PEER_HEADER)
            bench_peers(PEER_MODELS, runs)
        if "generated" in only:
            print("\n" + PEER_HEADER)
            bench_peers(make_generated(work), runs)
        if "sizes" in only:
            print("\n" + SIZE_HEADER)
            bench_sizes(work, runs, [float(s) for s in args.sizes.split(",")])
        if "many" in only:
            print("\n| many models | s | peak RSS MB | |\n|---|---:|---:|---|")
            bench_many(work, runs, args.many)
    return 0


if __name__ == "__main__":
    sys.exit(main())
