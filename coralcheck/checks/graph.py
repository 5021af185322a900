"""G: graph. The single Edge TPU segment, and the single TFLite subgraph the compiler handles."""

from collections.abc import Iterator
from typing import NamedTuple

from coralcheck.analyze.cost import work
from coralcheck.checks.context import CheckContext, chain
from coralcheck.checks.ops import foreign_ops
from coralcheck.model.graph import Model
from coralcheck.registry import finding, rule
from coralcheck.report import Finding
from coralcheck.wording import plural, quote

# Builtin options that name another TFLite subgraph (control flow).
_SUBGRAPH_OPTIONS = (
    "cond_subgraph_index",
    "body_subgraph_index",
    "then_subgraph_index",
    "else_subgraph_index",
    "init_subgraph_index",
)


def _work(ctx: CheckContext) -> tuple[list[int], int]:
    """Per op, the work the verdict weighs (`cost.work`), and the model's total."""
    per_op = work(ctx.prediction.macs, ctx.views)
    return per_op, sum(per_op) or 1


def _blamed(ctx: CheckContext) -> dict[int, list[int]]:
    """Root cause (an op, or a cause unit's anchor) -> the supported ops it keeps on the CPU."""
    blocked: dict[int, list[int]] = {}
    for placement in ctx.prediction.ops:
        if placement.blamed_on is not None:
            blocked.setdefault(placement.blamed_on, []).append(placement.index)
    return blocked


def _nothing_maps(ctx: CheckContext) -> bool:
    """No op, or none of the ops that compute, is on the Edge TPU (G003)."""
    p = ctx.prediction
    if not any(p.on_tpu):
        return True
    return sum(p.macs) > 0 and not any(m for m, on in zip(p.macs, p.on_tpu, strict=True) if on)


def _causes(ctx: CheckContext) -> list[tuple[int, tuple[int, ...], list[int]]]:
    """(cause op, its own ops, the supported ops it keeps on the CPU) for every root cause that
    another rule does not already judge as a whole: the batch (S003) and ops compiled for another
    accelerator (O007)."""
    p = ctx.prediction
    units = {u.anchor: u for u in p.units}
    in_unit = {i for u in p.units for i in u.members}
    blocked = _blamed(ctx)
    foreign = foreign_ops(ctx)
    causes = []
    for i in p.rejected:
        unit = units.get(i)
        if (unit is None and i in in_unit) or (unit is not None and unit.kind == "batch"):
            continue
        if i in foreign:
            continue
        causes.append((i, unit.members if unit is not None else (i,), blocked.get(i, [])))
    return causes


def _compute_text(ctx: CheckContext, share: float, heavy: int) -> str:
    """`17% of the model's multiply-accumulates, in 2 compute ops`, `no multiply-accumulates`."""
    percent = "<1%" if share < 0.01 else f"{share:.0%}"
    if not sum(ctx.prediction.macs):
        return f"{percent} of the elements the model's ops write (it has no multiply-accumulates)"
    if not heavy:
        return "no multiply-accumulates"
    return f"{percent} of the model's multiply-accumulates, in {plural(heavy, 'compute op')}"


def _cause_label(ctx: CheckContext, i: int, own: tuple[int, ...]) -> str:
    """The cause as the finding names it: the op and its own verdict, or its float island."""
    if len(own) > 1:  # a float island
        return (
            f"{ctx.label(i)} was left in float by the converter ({chain(ctx, own)} run on the CPU)"
        )
    return f"{ctx.label(i)} stays on the CPU ({ctx.prediction.verdicts[i].status})"


def _run(count: int) -> str:
    """`1 supported op after it runs`, `3 supported ops after it run`."""
    return f"{plural(count, 'supported op')} after it {'runs' if count == 1 else 'run'}"


class CpuPart(NamedTuple):
    """What one root cause keeps on the CPU: its own ops and the supported ops after it."""

    op: int  # the cause (an op, or a cause unit's anchor)
    own: tuple[int, ...]
    dragged: list[int]
    share: float  # of the model's work (`cost.work`)
    heavy: int  # ops among them with multiply-accumulates


def _cpu_parts(ctx: CheckContext) -> tuple[list[CpuPart], bool]:
    """Every cause's CPU part, and whether together they hold at least the [verdict] share of
    the model's work: the Edge TPU part is cut short (G001), not just followed by a tail
    (G004)."""
    work, total = _work(ctx)
    macs = ctx.prediction.macs
    parts, kept = [], set()
    for i, own, dragged in _causes(ctx):
        ops = (*own, *dragged)
        kept.update(ops)
        share = sum(work[j] for j in ops) / total
        parts.append(CpuPart(i, own, dragged, share, sum(1 for j in ops if macs[j])))
    cut_short = sum(work[j] for j in kept) / total >= ctx.target.knowledge.verdict["compute_share"]
    return parts, cut_short


@rule("G001")
def compute_on_cpu(ctx: CheckContext) -> Iterator[Finding]:
    """An op on the CPU keeps a real share of the model's compute off the Edge TPU.

    edgetpu_compiler maps one Edge TPU segment. Once an op cannot map, every supported op that
    depends on it runs on the CPU as well ("More than one subgraph is not supported"): the cost of
    an unmapped op is not that op, but everything behind it. When the ops left on the CPU this
    way (and the unmapped ops themselves) hold at least 1% of the model's multiply-accumulates
    (of the elements its ops write, in a model without any), the Edge TPU part of the model is
    cut short: the convolutions left behind run on the host CPU, which is many times slower.
    Every op that keeps compute on the CPU gets this finding. Ops on branches that do not depend
    on it still map. A CPU part without real compute (post-processing after the last
    convolution) is G004, a warning.

    Evidence: in ../shared/corpus, deeplabv3_mnv2_dm05_pascal_quant (compilers 2.0 to 16.0) keeps
    17% of its MACs on the CPU behind an unmapped RESIZE_BILINEAR, while yolov8n's CPU tail holds
    0.01% (its detection decoding); every model the compiler mapped completely passes.
    """
    if _nothing_maps(ctx):
        return  # G003 says it in one line
    parts, cut_short = _cpu_parts(ctx)
    if not cut_short:
        return  # the CPU part is a tail (G004)
    for part in parts:
        if not part.share:
            continue
        after = f"; {_run(len(part.dragged))} on the CPU too" if part.dragged else ""
        yield finding(
            "G001",
            f"{_cause_label(ctx, part.op, part.own)}: it keeps "
            f"{_compute_text(ctx, part.share, part.heavy)} off the Edge TPU{after}",
            op=part.op,
            opcode=ctx.sg.operators[part.op].opcode,
        )


@rule("G003")
def nothing_on_edge_tpu(ctx: CheckContext) -> Iterator[Finding]:
    """None of the model's compute runs on the Edge TPU.

    No op maps, or only ops without multiply-accumulates do (a QUANTIZE, a RESHAPE) while every
    convolution and fully connected layer stays on the CPU. The compiler may still write a
    `_edgetpu.tflite` ("Number of Edge TPU subgraphs: 0"), but the model runs on the host CPU:
    whatever the other findings say, it is not an Edge TPU model. The findings above it name
    the causes.

    Evidence: ../shared/edgetpu/compiler-logs/19_v14_1_zero_subgraphs_TRUNCATED.log (a float
    model: "Number of Edge TPU subgraphs: 0") and 12_v14_1_model_not_quantized.log.
    """
    if not _nothing_maps(ctx):
        return
    p = ctx.prediction
    tpu = sum(p.on_tpu)
    total = len(p.ops)
    compute = [i for i, m in enumerate(p.macs) if m]
    if tpu == 0:
        message = f"0 of {plural(total, 'op')} on the Edge TPU: the whole model runs on the CPU"
    else:
        mapped = chain(ctx, [i for i, on in enumerate(p.on_tpu) if on], sep=", ", limit=3)
        message = (
            f"none of the {plural(len(compute), 'compute op')} is on the Edge TPU: only "
            f"{tpu} of {total} ops map ({mapped}), the model's compute runs on the CPU"
        )
    first = p.root_causes[0].op if p.root_causes else (p.rejected[0] if p.rejected else None)
    yield finding(
        "G003",
        message,
        op=first,
        opcode=ctx.sg.operators[first].opcode if first is not None else None,
    )


@rule("G004")
def cpu_tail(ctx: CheckContext) -> Iterator[Finding]:
    """Supported ops after an unmapped one run on the CPU, but hold almost no compute.

    The same single-segment rule as G001, at the end of the model: post-processing after the
    last convolution (detection decoding, a large final resize, an ARG_MAX) stays on the CPU and
    takes the few supported ops after it along. The model still runs on the Edge TPU; the CPU
    part costs some milliseconds per inference. Moving those ops out of the model, into your
    application, makes the whole model map.

    Evidence: ../shared/corpus/models/goalbuddy/yolov8n_full_integer_quant (16.0, 233 of 256 ops
    mapped, the unmapped head holds 0.01% of the MACs) and movenet_single_pose_lightning_ptq.
    """
    if _nothing_maps(ctx):
        return
    parts, cut_short = _cpu_parts(ctx)
    for part in parts:
        if not part.dragged or (cut_short and part.share):
            continue  # G001's
        yield finding(
            "G004",
            f"{_cause_label(ctx, part.op, part.own)}: {_run(len(part.dragged))} on the CPU too "
            f"({_compute_text(ctx, part.share, part.heavy)})",
            op=part.op,
            opcode=ctx.sg.operators[part.op].opcode,
        )


@rule("G002")
def control_flow(ctx: CheckContext) -> Iterator[Finding]:
    """The model has more than one TFLite subgraph: control flow the Edge TPU cannot run.

    The compiler compiles only the main subgraph. WHILE and IF ops (from tf.while_loop, tf.cond,
    or an RNN that was not converted to a fused LSTM) call other subgraphs that always run on the
    CPU, with float or int32 data crossing the boundary. (Not to be confused with "More than one
    subgraph is not supported", which is about Edge TPU segments.)
    """
    subgraphs = ctx.model.subgraphs
    if len(subgraphs) <= 1:
        return
    callers = []
    for op in ctx.sg.operators:
        called = [op.options[k] for k in _SUBGRAPH_OPTIONS if isinstance(op.options.get(k), int)]
        names = [quote(subgraphs[i].name or str(i)) for i in called if 0 <= i < len(subgraphs)]
        if names:
            callers.append(f"{ctx.label(op.index)} calls {' and '.join(names)}")
    detail = "; ".join(callers) if callers else "no op of the main subgraph calls them"
    first = next((op.index for op in ctx.sg.operators if op.opcode in ("WHILE", "IF")), None)
    yield finding(
        "G002",
        f"{len(subgraphs)} TFLite subgraphs; only the main one is compiled: {detail}",
        op=first,
        opcode=ctx.sg.operators[first].opcode if first is not None else None,
    )


@rule("G005")
def file_identifier(ctx: CheckContext) -> Iterator[Finding]:
    """The file does not carry the TFLite file identifier "TFL3" in bytes 4-7.

    coralcheck reads the model anyway when the rest of it parses, but TFLite does not: its
    loader checks the identifier first and refuses the file ("Model provided has model
    identifier ..., should be TFL3"; LiteRT: "The model is not a valid Flatbuffer buffer"), and
    so does every runtime built on it, the Edge TPU's included. A tool that wrote or patched the
    file got the header wrong, or the file is not what it seems.

    Evidence: tests/test_hostile_files.py loads such a file in LiteRT, which refuses it.
    """
    yield from identifier_findings(ctx.model)


def identifier_findings(model: Model) -> list[Finding]:
    """G005 for a model without the "TFL3" identifier (compiled models are checked with it too)."""
    if model.has_identifier:
        return []
    found = model.read_bytes(4, 4).decode("ascii", "backslashreplace")
    return [
        finding(
            "G005",
            f"the file identifier (bytes 4-7) is '{found}', not 'TFL3': TFLite refuses to load "
            "the file",
        )
    ]
