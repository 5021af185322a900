"""Q: quantization. The Edge TPU computes only on 8-bit integers (int8/uint8, int32 bias).

Longer: the family's rules, a short function each, and Q009's look at every 8-bit tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from operator import attrgetter

from coralcheck.checks.context import CheckContext, chain, regions
from coralcheck.edgetpu.constraints import CONSTRAINT_CHECKS
from coralcheck.edgetpu.opview import OpView
from coralcheck.model.graph import Tensor
from coralcheck.model.packed import (
    PackedNumbers,
    all_positive,
    all_usable_per_channel,
    all_within,
    usable_per_channel,
)
from coralcheck.registry import finding, rule
from coralcheck.report import Finding
from coralcheck.wording import plural, quote

FLOAT = frozenset({"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"})
EIGHT_BIT = frozenset({"INT8", "UINT8"})
WIDE_INTEGER = frozenset({"INT32", "INT64", "UINT32", "UINT64", "BOOL"})
# Ops whose filter (input 1) and bias (input 2, or 3 for TRANSPOSE_CONV) are parameters.
WEIGHTED_OPS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}


def _float_ops(ctx: CheckContext) -> set[int]:
    """Ops computing on float tensors, apart from the FLOAT16-weight DEQUANTIZEs (Q004)."""
    operators = ctx.sg.operators
    return {
        i
        for i in ctx.prediction.ops_computing_on(FLOAT)
        if not operators[i].is_custom  # custom ops are O006's, whatever their types
        and not _weight_dequantize(ctx, i)
    }


def _weight_dequantize(ctx: CheckContext, index: int) -> bool:
    op = ctx.sg.operators[index]
    ins = ctx.sg.op_inputs(op)
    return op.opcode == "DEQUANTIZE" and bool(ins) and ins[0].is_constant


def _is_graph_io(ctx: CheckContext, t: Tensor) -> bool:
    return t.index in ctx.sg.inputs or t.index in ctx.sg.outputs


def _weighted_ops(ctx: CheckContext, applies: Callable[[OpView], bool]) -> list[int]:
    """The conv/FC ops (WEIGHTED_OPS) for which `applies`, ascending. `applies` reads only what
    op signatures hold: it is asked once per signature group."""
    found = []
    for group in ctx.prediction.groups:
        if group.opcode in WEIGHTED_OPS and applies(ctx.views[group.members[0]]):
            found.extend(group.members)
    found.sort()
    return found


def _bias_not_int32(v: OpView) -> bool:
    """An 8-bit op whose bias is not int32 (Q006)."""
    data = v.input(0) if v.op.opcode != "TRANSPOSE_CONV" else v.input(2)
    bias = v.input(WEIGHTED_OPS[v.op.opcode])
    return (
        bias is not None and data is not None and data.dtype in EIGHT_BIT and bias.dtype != "INT32"
    )


def _parameter_not_constant(v: OpView) -> bool:
    """The weights or the bias are present but not constant (Q007)."""
    for position in (1, WEIGHTED_OPS[v.op.opcode]):
        t = v.input(position)
        if t is not None and not t.is_constant:
            return True
    return False


def _constant_weights_required(ctx: CheckContext, v: OpView) -> bool:
    """Whether the target release's table (rules/ops.toml) keeps this op off the Edge TPU for
    its non-constant parameters: its `constant-weights` constraint fails."""
    return any(
        c.check == "constant-weights" and CONSTRAINT_CHECKS[c.check](v, c)
        for c in ctx.target.constraints(v.op.opcode)
    )


def _names(tensors: list[Tensor], limit: int = 3) -> str:
    shown = ", ".join(f"{quote(t.name)}" for t in tensors[:limit])
    return shown + (f" and {len(tensors) - limit} more" if len(tensors) > limit else "")


@rule("Q001")
def not_integer_quantized(ctx: CheckContext) -> Iterator[Finding]:
    """The Edge TPU runs only models that are fully 8-bit quantized.

    Every tensor an op computes on must be int8 or uint8 (biases int32). A float model, a
    float16-quantized model and a dynamic-range (weights-only) model all compute in float: the
    compiler rejects them ("Model not quantized") or maps nothing ("Number of Edge TPU subgraphs:
    0"), and every op runs on the CPU.

    Evidence: ../shared/edgetpu/compiler-logs/12_v14_1_model_not_quantized.log ("Model not
    quantized", google-coral/edgetpu#222) and 19_v14_1_zero_subgraphs_TRUNCATED.log (a float
    model: "Number of Edge TPU subgraphs: 0").
    """
    if ctx.integer_model:
        return
    floats = sorted(_float_ops(ctx))
    if not floats:
        return
    first = ctx.views[floats[0]]
    tensor = next(t for t in first.activations if t.dtype in FLOAT)
    yield finding(
        "Q001",
        f"not integer-quantized: all {len(floats)} compute ops run in {tensor.dtype} (first: "
        f"{ctx.label(first.op.index)} reads {quote(tensor.name)})",
        op=first.op.index,
        tensor=tensor.name,
        opcode=first.op.opcode,
    )


@rule("Q002")
def float_island(ctx: CheckContext) -> Iterator[Finding]:
    """Ops compute in float32 in the middle of an integer model.

    Converters leave an op in float when it has no int8 kernel (or when supported_ops allows the
    float fallback) and silently wrap it in DEQUANTIZE → float op → QUANTIZE. The float ops and
    their DEQUANTIZE/QUANTIZE run on the CPU, and everything after them does too: one float op
    can split an otherwise mappable model. A lone QUANTIZE/DEQUANTIZE at the model's float input
    or output is a different matter (I001).
    """
    if not ctx.integer_model:
        return
    sg = ctx.sg
    members = _float_ops(ctx)
    for group in regions(ctx, members, lambda t: t.dtype in FLOAT):
        boundary_only = all(
            sg.operators[i].opcode in ("QUANTIZE", "DEQUANTIZE")
            and any(t.dtype in FLOAT and _is_graph_io(ctx, t) for t in ctx.views[i].activations)
            for i in group
        )
        if boundary_only:
            continue
        compute = [i for i in group if sg.operators[i].opcode not in ("QUANTIZE", "DEQUANTIZE")]
        first = compute[0] if compute else group[0]
        floats = [t for i in group for t in ctx.views[i].activations if t.dtype in FLOAT]
        yield finding(
            "Q002",
            f"float island of {plural(len(group), 'op')}: {chain(ctx, group)} compute in "
            f"{floats[0].dtype} on the CPU",
            op=first,
            tensor=floats[0].name,
            opcode=sg.operators[first].opcode,
        )


@rule("Q003")
def hybrid_weights(ctx: CheckContext) -> Iterator[Finding]:
    """Dynamic-range quantization stores weights as int8 but computes in float.

    Each such op dequantizes its int8 weights and works on float32 activations at run time (a
    "hybrid" kernel). The Edge TPU needs the activations quantized too, so none of these ops can
    map. It is one converter setting for the whole model: a representative dataset.

    Evidence: ../shared/edgetpu/compiler-logs/12_v14_1_model_not_quantized.log (google-coral/
    edgetpu#222: a TF 2.3 Keras conversion without full-integer quantization, "Model not
    quantized").
    """
    # Decided per signature group (dtypes and constness are the same for all its ops).
    hybrid_ops: list[int] = []
    for group in ctx.prediction.groups:
        if group.types.isdisjoint(FLOAT) or group.opcode in ("QUANTIZE", "DEQUANTIZE"):
            continue
        if any(t.is_constant and t.dtype in EIGHT_BIT for t in ctx.views[group.members[0]].inputs):
            hybrid_ops.extend(group.members)
    if not hybrid_ops:
        return
    hybrid_ops.sort()
    first = hybrid_ops[0]
    example = ctx.views[first]
    weights = next(t for t in example.inputs if t.is_constant and t.dtype in EIGHT_BIT)
    floats = next(t for t in example.activations if t.dtype in FLOAT)
    yield finding(
        "Q003",
        f"{plural(len(hybrid_ops), 'dynamic-range (hybrid) op')}: "
        f"{chain(ctx, hybrid_ops, sep=', ')}"
        f"; e.g. {ctx.label(first)} has {weights.dtype} weights {quote(weights.name)} but "
        f"{floats.dtype} activations ({quote(floats.name)})",
        op=first,
        tensor=weights.name,
        opcode=ctx.sg.operators[first].opcode,
    )


@rule("Q004")
def float16_weights(ctx: CheckContext) -> Iterator[Finding]:
    """Float16 quantization only halves the stored weights; the model still computes in float.

    Each FLOAT16 constant is expanded to float32 by a DEQUANTIZE at run time, and the ops that use
    it compute in float32 on the CPU. The Edge TPU needs int8 weights and activations.

    Evidence: the same float compute as an unquantized model:
    ../shared/edgetpu/compiler-logs/12_v14_1_model_not_quantized.log and
    19_v14_1_zero_subgraphs_TRUNCATED.log.
    """
    halves = [t for t in ctx.sg.tensors if t.dtype == "FLOAT16" and t.is_constant]
    if not halves:
        return
    users = [c for t in halves for c in ctx.consumers(t)]
    first = min(users) if users else None
    where = f", expanded by {ctx.label(first)}" if first is not None else ""
    yield finding(
        "Q004",
        f"{plural(len(halves), 'FLOAT16 constant')} ({_names(halves)}){where}: float16 weights, "
        "float compute",
        op=first,
        tensor=halves[0].name,
        opcode=ctx.sg.operators[first].opcode if first is not None else None,
    )


@rule("Q005")
def int16_activations(ctx: CheckContext) -> Iterator[Finding]:
    """16-bit activations (16x8 quantization) do not run on the Edge TPU.

    TFLite's int16-activation mode (EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8)
    keeps activations in 16 bits for accuracy; the Edge TPU computes in 8 bits only, so these ops
    stay on the CPU. (LSTM state tensors are exempt: the compiler maps int8 LSTMs with an int16
    cell state.)
    """
    members = set(ctx.prediction.ops_computing_on({"INT16"}))
    for group in regions(ctx, members, lambda t: t.dtype == "INT16"):
        tensors = [t for i in group for t in ctx.views[i].activations if t.dtype == "INT16"]
        yield finding(
            "Q005",
            f"{plural(len(group), 'op')} compute on INT16 tensors: {chain(ctx, group)} (first "
            f"tensor {quote(tensors[0].name)})",
            op=group[0],
            tensor=tensors[0].name,
            opcode=ctx.sg.operators[group[0]].opcode,
        )


@rule("Q006")
def bias_not_int32(ctx: CheckContext) -> Iterator[Finding]:
    """Edge TPU convolutions and fully connected layers take a 32-bit integer bias.

    With 8-bit weights and activations the bias must be int32 (scale = input scale x weight
    scale). Another bias type (int64 from 16x8 quantization, float from a partial conversion)
    means the op is not an Edge TPU op.
    """
    for i in _weighted_ops(ctx, _bias_not_int32):
        v = ctx.views[i]
        bias = v.input(WEIGHTED_OPS[v.op.opcode])
        assert bias is not None  # as _bias_not_int32 found
        yield finding(
            "Q006",
            f"{ctx.label(i)} has {bias.dtype} bias {quote(bias.name)} (int32 needed)",
            op=i,
            tensor=bias.name,
            opcode=v.op.opcode,
        )


@rule("Q007")
def weights_not_constant(ctx: CheckContext) -> Iterator[Finding]:
    """Model parameters must be constant at compile time.

    The compiler bakes filters and biases into the Edge TPU program and its parameter cache. A
    filter or bias that is a graph input or the result of another op (e.g. a matrix product of
    two activations, as in attention) cannot be compiled: the op stays on the CPU.
    """
    for i in _weighted_ops(ctx, _parameter_not_constant):
        v = ctx.views[i]
        if not _constant_weights_required(ctx, v):
            continue  # the target maps it all the same (16.0: a constant input, rules/ops.toml)
        for role, position in (("weights", 1), ("bias", WEIGHTED_OPS[v.op.opcode])):
            t = v.input(position)
            if t is None or t.is_constant:
                continue
            source = ctx.producer(t)
            if source is not None and _weight_dequantize(ctx, source):
                continue  # float16 weights expanded at run time: Q004
            origin = f"the output of {ctx.label(source)}" if source is not None else "a graph input"
            yield finding(
                "Q007",
                f"{ctx.label(i)} takes its {role} {quote(t.name)} from {origin}",
                op=i,
                tensor=t.name,
                opcode=v.op.opcode,
            )
            break


@rule("Q008")
def integer_arithmetic(ctx: CheckContext) -> Iterator[Finding]:
    """Ops compute on 32/64-bit integers or booleans: index and shape arithmetic.

    Shape computations (SHAPE, PACK, STRIDED_SLICE on int32), index maths after ARG_MAX and
    casts to integer types run on the CPU: the Edge TPU only handles 8-bit tensors. Harmless at
    the very end of a model, but inside it they split the Edge TPU segment.
    """
    # Ops the Edge TPU could run but for the data type; unsupported op types are O001's.
    members = {
        i
        for group in ctx.prediction.groups
        if not group.types.isdisjoint(WIDE_INTEGER)
        and group.types.isdisjoint(FLOAT)
        and ctx.target.supports(group.opcode)
        for i in group.members
    }
    for group in regions(ctx, members, lambda t: t.dtype in WIDE_INTEGER):
        tensors = [t for i in group for t in ctx.views[i].activations if t.dtype in WIDE_INTEGER]
        yield finding(
            "Q008",
            f"{plural(len(group), 'op')} compute on {tensors[0].dtype} tensors: "
            f"{chain(ctx, group)}",
            op=group[0],
            tensor=tensors[0].name,
            opcode=ctx.sg.operators[group[0]].opcode,
        )


ZERO_POINT_RANGE = {"INT8": (-128, 127), "UINT8": (0, 255)}


def _broken_quantization(t: Tensor) -> str | None:
    """Why an 8-bit tensor's scale/zero point cannot be used, or None when they can."""
    q = t.quantization
    if q is None or not q.is_set:
        return None
    # (all_positive and all_within read per-channel arrays from the file's bytes, not as
    # hundreds of Python numbers.)
    if not all_positive(q.scale):
        bad = next(s for s in q.scale if not math.isfinite(s) or s <= 0)
        return f"scale {bad!r} (must be a finite number above 0)"
    if q.zero_point and len(q.zero_point) not in (1, len(q.scale)):
        return f"{len(q.scale)} scales but {len(q.zero_point)} zero points"
    low, high = ZERO_POINT_RANGE[t.dtype]
    if not all_within(q.zero_point, low, high):
        outside = next(z for z in q.zero_point if not low <= z <= high)
        return f"zero point {outside} (outside {t.dtype}'s {low}..{high})"
    if q.per_channel and t.shape and not 0 <= q.quantized_dimension < len(t.shape):
        return f"quantized dimension {q.quantized_dimension} for a rank-{len(t.shape)} tensor"
    return None


def _suspect_quantization(tensors: Sequence[Tensor]) -> list[Tensor]:
    """The 8-bit tensors whose parameters `_broken_quantization` must look at, in tensor order:
    all but those with the usual ones. Those are accepted without it: per tensor (~0.4 µs a
    tensor; NaN fails `<`), and per channel from the bytes the reader left packed, all of one
    type at once (`all_usable_per_channel`: ~0.5 µs a tensor instead of ~25 µs decoded, 7,000
    weights and biases of 32 to 132 channels in 3 ms)."""
    suspects = []
    packed: dict[str, list[Tensor]] = {}  # per type: per-channel tensors left packed
    for t in tensors:
        if t.dtype not in EIGHT_BIT or t.quantization is None:
            continue
        scale, zero_point, dimension = t.quantization[:3]
        if type(scale) is PackedNumbers:
            if type(zero_point) is PackedNumbers and 0 <= dimension < len(t.shape):
                packed.setdefault(t.dtype, []).append(t)
                continue
        elif len(scale) == 1 and len(zero_point) == 1:
            low, high = ZERO_POINT_RANGE[t.dtype]
            if 0.0 < scale[0] < math.inf and low <= zero_point[0] <= high:
                continue
        suspects.append(t)
    for dtype, group in packed.items():
        low, high = ZERO_POINT_RANGE[dtype]
        pairs = [t.quantization[:2] for t in group]
        if not all_usable_per_channel(pairs, low, high):  # (then tensor by tensor)
            usable = [usable_per_channel(*pair, low, high) for pair in pairs]
            suspects += [t for t, ok in zip(group, usable, strict=True) if not ok]
            suspects.sort(key=_INDEX)
    return suspects


_INDEX = attrgetter("index")


@rule("Q009")
def broken_quantization(ctx: CheckContext) -> Iterator[Finding]:
    """An 8-bit tensor has quantization parameters no runtime can use.

    Every int8/uint8 tensor maps integers to reals with real = scale x (q - zero_point). A scale
    that is zero, negative, NaN or infinite, a zero point outside the type's range, or
    per-channel arrays that do not match the tensor make that mapping meaningless: the compiler
    and the TFLite runtime reject the model or compute garbage. Such files come from hand-edited
    or damaged models, or from broken export tools, never from a healthy conversion.

    Evidence: tests/test_checks_broken_quantization.py runs each such model in LiteRT, which
    refuses it (XNNPACK: "unsupported scale value", TFLite: "invalid quantization parameters")
    or, for a uint8 zero point above 255, computes outputs that cannot represent 0.
    """
    for t in _suspect_quantization(ctx.sg.tensors):
        problem = _broken_quantization(t)
        if problem is None:
            continue
        producer = ctx.sg.producers[t.index]
        readers = ctx.sg.consumers[t.index]
        op = producer if producer is not None else (readers[0] if readers else None)
        yield finding(
            "Q009",
            f"tensor {quote(t.name)} ({t.dtype}) has {problem}",
            op=op,
            tensor=t.name,
            opcode=ctx.sg.operators[op].opcode if op is not None else None,
        )
