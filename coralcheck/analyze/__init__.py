"""analyze: Model → ModelReport (placement prediction, findings, root causes, memory).

- `placement.predict`: what edgetpu_compiler does with every op of the main subgraph, and why.
- `coralcheck.checks.run_checks`: the rules (Q, S, O, G, I, A, M families) as findings.
- `memory.estimate_memory` / `cost.op_macs`: parameter bytes against the on-chip cache, MACs.
- `latency.estimate_source`: milliseconds per inference on the target device.

Compiled models (`*_edgetpu.tflite`) are inspected by `coralcheck.analyze.compiled` instead; here
an `edgetpu-custom-op` is just a custom op on the CPU, so analyzing one does not fail.
"""

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


def analyze(model: Model, options: Options) -> ModelReport:
    """The full report of a source model for the target compiler in `options`."""
    from coralcheck.analyze.latency import estimate_source
    from coralcheck.analyze.memory import estimate_memory
    from coralcheck.analyze.placement import predict
    from coralcheck.checks import CheckContext, run_checks
    from coralcheck.edgetpu.knowledge import target

    tgt = target(options.compiler_version, options.runtime_version)
    prediction = predict(model, tgt, options.enable_multiple_subgraphs)
    memory = estimate_memory(model, prediction.on_tpu, tgt)
    ops = prediction.ops
    tpu = sum(prediction.on_tpu)
    summary = Summary(
        ops_total=len(ops),
        ops_tpu=tpu,
        ops_cpu=len(ops) - tpu,
        tpu_segments=prediction.tpu_segments,
        macs_total=sum(prediction.macs),
        macs_tpu=sum(m for m, on in zip(prediction.macs, prediction.on_tpu, strict=True) if on),
    )
    findings = run_checks(CheckContext(model, options, tgt, prediction, memory))
    latency, latency_detail = estimate_source(model, prediction, memory, options)
    return ModelReport(
        path=model.path,
        kind="compiled" if model.is_compiled else "source",
        file_size=model.file_size,
        compiler_version=options.compiler_version,
        summary=summary,
        ops=ops,
        findings=findings,
        io=io_tensors(model),
        memory=memory,
        root_causes=prediction.root_causes,
        op_histogram=op_histogram(model),
        subgraphs=len(model.subgraphs),
        segments=prediction.segments,
        latency=latency,
        latency_detail=latency_detail,
    )
