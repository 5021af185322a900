"""Which activation functions a TFLite model uses, recognised from its ops.

SiLU/swish has no op of its own: the converter emits LOGISTIC + MUL (x · sigmoid(x)). ReLU and
ReLU6 are usually fused into the preceding conv/FC/add (`fused_activation_function`).
"""

from __future__ import annotations

from collections import Counter

from coralcheck.model import Model

# Standalone activation ops -> the name users know.
ACTIVATION_OPCODES: dict[str, str] = {
    "RELU": "ReLU",
    "RELU6": "ReLU6",
    "RELU_N1_TO_1": "ReLU(-1..1)",
    "PRELU": "PReLU",
    "LOGISTIC": "sigmoid",
    "TANH": "tanh",
    "HARD_SWISH": "HardSwish",
    "GELU": "GELU",
    "LEAKY_RELU": "LeakyReLU",
    "ELU": "ELU",
}
FUSED_ACTIVATIONS: dict[str, str] = {
    "RELU": "ReLU",
    "RELU6": "ReLU6",
    "RELU_N1_TO_1": "ReLU(-1..1)",
    "TANH": "tanh",
}


def activation_ops(model: Model) -> dict[int, str]:
    """Op index -> pattern, for ops making up a SiLU (LOGISTIC + MUL), HardSwish or GELU."""
    sg = model.main
    found: dict[int, str] = {}
    for op in sg.operators:
        if op.opcode == "HARD_SWISH":
            found[op.index] = "HardSwish"
        elif op.opcode == "GELU":
            found[op.index] = "GELU"
        elif op.opcode == "MUL" and len(op.inputs) == 2:
            for a, b in (op.inputs, op.inputs[::-1]):
                producer = sg.producer_of(b) if b >= 0 else None
                is_sigmoid = producer is not None and producer.opcode == "LOGISTIC"
                if is_sigmoid and producer.inputs[:1] == (a,):
                    found[op.index] = found[producer.index] = "SiLU"
    return found


def activation_summary(model: Model) -> dict[str, int]:
    """How many activations of each kind the main subgraph computes (fused ones included)."""
    in_pattern = activation_ops(model)
    counts: Counter[str] = Counter()
    for op in model.main.operators:
        if op.index in in_pattern:
            if op.opcode != "LOGISTIC":  # count a SiLU once, at its MUL
                counts[in_pattern[op.index]] += 1
        elif op.opcode in ACTIVATION_OPCODES:
            counts[ACTIVATION_OPCODES[op.opcode]] += 1
        else:
            fused = FUSED_ACTIVATIONS.get(str(op.options.get("fused_activation_function", "")))
            if fused:
                counts[f"{fused} (fused)"] += 1
    return dict(counts.most_common())
