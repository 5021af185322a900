"""The data flow of the main subgraph as a report records it (`ModelReport.graph`): what every op
reads and writes, each tensor's dtype, shape and quantization, and where data crosses between the
host and the Edge TPU. The HTML report draws it; the Model Explorer overlay names its graph."""

from __future__ import annotations

from collections.abc import Sequence

from coralcheck.model.graph import Model, Tensor
from coralcheck.report import GraphTensor, OpGraph, OpPlacement


def graph_tensor(t: Tensor) -> GraphTensor:
    q = t.quantization
    scales = len(q.scale) if q is not None else 0
    return GraphTensor(
        index=t.index,
        name=t.name,
        dtype=t.dtype,
        shape=t.shape,
        scale=q.scale[0] if scales else None,
        zero_point=int(q.zero_point[0]) if q is not None and q.zero_point else None,
        channels=scales if scales > 1 else 0,
        constant=t.is_constant,
    )


def boundary_ops(model: Model, ops: Sequence[OpPlacement]) -> tuple[int, ...]:
    """CPU ops that read a tensor an Edge TPU op writes or write one an Edge TPU op reads."""
    sg = model.main
    on_tpu = [op.placement == "tpu" for op in ops]
    if len(on_tpu) != len(sg.operators) or not any(on_tpu):
        return ()
    found = []
    for op in sg.operators:
        if on_tpu[op.index]:
            continue
        neighbours = (*sg.predecessors(op), *sg.successors(op))
        if any(on_tpu[n] for n in neighbours if n < len(on_tpu)):
            found.append(op.index)
    return tuple(found)


def op_graph(model: Model, ops: Sequence[OpPlacement]) -> OpGraph:
    """The main subgraph's data flow, with `ops` (the report's placements) for the boundary."""
    sg = model.main
    signature = next(
        (s.key for s in model.signature_defs if s.subgraph_index == sg.index and s.key), None
    )
    return OpGraph(
        subgraph=sg.name,
        signature=signature,
        tensors=[graph_tensor(t) for t in sg.tensors],
        op_inputs=[op.inputs for op in sg.operators],
        op_outputs=[op.outputs for op in sg.operators],
        inputs=sg.inputs,
        outputs=sg.outputs,
        boundary=boundary_ops(model, ops),
    )
