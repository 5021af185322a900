"""Structure-aware hostile models: small files whose naive processing is huge (issue 12).

Random mutation rarely builds these; each is a valid flatbuffer shaped to make one part of the
lint do far more work than the file's size suggests (amplification) or quadratic work:

- `many_executables(n)`: one Edge TPU package whose executable list holds `n` entries that all
  point at the same executable (real packages hold at most 3).
- `shared_large_custom_options(n)`: `n` `edgetpu-custom-op` ops whose
  `large_custom_options_offset/size` all name one package stored after the flatbuffer.
- `shared_custom_options(n)`: the same with one ordinary `custom_options` vector shared by all.
- `fan_out(n)`: one float tensor read by `n` RELUs.
- `repeated_inputs(n, repeats)`: `n` CONCATENATIONs, each reading one tensor `repeats` times.

Used by the regression tests, by the bounded fuzz run (tests/test_fuzz.py: as seeds) and by
`benchmarks/fuzz_long.py --engine hostile` (random sizes and combinations of these shapes).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import flatbuffers
import numpy as np

from helpers.edgetpu_builder import (
    CustomOptionsSpec,
    ExecSpec,
    LayerSpec,
    custom_options,
    executable_bytes,
    package_bytes,
)
from helpers.tflite_builder import OpSpec, TensorSpec, build_model

EDGETPU = "CUSTOM:edgetpu-custom-op"


def _q(name: str) -> TensorSpec:
    return TensorSpec(name, [1, 4], "UINT8", scale=[0.5], zero_point=[128])


def _executable(parameter_bytes: int, layers: int = 1, kind: int = 2) -> bytes:
    """An EXECUTION_ONLY executable whose `layers` input layers are all one Layer table (the
    reader's budget of the executable's own bytes allows a few thousand such references)."""
    if layers <= 1:
        spec = ExecSpec(kind, parameter_bytes, inputs=[LayerSpec("in")], outputs=[LayerSpec("out")])
        return executable_bytes(spec)
    b = flatbuffers.Builder(parameter_bytes + 4 * layers + 1024)
    name = b.CreateString("in")
    b.StartObject(12)
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependInt32Slot(1, 4, 0)
    b.PrependInt32Slot(4, 4, 0)
    layer = b.EndObject()
    b.StartVector(4, layers, 4)
    for _ in range(layers):
        b.PrependUOffsetTRelative(layer)
    inputs = b.EndVector()
    params = b.CreateByteVector(bytes(parameter_bytes))
    b.StartObject(17)
    b.PrependUOffsetTRelativeSlot(6, params, 0)
    b.PrependUOffsetTRelativeSlot(8, inputs, 0)
    b.PrependInt16Slot(13, kind, -1)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def package_with_repeated_executable(
    count: int, parameter_bytes: int = 0, layers: int = 1
) -> bytes:
    """A DWN1 package whose MultiExecutable lists `count` entries, all the same executable."""
    executable = _executable(parameter_bytes, layers)
    mb = flatbuffers.Builder(len(executable) + 4 * count + 1024)
    blob = mb.CreateByteVector(executable)
    mb.StartVector(4, count, 4)
    for _ in range(count):
        mb.PrependUOffsetTRelative(blob)
    vec = mb.EndVector()
    mb.StartObject(1)
    mb.PrependUOffsetTRelativeSlot(0, vec, 0)
    mb.Finish(mb.EndObject())
    multi = bytes(mb.Output())

    b = flatbuffers.Builder(len(multi) + 1024)
    multi_vec = b.CreateByteVector(multi)
    version = b.CreateString("cl/1")
    b.StartObject(8)
    b.PrependInt32Slot(0, 14, -1)
    b.PrependUOffsetTRelativeSlot(1, multi_vec, 0)
    b.PrependUOffsetTRelativeSlot(4, version, 0)
    b.Finish(b.EndObject(), file_identifier=b"DWN1")
    return bytes(b.Output())


def _one_segment(options: bytes) -> bytes:
    return build_model(
        tensors=[_q("in"), _q("out")],
        ops=[OpSpec(EDGETPU, [0], [1], custom_options=options)],
        inputs=[0],
        outputs=[1],
    )


def many_executables(count: int = 10_000, parameter_bytes: int = 0, layers: int = 1_000) -> bytes:
    """A compiled model of one segment whose package lists `count` times one executable (of
    `layers` input layers that are all one table)."""
    package = package_with_repeated_executable(count, parameter_bytes, layers)
    return _one_segment(custom_options(CustomOptionsSpec(package)))


def _segment_options(parameter_bytes: int, layers: int = 1) -> bytes:
    main = _executable(0, layers)
    cache = executable_bytes(ExecSpec(1, parameter_bytes, name="Unknown"))
    return custom_options(CustomOptionsSpec(package_bytes([main, cache])))


def _chain(n: int, options: Callable[[int], OpSpec]) -> bytes:
    tensors = [_q(f"t{i}") for i in range(n + 1)]
    return build_model(tensors=tensors, ops=[options(i) for i in range(n)], inputs=[0], outputs=[n])


def shared_large_custom_options(
    ops: int = 2_000, parameter_bytes: int = 64 << 10, layers: int = 1_000
) -> bytes:
    """`ops` Edge TPU ops whose large custom options (offset and size, as converters write
    them for models over 2 GB) all name the same package, stored once after the flatbuffer."""
    options = _segment_options(parameter_bytes, layers)

    def model(offset: int) -> bytes:
        return _chain(
            ops,
            lambda i: OpSpec(
                EDGETPU,
                [i],
                [i + 1],
                large_custom_options_offset=offset,
                large_custom_options_size=len(options),
            ),
        )

    head = len(model(1 << 40))  # the flatbuffer's size does not depend on the offset's value
    at = (head + 15) // 16 * 16
    flat = model(at)
    assert len(flat) == head
    return flat + bytes(at - head) + options


def shared_custom_options(
    ops: int = 2_000, parameter_bytes: int = 64 << 10, layers: int = 1_000
) -> bytes:
    """`ops` Edge TPU ops whose `custom_options` offsets all point at one vector."""
    from helpers.tflite_builder import locate

    options = _segment_options(parameter_bytes, layers)
    data = bytearray(_chain(ops, lambda i: OpSpec(EDGETPU, [i], [i + 1], custom_options=b"x")))
    # Build the package once (in op 0's place would change every offset): append it and
    # point every op's custom_options field at it.
    at = (len(data) + 3) // 4 * 4
    data += bytes(at - len(data)) + len(options).to_bytes(4, "little") + options
    for i in range(ops):
        field = locate(bytes(data), f"subgraphs[0].operators[{i}].custom_options").field
        data[field : field + 4] = (at - field).to_bytes(4, "little")
    return bytes(data)


def _integer_input() -> list[TensorSpec]:
    """An int8 input and its float dequantized copy: the model counts as an integer model, so
    the float-island check (Q002) groups the float ops that read the copy."""
    return [
        TensorSpec("x", [1, 4], "INT8", scale=[0.5], zero_point=[0]),
        TensorSpec("f", [1, 4], "FLOAT32"),
    ]


def fan_out(consumers: int = 10_000) -> bytes:
    """One float tensor (in an integer model) read by `consumers` RELUs."""
    tensors = _integer_input()
    tensors += [TensorSpec(f"y{i}", [1, 4], "FLOAT32") for i in range(consumers)]
    ops = [OpSpec("DEQUANTIZE", [0], [1])]
    ops += [OpSpec("RELU", [1], [i + 2]) for i in range(consumers)]
    return build_model(tensors=tensors, ops=ops, inputs=[0], outputs=[2])


def repeated_inputs(ops: int = 3_000, repeats: int = 60) -> bytes:
    """`ops` float CONCATENATIONs (in an integer model) that each read one tensor `repeats`
    times."""
    tensors = _integer_input()
    tensors += [TensorSpec(f"y{i}", [1, 4 * repeats], "FLOAT32") for i in range(ops)]
    options = {"axis": 1, "fused_activation_function": "NONE"}
    specs = [OpSpec("DEQUANTIZE", [0], [1])]
    specs += [OpSpec("CONCATENATION", [1] * repeats, [i + 2], options) for i in range(ops)]
    return build_model(tensors=tensors, ops=specs, inputs=[0], outputs=[2])


SHAPES: dict[str, Callable[..., bytes]] = {
    "many_executables": many_executables,
    "shared_large_custom_options": shared_large_custom_options,
    "shared_custom_options": shared_custom_options,
    "fan_out": fan_out,
    "repeated_inputs": repeated_inputs,
}


def random_hostile(rng: random.Random) -> tuple[bytes, str]:
    """One hostile model of a random shape and size (for `fuzz_long.py --engine hostile`).
    Sizes stay where a linear lint of every format fits the fuzzing time limit: what must not
    fit is amplification, not a legitimately large model."""
    shape = rng.choice(sorted(SHAPES))
    kwargs: dict[str, int]
    if shape == "many_executables":
        kwargs = {
            "count": rng.choice((2, 8, 9, 100, 3_000, 20_000)),
            "parameter_bytes": rng.choice((0, 4096, 40_000)),
            "layers": rng.choice((1, 100, 1_000, 5_000)),
        }
    elif shape in ("shared_large_custom_options", "shared_custom_options"):
        kwargs = {
            "ops": rng.choice((2, 3, 300, 3_000)),
            "parameter_bytes": rng.choice((1024, 64 << 10, 400 << 10)),
            "layers": rng.choice((1, 100, 1_000)),
        }
    elif shape == "fan_out":
        kwargs = {"consumers": rng.choice((10, 2_000, 5_000))}
    else:
        kwargs = {"ops": rng.choice((10, 1_000, 3_000)), "repeats": rng.choice((2, 20, 60))}
    built = SHAPES[shape](**kwargs)
    return built, f"{shape}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"


def hostile_tensor_model(tmp_path: Path, name: str) -> Path:
    """A FULLY_CONNECTED whose output tensor is called `name`; then an op the TPU cannot run."""
    data = build_model(
        tensors=[
            TensorSpec("x", [1, 4], "INT8", scale=[0.5], zero_point=[0]),
            TensorSpec("w", [2, 4], "INT8", data=np.ones((2, 4), np.int8), scale=[0.1]),
            TensorSpec(name, [1, 2], "INT8", scale=[0.25], zero_point=[0]),
            TensorSpec("y", [1, 2], "FLOAT32"),
        ],
        ops=[OpSpec("FULLY_CONNECTED", [0, 1, -1], [2]), OpSpec("DEQUANTIZE", [2], [3])],
        inputs=[0],
        outputs=[3],
    )
    path = tmp_path / "hostile.tflite"
    path.write_bytes(data)
    return path
