"""What a report shows of any model, compiled or not: its inputs and outputs with their
quantization contract, the shapes of its ops' tensors (`-v`) and how often each op type occurs."""

from __future__ import annotations

from collections import Counter

from coralcheck.model import Model
from coralcheck.report import IOTensor


def io_tensors(model: Model) -> list[IOTensor]:
    """The main subgraph's inputs and outputs with their quantization contract."""
    sg = model.main
    out = []
    for role, indices in (("input", sg.inputs), ("output", sg.outputs)):
        for i in indices:
            t = sg.tensors[i]
            q = t.quantization
            scale = q.scale[0] if q is not None and len(q.scale) == 1 else None
            zp = int(q.zero_point[0]) if q is not None and len(q.zero_point) == 1 else None
            out.append(
                IOTensor(role, i, t.name, t.dtype, t.shape, t.shape_signature, scale, zp)  # type: ignore[arg-type]
            )
    return out


def op_shapes(model: Model) -> list[list[list[list[int]]]]:
    """Per op of the main subgraph: [its non-constant input shapes, its output shapes]; a
    dimension known only at run time is -1 (from the shape signature)."""
    sg = model.main
    tensors = sg.tensors
    n = len(tensors)

    def shape(i: int) -> list[int]:
        t = tensors[i]
        return list(t.shape_signature or t.shape)

    return [
        [
            [shape(i) for i in op.inputs if 0 <= i < n and not tensors[i].is_constant],
            [shape(i) for i in op.outputs if 0 <= i < n],
        ]
        for op in sg.operators
    ]


def op_histogram(model: Model) -> dict[str, int]:
    return dict(Counter(op.opcode for op in model.main.operators).most_common())
