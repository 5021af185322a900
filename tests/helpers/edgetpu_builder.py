"""Build compiled Edge TPU models byte by byte, for the cases no file in the corpus shows.

The corpus has only single-segment, current-format files. Tests also need several segments with
a CPU op between them, the 2019 legacy layout, packages without the "DWN1" identifier, illegal
executable sets and damaged bindings. This module writes them with `flatbuffers.Builder` (tables
by field index, as libedgetpu's `executable/executable.fbs` numbers them) and
`flatbuffers.flexbuffers.Builder` (the custom-option map), then wraps them in a TFLite model with
`tflite_builder.build_model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import flatbuffers
from flatbuffers import flexbuffers

STAND_ALONE, PARAMETER_CACHING, EXECUTION_ONLY = 0, 1, 2


@dataclass
class LayerSpec:
    name: str
    dims: tuple[int, int, int] = (1, 1, 4)  # y, x, z
    zero_point: int = 128
    scale: float = 0.5
    data_type: int = 0  # FIXED_POINT8
    size_bytes: int | None = None


@dataclass
class ExecSpec:
    type: int = EXECUTION_ONLY
    parameter_bytes: int = 0
    token: int = 0x1234
    batch_size: int = 1
    inputs: Sequence[LayerSpec] = ()
    outputs: Sequence[LayerSpec] = ()
    chip: str | None = "beagle"
    cycles: int = 0
    name: str = "model"
    scratch: int = 0
    narrow: int = 0
    instruction_bytes: int = 16


def _layer(b: flatbuffers.Builder, spec: LayerSpec) -> int:
    name = b.CreateString(spec.name)
    b.StartObject(2)  # NumericsConstants
    b.PrependInt32Slot(0, spec.zero_point, 0)
    b.PrependFloat32Slot(1, spec.scale, 0.0)
    numerics = b.EndObject()
    y, x, z = spec.dims
    size = spec.size_bytes if spec.size_bytes is not None else y * x * z
    b.StartObject(12)
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependInt32Slot(1, size, 0)
    b.PrependInt32Slot(2, y, 0)
    b.PrependInt32Slot(3, x, 0)
    b.PrependInt32Slot(4, z, 0)
    b.PrependUOffsetTRelativeSlot(5, numerics, 0)
    b.PrependInt16Slot(6, spec.data_type, -1)
    return b.EndObject()


def _table_vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def executable_bytes(spec: ExecSpec) -> bytes:
    """An `Executable` flatbuffer (no file identifier, as the compiler writes them)."""
    b = flatbuffers.Builder(1024 + spec.parameter_bytes)
    inputs = _table_vector(b, [_layer(b, s) for s in spec.inputs])
    outputs = _table_vector(b, [_layer(b, s) for s in spec.outputs])
    params = b.CreateByteVector(bytes(spec.parameter_bytes))
    bits = b.CreateByteVector(bytes(spec.instruction_bytes))
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(0, bits, 0)
    bitstream = b.EndObject()
    bitstreams = _table_vector(b, [bitstream])
    name = b.CreateString(spec.name)
    chip = b.CreateString(spec.chip) if spec.chip is not None else None
    b.StartObject(17)
    b.PrependUOffsetTRelativeSlot(1, name, 0)
    b.PrependInt32Slot(3, spec.batch_size, -1)
    b.PrependInt32Slot(4, spec.scratch, 0)
    b.PrependUOffsetTRelativeSlot(5, bitstreams, 0)
    b.PrependUOffsetTRelativeSlot(6, params, 0)
    b.PrependUOffsetTRelativeSlot(8, inputs, 0)
    b.PrependUOffsetTRelativeSlot(9, outputs, 0)
    if chip is not None:
        b.PrependUOffsetTRelativeSlot(10, chip, 0)
    b.PrependInt32Slot(12, spec.narrow, 0)
    b.PrependInt16Slot(13, spec.type, -1)
    b.PrependUint64Slot(14, spec.token, 0)
    b.PrependInt64Slot(16, spec.cycles, 0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def package_bytes(
    executables: Sequence[bytes],
    min_runtime: int = 14,
    compiler_version: str = "cl/",
    identifier: bytes | None = b"DWN1",
    virtual_chip_id: int = 0,
) -> bytes:
    """A `Package` flatbuffer holding a `MultiExecutable` of `executables`."""
    mb = flatbuffers.Builder(1024 + sum(len(e) for e in executables))
    strings = [mb.CreateByteVector(e) for e in executables]  # [string] = vector of byte vectors
    vec = _table_vector(mb, strings)
    mb.StartObject(1)
    mb.PrependUOffsetTRelativeSlot(0, vec, 0)
    mb.Finish(mb.EndObject())
    multi = bytes(mb.Output())

    b = flatbuffers.Builder(1024 + len(multi))
    multi_vec = b.CreateByteVector(multi)
    version = b.CreateString(compiler_version)
    b.StartObject(8)
    b.PrependInt32Slot(0, min_runtime, -1)
    b.PrependUOffsetTRelativeSlot(1, multi_vec, 0)
    b.PrependUOffsetTRelativeSlot(4, version, 0)
    b.PrependInt32Slot(5, virtual_chip_id, 0)
    root = b.EndObject()
    if identifier is None:
        b.Finish(root)
    else:
        b.Finish(root, file_identifier=identifier)
    return bytes(b.Output())


@dataclass
class CustomOptionsSpec:
    """The custom-option map: key "4" is required; the others are written when set."""

    package: bytes
    data_version: int | None = 0
    chip_name: str | None = None  # key "2" (legacy)
    legacy_caching: bytes | None = None  # key "3" (legacy)
    execution_preference: int | None = -1
    chips: Sequence[int] | None = (18,)  # key "6"
    extra_packages: Sequence[bytes] = field(default_factory=list)  # key "7"


def _bytes_value(fbb: flexbuffers.Builder, key: str, data: bytes) -> None:
    """A FlexBuffer STRING holding raw bytes, as libedgetpu writes the packages."""
    fbb.Key(key)
    fbb._WriteBlob(data, append_zero=True, type_=flexbuffers.Type.STRING)


def custom_options(spec: CustomOptionsSpec) -> bytes:
    fbb = flexbuffers.Builder()
    with fbb.Map():
        if spec.data_version is not None:
            fbb.Int("1", spec.data_version)
        if spec.chip_name is not None:
            fbb.String("2", spec.chip_name)
        if spec.legacy_caching is not None:
            _bytes_value(fbb, "3", spec.legacy_caching)
        _bytes_value(fbb, "4", spec.package)
        if spec.execution_preference is not None:
            fbb.Int("5", spec.execution_preference)
        if spec.chips is not None:
            fbb.Key("6")
            fbb.TypedVectorFromElements(list(spec.chips))
        with fbb.Vector("7"):
            for extra in spec.extra_packages:
                fbb._WriteBlob(extra, append_zero=True, type_=flexbuffers.Type.STRING)
    return bytes(fbb.Finish())


def simple_package(
    inputs: Sequence[LayerSpec],
    outputs: Sequence[LayerSpec],
    cached: int = 1024,
    streamed: int = 0,
    token: int = 0x1234,
    **package_kwargs: object,
) -> bytes:
    """A compiler-like package: EXECUTION_ONLY + PARAMETER_CACHING sharing `token`."""
    main = ExecSpec(EXECUTION_ONLY, streamed, token, inputs=inputs, outputs=outputs)
    cache = ExecSpec(PARAMETER_CACHING, cached, token, name="Unknown")
    return package_bytes(
        [executable_bytes(main), executable_bytes(cache)],
        **package_kwargs,  # type: ignore[arg-type]
    )
