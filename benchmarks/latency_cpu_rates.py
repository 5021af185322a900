"""Measure what ops left on the CPU cost on this machine (the latency model's reference host).

Each op kind is converted by TensorFlow into a one-op int8 model (full-integer post-training
quantization, as Edge TPU models are) at a size where the op's own work dominates, and run by
LiteRT's interpreter on one thread; the fastest of many invocations gives nanoseconds per
multiply-accumulate (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED) or per element moved (input
plus output elements: the other kinds), and a 1-element op gives the cost of one op invocation.
The fastest of the invocations is kept: on a shared machine other processes only slow one down.
The results are the `[cpu]` rates of rules/devices.toml (reference host = this machine, an
x86-64 server core: the class of Coral's "desktop" host); the other hosts are scaled from it.

    python benchmarks/latency_cpu_rates.py          # prints a TOML fragment
    python benchmarks/latency_cpu_rates.py --runs 50

Needs the `[convert]` and `[numeric]` extras (TensorFlow to build, LiteRT to run).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _int8(fn: Callable[..., Any], shapes: list[tuple[int, ...]]) -> bytes:
    """`fn` traced on float inputs of `shapes`, converted with full-integer PTQ (int8 I/O)."""
    import numpy as np
    import tensorflow as tf

    specs = [tf.TensorSpec(s, tf.float32) for s in shapes]
    concrete = tf.function(fn, input_signature=specs).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    rng = np.random.default_rng(0)

    def samples() -> Any:
        for _ in range(4):
            yield [rng.uniform(-1, 1, s).astype("float32") for s in shapes]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def _cases() -> dict[str, tuple[Callable[..., Any], list[tuple[int, ...]], str]]:
    """name -> (function, input shapes, unit): the unit is "mac" or "element"."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(1)
    w_conv = tf.constant(rng.normal(size=(1, 1, 256, 256)).astype("float32"))
    w_dw = tf.constant(rng.normal(size=(3, 3, 256, 1)).astype("float32"))
    w_fc = tf.constant(rng.normal(size=(2048, 1024)).astype("float32"))
    return {
        "conv": (
            lambda x: tf.nn.conv2d(x, w_conv, 1, "SAME"),
            [(1, 56, 56, 256)],
            "mac",
        ),
        "depthwise": (
            lambda x: tf.nn.depthwise_conv2d(x, w_dw, [1, 1, 1, 1], "SAME"),
            [(1, 56, 56, 256)],
            "mac",
        ),
        "fully_connected": (lambda x: tf.matmul(x, w_fc), [(1, 2048)], "mac"),
        "add": (lambda a, b: a + b, [(1, 128, 128, 64), (1, 128, 128, 64)], "element"),
        "mul": (lambda a, b: a * b, [(1, 128, 128, 64), (1, 128, 128, 64)], "element"),
        "concatenation": (
            lambda a, b: tf.concat([a, b], -1),
            [(1, 128, 128, 32), (1, 128, 128, 32)],
            "element",
        ),
        "resize_bilinear": (
            lambda x: tf.image.resize(x, (513, 513), "bilinear"),
            [(1, 33, 33, 21)],
            "element",
        ),
        "average_pool": (
            lambda x: tf.nn.avg_pool2d(x, 3, 1, "SAME"),
            [(1, 128, 128, 64)],
            "element",
        ),
        "max_pool": (
            lambda x: tf.nn.max_pool2d(x, 3, 2, "SAME"),
            [(1, 128, 128, 64)],
            "element",
        ),
        "softmax": (lambda x: tf.nn.softmax(x), [(1, 256, 1001)], "element"),
        "logistic": (lambda x: tf.sigmoid(x), [(1, 128, 128, 64)], "element"),
        "mean": (lambda x: tf.reduce_mean(x, [1, 2]), [(1, 128, 128, 64)], "element"),
        "arg_max": (lambda x: tf.argmax(x, -1), [(1, 513, 513, 21)], "element"),
        "transpose": (lambda x: tf.transpose(x, [0, 3, 1, 2]), [(1, 128, 128, 64)], "element"),
        # A requantization: an int8 tensor rescaled (the input's range differs from the output's).
        "quantize": (lambda x: tf.clip_by_value(x, -0.5, 0.5), [(1, 128, 128, 64)], "element"),
        # A one-element op: what any op costs the interpreter beyond its work.
        "one_element": (lambda a, b: a + b, [(1, 1), (1, 1)], "element"),
    }


def _work(model: bytes, unit: str) -> int:
    """Multiply-accumulates, or input plus output elements, of the model's one compute op."""
    sys.path.insert(0, str(REPO))
    from coralcheck.analyze.cost import op_macs
    from coralcheck.edgetpu.opview import OpView
    from coralcheck.model import load

    m = load(model)
    sg = m.main
    ops = [op for op in sg.operators if op.opcode not in ("QUANTIZE", "DEQUANTIZE")]
    op = ops[0] if ops else sg.operators[0]
    if unit == "mac":
        return op_macs(OpView(m, sg, op))
    tensors = [*sg.op_inputs(op), *sg.op_outputs(op)]
    return sum(t.num_elements for t in tensors if not t.is_constant)


def _fastest_seconds(model: bytes, runs: int) -> float:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    with tempfile.NamedTemporaryFile(suffix=".tflite", delete=False) as f:
        f.write(model)
    try:
        interpreter = Interpreter(model_path=f.name, num_threads=1)
        interpreter.allocate_tensors()
        for d in interpreter.get_input_details():
            interpreter.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        for _ in range(3):
            interpreter.invoke()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            interpreter.invoke()
            times.append(time.perf_counter() - start)
        return min(times)
    finally:
        os.unlink(f.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    results = {}
    for name, (fn, shapes, unit) in _cases().items():
        model = _int8(fn, shapes)
        seconds = _fastest_seconds(model, args.runs)
        work = _work(model, unit)
        results[name] = (seconds, work, unit)
        print(f"# {name:16} {seconds * 1e6:10.1f} us  {work:>12,} {unit}s", file=sys.stderr)
    op_us = results["one_element"][0] * 1e6
    machine = platform.processor() or platform.machine()
    print(f"# measured by benchmarks/latency_cpu_rates.py on {machine}")
    print(f"op_us = {op_us:.2f}")
    for name, (seconds, work, unit) in results.items():
        if name == "one_element":
            continue
        ns = max(seconds * 1e6 - op_us, 0.0) * 1e3 / work
        print(f"{name}_ns_per_{unit} = {ns:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
