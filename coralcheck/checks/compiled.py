"""The `C` rule family: compiled models, (source, compiled) pairs and the real compiler.

Each rule is one small function whose docstring is the explanation users see
(`coralcheck rule C001`); `RULES` lists them as `Rule` objects for the registry
(`coralcheck.checks.all_rules()`).

- C001–C010: facts and integrity of a compiled `*_edgetpu.tflite` (format doc §6a), run by
  `coralcheck.analyze.compiled` on a `CompiledContext`; C011: no latency estimate for a compiled
  model alone (`coralcheck.analyze.latency`).
- C020–C024: a (source, compiled) pair (format doc §6b), run by `coralcheck.analyze.pair`.
- C030–C041: running `edgetpu_compiler` and its failures (facts.md §5), run by
  `coralcheck.analyze.pair.compile_and_compare`; the failure rules are data (`FAILURE_RULES`),
  keyed by the `kind` that `coralcheck.compiler.log` gives each failure.
- C050: a committed compiler log that disagrees with the prediction (`coralcheck log`).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from coralcheck.checks import Rule
from coralcheck.model.edgetpu import (
    EXECUTION_ONLY,
    PARAMETER_CACHING,
    STAND_ALONE,
    Layer,
    Segment,
)
from coralcheck.model.graph import Model, Tensor
from coralcheck.options import Options
from coralcheck.report import Finding
from coralcheck.wording import human_bytes

FAMILY = "compiled"

# The runtime's own version (libedgetpu RuntimeVersion::kCurrent): it refuses anything newer.
LATEST_RUNTIME_VERSION = 14

# TFLite tensor type → the executable layer data type the compiler writes for it.
_LAYER_TYPE_OF_DTYPE = {"UINT8": 0, "UINT16": 1, "INT32": 2, "FLOAT16": 4, "FLOAT32": 5, "INT8": 8}
_LAYER_TYPE_OF_DTYPE["INT16"] = 9
# Zero-point shift of signed layer types (the runtime flips the sign bit).
_SIGNED_ZERO_POINT_SHIFT = {8: 128, 9: 32768}


@dataclass(frozen=True)
class CompiledContext:
    """What the compiled-model rules look at.

    `cpu_between` are the indices of main-subgraph CPU ops that sit between two Edge TPU
    segments (fed by one, feeding another).
    """

    model: Model
    segments: list[Segment]
    options: Options
    cpu_between: frozenset[int] = field(default_factory=frozenset)


def _segment_finding(rule: Rule, seg: Segment, message: str) -> Finding:
    """A finding located on the segment's `edgetpu-custom-op`."""
    return _finding(
        rule, message, op=seg.op_index, subgraph=seg.subgraph, opcode="CUSTOM:edgetpu-custom-op"
    )


def _finding(rule: Rule, message: str, **where: object) -> Finding:
    return Finding(rule.code, rule.severity, message, fix=rule.fix, **where)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# C001–C010: a compiled model on its own
# ---------------------------------------------------------------------------------------------


def cpu_op_between_segments(ctx: CompiledContext) -> Iterator[Finding]:
    """An op runs on the CPU between two Edge TPU segments.

    The compiled model hands data from the Edge TPU to the CPU and back for this op on every
    inference: each crossing copies the activations over USB or PCIe and waits for the CPU, which
    often costs more than the op itself. This happens when the model was compiled with `-a`
    (several segments) and an op in the middle could not be mapped.
    """
    rule = RULE_BY_FUNCTION[cpu_op_between_segments]
    for index in sorted(ctx.cpu_between):
        op = ctx.model.main.operators[index]
        yield _finding(
            rule,
            f"{op.opcode} (op {index}) runs on the CPU between two Edge TPU segments: "
            "activations cross to the CPU and back on every inference",
            op=index,
            opcode=op.opcode,
        )


def off_chip_parameters(ctx: CompiledContext) -> Iterator[Finding]:
    """Part of the parameters is streamed from host memory on every inference.

    The Edge TPU caches parameters (weights) in about 8 MB of on-chip SRAM. What does not fit —
    or what co-compiled models ahead of this one already took — stays in the model file and is
    sent to the chip for every inference, which is slow, especially over USB.
    """
    rule = RULE_BY_FUNCTION[off_chip_parameters]
    for seg_no, seg in enumerate(ctx.segments):
        main = seg.package.main_executable()
        if main is None or main.parameter_bytes == 0:
            continue
        cache = seg.package.caching_executable()
        cached = cache.parameter_bytes if cache else 0
        yield _segment_finding(
            rule,
            seg,
            f"Edge TPU segment {seg_no + 1} streams {human_bytes(main.parameter_bytes)} of "
            f"parameters from host memory on every inference ({human_bytes(cached)} cached "
            "on-chip)",
        )


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
    rule = RULE_BY_FUNCTION[runtime_too_old]
    target = ctx.options.runtime_version
    for seg_no, seg in enumerate(ctx.segments):
        needed = seg.package.min_runtime_version
        if needed is None or needed <= target:
            continue
        yield _segment_finding(
            rule,
            seg,
            f"Edge TPU segment {seg_no + 1} needs Edge TPU runtime {needed} or newer, but the "
            f"target runtime is {target}: libedgetpu will refuse to load it",
        )


def already_compiled(ctx: CompiledContext) -> Iterator[Finding]:
    """This model is already compiled for the Edge TPU: do not compile it again.

    `edgetpu_compiler` on a `*_edgetpu.tflite` sees the `edgetpu-custom-op` as an unknown custom
    op, leaves it on the CPU and writes a model that no longer runs on the TPU (or fails).
    Compile the original (source) model; keep this file for deployment.
    """
    if ctx.segments:
        rule = RULE_BY_FUNCTION[already_compiled]
        yield _finding(
            rule,
            "already compiled for the Edge TPU: inspect it, deploy it, but compile the source "
            "model, not this file",
        )


def legacy_format(ctx: CompiledContext) -> Iterator[Finding]:
    """The compiled model uses a deprecated or malformed Edge TPU package layout.

    Current compilers wrap the executables in a package with the file identifier "DWN1". Files
    from the 2019 compiler store bare executables instead (no runtime or compiler version), and
    today's runtime ignores their parameter-caching executable; a package without the identifier
    is accepted by the runtime with a warning only. Recompile the source with a current compiler.
    """
    rule = RULE_BY_FUNCTION[legacy_format]
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
            rule,
            seg,
            f"Edge TPU segment {seg_no + 1} uses {what}",
        )


def executable_problems(seg: Segment) -> list[str]:
    """Why the runtime would reject a segment's packages (libedgetpu package_registry.cc)."""
    problems = []
    for pkg_no, pkg in enumerate(seg.packages):
        where = f"package {pkg_no}"
        execs = pkg.executables
        if not execs:
            problems.append(f"{where} has no executable")
            continue
        if pkg.virtual_chip_id == -1:
            problems.append(f"{where} is a multi-chip package (virtual_chip_id -1)")
        if pkg.layout != "legacy":
            types = sorted(e.type for e in execs)
            legal = (
                len(execs) == 1,
                types == [PARAMETER_CACHING, EXECUTION_ONLY],
                types == [STAND_ALONE, PARAMETER_CACHING, EXECUTION_ONLY],
            )
            if not any(legal):
                names = "+".join(e.type_name for e in execs)
                problems.append(f"{where} has an executable set the runtime rejects ({names})")
        for exec_no, e in enumerate(execs):
            if e.batch_size < 1:
                problems.append(f"{where} executable {exec_no} has batch size {e.batch_size}")
    return problems


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
    rule = RULE_BY_FUNCTION[executables_rejected]
    for seg_no, seg in enumerate(ctx.segments):
        for problem in executable_problems(seg):
            yield _segment_finding(
                rule,
                seg,
                f"Edge TPU segment {seg_no + 1}: {problem}",
            )


def _layer_problem(layer: Layer, tensor: Tensor) -> str | None:
    """How a TPU-side layer disagrees with the TFLite tensor bound to it; None if it agrees."""
    if layer.name != tensor.name:
        return f"layer {layer.name!r} is bound to tensor {tensor.name!r}"
    expected_type = _LAYER_TYPE_OF_DTYPE.get(tensor.dtype)
    if expected_type is not None and layer.data_type != expected_type:
        return f"{tensor.name!r}: layer type {layer.data_type_name} for a {tensor.dtype} tensor"
    elem = layer.element_bytes
    if elem is not None and tensor.nbytes:
        layer_bytes = max(layer.y_dim, 1) * max(layer.x_dim, 1) * max(layer.z_dim, 1) * elem
        batch = tensor.shape[0] if len(tensor.shape) > 1 and tensor.shape[0] > 0 else 1
        if tensor.nbytes not in (layer_bytes, layer_bytes * batch):
            return (
                f"{tensor.name!r}: the layer holds {layer_bytes} bytes, the tensor {tensor.nbytes}"
            )
    q = tensor.quantization
    if q is not None and len(q.scale) == 1 and layer.scale is not None:
        if not math.isclose(layer.scale, q.scale[0], rel_tol=1e-6, abs_tol=1e-12):
            return f"{tensor.name!r}: layer scale {layer.scale:g}, tensor scale {q.scale[0]:g}"
        if len(q.zero_point) == 1 and layer.zero_point is not None:
            shift = _SIGNED_ZERO_POINT_SHIFT.get(layer.data_type, 0)
            if layer.zero_point != q.zero_point[0] + shift:
                return (
                    f"{tensor.name!r}: layer zero point {layer.zero_point}, expected "
                    f"{q.zero_point[0] + shift} for tensor zero point {q.zero_point[0]}"
                )
    return None


def binding_problems(model: Model, seg: Segment) -> list[str]:
    """Where the main executable's I/O layers disagree with the custom op's tensors.

    Layers bind to the node's inputs and outputs by position; `*_variable_output` output layers
    are variable-tensor write-backs and must name a variable input (libedgetpu custom_op.cc).
    """
    if seg.legacy:  # legacy layer slots 6-8 do not follow the current schema
        return []
    main = seg.package.main_executable()
    if main is None:
        return []
    sg = model.subgraphs[seg.subgraph]
    op = sg.operators[seg.op_index]
    inputs = sg.op_inputs(op)
    outputs = sg.op_outputs(op)
    problems = []
    plain_outputs = [layer for layer in main.output_layers if not layer.is_variable_output]
    for role, layers, tensors in (
        ("input", main.input_layers, inputs),
        ("output", plain_outputs, outputs),
    ):
        if len(layers) != len(tensors):
            problems.append(f"{len(layers)} {role} layers for {len(tensors)} {role} tensors")
            continue
        for layer, tensor in zip(layers, tensors, strict=True):
            problem = _layer_problem(layer, tensor)
            if problem:
                problems.append(problem)
    variable_inputs = {t.name for t in inputs if t.is_variable}
    for layer in main.output_layers:
        if layer.is_variable_output:
            state = layer.name.removesuffix("_variable_output")
            if state not in variable_inputs and state not in {t.name for t in inputs}:
                problems.append(f"{layer.name!r} writes back a tensor that is not an input")
    return problems


def layer_tensor_mismatch(ctx: CompiledContext) -> Iterator[Finding]:
    """The segment's Edge TPU executable does not match the tensors of its custom op.

    The runtime binds the executable's input and output layers to the custom op's tensors by
    position and checks their sizes. A name, size, type or quantization that disagrees means
    the file was edited or assembled by hand after compilation: results will be wrong or the
    model will not load. Recompile the source model.

    Evidence: ../shared/edgetpu/compiled-model-format.md (how the runtime binds layers to the
    custom op's tensors; every real compiled model in ../shared/corpus agrees with its tensors).
    """
    rule = RULE_BY_FUNCTION[layer_tensor_mismatch]
    for seg_no, seg in enumerate(ctx.segments):
        for problem in binding_problems(ctx.model, seg):
            yield _segment_finding(
                rule,
                seg,
                f"Edge TPU segment {seg_no + 1}: {problem}",
            )


def chip_list_mismatch(ctx: CompiledContext) -> Iterator[Finding]:
    """The custom op's chip list does not match its packages.

    When the custom options carry a chip list (key "6"), it names the chip of every package:
    the first package plus the extra ones of key "7". A different length means damaged custom
    options; the runtime may pick the wrong package or refuse the model. Recompile the source.
    """
    rule = RULE_BY_FUNCTION[chip_list_mismatch]
    for seg_no, seg in enumerate(ctx.segments):
        if seg.chip_enums is None or len(seg.chip_enums) == 1 + seg.extra_package_count:
            continue
        yield _segment_finding(
            rule,
            seg,
            f"Edge TPU segment {seg_no + 1} lists {len(seg.chip_enums)} chips for "
            f"{1 + seg.extra_package_count} packages",
        )


def caching_token_mismatch(ctx: CompiledContext) -> Iterator[Finding]:
    """The parameter-caching and execution executables of one package carry different tokens.

    The executable that loads the parameters into on-chip memory and the one that runs the
    inference must share a caching token; with different tokens the runtime reloads the
    parameters as if another model had run in between. The package was not written by one
    compiler run: recompile the source.
    """
    rule = RULE_BY_FUNCTION[caching_token_mismatch]
    for seg_no, seg in enumerate(ctx.segments):
        pkg = seg.package
        cache, main = pkg.caching_executable(), pkg.main_executable()
        if cache is None or main is None or pkg.layout == "legacy":
            continue
        if cache.parameter_caching_token != main.parameter_caching_token:
            yield _segment_finding(
                rule,
                seg,
                f"Edge TPU segment {seg_no + 1}: caching token "
                f"{cache.parameter_caching_token:#018x} vs {main.parameter_caching_token:#018x}",
            )


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
        yield _finding(
            RULE_BY_FUNCTION[no_edgetpu_segment],
            "no Edge TPU segment (edgetpu-custom-op): nothing in this model runs on the Edge TPU",
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


# ---------------------------------------------------------------------------------------------
# C020–C024: a (source, compiled) pair. The pair mapper computes; these rules phrase.
# ---------------------------------------------------------------------------------------------


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
    rule = RULE_BY_FUNCTION[pair_mismatch]
    shown = "; ".join(problems[:3]) + (
        f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    )
    yield _finding(rule, f"{compiled_name} was not compiled from this model: {shown}")


def compiler_put_on_cpu(compiled_name: str, diff: list[dict]) -> Iterator[Finding]:
    """The real compiler left ops on the CPU that coralcheck predicted for the Edge TPU.

    The compiled twin is the ground truth: these ops really run on the CPU. The compiler does
    not record why; typical causes are undocumented size limits (large resize, concatenation or
    reshape in detection heads) and the single-segment rule after them. Check the ops listed in
    the diff and the compiler's log for their status.
    """
    missed = [d for d in diff if d["predicted"] == "tpu" and d["actual"] == "cpu"]
    if missed:
        ops = ", ".join(f"{d['opcode']} (op {d['index']})" for d in missed[:5])
        more = f" and {len(missed) - 5} more" if len(missed) > 5 else ""
        yield _finding(
            RULE_BY_FUNCTION[compiler_put_on_cpu],
            f"{compiled_name}: {len(missed)} op(s) predicted for the Edge TPU run on the CPU: "
            f"{ops}{more}",
            op=missed[0]["index"],
            opcode=missed[0]["opcode"],
        )


def compiler_mapped_predicted_cpu(compiled_name: str, diff: list[dict]) -> Iterator[Finding]:
    """The real compiler mapped ops to the Edge TPU that coralcheck predicted for the CPU.

    Good news for the model: the compiled twin runs these ops on the Edge TPU. The prediction
    was too cautious; the diff lists them.
    """
    gained = [d for d in diff if d["predicted"] == "cpu" and d["actual"] == "tpu"]
    if gained:
        yield _finding(
            RULE_BY_FUNCTION[compiler_mapped_predicted_cpu],
            f"{compiled_name}: {len(gained)} op(s) predicted for the CPU run on the Edge TPU",
            op=gained[0]["index"],
            opcode=gained[0]["opcode"],
        )


def pair_unassigned_ops(compiled_name: str, unassigned: list[tuple[int, str]]) -> Iterator[Finding]:
    """Some source ops are neither in an Edge TPU segment nor on the CPU in the compiled model.

    They feed no model output (dead code), so the compiler dropped them. Remove them from the
    source model, or check that the outputs you need are really graph outputs.
    """
    if unassigned:
        ops = ", ".join(f"{opcode} (op {i})" for i, opcode in unassigned[:5])
        yield _finding(
            RULE_BY_FUNCTION[pair_unassigned_ops],
            f"{compiled_name}: {len(unassigned)} source op(s) are not in the compiled model: {ops}",
            op=unassigned[0][0],
            opcode=unassigned[0][1],
        )


def pair_quantization_differs(compiled_name: str, tensors: list[str]) -> Iterator[Finding]:
    """Tensors of the compiled twin have other quantization parameters than in the source.

    Names, shapes, types and ops agree, so the op-by-op comparison stands, but the compiled
    file was made from a slightly different export of the model (different calibration). Use
    the compiled twin of this exact file before trusting its outputs.
    """
    if tensors:
        names = ", ".join(repr(t) for t in tensors[:3])
        yield _finding(
            RULE_BY_FUNCTION[pair_quantization_differs],
            f"{compiled_name}: {len(tensors)} tensor(s) are quantized differently than in the "
            f"source ({names}): it comes from another export of this model",
            tensor=tensors[0],
        )


# ---------------------------------------------------------------------------------------------
# C030–C041: running the compiler
# ---------------------------------------------------------------------------------------------

INSTALL_HINT = (
    "install edgetpu_compiler from the Coral apt repository (package edgetpu-compiler, "
    "https://coral.ai/docs/edgetpu/compiler/; x86-64 Linux only), or pass --compiler PATH"
)


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
    yield _finding(
        RULE_BY_FUNCTION[no_latency_estimate],
        f"no latency estimate: {len(missing)} of {count} Edge TPU segment(s) record no compiler "
        "cycle estimate, and the ops inside a segment are not in a compiled file",
    )


def compiler_unavailable(problem: str) -> Iterator[Finding]:
    """`--compile` was asked for, but edgetpu_compiler could not be run.

    The Edge TPU compiler exists only for x86-64 Debian-based Linux (apt package
    `edgetpu-compiler` from the Coral repository). Without it coralcheck reports its own
    prediction only. On other machines run the compiler in an x86-64 Linux container, or keep
    its `.log` beside the model and check it with `coralcheck log`.
    """
    yield _finding(
        RULE_BY_FUNCTION[compiler_unavailable], f"{problem}; showing the prediction only"
    )


def compile_compiled_model() -> Iterator[Finding]:
    """`--compile` on a model that is already compiled: the compiler was not run.

    Compiling a `*_edgetpu.tflite` again leaves its Edge TPU custom op on the CPU. Run
    `--compile` on the source model instead.
    """
    yield _finding(
        RULE_BY_FUNCTION[compile_compiled_model],
        "--compile skipped: this model is already compiled; compile its source model",
    )


@dataclass(frozen=True)
class FailureRule:
    """A compiler failure kind (from `coralcheck.compiler.log`) and how users fixed it."""

    kind: str
    code: str
    name: str
    title: str
    explanation: str
    fix: str
    example: str


# Compiler failures, facts.md §5: message, cause, and what users did (issue numbers there).
FAILURE_RULES: tuple[FailureRule, ...] = (
    FailureRule(
        "model_not_quantized",
        "C031",
        "compiler-model-not-quantized",
        "The compiler rejected the model: not (fully) quantized",
        "edgetpu_compiler accepts only models whose ops are all 8-bit quantized. Float, "
        "dynamic-range (weights-only) or partly quantized models give 'Model not quantized' "
        "(google-coral/edgetpu #222, #391, #366).",
        # Q001's fix, executed in tests/test_fixes_executed.py.
        "Convert with full-integer post-training quantization: converter.optimizations = "
        "[tf.lite.Optimize.DEFAULT]; converter.representative_dataset = representative_dataset "
        "(a function yielding lists of input arrays: about 100 real samples); "
        "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]; "
        "converter.inference_input_type = tf.uint8; converter.inference_output_type = tf.uint8.",
        "Invalid model: model.tflite / Model not quantized",
    ),
    FailureRule(
        "op_version_not_found",
        "C032",
        "compiler-op-version-unknown",
        "The compiler does not know an op version the converter wrote",
        "The compiler embeds an old TensorFlow Lite; a newer converter writes newer op versions "
        "(REVERSE_V2 v3, RSQRT v2, EXP v2, CONV_2D v6, TRANSPOSE_CONV v3, ...) and parsing fails "
        'with "Didn\'t find op for builtin opcode ... version ..." '
        "(google-coral/edgetpu #340, #384, #147).",
        "Convert with an older TensorFlow (2.4-2.5-era versions are the ones users report "
        "working), or avoid or replace the op.",
        "ERROR: Didn't find op for builtin opcode 'EXP' version '2'",
    ),
    FailureRule(
        "builtin_code_out_of_range",
        "C033",
        "compiler-op-unknown",
        "The model uses an op newer than the compiler's schema",
        "The op's builtin code is beyond the TFLite schema the compiler was built with, so the "
        "model cannot be parsed.",
        "Avoid the op (replace it with supported ones) or convert with an older TensorFlow.",
        "ERROR: Op builtin_code out of range: 150.",
    ),
    FailureRule(
        "internal_error",
        "C034",
        "compiler-internal-error",
        "The compiler crashed (Internal compiler error)",
        "A generic crash of edgetpu_compiler. Reported causes: rank-5 reshapes, very large models; "
        "sometimes it is not deterministic and a retry works (google-coral/edgetpu #173, #60, "
        "#211).",
        "Retry once; remove rank-5 tensors and reshapes, simplify or split the model (-i "
        "intermediate tensors), and check the prediction's findings for the op that triggers it.",
        "Internal compiler error. Aborting!",
    ),
    FailureRule(
        "large_activation_tensors",
        "C035",
        "compiler-large-activations",
        "Compilation failed: activation tensors too large for the Edge TPU",
        "Intermediate activations do not fit the on-chip memory "
        "(google-coral/edgetpu #439, #601, #651, #444).",
        "Compile with --compiler-flag=-d (--search_delegate, optionally -k N) so the compiler "
        "maps the part that fits, cut the graph with -i/--intermediate_tensors, or lower the "
        "input resolution.",
        "Compilation failed: Compilation failed due to large activation tensors in model.",
    ),
    FailureRule(
        "dynamic_sized_tensors",
        "C036",
        "compiler-dynamic-tensors",
        "Compilation failed: the model has dynamic-sized tensors",
        "The Edge TPU delegate needs static shapes; a dynamic dimension (usually the batch, -1 "
        "or None) fails (google-coral/edgetpu #829, #831).",
        # S001's fix, executed in tests/test_fixes_executed.py.
        "Give every input a static shape with batch 1 before converting. Keras 3: clone = "
        "keras.models.clone_model(model, input_tensors=keras.Input(shape=(H, W, C), "
        "batch_size=1)); clone.set_weights(model.get_weights()); then convert the clone (the "
        "same works with tf.keras in TF 2.15 and older).",
        "ERROR: Attempting to use a delegate that only supports static-sized tensors ...",
    ),
    FailureRule(
        "timeout",
        "C037",
        "compiler-timeout",
        "The compiler did not finish in time",
        "Compilation ran longer than the timeout (coralcheck's --compiler-timeout, and "
        "compiler 16.0's own --timeout_sec, 180 s by default) and was stopped.",
        "Raise --compiler-timeout, or split the model (--num_segments, -i).",
        "Compilation timed out",
    ),
    FailureRule(
        "version_only",
        "C038",
        "compiler-printed-version-only",
        "The compiler printed only its version and stopped",
        "Compiler 15.0 does this with --num_segments on some models (EfficientDet-Lite3/4, "
        "google-coral/edgetpu #411): no model is written.",
        "Run the command in the report by hand to see the full output; the known case is "
        "compiler 15.0 with --num_segments.",
        "Edge TPU Compiler version 15.0.340273435",
    ),
    FailureRule(
        "unable_to_open_output",
        "C039",
        "compiler-cannot-write-output",
        "The compiler could not write its output file",
        "edgetpu_compiler printed 'Unable to open output file': the output directory is not "
        "writable or does not exist, or the disk is full.",
        "Give a writable directory with --compile-output DIR and check free space.",
        "Unable to open output file",
    ),
    FailureRule(
        "other",
        "C040",
        "compiler-failed",
        "The compiler failed",
        "edgetpu_compiler exited with an error, printed nothing coralcheck recognises, or wrote "
        "no compiled model. The message is the compiler's own.",
        "Run the command in the report by hand to see the full output; check the prediction's "
        "findings for the op that causes it.",
        "edgetpu_compiler exited with status 1",
    ),
)
FAILURE_RULE_BY_KIND = {rule.kind: rule for rule in FAILURE_RULES}


_UNKNOWN_OP_VERSION = re.compile(r"opcode '(\w+)' version '(\d+)'")


def failure_fix(kind: str, message: str, compiler_version: str | None) -> str:
    """The fix for a compiler failure, with a newer compiler offered only where one helps: the
    release that ran (`compiler_version`, None when unknown) decides, never a fixed "16.0"."""
    from coralcheck.edgetpu.knowledge import knowledge, parse_version

    rule = FAILURE_RULE_BY_KIND.get(kind, FAILURE_RULE_BY_KIND["other"])
    if rule.kind not in ("op_version_not_found", "version_only"):
        return rule.fix
    releases = knowledge().releases
    newest = releases[-1]
    ran = parse_version(compiler_version) if compiler_version else None
    if ran is not None and ran >= newest.version:
        return rule.fix
    older = "" if ran is not None else f"If your compiler is older than {newest.short}: "
    if rule.kind == "version_only":
        return f"{older}Use compiler {newest.short}. {rule.fix}"
    found = _UNKNOWN_OP_VERSION.search(message)
    if found is None:
        return f"{rule.fix} {older}Compiler {newest.short} parses more op versions; try it."
    opcode, version = found.group(1), int(found.group(2))
    limits = knowledge().parse_limits.get(opcode, ())
    if not limits:  # no evidence either way: the newest may, or may not, parse it
        return f"{rule.fix} {older}Compiler {newest.short} may parse it; try it."
    start = ran if ran is not None else releases[0].version
    for r in releases:
        if r.version > start and not any(
            r.version <= lim.until and version > lim.max_version for lim in limits
        ):
            return f"{rule.fix} {older}Compiler {r.short} parses {opcode} version {version}."
    return rule.fix  # no release parses it: a newer compiler is no way out


def compiler_failure(
    kind: str, message: str, op: str | None = None, compiler_version: str | None = None
) -> Finding:
    """The finding for one compiler failure `kind` with the compiler's `message`, from the
    compiler `compiler_version` (None: unknown)."""
    rule = FAILURE_RULE_BY_KIND.get(kind, FAILURE_RULE_BY_KIND["other"])
    fix = failure_fix(kind, message, compiler_version)
    if op:
        fix = f"{op}: {fix}"
    text = " ".join(message.split()) or rule.title
    return Finding(rule.code, "error", f"edgetpu_compiler: {text}", fix=fix)


# ---------------------------------------------------------------------------------------------
# C050: a committed compiler log
# ---------------------------------------------------------------------------------------------


def log_disagrees(disagreements: list[dict]) -> Iterator[Finding]:
    """The compiler log and coralcheck's prediction disagree on some op types.

    Per op type and status (for console output without the per-op table: in the totals, ops
    on the Edge TPU and on the CPU, segments), the counts the log reports differ from the
    prediction for the model. Either the model changed since the log was written (recompile
    and commit the new log), or the prediction is wrong for this model (report it).
    """
    if disagreements:
        shown = ", ".join(
            f"{_counted(d)}: predicted {d['predicted']}, logged {d['logged']}"
            for d in disagreements[:3]
        )
        what = "" if any("what" in d for d in disagreements) else " op type/status"
        yield _finding(
            RULE_BY_FUNCTION[log_disagrees],
            f"{len(disagreements)}{what} count(s) differ from the log: {shown}",
        )


def _counted(disagreement: dict) -> str:
    """What a C050 count is of: a total ("ops on the CPU") or an op type and status."""
    if "what" in disagreement:
        return str(disagreement["what"])
    return f"{disagreement['operator']} {disagreement['status']!r}"


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------

# (rule function, code, name, severity, title, fix, example); the docstring is the explanation.
_FUNCTION_RULES: tuple[tuple, ...] = (
    (
        cpu_op_between_segments,
        "C001",
        "cpu-op-between-segments",
        "warning",
        "An op runs on the CPU between two Edge TPU segments",
        "Make the op mappable (see the source model's findings), or move it after the last "
        "mapped op; compiling without -a keeps one segment.",
        "ARG_MAX (op 7) runs on the CPU between two Edge TPU segments",
    ),
    (
        off_chip_parameters,
        "C002",
        "off-chip-parameters",
        "warning",
        "Parameters are streamed from host memory on every inference",
        "Shrink the model (fewer or narrower layers), pipeline it over several Edge TPUs "
        "(--num_segments), or co-compile it first in the list so it gets the cache.",
        "Edge TPU segment 1 streams 2.31 KiB of parameters from host memory",
    ),
    (
        runtime_too_old,
        "C003",
        "runtime-too-old",
        "error",
        "The compiled model needs a newer Edge TPU runtime than the target",
        "Recompile with the target's runtime: edgetpu_compiler -m N (--min_runtime_version), "
        "or update libedgetpu on the device.",
        "needs Edge TPU runtime 14 or newer, but the target runtime is 13",
    ),
    (
        already_compiled,
        "C004",
        "already-compiled",
        "info",
        "Already compiled: do not compile this file again",
        "Compile the source model (the .tflite given to edgetpu_compiler), not *_edgetpu.tflite.",
        "already compiled for the Edge TPU",
    ),
    (
        legacy_format,
        "C005",
        "legacy-compiled-format",
        "warning",
        "Deprecated or malformed Edge TPU package layout",
        "Recompile the source model with edgetpu_compiler 16.0.",
        "Edge TPU segment 1 uses the 2019 legacy layout",
    ),
    (
        executables_rejected,
        "C006",
        "executables-rejected",
        "error",
        "The Edge TPU runtime would reject this segment's executables",
        "Recompile the source model; do not edit compiled models.",
        "package 0 has an executable set the runtime rejects (EXECUTION_ONLY+EXECUTION_ONLY)",
    ),
    (
        layer_tensor_mismatch,
        "C007",
        "layer-tensor-mismatch",
        "error",
        "The Edge TPU executable does not match its custom op's tensors",
        "Recompile the source model; do not rename or requantize tensors of a compiled model.",
        "layer 'input' is bound to tensor 'image'",
    ),
    (
        chip_list_mismatch,
        "C008",
        "chip-list-mismatch",
        "warning",
        "The custom op's chip list does not match its packages",
        "Recompile the source model.",
        "Edge TPU segment 1 lists 2 chips for 1 packages",
    ),
    (
        caching_token_mismatch,
        "C009",
        "caching-token-mismatch",
        "warning",
        "Parameter-caching and execution executables carry different tokens",
        "Recompile the source model.",
        "caching token 0x6d146c3f97d6648c vs 0x0000000000000001",
    ),
    (
        no_edgetpu_segment,
        "C010",
        "no-edgetpu-segment",
        "error",
        "A compiled model without any Edge TPU segment",
        "Quantize the whole model to int8 (full-integer post-training quantization) and "
        "compile it again; see the source model's findings.",
        "no Edge TPU segment (edgetpu-custom-op)",
    ),
    (
        no_latency_estimate,
        "C011",
        "no-latency-estimate",
        "info",
        "No latency estimate for a compiled model without the compiler's cycle estimate",
        "Lint the source model, or pair it with its compiled twin: coralcheck SOURCE.tflite "
        "--compiled SOURCE_edgetpu.tflite.",
        "no latency estimate: 1 of 1 Edge TPU segment(s) record no compiler cycle estimate",
    ),
    (
        pair_mismatch,
        "C020",
        "pair-mismatch",
        "error",
        "The compiled model was not compiled from this source model",
        "Pass the compiled twin of this exact file with --compiled, or use --compile.",
        "posenet_edgetpu.tflite was not compiled from this model: 3 tensor names are missing",
    ),
    (
        compiler_put_on_cpu,
        "C021",
        "compiler-put-on-cpu",
        "warning",
        "The real compiler left ops on the CPU that were predicted for the Edge TPU",
        "See the diff; simplify or shrink those ops (resize, concatenation, reshape sizes), or "
        "end the model before them and do the rest on the CPU.",
        "3 op(s) predicted for the Edge TPU run on the CPU: TRANSPOSE (op 240), ...",
    ),
    (
        compiler_mapped_predicted_cpu,
        "C022",
        "compiler-mapped-predicted-cpu",
        "info",
        "The real compiler mapped ops that were predicted for the CPU",
        "Nothing to fix in the model.",
        "2 op(s) predicted for the CPU run on the Edge TPU",
    ),
    (
        pair_unassigned_ops,
        "C023",
        "pair-unassigned-ops",
        "warning",
        "Source ops that are not in the compiled model",
        "Remove dead ops from the source model, or make the outputs you need graph outputs.",
        "2 source op(s) are not in the compiled model: ADD (op 5), ...",
    ),
    (
        pair_quantization_differs,
        "C024",
        "pair-quantization-differs",
        "warning",
        "The compiled twin is quantized differently from the source",
        "Compile this exact file (--compile) and deploy that output.",
        "1 tensor(s) are quantized differently than in the source ('float_part_heatmaps')",
    ),
    (
        compiler_unavailable,
        "C030",
        "compiler-unavailable",
        "warning",
        "edgetpu_compiler is not available: prediction only",
        INSTALL_HINT,
        "edgetpu_compiler not found on PATH",
    ),
    (
        compile_compiled_model,
        "C041",
        "compile-compiled-model",
        "warning",
        "--compile on an already compiled model",
        "Run --compile on the source model.",
        "--compile skipped: this model is already compiled",
    ),
    (
        log_disagrees,
        "C050",
        "log-disagrees",
        "warning",
        "The compiler log and the prediction disagree",
        "Recompile and commit the new log if the model changed; otherwise report the disagreement.",
        "CONCATENATION 'Mapped to Edge TPU': predicted 17, logged 16",
    ),
)


def _rule_of(entry: tuple) -> Rule:
    func, code, name, severity, title, fix, example = entry
    return Rule(
        code, name, FAMILY, severity, title, inspect.cleandoc(func.__doc__ or ""), fix, example
    )


RULE_BY_FUNCTION: dict[Callable[..., Iterator[Finding]], Rule] = {
    entry[0]: _rule_of(entry) for entry in _FUNCTION_RULES
}

RULES: tuple[Rule, ...] = tuple(
    sorted(
        [*RULE_BY_FUNCTION.values()]
        + [
            Rule(r.code, r.name, FAMILY, "error", r.title, r.explanation, r.fix, r.example)
            for r in FAILURE_RULES
        ],
        key=lambda r: r.code,
    )
)


def rules() -> tuple[Rule, ...]:
    """Every rule of the C family, by code."""
    return RULES
