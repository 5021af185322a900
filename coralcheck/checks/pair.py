"""The C rules of a (source, compiled) pair (format doc §6b): C020–C024.

`coralcheck.analyze.pair` maps the pair and diffs it against the prediction; these rules only
phrase what it found, for the compiled twin named `compiled_name`.
"""

from __future__ import annotations

from collections.abc import Iterator

from coralcheck.registry import finding, rule
from coralcheck.report import Finding
from coralcheck.wording import op_label


@rule("C020")
def pair_mismatch(compiled_name: str, problems: list[str]) -> Iterator[Finding]:
    """The compiled model was not compiled from this source model.

    Every tensor of a compiled model keeps its name from the source: the segment boundaries,
    the graph inputs and outputs and all tensors of CPU ops. When names are missing, or shapes,
    types or op types differ, the two files are not source and result (for example a source
    re-exported after compiling), and no op-by-op comparison is possible. Pass the compiled
    twin of this exact file, or compile it again (`--compile`).

    Evidence: ../shared/corpus/groundtruth.json marks the one corpus pair whose source is not the
    compiled model (coral_edgetpu_eel posenet) unusable; every usable pair maps tensor by tensor.
    """
    shown = "; ".join(problems[:3]) + (
        f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    )
    yield finding("C020", f"{compiled_name} was not compiled from this model: {shown}")


@rule("C021")
def compiler_put_on_cpu(compiled_name: str, diff: list[dict]) -> Iterator[Finding]:
    """The real compiler left ops on the CPU that coralcheck predicted for the Edge TPU.

    The compiled twin is the ground truth: these ops really run on the CPU. The compiler does
    not record why; typical causes are undocumented size limits (large resize, concatenation or
    reshape in detection heads) and the single-segment rule after them. Check the ops listed in
    the diff and the compiler's log for their status.
    """
    missed = [d for d in diff if d["predicted"] == "tpu" and d["actual"] == "cpu"]
    if missed:
        ops = ", ".join(op_label(d["index"], d["opcode"]) for d in missed[:5])
        more = f" and {len(missed) - 5} more" if len(missed) > 5 else ""
        yield finding(
            "C021",
            f"{compiled_name}: {len(missed)} op(s) predicted for the Edge TPU run on the CPU: "
            f"{ops}{more}",
            op=missed[0]["index"],
            opcode=missed[0]["opcode"],
        )


@rule("C022")
def compiler_mapped_predicted_cpu(compiled_name: str, diff: list[dict]) -> Iterator[Finding]:
    """The real compiler mapped ops to the Edge TPU that coralcheck predicted for the CPU.

    Good news for the model: the compiled twin runs these ops on the Edge TPU. The prediction
    was too cautious; the diff lists them.
    """
    gained = [d for d in diff if d["predicted"] == "cpu" and d["actual"] == "tpu"]
    if gained:
        yield finding(
            "C022",
            f"{compiled_name}: {len(gained)} op(s) predicted for the CPU run on the Edge TPU",
            op=gained[0]["index"],
            opcode=gained[0]["opcode"],
        )


@rule("C023")
def pair_unassigned_ops(compiled_name: str, unassigned: list[tuple[int, str]]) -> Iterator[Finding]:
    """Some source ops are neither in an Edge TPU segment nor on the CPU in the compiled model.

    They feed no model output (dead code), so the compiler dropped them. Remove them from the
    source model, or check that the outputs you need are really graph outputs.
    """
    if unassigned:
        ops = ", ".join(op_label(i, opcode) for i, opcode in unassigned[:5])
        yield finding(
            "C023",
            f"{compiled_name}: {len(unassigned)} source op(s) are not in the compiled model: {ops}",
            op=unassigned[0][0],
            opcode=unassigned[0][1],
        )


@rule("C024")
def pair_quantization_differs(compiled_name: str, tensors: list[str]) -> Iterator[Finding]:
    """Tensors of the compiled twin have other quantization parameters than in the source.

    Names, shapes, types and ops agree, so the op-by-op comparison stands, but the compiled
    file was made from a slightly different export of the model (different calibration). Use
    the compiled twin of this exact file before trusting its outputs.
    """
    if tensors:
        names = ", ".join(repr(t) for t in tensors[:3])
        yield finding(
            "C024",
            f"{compiled_name}: {len(tensors)} tensor(s) are quantized differently than in the "
            f"source ({names}): it comes from another export of this model",
            tensor=tensors[0],
        )
