"""Inspect a compiled model (`*_edgetpu.tflite`): what really runs on the Edge TPU and the CPU.

`compiled_placements(model, segments)`: the operators of the compiled main subgraph, each
`edgetpu-custom-op` segment placed "tpu" and every other op "cpu" (the ops inside a segment are
not recorded in the file: pair it with its source, `--compiled`, to count them).
`coralcheck.pipeline.compiled.inspect_compiled` makes the report of a compiled model from them.

`executable_problems(segment)` and `binding_problems(model, segment)` say why the runtime would
reject a segment (rules C006, C007).

`compiled_facts(...)` is `ModelReport.compiled` (also produced in pair and `--compile` mode, see
`coralcheck.pipeline.pair`), a JSON-ready dict:

- `path`: the compiled file; `origin`: "inspect" | "pair" | "compiler".
- `description`: the TFLite description (a hint of the producing tool, not a version).
- `compiled_ops`: operators in the compiled main subgraph (segments + CPU ops);
  `tpu_segments`: number of `edgetpu-custom-op` nodes; `cpu_ops`: number of other ops;
  `cpu_op_counts`: {opcode: count}; `cpu_ops_between_segments`: indices of CPU ops fed by one
  segment and feeding another.
- `on_chip_parameter_bytes` / `off_chip_parameter_bytes`: parameters cached in on-chip SRAM /
  streamed from the host on every inference, summed over segments.
- `min_runtime_version`: the highest any segment needs (None for the legacy layout);
  `target_runtime_version`: `Options.runtime_version`, which it is checked against.
- `parameter_caching_tokens`: the distinct tokens, as "0x%016x" strings (a token shared between
  files means they were co-compiled or are segments of one pipeline).
- `estimated_cycles`: the compiler's estimate summed over segments (None when not recorded);
  `estimated_ms`: that at `clock_mhz` (500 MHz, an assumption: no clock is stored in the
  model; `clock_assumed` is True).
- `segments`: one row per segment: `index` (1-based), `op`, `subgraph`, `package_layout`
  ("DWN1" | "no-identifier" | "legacy"), `packages`, `min_runtime_version`,
  `compiler_version` (raw "cl/<changelist>"), `compiler_changelist`, `executable_types`
  ("EXECUTION_ONLY+PARAMETER_CACHING"), `on_chip_parameter_bytes`, `off_chip_parameter_bytes`,
  `parameter_caching_token`, `batch_size`, `scratch_bytes`, `narrow_memory_bytes_per_tile`,
  `chip`, `chip_enums`, `estimated_cycles`, `estimated_ms`, `inputs`, `outputs` (tensor
  counts; the tensors are in `segment_tensors`), `flexbuffer_keys`.
- `segment_tensors`: one row per segment input/output: `segment`, `role` ("input" |
  "output" | "state_output"), `position`, `name`, `tensor` (index, None for state
  write-backs), `dtype`, `shape`, `scale`, `zero_point`, `layer_type`, `layer_dims` (y, x, z),
  `layer_bytes`, `layer_scale`, `layer_zero_point`.
- `executables`: one row per executable: `segment`, `package`, `type`, `name`, `batch_size`,
  `scratch_bytes`, `parameter_bytes`, `instruction_bytes`, `narrow_memory_bytes_per_tile`,
  `parameter_caching_token`, `chip`, `estimated_cycles`, `use_tpu_dram_for_parameters`.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from coralcheck.edgetpu.statuses import MAPPED_STATUS
from coralcheck.model.edgetpu import (
    EXECUTION_ONLY,
    PARAMETER_CACHING,
    STAND_ALONE,
    Executable,
    Layer,
    Segment,
)
from coralcheck.model.graph import Model, Subgraph, Tensor
from coralcheck.options import Options
from coralcheck.report import Memory, OpPlacement

# No clock is stored in a compiled model; 500 MHz is the commonly quoted Edge TPU clock
# (facts.md §7: matches 4 TOPS on a 64x64 MAC array; not confirmed by Coral).
ASSUMED_CLOCK_MHZ = 500

EDGETPU_OPCODE = "CUSTOM:edgetpu-custom-op"
# The compiler's status for an op left on the CPU is not stored in the compiled file.
CPU_STATUS_UNKNOWN = "not mapped (reason unknown)"


# TFLite tensor type → the executable layer data type the compiler writes for it.
_LAYER_TYPE_OF_DTYPE = {"UINT8": 0, "UINT16": 1, "INT32": 2, "FLOAT16": 4, "FLOAT32": 5, "INT8": 8}
_LAYER_TYPE_OF_DTYPE["INT16"] = 9
# Zero-point shift of signed layer types (the runtime flips the sign bit).
_SIGNED_ZERO_POINT_SHIFT = {8: 128, 9: 32768}


def token_text(token: int) -> str:
    return f"{token:#018x}"


def estimated_ms(cycles: int | None) -> float | None:
    """TPU cycles → milliseconds at the assumed clock; None when not recorded."""
    if not cycles:
        return None
    return round(cycles / (ASSUMED_CLOCK_MHZ * 1e3), 3)


def cpu_ops_between_segments(sg: Subgraph) -> frozenset[int]:
    """CPU ops that depend on one Edge TPU segment and feed another (directly or via CPU ops)."""
    ops = sg.operators
    after: set[int] = set()  # ops downstream of some segment
    for op in ops:  # operators are stored in execution order
        if any(p in after or ops[p].is_edgetpu for p in sg.predecessors(op)):
            after.add(op.index)
    before: set[int] = set()  # ops upstream of some segment
    for op in reversed(ops):
        if any(s in before or ops[s].is_edgetpu for s in sg.successors(op)):
            before.add(op.index)
    return frozenset(i for i in after & before if not ops[i].is_edgetpu)


def segment_parameter_bytes(seg: Segment) -> tuple[int, int | None]:
    """(on-chip cached, off-chip streamed) parameter bytes of a segment's first package."""
    cache = seg.package.caching_executable()
    main = seg.package.main_executable()
    return (cache.parameter_bytes if cache else 0), (main.parameter_bytes if main else None)


def compiled_placements(model: Model, segments: list[Segment]) -> list[OpPlacement]:
    """Every op of the compiled main subgraph: segments on the TPU, the rest on the CPU."""
    sg = model.main
    number = {seg.op_index: n for n, seg in enumerate(segments, 1) if seg.subgraph == sg.index}
    between = cpu_ops_between_segments(sg)
    out = []
    for op in sg.operators:
        if op.is_edgetpu:
            reason = f"Edge TPU segment {number.get(op.index, '?')} of {len(number)} (compiled)"
            out.append(
                OpPlacement(
                    op.index,
                    op.opcode,
                    op.version,
                    "tpu",
                    MAPPED_STATUS,
                    reason,
                    segment=number.get(op.index),
                )
            )
            continue
        reason = "runs on the CPU in the compiled model (the file does not record why)"
        if op.index in between:
            reason += "; between two Edge TPU segments"
        out.append(OpPlacement(op.index, op.opcode, op.version, "cpu", CPU_STATUS_UNKNOWN, reason))
    return out


def _layer_row(
    seg_no: int, role: str, position: int, layer: Layer | None, sg: Subgraph, index: int | None
) -> dict[str, Any]:
    """One segment boundary tensor and the executable layer bound to it."""
    tensor_index = index
    tensor = sg.tensors[tensor_index] if tensor_index is not None else None
    q = tensor.quantization if tensor is not None else None
    row: dict[str, Any] = {
        "segment": seg_no,
        "role": role,
        "position": position,
        "name": tensor.name if tensor is not None else (layer.name if layer else ""),
        "tensor": tensor_index,
        "dtype": tensor.dtype if tensor is not None else None,
        "shape": list(tensor.shape) if tensor is not None else None,
        "scale": q.scale[0] if q is not None and len(q.scale) == 1 else None,
        "zero_point": int(q.zero_point[0]) if q is not None and len(q.zero_point) == 1 else None,
    }
    if layer is not None:
        row |= {
            "layer_type": layer.data_type_name,
            "layer_dims": [layer.y_dim, layer.x_dim, layer.z_dim],
            "layer_bytes": layer.size_bytes,
            "layer_scale": layer.scale,
            "layer_zero_point": layer.zero_point,
        }
    return row


def _segment_tensor_rows(model: Model, seg: Segment, seg_no: int) -> list[dict[str, Any]]:
    """The segment's inputs and outputs with the executable's view of each (by position)."""
    sg = model.subgraphs[seg.subgraph]
    op = sg.operators[seg.op_index]
    main = None if seg.legacy else seg.package.main_executable()
    in_layers = list(main.input_layers) if main else []
    out_layers = [x for x in main.output_layers if not x.is_variable_output] if main else []
    rows = []
    inputs = [i for i in op.inputs if i >= 0]
    outputs = [i for i in op.outputs if i >= 0]
    for role, tensors, layers in (("input", inputs, in_layers), ("output", outputs, out_layers)):
        for pos, index in enumerate(tensors):
            layer = layers[pos] if pos < len(layers) else None
            rows.append(_layer_row(seg_no, role, pos, layer, sg, index))
    if main:
        states = [x for x in main.output_layers if x.is_variable_output]
        for pos, layer in enumerate(states):
            rows.append(_layer_row(seg_no, "state_output", pos, layer, sg, None))
    return rows


def _executable_row(seg_no: int, pkg_no: int, e: Executable) -> dict[str, Any]:
    return {
        "segment": seg_no,
        "package": pkg_no,
        "type": e.type_name,
        "name": e.name,
        "batch_size": e.batch_size,
        "scratch_bytes": e.scratch_size_bytes,
        "parameter_bytes": e.parameter_bytes,
        "instruction_bytes": e.instruction_bytes,
        "narrow_memory_bytes_per_tile": e.used_narrow_memory_bytes_per_tile,
        "parameter_caching_token": token_text(e.parameter_caching_token),
        "chip": e.chip,
        "estimated_cycles": e.estimated_cycles or None,
        "use_tpu_dram_for_parameters": e.use_tpu_dram_for_parameters,
    }


def _segment_row(model: Model, seg: Segment, seg_no: int) -> dict[str, Any]:
    pkg = seg.package
    main = pkg.main_executable()
    on_chip, off_chip = segment_parameter_bytes(seg)
    sg = model.subgraphs[seg.subgraph]
    op = sg.operators[seg.op_index]
    cycles = main.estimated_cycles if main else 0
    return {
        "index": seg_no,
        "op": seg.op_index,
        "subgraph": seg.subgraph,
        "package_layout": pkg.layout,
        "packages": len(seg.packages),
        "min_runtime_version": pkg.min_runtime_version,
        "compiler_version": pkg.compiler_version,
        "compiler_changelist": pkg.compiler_changelist,
        "executable_types": "+".join(e.type_name for e in pkg.executables),
        "on_chip_parameter_bytes": on_chip,
        "off_chip_parameter_bytes": off_chip,
        "parameter_caching_token": token_text(main.parameter_caching_token) if main else None,
        "batch_size": main.batch_size if main else None,
        "scratch_bytes": main.scratch_size_bytes if main else None,
        "narrow_memory_bytes_per_tile": main.used_narrow_memory_bytes_per_tile if main else None,
        "chip": (main.chip if main else None) or seg.chip_name,
        "chip_enums": list(seg.chip_enums) if seg.chip_enums is not None else None,
        "estimated_cycles": cycles or None,
        "estimated_ms": estimated_ms(cycles),
        "inputs": len(sg.op_inputs(op)),
        "outputs": len(sg.op_outputs(op)),
        "flexbuffer_keys": list(seg.keys),
    }


def compiled_facts(
    model: Model, segments: list[Segment], options: Options, origin: str = "inspect"
) -> dict[str, Any]:
    """The `ModelReport.compiled` dict for a compiled model (keys in the module docstring)."""
    sg = model.main
    cpu = [op for op in sg.operators if not op.is_edgetpu]
    seg_rows = [_segment_row(model, seg, n) for n, seg in enumerate(segments, 1)]
    runtimes = [s.package.min_runtime_version for s in segments]
    known_runtimes = [r for r in runtimes if r is not None]
    tokens = []
    for seg in segments:
        for pkg in seg.packages:
            for e in pkg.executables:
                text = token_text(e.parameter_caching_token)
                if text not in tokens:
                    tokens.append(text)
    cycles = [row["estimated_cycles"] for row in seg_rows]
    total_cycles = sum(cycles) if cycles and all(cycles) else None
    return {
        "path": model.path,
        "origin": origin,
        "description": model.description,
        "compiled_ops": len(sg.operators),
        "tpu_segments": len(segments),
        "cpu_ops": len(cpu),
        "cpu_op_counts": dict(Counter(op.opcode for op in cpu).most_common()),
        "cpu_ops_between_segments": sorted(cpu_ops_between_segments(sg)),
        "on_chip_parameter_bytes": sum(row["on_chip_parameter_bytes"] for row in seg_rows),
        "off_chip_parameter_bytes": sum(row["off_chip_parameter_bytes"] or 0 for row in seg_rows),
        "min_runtime_version": max(known_runtimes) if known_runtimes else None,
        "target_runtime_version": options.runtime_version,
        "parameter_caching_tokens": tokens,
        "estimated_cycles": total_cycles,
        "estimated_ms": estimated_ms(total_cycles),
        "clock_mhz": ASSUMED_CLOCK_MHZ,
        "clock_assumed": True,
        "segments": seg_rows,
        "segment_tensors": [
            row for n, seg in enumerate(segments, 1) for row in _segment_tensor_rows(model, seg, n)
        ],
        "executables": [
            _executable_row(n, p, e)
            for n, seg in enumerate(segments, 1)
            for p, pkg in enumerate(seg.packages)
            for e in pkg.executables
        ],
    }


# --- what the runtime would reject (C006, C007) ---------------------------------------------


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


def compiled_memory(segments: list[Segment]) -> Memory:
    """Parameter memory as the compiler laid it out (`cache_bytes` = what it cached)."""
    on_chip = sum(segment_parameter_bytes(s)[0] for s in segments)
    off_chip = sum(segment_parameter_bytes(s)[1] or 0 for s in segments)
    return Memory(on_chip + off_chip, on_chip, on_chip, off_chip, source="compiled")


__all__ = [
    "ASSUMED_CLOCK_MHZ",
    "CPU_STATUS_UNKNOWN",
    "compiled_facts",
    "compiled_placements",
    "cpu_ops_between_segments",
]
