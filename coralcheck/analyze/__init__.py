"""analyze: Model → ModelReport (placement prediction, findings, memory)."""

from __future__ import annotations

from collections import Counter

from coralcheck.model import Model
from coralcheck.options import Options
from coralcheck.report import IOTensor, ModelReport, Summary


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


def op_histogram(model: Model) -> dict[str, int]:
    return dict(Counter(op.opcode for op in model.main.operators).most_common())


def analyze(model: Model, options: Options) -> ModelReport:
    ops = model.main.operators
    return ModelReport(
        path=model.path,
        kind="compiled" if model.is_compiled else "source",
        file_size=model.file_size,
        compiler_version=options.compiler_version,
        summary=Summary(ops_total=len(ops), ops_tpu=0, ops_cpu=0, tpu_segments=0),
        io=io_tensors(model),
        op_histogram=op_histogram(model),
        subgraphs=len(model.subgraphs),
    )
