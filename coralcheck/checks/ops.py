"""O: operations. Which ops the target compiler maps, under which constraints and versions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from coralcheck.checks.activations import activation_ops, mish_patterns
from coralcheck.checks.context import CheckContext
from coralcheck.edgetpu.constraints import limit_text
from coralcheck.edgetpu.knowledge import Constraint, knowledge
from coralcheck.model.graph import Operator, Subgraph
from coralcheck.registry import finding, rule
from coralcheck.report import Finding
from coralcheck.wording import quote

# Ops reported by other families: control flow (G002) and DEQUANTIZE (Q002, Q004, I001).
_REPORTED_ELSEWHERE = frozenset({"WHILE", "IF", "CALL_ONCE", "DEQUANTIZE"})
# Constraint checks whose failures other rules report: constant weights (Q007), float QUANTIZE
# input (I001/Q002).
_CONSTRAINTS_ELSEWHERE = frozenset({"constant-weights", "integer-input"})
_FLOAT = frozenset({"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"})


def _why_unsupported(ctx: CheckContext, opcode: str) -> str:
    spec = ctx.target.spec(opcode)
    first = ctx.target.first_release(opcode)
    label = ctx.target.knowledge.label
    if spec is None or first is None:
        return "is not an Edge TPU operation"
    if ctx.target.release.version < spec.since:
        return f"maps only from compiler {label(first)} on (target: {label(ctx.target.release)})"
    return f"needs Edge TPU runtime {spec.runtime} (target runtime: {ctx.target.runtime})"


@rule("O001")
def unsupported_op(ctx: CheckContext) -> Iterator[Finding]:
    """The op is not in the Edge TPU's operation table for the target compiler.

    It runs on the CPU, and because the compiler builds a single Edge TPU segment, every op that
    depends on it runs on the CPU too (G001 says how much that costs). Some ops arrived only with
    newer compilers (TRANSPOSE with 16.0), so the target version matters.
    """
    # Decided per signature group (opcode, custom code and dtypes are the same for its ops).
    candidates = []
    for group in ctx.prediction.groups:
        if (
            ctx.sg.operators[group.members[0]].is_custom
            or group.opcode in _REPORTED_ELSEWHERE
            or ctx.target.supports(group.opcode)
            or not group.types.isdisjoint(_FLOAT)  # float compute: Q001/Q002
        ):
            continue
        candidates.extend(group.members)
    if not candidates:
        return
    candidates.sort()
    skip = activation_ops(ctx) | {i for pattern in mish_patterns(ctx) for i in pattern}
    advice = ctx.target.knowledge.unsupported_advice
    for i in candidates:
        if i in skip:
            continue
        op = ctx.sg.operators[i]
        hint = advice.get(op.opcode)
        yield finding(
            "O001",
            f"{ctx.label(i)} {_why_unsupported(ctx, op.opcode)}",
            op=i,
            opcode=op.opcode,
            fix=hint if hint else None,
        )


def _verdict_findings(ctx: CheckContext, code: str, kinds: set[str]) -> Iterator[Finding]:
    for i in ctx.prediction.rejected:  # ops whose own verdict is not "ok"
        v = ctx.prediction.verdicts[i]
        if v.kind not in kinds:
            continue
        if v.constraint is not None and v.constraint.check in _CONSTRAINTS_ELSEWHERE:
            continue
        opcode = ctx.sg.operators[i].opcode
        detail = v.reason.removeprefix(f"{opcode} ")
        yield finding(
            code,
            f"{ctx.label(i)} {detail}",
            op=i,
            tensor=v.tensor,
            opcode=opcode,
            fix=v.fix or None,
        )


def _releases(c: Constraint) -> str:
    """The compiler releases a constraint applies to, for the rules' documentation."""
    kb = knowledge()

    def name(version: tuple[int, ...]) -> str:
        found = [r for r in kb.releases if r.version == version]
        return kb.label(found[0]) if found else ".".join(map(str, version))

    if c.since and c.until:
        return f" (compilers {name(c.since)} to {name(c.until)})"
    if c.since:
        return f" (compiler {name(c.since)} and newer)"
    return f" (up to compiler {name(c.until)})" if c.until else ""


def _constraint_list(inferred: bool) -> str:
    """The constraints of rules/ops.toml that keep a supported op off the Edge TPU, one line
    each: the documented ones (O002) or the inferred size limits with their numbers (O003)."""
    kb = knowledge()
    lines = []
    every_op = [*kb.common_constraints, *(c for spec in kb.ops.values() for c in spec.constraints)]
    for c in every_op:
        if c.effect != "unmap" or c.inferred != inferred or c.check in _CONSTRAINTS_ELSEWHERE:
            continue
        op = "Every op" if c.op == "*" else c.op
        text = f"{limit_text(c)}. {c.text}" if inferred else c.text
        lines.append(f"- {op}{_releases(c)}: {text}")
    return "\n".join(lines)


@rule("O002", doc_args=lambda: {"constraints": _constraint_list(inferred=False)})
def op_constraint(ctx: CheckContext) -> Iterator[Finding]:
    """The op is supported, but one of its documented constraints fails.

    Coral's operation table attaches conditions to several ops: STRIDED_SLICE only with stride 1,
    pooling and concatenation without a fused activation, CONCATENATION with a constant only when
    it is all zeros, SOFTMAX only along a short axis, reductions and padding not over the batch
    axis. The compiler then reports "Operation is otherwise supported, but not mapped due to some
    unspecified limitation" and the op runs on the CPU.

    The constraints checked (rules/ops.toml; constant weights are Q007's, a float QUANTIZE
    input I001's and Q002's):

    {constraints}
    """
    yield from _verdict_findings(ctx, "O002", {"constraint"})


@rule("O003", doc_args=lambda: {"limits": _constraint_list(inferred=True)})
def op_too_large(ctx: CheckContext) -> Iterator[Finding]:
    """The op is supported, but its tensors are larger than the compiler maps.

    The compiler silently leaves too-large ops on the CPU ("Operation is otherwise supported, but
    not mapped due to some unspecified limitation"); Coral says only that the limits "vary from
    operation to operation". coralcheck's limits are inferred from real compiler output
    (rules/ops.toml gives the evidence for each): any op whose tensor rows are very long (the
    [1, N, C] tensors of detection heads), large transposes, reshapes and resizes, and large
    reductions. YOLO detection heads and full-resolution segmentation outputs typically hit them.

    The limits (rules/ops.toml):

    {limits}
    """
    yield from _verdict_findings(ctx, "O003", {"limit"})


@rule("O004")
def op_version(ctx: CheckContext) -> Iterator[Finding]:
    """The op's version is newer than the target compiler maps.

    TFLite versions each builtin: converting with a newer TensorFlow, or using a newer option
    (e.g. half_pixel_centers on a resize), raises the version. The compiler embeds an older
    TFLite and reports "Operation version not supported" for versions it does not know how to
    map; the op runs on the CPU.
    """
    yield from _verdict_findings(ctx, "O004", {"version"})


def _unparseable_candidates(ctx: CheckContext) -> Iterator[tuple[Subgraph, Operator]]:
    """Every op of the model, in order, except main-subgraph ops whose signature group (same
    opcode and version) has a version the target parses."""
    main = ctx.sg
    candidates = []
    for group in ctx.prediction.groups:
        limit = ctx.target.parse_limit(group.opcode)
        if limit is not None and main.operators[group.members[0]].version > limit.max_version:
            candidates.extend(group.members)
    candidates.sort()
    for i in candidates:
        yield main, main.operators[i]
    for sg in ctx.model.subgraphs[1:]:
        for op in sg.operators:
            yield sg, op


@rule("O005")
def op_version_unparseable(ctx: CheckContext) -> Iterator[Finding]:
    """The target compiler cannot even read this op version: compilation fails.

    When the compiler's embedded TFLite has no kernel for a builtin version it prints "Didn't
    find op for builtin opcode 'X' version 'N'" and "Model could not be parsed": nothing is
    compiled, whichever subgraph the op is in.

    Evidence: ../shared/edgetpu/compiler-logs/13_v15_didnt_find_op_reverse_v2.log and
    14_v16_didnt_find_op_exp_v2.log (google-coral/edgetpu#340, #384).
    """
    for sg, op in _unparseable_candidates(ctx):
        limit = ctx.target.parse_limit(op.opcode)
        if limit is None or op.version <= limit.max_version:
            continue
        where = "" if sg.index == ctx.sg.index else f" in subgraph {sg.index} ({quote(sg.name)})"
        newer = ctx.target.newer_release_for(op.opcode, op.version, parse=True)
        fix = None
        if newer is not None:  # the catalogue's text, which offers no newer compiler, otherwise
            fix = (
                f"Compiler {newer.short} parses {op.opcode} version {op.version}: use it "
                f"(--compiler-version {newer.short} to check), or convert with an older "
                "TensorFlow, or remove the op."
            )
        yield finding(
            "O005",
            f"{op.opcode} (op {op.index}){where} is version {op.version}; compiler "
            f"{ctx.target.release.short} parses it only up to version {limit.max_version}: "
            "'Model could not be parsed'",
            op=op.index,
            opcode=op.opcode,
            fix=fix,
        )


def _accelerator_of(ctx: CheckContext, custom_code: str) -> Mapping[str, str] | None:
    """The [[foreign_accelerator]] entry of rules/ops.toml a custom code belongs to."""
    for entry in ctx.target.knowledge.foreign_accelerators:
        if custom_code == entry.get("custom_code") or (
            "prefix" in entry and custom_code.startswith(entry["prefix"])
        ):
            return entry
    return None


def foreign_ops(ctx: CheckContext) -> dict[int, Mapping[str, str]]:
    """The custom ops of the main subgraph that hold a program for another accelerator."""
    operators = ctx.sg.operators
    found = {}
    for group in ctx.prediction.groups:
        op = operators[group.members[0]]
        if not op.is_custom:
            continue
        entry = _accelerator_of(ctx, op.custom_code or "")
        if entry is not None:
            found.update(dict.fromkeys(group.members, entry))
    return found


def _vendor(ctx: CheckContext, entry: Mapping[str, str]) -> str:
    """The vendor a metadata stamp names (LiteRT writes e.g. "Qualcomm" first), or ""."""
    name = entry.get("vendor_metadata")
    data = ctx.model.metadata_bytes(name) if name else None
    if not data:
        return ""
    first = data[:64].split(b"\0", 1)[0].decode("ascii", "replace").strip()
    return first if first.isprintable() else ""


@rule("O007")
def foreign_accelerator_op(ctx: CheckContext) -> Iterator[Finding]:
    """The model was compiled for another accelerator: it holds that chip's program, not layers.

    A LiteRT model precompiled for a phone NPU (one DISPATCH_OP custom op holding Qualcomm,
    MediaTek or Google Tensor bytecode), a Vela-compiled model for Arm Ethos-U (an `ethos-u`
    custom op), or MediaTek extension ops: the layers these ops stood for are gone, so neither the
    Edge TPU compiler nor any rewrite of this file can map them. Only the source model, before
    it was compiled for that chip, can be converted and compiled for the Edge TPU.

    Evidence: LiteRT's own precompiled test models (google-ai-edge/LiteRT,
    litert/test/testdata/*precompiled*.tflite): one DISPATCH_OP whose custom options point at
    the vendor bytecode, and a LiteRtStamp metadata entry naming the vendor; the Edge TPU's
    operation table (../shared/edgetpu/facts.md section 1) has no custom ops.
    """
    found = foreign_ops(ctx)
    for i in sorted(found):
        entry = found[i]
        vendor = _vendor(ctx, entry)
        stamp = f" (stamped '{vendor}')" if vendor else ""
        yield finding(
            "O007",
            f"{ctx.label(i)} holds a program compiled for {entry['accelerator']}{stamp}: "
            "this file is a package for that accelerator, and nothing in it can run on the Edge "
            "TPU",
            op=i,
            opcode=ctx.sg.operators[i].opcode,
        )


@rule("O006")
def custom_op(ctx: CheckContext) -> Iterator[Finding]:
    """A custom op always runs on the CPU.

    The Edge TPU maps builtin ops only; custom ops (TFLite_Detection_PostProcess, PoseNet's
    decoder) run as TFLite CPU kernels. At the end of a model that is how Coral's own detection
    and pose models are built; in the middle, it splits the model (G001).
    """
    operators = ctx.sg.operators
    custom = [g.members for g in ctx.prediction.groups if operators[g.members[0]].is_custom]
    foreign = foreign_ops(ctx)  # O007's
    for i in sorted(i for members in custom for i in members if i not in foreign):
        yield finding(
            "O006",
            f"{ctx.label(i)} is a custom op: it runs on the CPU",
            op=i,
            opcode=operators[i].opcode,
        )
