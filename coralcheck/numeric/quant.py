"""Quantization error: run the float and the quantized model on the same samples and compare.

Per output: cosine, SNR, max/mean absolute error, top-1 agreement for classifiers. Per layer
(tensors matched by name, which the TFLite converter keeps between a float and an int8
conversion of the same model): the same metrics, and where the error *jumps*: the SNR falls
by `JUMP_DB` or more across one op and ends below `EIGHT_BIT_SNR_DB`. Layers that are, or
come right after, SiLU, HardSwish or GELU are flagged: those activations lose more precision
in int8 than ReLU does.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coralcheck.errors import UsageError
from coralcheck.model import Model
from coralcheck.numeric.activations import activation_ops
from coralcheck.numeric.metrics import ErrorStats, TopOneAgreement, is_classifier_output
from coralcheck.numeric.runner import ModelRunner, TensorInfo
from coralcheck.numeric.samples import Sample, progress

JUMP_DB = 6.0  # one bit of precision lost across a single op
# What 8 bits give a well-calibrated tensor (~6 dB per bit, minus the clipping/range waste):
# a drop that stays above it is the normal price of int8, not a problem layer.
EIGHT_BIT_SNR_DB = 40.0
FLOAT_TENSOR_TYPES = frozenset({"FLOAT32", "FLOAT16", "FLOAT64"})


@dataclass(slots=True)
class OutputError:
    """The error of one model output against the reference."""

    index: int
    name: str
    shape: tuple[int, ...]
    stats: ErrorStats = field(default_factory=ErrorStats)
    top1: TopOneAgreement | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "shape": list(self.shape),
            **self.stats.to_dict(),
            "top1_agreement": None if self.top1 is None else round(self.top1.rate, 4),
        }


@dataclass(slots=True)
class LayerError:
    """The error of one intermediate tensor (an op's output), matched by name."""

    op: int | None  # None for a graph input
    opcode: str
    tensor: str
    stats: ErrorStats = field(default_factory=ErrorStats)
    snr_drop_db: float | None = None  # SNR of the op's inputs minus SNR of its output
    activation: str | None = None  # "SiLU" (part of it) or "after SiLU" (its consumer)

    @property
    def jump(self) -> bool:
        return (
            self.snr_drop_db is not None
            and self.snr_drop_db >= JUMP_DB
            and self.stats.snr_db < EIGHT_BIT_SNR_DB
        )

    def to_dict(self) -> dict[str, Any]:
        drop = self.snr_drop_db
        return {
            "op": self.op,
            "opcode": self.opcode,
            "tensor": self.tensor,
            **self.stats.to_dict(),
            "snr_drop_db": None if drop is None or not math.isfinite(drop) else round(drop, 2),
            "jump": self.jump,
            "activation": self.activation,
        }


@dataclass(slots=True)
class QuantError:
    """Everything `coralcheck quant` reports."""

    reference: str
    model: str
    runtime: str
    samples: int
    inputs: list[TensorInfo]
    output_infos: list[TensorInfo]
    outputs: list[OutputError]
    layers: list[LayerError] = field(default_factory=list)
    tensors_compared: int = 0
    # Why the two models look like different models (empty when they look like one model).
    different_models: list[str] = field(default_factory=list)

    @property
    def worst_cosine(self) -> float:
        return min(o.stats.cosine for o in self.outputs)

    @property
    def worst_snr_db(self) -> float:
        return min(o.stats.snr_db for o in self.outputs)

    @property
    def top1_agreement(self) -> float | None:
        rates = [o.top1.rate for o in self.outputs if o.top1 is not None]
        return min(rates) if rates else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "model": self.model,
            "runtime": self.runtime,
            "samples": self.samples,
            "inputs": [_io_dict(i) for i in self.inputs],
            "outputs": [
                {**_io_dict(info), **o.to_dict()}
                for info, o in zip(self.output_infos, self.outputs, strict=True)
            ],
            "layers": [layer.to_dict() for layer in self.layers],
            "layers_compared": self.tensors_compared,
            "different_models": list(self.different_models),
            "snippet": io_snippet(self.inputs, self.output_infos),
        }


def _io_dict(info: TensorInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "dtype": info.dtype,
        "shape": list(info.shape),
        "scale": info.scale if info.is_quantized else None,
        "zero_point": info.zero_point if info.is_quantized else None,
    }


def _pair(reference: list[TensorInfo], test: list[TensorInfo], role: str, path: str) -> list[int]:
    """For each reference I/O tensor, the index of the test one: by name, else by position."""
    if len(reference) != len(test):
        raise UsageError(path, f"has {len(test)} {role}s, the reference {len(reference)}")
    names = [t.name for t in test]
    order = (
        [names.index(r.name) for r in reference]
        if {r.name for r in reference} == set(names)
        else list(range(len(test)))
    )
    for r, i in zip(reference, order, strict=True):
        if r.shape != test[i].shape:
            raise UsageError(
                path,
                f"{role} {test[i].name!r} has shape {list(test[i].shape)}, the reference's "
                f"{r.name!r} {list(r.shape)}",
            )
    return order


# Ops with trained filters: the same model keeps their filter shapes in every conversion.
FILTER_OPS = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D"}
)
# What a quantizing conversion adds or removes at the edges and around float ops.
BOUNDARY_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})


def _op_counts(model: Model) -> Counter[str]:
    return Counter(op.opcode for op in model.main.operators if op.opcode not in BOUNDARY_OPS)


def _filters(model: Model) -> Counter[tuple[str, tuple[int, ...]]]:
    sg = model.main
    found: Counter[tuple[str, tuple[int, ...]]] = Counter()
    for op in sg.operators:
        if op.opcode in FILTER_OPS and len(op.inputs) > 1 and op.inputs[1] >= 0:
            found[(op.opcode, tuple(sg.tensors[op.inputs[1]].shape))] += 1
    return found


def _difference(a: Counter[Any], b: Counter[Any], show: Any = str) -> str:
    """`a` minus `b` in words, the first few: "2 LOGISTIC, 1 MUL"."""
    extra = sorted((a - b).items(), key=lambda item: (-item[1], str(item[0])))
    words = [f"{n} {show(key)}" for key, n in extra[:4]]
    return ", ".join(words) + (" and more" if len(extra) > 4 else "") if words else "nothing"


def different_models(reference: Model, test: Model, matched: int) -> list[str]:
    """Why QUANT does not look like a conversion of the same model as FLOAT ([] if it does).

    A float and an int8 conversion of one model have the same ops apart from QUANTIZE and
    DEQUANTIZE, the same filter shapes, and (the converter keeps names) most op outputs named
    alike; `matched` is the number of tensors matched by name.
    """
    reasons = []
    ref_filters, test_filters = _filters(reference), _filters(test)
    if ref_filters != test_filters:

        def filter_text(key: tuple[str, tuple[int, ...]]) -> str:
            return f"{key[0]} {'x'.join(map(str, key[1]))}"

        reasons.append(
            f"their filters differ (only in FLOAT: "
            f"{_difference(ref_filters, test_filters, filter_text)}; only in QUANT: "
            f"{_difference(test_filters, ref_filters, filter_text)})"
        )
    ref_ops, test_ops = _op_counts(reference), _op_counts(test)
    if ref_ops != test_ops:
        reasons.append(
            f"their ops differ (only in FLOAT: {_difference(ref_ops, test_ops)}; only in "
            f"QUANT: {_difference(test_ops, ref_ops)})"
        )
    outputs = sum(1 for op in test.main.operators if op.opcode not in BOUNDARY_OPS)
    if outputs and matched < outputs / 2:
        reasons.append(
            f"only {matched} of QUANT's {outputs} op outputs match a FLOAT tensor by name"
        )
    return reasons


def _activation_label(model: Model, op_index: int, activations: dict[int, str]) -> str | None:
    """The activation an op is part of ("SiLU"), or reads the result of ("after SiLU")."""
    if op_index in activations:
        return activations[op_index]
    sg = model.main
    for predecessor in sg.predecessors(sg.operators[op_index]):
        if predecessor in activations and sg.operators[predecessor].opcode != "LOGISTIC":
            return f"after {activations[predecessor]}"
    return None


def _matched_tensors(
    reference: ModelRunner, test: ModelRunner
) -> list[tuple[int | None, int, int]]:
    """(op index, test tensor, reference tensor) for tensors present in both by name.

    Graph inputs come first (op None: their error is the input quantization), then op
    outputs in op order.
    """
    ref_sg, test_sg = reference.model.main, test.model.main
    ref_by_name = {
        t.name: t.index
        for t in ref_sg.tensors
        if t.dtype in FLOAT_TENSOR_TYPES and t.index in reference.tensors
    }
    candidates: list[tuple[int | None, int]] = [(None, i) for i in test_sg.inputs]
    candidates += [(op.index, i) for op in test_sg.operators for i in op.outputs if i >= 0]
    pairs = []
    for op_index, tensor in candidates:
        ref_index = ref_by_name.get(test_sg.tensors[tensor].name)
        info = test.tensors.get(tensor)
        if ref_index is None or info is None:
            continue
        if info.shape != reference.tensors[ref_index].shape:
            continue
        if info.is_quantized or test_sg.tensors[tensor].dtype in FLOAT_TENSOR_TYPES:
            pairs.append((op_index, tensor, ref_index))
    return pairs


def compare_models(
    reference: ModelRunner,
    test: ModelRunner,
    samples: Sequence[Sample],
    *,
    layers: bool = True,
) -> QuantError:
    """Run both models on `samples` (floats, in the reference's input order) and compare."""
    input_order = _pair(reference.inputs, test.inputs, "input", test.path)
    output_order = _pair(reference.outputs, test.outputs, "output", test.path)
    outputs = [
        OutputError(
            i,
            test.outputs[j].name,
            test.outputs[j].shape,
            top1=TopOneAgreement() if is_classifier_output(test.outputs[j].shape) else None,
        )
        for i, j in enumerate(output_order)
    ]
    pairs = _matched_tensors(reference, test) if layers else []
    layer_stats = {t: ErrorStats() for _, t, _ in pairs}
    for sample in progress(samples, len(samples), "comparing the models"):
        ref_out = reference.run(sample)
        test_in: list[np.ndarray] = [np.empty(0)] * len(sample)
        for ref_position, test_position in enumerate(input_order):
            test_in[test_position] = sample[ref_position]
        test_out = test.run(test_in)
        for out, j in zip(outputs, output_order, strict=True):
            out.stats.update(ref_out[out.index], test_out[j])
            if out.top1 is not None:
                out.top1.update(ref_out[out.index], test_out[j])
        for _, t, r in pairs:
            layer_stats[t].update(reference.value(r), test.value(t))
    result = QuantError(
        reference=reference.path,
        model=test.path,
        runtime=test.runtime,
        samples=len(samples),
        inputs=[test.inputs[j] for j in input_order],
        output_infos=[test.outputs[j] for j in output_order],
        outputs=outputs,
        tensors_compared=len(pairs),
        different_models=different_models(reference.model, test.model, len(pairs)),
    )
    if layers:
        result.layers = _layer_rows(test.model, pairs, layer_stats)
    return result


def _layer_rows(
    model: Model, pairs: list[tuple[int | None, int, int]], stats: dict[int, ErrorStats]
) -> list[LayerError]:
    """One row per matched tensor, in op order, with the SNR drop across its op."""
    sg = model.main
    activations = activation_ops(model)
    memo: dict[int, float] = {}

    def upstream_snr(tensor: int) -> float:
        """SNR of the nearest compared tensors feeding `tensor` (inf: exact, e.g. a graph input)."""
        if tensor in stats:
            return stats[tensor].snr_db
        if tensor not in memo:
            memo[tensor] = math.inf  # cycles cannot happen in TFLite; this also ends recursion
            producer = sg.producer_of(tensor)
            if producer is not None:
                memo[tensor] = min(
                    (upstream_snr(t.index) for t in sg.op_inputs(producer) if not t.is_constant),
                    default=math.inf,
                )
        return memo[tensor]

    rows = []
    for op_index, tensor, _ in pairs:
        if op_index is None:  # a graph input: its error is the input quantization alone
            rows.append(LayerError(None, "input", sg.tensors[tensor].name, stats[tensor]))
            continue
        op = sg.operators[op_index]
        before = min(
            (upstream_snr(t.index) for t in sg.op_inputs(op) if not t.is_constant),
            default=math.inf,
        )
        after = stats[tensor].snr_db
        drop = before - after if math.isfinite(before) and math.isfinite(after) else None
        rows.append(
            LayerError(
                op=op_index,
                opcode=op.opcode,
                tensor=sg.tensors[tensor].name,
                stats=stats[tensor],
                snr_drop_db=drop,
                activation=_activation_label(model, op_index, activations),
            )
        )
    return rows


def io_snippet(inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]) -> str:
    """numpy code converting float inputs to the model's integers and its outputs back."""
    # Two blank lines between definitions, so the pasted snippet is PEP 8 clean.
    lines = ["import numpy as np", "", ""]
    for role, infos in (("input", inputs), ("output", outputs)):
        for n, info in enumerate(infos):
            suffix = f"_{n}" if len(infos) > 1 else ""
            shape = "x".join(str(d) for d in info.shape)
            if not info.is_quantized:
                lines += [f"# {role} {info.name!r} ({info.dtype} {shape}) is not quantized", ""]
                continue
            if len(info.scales) > 1:
                lines += [f"# {role} {info.name!r} is quantized per axis: see its details", ""]
                continue
            limits = np.iinfo(np.dtype(info.dtype))
            if role == "input":
                lines += [
                    f"def quantize_input{suffix}(x):",
                    f'    """float32 -> {info.dtype} for input {info.name!r} ({shape})."""',
                    f"    q = np.round(x / {info.scale!r}) + {info.zero_point}",
                    f"    return np.clip(q, {limits.min}, {limits.max}).astype(np.{info.dtype})",
                    "",
                    "",
                ]
            else:
                lines += [
                    f"def dequantize_output{suffix}(q):",
                    f'    """{info.dtype} -> float32 for output {info.name!r} ({shape})."""',
                    f"    return (q.astype(np.float32) - {info.zero_point}) * {info.scale!r}",
                    "",
                    "",
                ]
    return "\n".join(lines).rstrip() + "\n"
