"""G: graph. The single Edge TPU segment, and the single TFLite subgraph the compiler handles."""

from __future__ import annotations

from collections.abc import Iterator

from coralcheck.checks import CheckContext, finding, rule
from coralcheck.edgetpu.constraints import quote
from coralcheck.model.graph import Model
from coralcheck.render.phrases import plural
from coralcheck.report import Finding

# Builtin options that name another TFLite subgraph (control flow).
_SUBGRAPH_OPTIONS = (
    "cond_subgraph_index",
    "body_subgraph_index",
    "then_subgraph_index",
    "else_subgraph_index",
    "init_subgraph_index",
)


@rule("G001")
def segment_break(ctx: CheckContext) -> Iterator[Finding]:
    """An op that stays on the CPU drags the supported ops after it onto the CPU too.

    edgetpu_compiler maps one Edge TPU segment. Once an op cannot map, every supported op that
    depends on it runs on the CPU as well ("More than one subgraph is not supported"): the cost of
    an unmapped op is not that op, but everything behind it. Ops on branches that do not depend
    on it still map. Fixing this op (or moving it to the end) brings those ops back.
    """
    p = ctx.prediction
    blocked: dict[int, list[int]] = {}
    for placement in p.ops:
        if placement.blamed_on is not None:
            blocked.setdefault(placement.blamed_on, []).append(placement.index)
    macs_total = sum(p.macs) or 1
    for cause in sorted(blocked):
        ops = blocked[cause]
        macs = sum(p.macs[i] for i in ops)
        heavy = sum(1 for i in ops if p.macs[i])
        percent = 100 * macs / macs_total
        share = f", {percent:.0f}% of the model's MACs" if percent >= 1 else ", <1% of the MACs"
        share = share if macs else ""
        weight = f" ({heavy} of them compute-heavy{share})" if heavy else ""
        yield finding(
            "G001",
            f"{ctx.op_label(cause)} stays on the CPU ({p.verdicts[cause].status}): "
            f"{plural(len(ops), 'supported op')} that depend on it run on the CPU too{weight}",
            op=cause,
            opcode=ctx.sg.operators[cause].opcode,
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
            callers.append(f"{ctx.op_label(op.index)} calls {' and '.join(names)}")
    detail = "; ".join(callers) if callers else "no op of the main subgraph calls them"
    first = next((op.index for op in ctx.sg.operators if op.opcode in ("WHILE", "IF")), None)
    yield finding(
        "G002",
        f"{len(subgraphs)} TFLite subgraphs; only the main one is compiled: {detail}",
        op=first,
        opcode=ctx.sg.operators[first].opcode if first is not None else None,
    )


@rule("G003")
def file_identifier(ctx: CheckContext) -> Iterator[Finding]:
    """The file does not carry the TFLite file identifier "TFL3" in bytes 4-7.

    coralcheck reads the model anyway when the rest of it parses, but TFLite does not: its
    loader checks the identifier first and refuses the file ("Model provided has model
    identifier ..., should be TFL3"; LiteRT: "The model is not a valid Flatbuffer buffer"), and
    so does every runtime built on it, the Edge TPU's included. A tool that wrote or patched the
    file got the header wrong, or the file is not what it seems.
    """
    yield from identifier_findings(ctx.model)


def identifier_findings(model: Model) -> list[Finding]:
    """G003 for a model without the "TFL3" identifier (compiled models are checked with it too)."""
    if model.has_identifier:
        return []
    found = model.read_bytes(4, 4).decode("ascii", "backslashreplace")
    return [
        finding(
            "G003",
            f"the file identifier (bytes 4-7) is '{found}', not 'TFL3': TFLite refuses to load "
            "the file",
        )
    ]
