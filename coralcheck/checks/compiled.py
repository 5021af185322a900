"""The C rules of a compiled model on its own (`*_edgetpu.tflite`; format doc §6a).

C001–C009 are facts and integrity checks run on every compiled model
(`COMPILED_MODEL_RULES`, by `coralcheck.analyze.compiled`); C010 where a compiled model is
expected but holds no Edge TPU segment; C011 when no latency estimate can be made for it.
Each rule is one function registered with `@rule`; its docstring is what `coralcheck rule CODE`
prints, its [rule.CODE] entry in rules/catalogue.toml gives severity, title and fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

from coralcheck.analyze.compiled import EDGETPU_OPCODE, binding_problems, executable_problems
from coralcheck.model.edgetpu import Segment
from coralcheck.model.graph import Model
from coralcheck.options import Options
from coralcheck.registry import finding, rule
from coralcheck.report import Finding
from coralcheck.wording import human_bytes, op_label


class CompiledContext(NamedTuple):
    """What the compiled-model rules look at.

    `cpu_between` are the indices of main-subgraph CPU ops that sit between two Edge TPU
    segments (fed by one, feeding another).
    """

    model: Model
    segments: list[Segment]
    options: Options
    cpu_between: frozenset[int] = frozenset()


def _segment_finding(code: str, seg: Segment, message: str) -> Finding:
    """A finding of rule `code` located on the segment's `edgetpu-custom-op`."""
    return finding(code, message, op=seg.op_index, subgraph=seg.subgraph, opcode=EDGETPU_OPCODE)


@rule("C001")
def cpu_op_between_segments(ctx: CompiledContext) -> Iterator[Finding]:
    """An op runs on the CPU between two Edge TPU segments.

    The compiled model hands data from the Edge TPU to the CPU and back for this op on every
    inference: each crossing copies the activations over USB or PCIe and waits for the CPU, which
    often costs more than the op itself. This happens when the model was compiled with `-a`
    (several segments) and an op in the middle could not be mapped.
    """
    for index in sorted(ctx.cpu_between):
        op = ctx.model.main.operators[index]
        yield finding(
            "C001",
            f"{op_label(index, op.opcode)} runs on the CPU between two Edge TPU segments: "
            "activations cross to the CPU and back on every inference",
            op=index,
            opcode=op.opcode,
        )


@rule("C002")
def off_chip_parameters(ctx: CompiledContext) -> Iterator[Finding]:
    """Part of the parameters is streamed from host memory on every inference.

    The Edge TPU caches parameters (weights) in about 8 MB of on-chip SRAM. What does not fit —
    or what co-compiled models ahead of this one already took — stays in the model file and is
    sent to the chip for every inference, which is slow, especially over USB.
    """
    for seg_no, seg in enumerate(ctx.segments):
        main = seg.package.main_executable()
        if main is None or main.parameter_bytes == 0:
            continue
        cache = seg.package.caching_executable()
        cached = cache.parameter_bytes if cache else 0
        yield _segment_finding(
            "C002",
            seg,
            f"Edge TPU segment {seg_no + 1} streams {human_bytes(main.parameter_bytes)} of "
            f"parameters from host memory on every inference ({human_bytes(cached)} cached "
            "on-chip)",
        )


@rule("C003")
def runtime_too_old(ctx: CompiledContext) -> Iterator[Finding]:
    """The compiled model needs a newer Edge TPU runtime than the target device has.

    The compiler writes the lowest runtime version that can run the model (its
    `--min_runtime_version`, default 14 for compiler 16.0) into the model. libedgetpu refuses
    to load a model that asks for a newer runtime than its own, so the model fails at load time
    on the device (`--runtime-version` sets the target; 14 is the latest libedgetpu).

    Evidence: ../shared/edgetpu/compiled-model-format.md (libedgetpu package_registry.cc rejects
    a package whose min_runtime_version is above its own) and ../shared/edgetpu/facts.md section
    3.2 ("A model compiled for a newer runtime fails on an older runtime").
    """
    target = ctx.options.runtime_version
    for seg_no, seg in enumerate(ctx.segments):
        needed = seg.package.min_runtime_version
        if needed is None or needed <= target:
            continue
        yield _segment_finding(
            "C003",
            seg,
            f"Edge TPU segment {seg_no + 1} needs Edge TPU runtime {needed} or newer, but the "
            f"target runtime is {target}: libedgetpu will refuse to load it",
        )


@rule("C004")
def already_compiled(ctx: CompiledContext) -> Iterator[Finding]:
    """This model is already compiled for the Edge TPU: do not compile it again.

    `edgetpu_compiler` on a `*_edgetpu.tflite` sees the `edgetpu-custom-op` as an unknown custom
    op, leaves it on the CPU and writes a model that no longer runs on the TPU (or fails).
    Compile the original (source) model; keep this file for deployment.
    """
    if ctx.segments:
        yield finding(
            "C004",
            "already compiled for the Edge TPU: inspect it, deploy it, but compile the source "
            "model, not this file",
        )


@rule("C005")
def legacy_format(ctx: CompiledContext) -> Iterator[Finding]:
    """The compiled model uses a deprecated or malformed Edge TPU package layout.

    Current compilers wrap the executables in a package with the file identifier "DWN1". Files
    from the 2019 compiler store bare executables instead (no runtime or compiler version), and
    today's runtime ignores their parameter-caching executable; a package without the identifier
    is accepted by the runtime with a warning only. Recompile the source with a current compiler.
    """
    for seg_no, seg in enumerate(ctx.segments):
        layout = seg.package.layout
        if layout == "DWN1":
            continue
        what = (
            "the 2019 legacy layout (bare executables, no package, no runtime version)"
            if layout == "legacy"
            else 'a package without the "DWN1" identifier'
        )
        yield _segment_finding(
            "C005",
            seg,
            f"Edge TPU segment {seg_no + 1} uses {what}",
        )


@rule("C006")
def executables_rejected(ctx: CompiledContext) -> Iterator[Finding]:
    """The Edge TPU runtime would reject this segment's executables.

    A package must hold one executable, a PARAMETER_CACHING + EXECUTION_ONLY pair, or one of
    each of the three types; every executable needs a batch size of at least 1, and a single
    device cannot run a multi-chip package. Anything else fails when the model is loaded. The
    file was damaged or not written by edgetpu_compiler: recompile the source.

    Evidence: ../shared/edgetpu/compiled-model-format.md (the executable sets libedgetpu's
    package_registry.cc accepts; every real compiled model in ../shared/corpus holds one of
    them).
    """
    for seg_no, seg in enumerate(ctx.segments):
        for problem in executable_problems(seg):
            yield _segment_finding(
                "C006",
                seg,
                f"Edge TPU segment {seg_no + 1}: {problem}",
            )


@rule("C007")
def layer_tensor_mismatch(ctx: CompiledContext) -> Iterator[Finding]:
    """The segment's Edge TPU executable does not match the tensors of its custom op.

    The runtime binds the executable's input and output layers to the custom op's tensors by
    position and checks their sizes. A name, size, type or quantization that disagrees means
    the file was edited or assembled by hand after compilation: results will be wrong or the
    model will not load. Recompile the source model.

    Evidence: ../shared/edgetpu/compiled-model-format.md (how the runtime binds layers to the
    custom op's tensors; every real compiled model in ../shared/corpus agrees with its tensors).
    """
    for seg_no, seg in enumerate(ctx.segments):
        for problem in binding_problems(ctx.model, seg):
            yield _segment_finding(
                "C007",
                seg,
                f"Edge TPU segment {seg_no + 1}: {problem}",
            )


@rule("C008")
def chip_list_mismatch(ctx: CompiledContext) -> Iterator[Finding]:
    """The custom op's chip list does not match its packages.

    When the custom options carry a chip list (key "6"), it names the chip of every package:
    the first package plus the extra ones of key "7". A different length means damaged custom
    options; the runtime may pick the wrong package or refuse the model. Recompile the source.
    """
    for seg_no, seg in enumerate(ctx.segments):
        if seg.chip_enums is None or len(seg.chip_enums) == 1 + seg.extra_package_count:
            continue
        yield _segment_finding(
            "C008",
            seg,
            f"Edge TPU segment {seg_no + 1} lists {len(seg.chip_enums)} chips for "
            f"{1 + seg.extra_package_count} packages",
        )


@rule("C009")
def caching_token_mismatch(ctx: CompiledContext) -> Iterator[Finding]:
    """The parameter-caching and execution executables of one package carry different tokens.

    The executable that loads the parameters into on-chip memory and the one that runs the
    inference must share a caching token; with different tokens the runtime reloads the
    parameters as if another model had run in between. The package was not written by one
    compiler run: recompile the source.
    """
    for seg_no, seg in enumerate(ctx.segments):
        pkg = seg.package
        cache, main = pkg.caching_executable(), pkg.main_executable()
        if cache is None or main is None or pkg.layout == "legacy":
            continue
        if cache.parameter_caching_token != main.parameter_caching_token:
            yield _segment_finding(
                "C009",
                seg,
                f"Edge TPU segment {seg_no + 1}: caching token "
                f"{cache.parameter_caching_token:#018x} vs {main.parameter_caching_token:#018x}",
            )


@rule("C010")
def no_edgetpu_segment(ctx: CompiledContext) -> Iterator[Finding]:
    """A model that should be compiled has no Edge TPU segment: everything runs on the CPU.

    The file is named or given as an edgetpu_compiler output, but it holds no
    `edgetpu-custom-op`: the compiler mapped no op at all (typically a float or
    dynamic-range model, "Number of Edge TPU subgraphs: 0"), or the file is not compiled.
    Quantize the model fully to int8 and compile it.

    Evidence: ../shared/edgetpu/compiler-logs/19_v14_1_zero_subgraphs_TRUNCATED.log (compiler
    14.1 wrote a model with "Number of Edge TPU subgraphs: 0" and "Number of operations that
    will run on Edge TPU: 0").
    """
    if not ctx.segments:
        yield finding(
            "C010",
            "no Edge TPU segment (edgetpu-custom-op): nothing in this model runs on the Edge TPU",
        )


@rule("C011")
def no_latency_estimate(ctx: CompiledContext) -> Iterator[Finding]:
    """No latency estimate: the compiled model does not record the compiler's cycle estimate.

    A compiled model keeps only the boundary tensors of each Edge TPU segment: the ops inside
    (their shapes, hence their compute) are gone. Compilers of 2019-2020 stored their own cycle
    estimate in the file (`estimated_cycles`), which coralcheck then uses for the compute part;
    15.0 and 16.0 store 0. Lint the source model instead (the estimate is made from its ops), or
    give both: `coralcheck SOURCE.tflite --compiled SOURCE_edgetpu.tflite` uses the real
    placement, segments and streamed bytes of the compiled file with the source's ops.
    """
    sg = ctx.model.main
    missing = [
        s
        for s in ctx.segments
        if s.subgraph == sg.index
        and not getattr(s.package.main_executable(), "estimated_cycles", 0)
    ]
    if not missing:
        return
    count = len([s for s in ctx.segments if s.subgraph == sg.index])
    yield finding(
        "C011",
        f"no latency estimate: {len(missing)} of {count} Edge TPU segment(s) record no compiler "
        "cycle estimate, and the ops inside a segment are not in a compiled file",
    )


# The rules run on every compiled model, in order (C010 only where a compiled model is expected).
COMPILED_MODEL_RULES: tuple[Callable[[CompiledContext], Iterator[Finding]], ...] = (
    cpu_op_between_segments,
    off_chip_parameters,
    runtime_too_old,
    already_compiled,
    legacy_format,
    executables_rejected,
    layer_tensor_mismatch,
    chip_list_mismatch,
    caching_token_mismatch,
)
