"""A: activations. What each activation lowers to, whether it maps, what to use instead
(rules/activations.toml)."""

from __future__ import annotations

from collections.abc import Iterator

from coralcheck.checks.context import CheckContext, chain
from coralcheck.registry import finding, rule
from coralcheck.report import Finding
from coralcheck.wording import plural

# The unsupported activations that TFLite emits as one builtin, by rule code.
_SINGLE_OP_ACTIVATIONS = {"A002": "HARD_SWISH", "A003": "LEAKY_RELU", "A004": "GELU", "A005": "ELU"}
_SINGLE_OP_ACTIVATION_OPCODES = frozenset(_SINGLE_OP_ACTIVATIONS.values())


def activation_ops(ctx: CheckContext) -> set[int]:
    """Indices of the ops the A-family reports as unsupported activations (O001 skips them)."""
    return set(ctx.prediction.ops_of(_SINGLE_OP_ACTIVATION_OPCODES))


def _facts(ctx: CheckContext, key: str):
    return ctx.target.knowledge.activations[key]


def silu_patterns(ctx: CheckContext) -> list[tuple[int, int]]:
    """(LOGISTIC op, MUL op) pairs computing x * sigmoid(x)."""
    sg = ctx.sg
    found = []
    for i in ctx.prediction.ops_of({"LOGISTIC"}):
        op = sg.operators[i]
        if not op.inputs or not op.outputs:
            continue
        x, sig = op.inputs[0], op.outputs[0]
        for j in sg.consumers[sig]:
            mul = sg.operators[j]
            if mul.opcode == "MUL" and sorted(mul.inputs) == sorted((x, sig)):
                found.append((op.index, j))
    return found


def mish_patterns(ctx: CheckContext) -> list[list[int]]:
    """Op indices of each x * tanh(softplus(x)), softplus lowered to EXP/ADD/LOG."""
    sg = ctx.sg
    found = []
    for i in ctx.prediction.ops_of({"TANH"}):
        tanh = sg.operators[i]
        if not tanh.inputs or not tanh.outputs:
            continue
        # Walk up at most 3 producers (LOG <- ADD <- EXP) looking for the softplus ops.
        members, tensor, x = [], tanh.inputs[0], None
        for _ in range(3):
            producer = sg.producers[tensor] if tensor >= 0 else None
            if producer is None:
                break
            op = sg.operators[producer]
            if op.opcode not in ("EXP", "LOG", "ADD", "SOFTPLUS"):
                break
            members.append(producer)
            data = [i for i in op.inputs if i >= 0 and not sg.tensors[i].is_constant]
            if not data:
                break
            tensor = x = data[0]
        if x is None or not {"EXP", "LOG", "SOFTPLUS"} & {sg.operators[m].opcode for m in members}:
            continue
        for j in sg.consumers[tanh.outputs[0]]:
            mul = sg.operators[j]
            if mul.opcode == "MUL" and x in mul.inputs:
                found.append(sorted([*members, tanh.index, j]))
    return found


@rule("A001")
def silu_activation(ctx: CheckContext) -> Iterator[Finding]:
    """SiLU/Swish maps to the Edge TPU, but ReLU is cheaper and quantizes better.

    TFLite has no SiLU op: x * sigmoid(x) becomes LOGISTIC + MUL, two extra ops per activation
    (both map with compiler 16.0). A ReLU or ReLU6 fuses into the preceding convolution at no
    cost. SiLU's output range (from -0.28, unbounded above) also quantizes worse than ReLU6's
    fixed [0, 6]: an int8 scale spread over outliers and the negative tail leaves fewer codes for
    the values that matter. Keep SiLU where accuracy needs it; it is not a blocker.
    """
    pairs = silu_patterns(ctx)
    if not pairs:
        return
    facts = _facts(ctx, "SILU")
    first = pairs[0]
    on_cpu = sum(1 for pair in pairs for i in pair if ctx.prediction.ops[i].placement == "cpu")
    where = f"; {on_cpu} of their ops run on the CPU for other reasons" if on_cpu else ""
    yield finding(
        "A001",
        f"{plural(len(pairs), 'SiLU activation')} (LOGISTIC + MUL on the same input), first at ops "
        f"{first[0]}-{first[1]}: they map, but cost {2 * len(pairs)} extra ops that a fused "
        f"ReLU/ReLU6 would not, and quantize worse than ReLU6's fixed [0, 6] range{where}",
        op=first[0],
        opcode="LOGISTIC",
        fix=(
            f"Where accuracy allows, use {facts['replacement']}. Compare both variants first: "
            "`coralcheck compare silu.tflite relu.tflite --data DATA --reference float.tflite`."
        ),
    )


def _single_op(ctx: CheckContext, code: str) -> Iterator[Finding]:
    opcode = _SINGLE_OP_ACTIVATIONS[code]
    facts = _facts(ctx, opcode)
    found = ctx.prediction.ops_of({opcode})
    if not found:
        return
    # What an activation keeps off the Edge TPU after it is G001's (or G004's), on the same op:
    # the messages here say only what the op is, so that repeats group into one finding.
    for i in found:
        op = ctx.sg.operators[i]
        detail = f", alpha {op.options['alpha']:.3g}" if "alpha" in op.options else ""
        placement = ctx.prediction.ops[op.index]
        yield finding(
            code,
            f"{ctx.label(op.index)}{detail}: {facts['name']} is not an Edge TPU op "
            f"({placement.status})",
            op=op.index,
            opcode=opcode,
            fix=f"Use {facts['replacement']}.",
        )


@rule("A002")
def hard_swish(ctx: CheckContext) -> Iterator[Finding]:
    """HardSwish (MobileNetV3, early YOLOv5) is not supported by the Edge TPU.

    The converter fuses x * relu6(x + 3) / 6 into a single HARD_SWISH op that the compiler
    cannot map, so the first one ends the Edge TPU segment: Coral users saw MobileNetV3 take
    200 ms instead of 12 ms. Written with the 1/6 first, x * (1/6) * relu6(x + 3), it is not
    fused and maps (MUL, ADD, MUL); ReLU/ReLU6 (MobileNetV3 minimalistic) avoid the cost
    altogether.
    """
    yield from _single_op(ctx, "A002")


@rule("A003")
def leaky_relu(ctx: CheckContext) -> Iterator[Finding]:
    """LeakyReLU is not supported by the Edge TPU.

    LEAKY_RELU has no Edge TPU implementation; in networks with a LeakyReLU after every
    convolution (YOLOv3/v4, many GAN and pose models) the whole model ends up on the CPU. PReLU
    (with a learned, constant alpha) maps, and so does max(x, alpha * x) written as MUL and
    MAXIMUM.
    """
    yield from _single_op(ctx, "A003")


@rule("A004")
def gelu(ctx: CheckContext) -> Iterator[Finding]:
    """GELU is not supported by the Edge TPU.

    TFLite's GELU builtin (transformer and ConvNeXt-style models) cannot map, and neither can its
    tanh approximation's POW. x * sigmoid(1.702 * x) (MUL, LOGISTIC, MUL) approximates it with
    mappable ops; ReLU or SiLU are the usual replacements.
    """
    yield from _single_op(ctx, "A004")


@rule("A005")
def elu(ctx: CheckContext) -> Iterator[Finding]:
    """ELU (and SELU) are not supported by the Edge TPU.

    Both need an exponential, which the Edge TPU does not have; the op and everything after it
    run on the CPU. ReLU or PReLU map.
    """
    yield from _single_op(ctx, "A005")


@rule("A006")
def mish(ctx: CheckContext) -> Iterator[Finding]:
    """Mish (x * tanh(softplus(x))) is not supported by the Edge TPU.

    softplus(x) = log(1 + exp(x)) lowers to EXP, ADD and LOG, none of which the Edge TPU maps
    (TANH and MUL would), so every Mish splits the model. A YOLOv4 user who replaced Mish and
    LeakyReLU with PReLU got most of the model mapped.
    """
    facts = _facts(ctx, "MISH")
    for pattern in mish_patterns(ctx):
        yield finding(
            "A006",
            f"Mish at {chain(ctx, pattern)}: softplus's EXP/LOG do not map",
            op=pattern[0],
            opcode=ctx.sg.operators[pattern[0]].opcode,
            fix=f"Use {facts['replacement']}.",
        )
