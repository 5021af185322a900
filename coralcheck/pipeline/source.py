"""A source model's report: the placement prediction, the rules (Q, S, O, G, I, A, M), the
parameter memory and the latency estimate.

Compiled models (`*_edgetpu.tflite`) get `coralcheck.pipeline.compiled.inspect_compiled`
instead; here an `edgetpu-custom-op` is just a custom op on the CPU, so analyzing one does not
fail.
"""

from __future__ import annotations

from coralcheck.analyze.latency import estimate_source
from coralcheck.analyze.memory import estimate_memory
from coralcheck.analyze.overview import io_tensors, op_histogram
from coralcheck.analyze.placement import predict
from coralcheck.checks import CheckContext, run_checks
from coralcheck.edgetpu.target import target
from coralcheck.model import Model
from coralcheck.options import Options
from coralcheck.report import ModelReport, Summary


def analyze(model: Model, options: Options) -> ModelReport:
    """The full report of a source model for the target compiler in `options`."""
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
