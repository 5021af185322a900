"""Load benchmark: whole-process time, peak RSS and peak private memory of `coralcheck MODEL`
beside LiteRT's and TensorFlow's interpreters loading the same file (load + allocate_tensors).

Three generated models (written to a temporary directory, never committed):

- `large`: ~200 MB, three int8 FULLY_CONNECTED layers of 8192x8192 weights (+ int32 bias);
- `many_ops`: ~3,500 ops and ~10,000 tensors, a chain of small int8 FULLY_CONNECTED and ADD
  ops, quantized per tensor;
- `per_channel`: ~70 MB, 3,500 ops and 10,501 tensors, a chain of 500 int8 CONV_2D (32
  channels) and 3,000 FULLY_CONNECTED (132 units), every weight and bias quantized per channel
  (as TensorFlow's converter writes convolutions): 824,000 scales and as many zero points.

All load, allocate and run in LiteRT and TensorFlow. Every tool runs as its own process
(`python -c ...` / `python -m coralcheck`), the same way, interleaved, after one warm-up run
each (page cache and bytecode caches warm, as for a user who runs the tool twice). Time is
wall-clock from fork to exit; peak RSS is the child's own `ru_maxrss` from `os.wait4`, forked
from a small launcher (it includes the workers the child waited for). Peak private memory is
sampled in runs of its own (benchmarks/private_memory.py: anonymous memory of the process and
its workers; RSS also counts the page cache of a mapped file). The report gives the median of
`--runs` runs and ratios against LiteRT from the same run.

    python benchmarks/bench_load.py                  # every model, 7 runs each
    python benchmarks/bench_load.py --runs 5 --models large --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "benchmarks")]

import private_memory  # noqa: E402
from helpers import fuzzing  # noqa: E402
from helpers.tflite_builder import OpSpec, TensorSpec, build_model  # noqa: E402

TARGET_LARGE_SECONDS = 0.25
TARGET_LARGE_RSS_MB = 80
TARGET_PER_CHANNEL_RATIO = 0.7  # whole-process lint time / LiteRT load + allocate
TARGET_PRIVATE_MB = 80
MEMORY_RUNS = 3  # sampled runs per tool (the median is reported)


# --- the models ---------------------------------------------------------------------------


def _fc_tensors(
    rng: np.random.Generator, prefix: str, units_in: int, units_out: int, in_scale: float
) -> list[TensorSpec]:
    """Weights and bias of one int8 FULLY_CONNECTED layer (bias scale = in * weight scale)."""
    w_scale = 0.01
    weights = rng.integers(-127, 128, (units_out, units_in), dtype=np.int8)
    bias = rng.integers(-1000, 1000, units_out, dtype=np.int32)
    return [
        TensorSpec(f"{prefix}/weights", data=weights, scale=[w_scale], zero_point=[0]),
        TensorSpec(f"{prefix}/bias", data=bias, scale=[in_scale * w_scale], zero_point=[0]),
    ]


def large_model(units: int = 8192, layers: int = 3) -> bytes:
    """~units² × layers bytes of int8 weights (8192² × 3 ≈ 201 MB)."""
    rng = np.random.default_rng(1)
    scale = 0.05
    tensors = [TensorSpec("input", [1, units], "INT8", scale=[scale], zero_point=[0])]
    ops = []
    current = 0
    for i in range(layers):
        first = len(tensors)
        tensors += _fc_tensors(rng, f"dense_{i}", units, units, scale)
        tensors.append(
            TensorSpec(f"dense_{i}/out", [1, units], "INT8", scale=[scale], zero_point=[0])
        )
        options = {"fused_activation_function": "RELU"}
        ops.append(OpSpec("FULLY_CONNECTED", [current, first, first + 1], [first + 2], options))
        current = first + 2
    return build_model(tensors, ops, [0], [current], min_runtime_version="1.14.0")


def many_ops_model(n_fc: int = 3000, n_add: int = 500, units: int = 16) -> bytes:
    """A chain of n_fc FULLY_CONNECTED and n_add ADD ops: 1 + 3·n_fc + 2·n_add tensors."""
    rng = np.random.default_rng(2)
    scale = 0.05
    tensors = [TensorSpec("input", [1, units], "INT8", scale=[scale], zero_point=[0])]
    ops = []
    current = 0
    add_every = max(1, (n_fc + n_add) // max(n_add, 1))
    for i in range(n_fc + n_add):
        first = len(tensors)
        if n_add and i % add_every == add_every - 1 and i // add_every < n_add:
            const = rng.integers(-10, 10, (1, units), dtype=np.int8)
            tensors.append(
                TensorSpec(f"block_{i}/add_const", data=const, scale=[scale], zero_point=[0])
            )
            tensors.append(
                TensorSpec(f"block_{i}/add", [1, units], "INT8", scale=[scale * 2], zero_point=[0])
            )
            ops.append(
                OpSpec("ADD", [current, first], [first + 1], {"fused_activation_function": "NONE"})
            )
            current = first + 1
            scale *= 2
            continue
        tensors += _fc_tensors(rng, f"block_{i}/dense", units, units, scale)
        tensors.append(
            TensorSpec(f"block_{i}/dense", [1, units], "INT8", scale=[0.05], zero_point=[0])
        )
        ops.append(
            OpSpec(
                "FULLY_CONNECTED",
                [current, first, first + 1],
                [first + 2],
                {"fused_activation_function": "RELU"},
            )
        )
        current = first + 2
        scale = 0.05
    return build_model(tensors, ops, [0], [current], min_runtime_version="1.14.0")


def _per_channel_tensors(
    rng: np.random.Generator, prefix: str, weights: np.ndarray, in_scale: float
) -> list[TensorSpec]:
    """Weights and bias of one int8 layer quantized per output channel (dimension 0), as
    TensorFlow's converter writes convolutions: one scale and zero point per channel for the
    weights, and the bias scales = input scale × each weight scale."""
    channels = weights.shape[0]
    w_scales = rng.uniform(0.002, 0.02, channels).astype(np.float32)
    b_scales = (np.float32(in_scale) * w_scales).astype(np.float32)
    bias = rng.integers(-1000, 1000, channels, dtype=np.int32)
    zeros = [0] * channels
    return [
        TensorSpec(f"{prefix}/weights", data=weights, scale=w_scales.tolist(), zero_point=zeros),
        TensorSpec(f"{prefix}/bias", data=bias, scale=b_scales.tolist(), zero_point=zeros),
    ]


def per_channel_model(
    n_conv: int = 500, n_fc: int = 3000, channels: int = 32, units: int = 132, side: int = 8
) -> bytes:
    """A chain of n_conv int8 CONV_2D (3×3, `channels` in and out, on side×side) and n_fc
    FULLY_CONNECTED (`units` wide), every weight and bias quantized per channel: ~69 MB, over
    the 64 MiB the reader reads whole (the CLI checks it in a worker, `reader.refuse_mapping`).
    """
    rng = np.random.default_rng(3)
    scale = 0.05
    tensors = [
        TensorSpec("input", [1, side, side, channels], "INT8", scale=[scale], zero_point=[0])
    ]
    ops = []
    current = 0
    conv = {"padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU"}
    for i in range(n_conv):
        first = len(tensors)
        weights = rng.integers(-127, 128, (channels, 3, 3, channels), dtype=np.int8)
        tensors += _per_channel_tensors(rng, f"conv_{i}", weights, scale)
        out = [1, side, side, channels]
        tensors.append(TensorSpec(f"conv_{i}/out", out, "INT8", scale=[scale], zero_point=[0]))
        ops.append(
            OpSpec("CONV_2D", [current, first, first + 1], [first + 2], conv, "Conv2DOptions")
        )
        current = first + 2
    width = side * side * channels  # the first FULLY_CONNECTED flattens the feature map
    relu = {"fused_activation_function": "RELU"}
    for i in range(n_fc):
        first = len(tensors)
        weights = rng.integers(-127, 128, (units, width), dtype=np.int8)
        tensors += _per_channel_tensors(rng, f"dense_{i}", weights, scale)
        tensors.append(
            TensorSpec(f"dense_{i}/out", [1, units], "INT8", scale=[scale], zero_point=[0])
        )
        ops.append(OpSpec("FULLY_CONNECTED", [current, first, first + 1], [first + 2], relu))
        current = first + 2
        width = units
    return build_model(tensors, ops, [0], [current], min_runtime_version="1.14.0")


MODELS: dict[str, Callable[[], bytes]] = {
    "large": large_model,
    "many_ops": many_ops_model,
    "per_channel": per_channel_model,
}


# --- the tools ----------------------------------------------------------------------------

# The reader alone (no analysis, no report): what `coralcheck` costs before its rules run.
LOAD_ONLY = "import sys\nfrom coralcheck.model import load\nload(sys.argv[1])"
LITERT = (
    "from ai_edge_litert.interpreter import Interpreter\n"
    "i = Interpreter(model_path={path!r}); i.allocate_tensors()"
)
TENSORFLOW = (
    "import tensorflow as tf\ni = tf.lite.Interpreter(model_path={path!r}); i.allocate_tensors()"
)


def _installed(module: str) -> bool:
    probe = [
        sys.executable,
        "-c",
        f"import importlib.util as u; exit(u.find_spec({module!r}) is None)",
    ]
    return subprocess.run(probe, check=False).returncode == 0


def tools() -> dict[str, Callable[[Path], list[str]]]:
    found: dict[str, Callable[[Path], list[str]]] = {
        "coralcheck": lambda p: [sys.executable, "-m", "coralcheck", str(p)],
        # The same with the per-user data cache off (coralcheck.datacache): what a first run
        # costs, parsing the rules TOML and the tflite schema names itself.
        "coralcheck, no cache": lambda p: [
            "env",
            "CORALCHECK_NO_CACHE=1",
            sys.executable,
            "-m",
            "coralcheck",
            str(p),
        ],
        "coralcheck.load": lambda p: [sys.executable, "-c", LOAD_ONLY, str(p)],
        "python -c pass": lambda p: [sys.executable, "-c", "pass"],
    }
    if _installed("ai_edge_litert"):
        found["litert"] = lambda p: [sys.executable, "-c", LITERT.format(path=str(p))]
    if _installed("tensorflow"):
        found["tensorflow"] = lambda p: [sys.executable, "-c", TENSORFLOW.format(path=str(p))]
    return found


def child_env(pycache: Path) -> dict[str, str]:
    """The repo importable; bytecode cached in a temp dir (as an installed package has it)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["NO_COLOR"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def run_once(cmd: list[str], env: dict[str, str], scratch: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one process, measured from a small launcher so that the
    child's ru_maxrss is its own (tests/helpers/fuzzing.py `measure_process`, shared with
    bench_lint)."""
    del scratch  # the launcher keeps its own temporary files
    run = fuzzing.measure_process(cmd, cwd=REPO, env=env, timeout=600)
    if run.exit_code not in (0, 1):  # coralcheck exits 1 when it has findings
        raise RuntimeError(f"{cmd[:3]} failed ({run.exit_code}): {run.stderr[-2000:]}")
    return run.seconds, run.rss_mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per tool and model (7)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--keep", metavar="DIR", help="write the models to DIR and keep them")
    parser.add_argument(
        "--memory-runs",
        type=int,
        default=MEMORY_RUNS,
        help=f"sampled runs per tool for the private memory, 0: none ({MEMORY_RUNS})",
    )
    args = parser.parse_args(argv)
    memory_runs = args.memory_runs if private_memory.available() else 0

    with tempfile.TemporaryDirectory(prefix="coralcheck-bench-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        env = child_env(Path(tmp) / "pycache")
        found = tools()
        results: dict[str, dict] = {}
        for name in args.models:
            start = time.perf_counter()
            data = MODELS[name]()
            path = work / f"bench_{name}.tflite"
            path.write_bytes(data)
            del data
            built = time.perf_counter() - start
            samples: dict[str, list[tuple[float, float]]] = {tool: [] for tool in found}
            for cmd in found.values():  # warm-up: page cache, bytecode
                run_once(cmd(path), env, Path(tmp))
            for _ in range(args.runs):
                for tool, cmd in found.items():
                    samples[tool].append(run_once(cmd(path), env, Path(tmp)))
            private: dict[str, list[float]] = {tool: [] for tool in found}
            for _ in range(memory_runs):
                for tool, cmd in found.items():
                    private[tool].append(private_memory.peak_private_mb(cmd(path), env, REPO))
            results[name] = {
                "file": path.name,
                "size_mb": path.stat().st_size / 1e6,
                "build_seconds": built,
                "tools": {
                    tool: {
                        "seconds": statistics.median(s for s, _ in runs),
                        "rss_mb": statistics.median(r for _, r in runs),
                        "seconds_min": min(s for s, _ in runs),
                        "private_mb": statistics.median(private[tool]) if memory_runs else None,
                    }
                    for tool, runs in samples.items()
                },
            }
            _print(name, results[name])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def _print(name: str, result: dict) -> None:
    tools_ = result["tools"]
    ref = tools_.get("litert")
    size, built = result["size_mb"], result["build_seconds"]
    print(f"\n{name}: {result['file']} {size:.1f} MB (built in {built:.1f} s)")
    print(
        f"  {'tool':<22}{'median s':>10}{'min s':>8}{'peak RSS MB':>13}{'private MB':>12}"
        f"{'time / LiteRT':>15}"
    )
    for tool, r in tools_.items():
        ratio = f"{r['seconds'] / ref['seconds']:.2f}x" if ref else "-"
        private = "-" if r["private_mb"] is None else f"{r['private_mb']:.1f}"
        row = f"{r['seconds']:>10.3f}{r['seconds_min']:>8.3f}{r['rss_mb']:>13.1f}{private:>12}"
        print(f"  {tool:<22}{row}{ratio:>15}")
    cc = tools_["coralcheck"]
    if name == "large":
        ok = cc["seconds"] <= TARGET_LARGE_SECONDS and cc["rss_mb"] <= TARGET_LARGE_RSS_MB
        target = f"≤ {TARGET_LARGE_SECONDS} s and ≤ {TARGET_LARGE_RSS_MB} MB"
        print(f"  target {target}: {'met' if ok else 'MISSED'}")
    elif name == "per_channel" and ref:
        ok = cc["seconds"] <= TARGET_PER_CHANNEL_RATIO * ref["seconds"]
        target = f"≤ {TARGET_PER_CHANNEL_RATIO}x LiteRT"
        if cc["private_mb"] is not None:
            ok = ok and cc["private_mb"] <= TARGET_PRIVATE_MB
            target += f" and ≤ {TARGET_PRIVATE_MB} MB private"
        print(f"  target {target}: {'met' if ok else 'MISSED'}")
    elif ref:
        ok = cc["seconds"] <= ref["seconds"]
        print(f"  target no slower than LiteRT: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    raise SystemExit(main())
