"""An `edgetpu-custom-op`'s custom options (a FlexBuffer map, read with
`flatbuffers.flexbuffers`) → `Segment`: its keys and the packages of keys "4" and "7"
(`shared/edgetpu/compiled-model-format.md` §1).
"""

from __future__ import annotations

import struct

from coralcheck.errors import ModelError
from coralcheck.model.edgetpu.package import (
    MAX_NAME_BYTES,
    Decoder,
    read_legacy_package,
    read_package,
)
from coralcheck.model.edgetpu.records import PACKAGE_IDENTIFIER, Segment
from coralcheck.model.graph import Model, Operator

# Real custom-option maps have at most 7 keys and one package; anything far larger is corrupt,
# and bounding it keeps a forged length from making a loop run for hours.
_MAX_MAP_KEYS = 64
_MAX_PACKAGES = 64
_MAX_KEY_BYTES = 64  # the real keys are "1".."7"

# Failures of the flexbuffers reader on bytes that are not a well-formed FlexBuffer.
_FLEX_ERRORS = (
    IndexError,
    KeyError,
    TypeError,
    ValueError,
    struct.error,
    UnicodeDecodeError,
    AssertionError,
    OverflowError,
)


def segment(decoder: Decoder, model: Model, op: Operator, subgraph: int) -> Segment:
    """The segment of the `edgetpu-custom-op` `op` (ops sharing one blob: decoded once)."""
    key = (op.custom_options_offset, op.custom_options_size)
    found = decoder.segments.get(key)
    if found is not None:  # ops sharing one blob (a hostile file): decoded once
        return found._replace(subgraph=subgraph, op_index=op.index)
    where = f"Edge TPU segment (operator {op.index} of subgraph {subgraph})"
    decoder.charge(op.custom_options_size, f"the custom options of operator {op.index}")
    found = decoder.segments[key] = custom_options(
        decoder, model.custom_options(op), where, subgraph, op.index
    )
    return found


def custom_options(
    decoder: Decoder, data: bytes, where: str, subgraph: int, op_index: int
) -> Segment:
    """The segment the custom options `data` describe; errors name `where`."""
    try:
        return _decode(data, decoder, where, subgraph, op_index)
    except ModelError as e:
        if e.problem.startswith(where):
            raise
        # The walker speaks of "the file"; here it is the package or executable being read.
        problem = e.problem.removeprefix("corrupt model: ").replace(" the file", " its buffer")
        raise ModelError(decoder.path, f"{where}: corrupt: {problem}") from None


class _Flex:
    """The custom-options FlexBuffer map, read through `flatbuffers.flexbuffers` with checks."""

    def __init__(self, data: bytes, decoder: Decoder, where: str) -> None:
        self.data = data
        self.decoder = decoder
        self.path = decoder.path
        self.where = where

    def fail(self, problem: str) -> ModelError:
        return ModelError(self.path, f"{self.where}: {problem}")

    def root_map(self):  # type: ignore[no-untyped-def]
        from flatbuffers import flexbuffers

        data = self.data
        if len(data) < 3:
            raise self.fail(f"custom options are only {len(data)} bytes, not a FlexBuffer")
        width = data[-1]
        if width not in (1, 2, 4, 8) or len(data) < 2 + 2 * width:
            raise self.fail("custom options are not a FlexBuffer (bad root width)")
        try:
            root = flexbuffers.GetRoot(data)
            if not root.IsMap:
                raise self.fail("custom options are not a FlexBuffer map")
            entries = root.AsMap
            self.check_count(len(entries), width, _MAX_MAP_KEYS, "custom-option map")
            keys = [bytes(k.AsKeyBytes) for k in entries.Keys]
        except _FLEX_ERRORS as e:
            raise self.fail(f"corrupt custom options (FlexBuffer): {e}") from None
        if any(len(k) > _MAX_KEY_BYTES for k in keys):
            raise self.fail("corrupt custom options: a map key is not a short string")
        return entries, tuple(k.decode("ascii", errors="replace") for k in keys)

    def check_count(self, count: int, width: int, limit: int, what: str) -> None:
        if count > limit or count * width > len(self.data):
            raise self.fail(f"corrupt custom options: the {what} claims {count} entries")

    def get(self, entries, keys: tuple[str, ...], key: str):  # type: ignore[no-untyped-def]
        if key not in keys:
            return None
        try:
            return entries[key]
        except _FLEX_ERRORS as e:
            raise self.fail(f"corrupt custom options: key {key!r}: {e}") from None

    def integer(self, ref) -> int | None:  # type: ignore[no-untyped-def]
        if ref is None:
            return None
        try:
            if not (ref.IsInt or ref.IsBool):
                raise self.fail("corrupt custom options: an integer key holds another type")
            return int(ref.AsInt)
        except _FLEX_ERRORS as e:
            raise self.fail(f"corrupt custom options: {e}") from None

    def blob(self, ref, what: str) -> bytes | None:  # type: ignore[no-untyped-def]
        """The raw bytes of a string/blob value (never decoded as UTF-8)."""
        if ref is None:
            return None
        try:
            if ref.IsString or ref.IsBlob:
                # (one copy is at most the custom options' size: counted when made)
                data = bytes(ref.AsStringBytes if ref.IsString else ref.AsBlob)
                self.decoder.charge(len(data), what)
                return data
        except _FLEX_ERRORS as e:
            raise self.fail(f"corrupt custom options: {what}: {e}") from None
        raise self.fail(f"corrupt custom options: {what} is not a byte string")

    def vector(self, ref, what: str, limit: int) -> list:  # type: ignore[no-untyped-def]
        """The elements of a vector value (untyped or typed), its length bounded first."""
        if ref is None:
            return []
        try:
            if ref.IsVector:
                vec = ref.AsVector
            elif ref.IsTypedVector:
                vec = ref.AsTypedVector
            elif ref.IsFixedTypedVector:
                vec = ref.AsFixedTypedVector
            else:
                raise self.fail(f"corrupt custom options: {what} is not a vector")
            self.check_count(len(vec), max(1, vec.ByteWidth), limit, what)
            return [vec[i] for i in range(len(vec))]
        except _FLEX_ERRORS as e:
            raise self.fail(f"corrupt custom options: {what}: {e}") from None


def _decode(data: bytes, decoder: Decoder, where: str, subgraph: int, op_index: int) -> Segment:
    flex = _Flex(data, decoder, where)
    entries, keys = flex.root_map()
    main_blob = flex.blob(flex.get(entries, keys, "4"), 'key "4" (the package)')
    if main_blob is None:
        raise flex.fail('custom options have no package (key "4")')
    chip_name_raw = flex.blob(flex.get(entries, keys, "2"), 'key "2" (chip name)')
    if chip_name_raw is not None and len(chip_name_raw) > MAX_NAME_BYTES:
        raise flex.fail(
            f'corrupt custom options: key "2" (chip name) is {len(chip_name_raw)} bytes'
        )
    legacy_pc = flex.blob(flex.get(entries, keys, "3"), 'key "3" (legacy executable)')
    extra = [
        flex.blob(ref, f'key "7"[{i}] (package)')
        for i, ref in enumerate(flex.vector(flex.get(entries, keys, "7"), 'key "7"', _MAX_PACKAGES))
    ]
    chip_refs = flex.get(entries, keys, "6")
    chip_enums = (
        None
        if chip_refs is None
        else tuple(
            flex.integer(r) or 0 for r in flex.vector(chip_refs, 'key "6"', _MAX_PACKAGES + 1)
        )
    )
    legacy = main_blob[4:8] != PACKAGE_IDENTIFIER and bool(legacy_pc or chip_name_raw)
    if legacy:
        packages = [read_legacy_package(main_blob, legacy_pc, decoder)]
    else:
        packages = [read_package(main_blob, decoder, "package 0")]
    packages += [
        read_package(blob or b"", decoder, f"package {i + 1}") for i, blob in enumerate(extra)
    ]
    return Segment(
        subgraph=subgraph,
        op_index=op_index,
        keys=tuple(sorted(keys)),
        data_version=flex.integer(flex.get(entries, keys, "1")),
        chip_name=chip_name_raw.decode("utf-8", errors="replace") if chip_name_raw else None,
        execution_preference=flex.integer(flex.get(entries, keys, "5")),
        chip_enums=chip_enums,
        extra_package_count=len(extra),
        packages=tuple(packages),
    )
