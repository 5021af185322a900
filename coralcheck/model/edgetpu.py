"""Decode the Edge TPU segments of a compiled model (`*_edgetpu.tflite`).

Each segment is one `edgetpu-custom-op` operator. Its custom options are a FlexBuffer map
(read with `flatbuffers.flexbuffers`) whose key "4" (and the keys "7" list) hold `DWN1`
*packages*; a package holds a *MultiExecutable*, which holds the *Executables* the runtime
loads onto the chip. The layout and every field index are those of
`shared/edgetpu/compiled-model-format.md` §1 and §3 (libedgetpu `executable/executable.fbs`);
no generated code is used: the flatbuffers are read by field index with the bounds-checked
walker of `coralcheck/model/flatbuf.py`.

The bytes are untrusted: every length is checked against the bytes that hold it, lists are
bounded, and anything that does not decode raises `ModelError` naming the file and the segment.
Parameter and instruction payloads are never parsed: only their lengths are read.

Nested offsets can make a small file name the same bytes many times (thousands of executable
entries or ops pointing at one executable or one package). So all the decoding of one model
shares one read budget (`_Decoder`: a few times the file's size; every byte copied and every
table and vector read counts), each distinct custom-options blob and executable is decoded once,
and a package may list at most `MAX_EXECUTABLES` executables.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from coralcheck.errors import ModelError
from coralcheck.model.flatbuf import FlatBuffer, Table
from coralcheck.model.graph import Model, Operator

PACKAGE_IDENTIFIER = b"DWN1"

# Executable.type (enum ExecutableType : short); absent means STAND_ALONE.
STAND_ALONE, PARAMETER_CACHING, EXECUTION_ONLY = 0, 1, 2
EXECUTABLE_TYPES = {
    STAND_ALONE: "STAND_ALONE",
    PARAMETER_CACHING: "PARAMETER_CACHING",
    EXECUTION_ONLY: "EXECUTION_ONLY",
}

# Layer.data_type (enum DataType : short) → (name, bytes per element).
LAYER_DATA_TYPES: dict[int, tuple[str, int]] = {
    0: ("FIXED_POINT8", 1),
    1: ("FIXED_POINT16", 2),
    2: ("SIGNED_FIXED_POINT32", 4),
    3: ("BFLOAT", 2),
    4: ("HALF", 2),
    5: ("SINGLE", 4),
    8: ("SIGNED_FIXED_POINT8", 1),
    9: ("SIGNED_FIXED_POINT16", 2),
}
SIGNED_LAYER_TYPES = {8, 9}

# Output layers with this name suffix are the state write-backs of variable tensors (LSTM);
# they have no TFLite output tensor (libedgetpu tflite/custom_op.cc).
VARIABLE_OUTPUT_SUFFIX = "_variable_output"

# Real custom-option maps have at most 7 keys and one package; anything far larger is corrupt,
# and bounding it keeps a forged length from making a loop run for hours.
_MAX_MAP_KEYS = 64
_MAX_PACKAGES = 64
# Names (of executables, layers = tensor names, chips) are short; a longer one is a wrong offset.
_MAX_NAME_BYTES = 4096
_MAX_KEY_BYTES = 64  # the real keys are "1".."7"
# Executables in one package: the runtime loads 1, 2 or 3 (libedgetpu package_registry.cc); a
# few more still get a finding (C006), a longer list is a corrupt or hostile file.
MAX_EXECUTABLES = 8
# What decoding a model's Edge TPU segments may read and copy in all, as a multiple of the file
# size (plus slack for tiny files): a real package is read about 4 times (copied out of the
# FlexBuffer, its executables copied out of it, their fields read).
_BUDGET_PER_FILE_BYTE = 8
_BUDGET_SLACK = 1 << 20
# What one table that becomes a Python record (a layer, an instruction bitstream) costs the
# budget: it takes microseconds and hundreds of bytes, not the 4 bytes of its offset. A real
# executable has a handful of layers; a hostile one can point thousands at one table.
_RECORD_COST = 512

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


class Layer(NamedTuple):
    """One TPU-side input or output of an executable (table `Layer`).

    `y_dim`/`x_dim`/`z_dim` are 1 when the dimension is absent. `zero_point` is the layer's own
    (for signed types shifted into the unsigned range: +128 or +32768); `scale` is the
    dequantization factor. `shape` holds the inclusive (start, end) range of each dimension when
    the compiler wrote one (outputs of current-format files).
    """

    name: str
    size_bytes: int
    y_dim: int
    x_dim: int
    z_dim: int
    zero_point: int | None
    scale: float | None
    data_type: int
    execution_count_per_inference: int
    cache_on_dram: bool
    shape: tuple[tuple[int, int], ...]

    @property
    def data_type_name(self) -> str:
        known = LAYER_DATA_TYPES.get(self.data_type)
        return known[0] if known else f"UNKNOWN({self.data_type})"

    @property
    def element_bytes(self) -> int | None:
        known = LAYER_DATA_TYPES.get(self.data_type)
        return known[1] if known else None

    @property
    def is_signed(self) -> bool:
        return self.data_type in SIGNED_LAYER_TYPES

    @property
    def is_variable_output(self) -> bool:
        return self.name.endswith(VARIABLE_OUTPUT_SUFFIX)


class Executable(NamedTuple):
    """One executable of a package (table `Executable`); sizes in bytes.

    `parameter_bytes` is the length of the parameter stream: for a PARAMETER_CACHING executable
    the bytes cached in on-chip SRAM, for the main one the bytes streamed from the host on every
    inference. `estimated_cycles` is 0 when the compiler did not record it.
    """

    version: int
    name: str
    type: int
    batch_size: int
    scratch_size_bytes: int
    parameter_bytes: int
    instruction_bytes: int
    serialized_model_bytes: int
    input_layers: tuple[Layer, ...]
    output_layers: tuple[Layer, ...]
    chip: str | None
    estimated_cycles: int
    estimated_cycles_32bit: int
    used_narrow_memory_bytes_per_tile: int
    parameter_caching_token: int
    use_tpu_dram_for_parameters: bool

    @property
    def type_name(self) -> str:
        return EXECUTABLE_TYPES.get(self.type, f"UNKNOWN({self.type})")


class Package(NamedTuple):
    """One package (table `Package`, file identifier "DWN1") and its executables.

    `layout` is "DWN1", "no-identifier" (read as a Package although bytes 4..7 are not "DWN1";
    the runtime only warns) or "legacy" (the 2019 layout: bare executables, no Package, so no
    runtime or compiler version). `compiler_version` is the raw field, "cl/<changelist>".
    """

    layout: str
    min_runtime_version: int | None
    compiler_version: str | None
    keypair_version: int
    signature_bytes: int
    virtual_chip_id: int
    multi_chip_packages: int
    model_identifier: str | None
    executables: tuple[Executable, ...]

    @property
    def compiler_changelist(self) -> int | None:
        """The compiler's changelist number ("cl/343520747" → 343520747); None when empty."""
        text = (self.compiler_version or "").removeprefix("cl/")
        return int(text) if text.isdigit() and len(text) < 19 else None

    def main_executable(self) -> Executable | None:
        """The executable the runtime runs, chosen as libedgetpu's package registry does.

        1 executable: that one; 2 = {PARAMETER_CACHING, EXECUTION_ONLY}: the EXECUTION_ONLY one;
        3 = all three types: STAND_ALONE. A legacy package runs its key-"4" executable. Any other
        combination is one the runtime rejects: None.
        """
        execs = self.executables
        if self.layout == "legacy":
            return execs[0] if execs else None
        if len(execs) == 1:
            return execs[0]
        types = sorted(e.type for e in execs)
        if types == [PARAMETER_CACHING, EXECUTION_ONLY]:
            return next(e for e in execs if e.type == EXECUTION_ONLY)
        if types == [STAND_ALONE, PARAMETER_CACHING, EXECUTION_ONLY]:
            return next(e for e in execs if e.type == STAND_ALONE)
        return None

    def caching_executable(self) -> Executable | None:
        """The PARAMETER_CACHING executable that fills the on-chip cache, when one is used.

        Only with the {PARAMETER_CACHING, EXECUTION_ONLY} pair (with all three types the runtime
        runs STAND_ALONE and ignores it), and the key-"3" executable of a legacy package.
        """
        execs = self.executables
        if self.layout == "legacy":
            return execs[1] if len(execs) > 1 else None
        if sorted(e.type for e in execs) == [PARAMETER_CACHING, EXECUTION_ONLY]:
            return next(e for e in execs if e.type == PARAMETER_CACHING)
        return None


class Segment(NamedTuple):
    """One `edgetpu-custom-op` node: its custom-option keys and its decoded packages.

    `keys` are the FlexBuffer map keys present. `data_version` is key "1", `chip_name` the
    deprecated key "2" (legacy files), `execution_preference` key "5", `chip_enums` key "6"
    (None when absent). `packages[0]` comes from key "4", the rest from key "7".
    """

    subgraph: int
    op_index: int
    keys: tuple[str, ...]
    data_version: int | None
    chip_name: str | None
    execution_preference: int | None
    chip_enums: tuple[int, ...] | None
    extra_package_count: int
    packages: tuple[Package, ...]

    @property
    def package(self) -> Package:
        return self.packages[0]

    @property
    def legacy(self) -> bool:
        return self.package.layout == "legacy"


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------


def decode_segments(model: Model) -> list[Segment]:
    """Every Edge TPU segment of the model, in subgraph and operator order."""
    decoder = _Decoder(model.path, model.file_size)
    return [decoder.segment(model, op, sg.index) for sg, op in model.operators() if op.is_edgetpu]


def decode_segment(model: Model, op: Operator, subgraph: int = 0) -> Segment:
    """Decode one `edgetpu-custom-op` node. Raises `ModelError` naming the file and the op."""
    return _Decoder(model.path, model.file_size).segment(model, op, subgraph)


def decode_custom_options(
    data: bytes, path: str, where: str = "Edge TPU segment", subgraph: int = 0, op_index: int = 0
) -> Segment:
    """Decode the custom options of an `edgetpu-custom-op` (a FlexBuffer map) → Segment."""
    return _Decoder(path, len(data)).custom_options(data, where, subgraph, op_index)


class _Decoder:
    """Decodes the segments of one model with one read budget and without decoding the same
    bytes twice (see the module docstring)."""

    __slots__ = ("budget", "executables", "file_size", "left", "path", "segments")

    def __init__(self, path: str, file_size: int) -> None:
        self.path = path
        self.file_size = file_size
        self.budget = self.left = _BUDGET_PER_FILE_BYTE * file_size + _BUDGET_SLACK
        # (custom options offset, size) -> Segment; executable bytes -> Executable.
        self.segments: dict[tuple[int, int], Segment] = {}
        self.executables: dict[bytes, Executable] = {}

    def spent(self, what: str) -> ModelError:
        return ModelError(
            self.path,
            f"corrupt model: {what} is reached again and again through shared offsets: decoding "
            f"the Edge TPU segments of this {self.file_size}-byte file would read more than "
            f"{self.budget} bytes; refusing to go on",
        )

    def charge(self, nbytes: int, what: str) -> None:
        """Count `nbytes` copied or read; fail once the budget is spent."""
        self.left -= nbytes
        if self.left < 0:
            raise self.spent(what)

    def segment(self, model: Model, op: Operator, subgraph: int) -> Segment:
        key = (op.custom_options_offset, op.custom_options_size)
        found = self.segments.get(key)
        if found is not None:  # ops sharing one blob (a hostile file): decoded once
            return found._replace(subgraph=subgraph, op_index=op.index)
        where = f"Edge TPU segment (operator {op.index} of subgraph {subgraph})"
        self.charge(op.custom_options_size, f"the custom options of operator {op.index}")
        found = self.segments[key] = self.custom_options(
            model.custom_options(op), where, subgraph, op.index
        )
        return found

    def custom_options(self, data: bytes, where: str, subgraph: int, op_index: int) -> Segment:
        try:
            return _decode(data, self, where, subgraph, op_index)
        except ModelError as e:
            if e.problem.startswith(where):
                raise
            # The walker speaks of "the file"; here it is the package or executable being read.
            problem = e.problem.removeprefix("corrupt model: ").replace(" the file", " its buffer")
            raise ModelError(self.path, f"{where}: corrupt: {problem}") from None

    def root(self, data: bytes, what: str) -> Table:
        if len(data) < 8:
            raise ModelError(self.path, f"{what}: only {len(data)} bytes")
        return _Buffer(data, self).root(what)

    def executable(self, data: bytes, where: str) -> Executable:
        found = self.executables.get(data)
        if found is None:
            found = self.executables[data] = _executable(self.root(data, where))
        return found


class _Buffer(FlatBuffer):
    """A flatbuffer nested in a model's custom options: its reads spend the decoder's budget."""

    __slots__ = ("decoder",)

    def __init__(self, data: bytes, decoder: _Decoder) -> None:
        self.decoder = decoder
        left = decoder.left
        super().__init__(data, decoder.path)  # (sets a budget of its own: put back the shared)
        decoder.left = left

    @property  # type: ignore[override]
    def read_budget(self) -> int:
        return self.decoder.left

    @read_budget.setter
    def read_budget(self, value: int) -> None:
        self.decoder.left = value

    def spend(self, nbytes: int, what: str) -> None:
        self.decoder.charge(nbytes, what)


# ---------------------------------------------------------------------------------------------
# FlexBuffer → packages
# ---------------------------------------------------------------------------------------------


class _Flex:
    """The custom-options FlexBuffer map, read through `flatbuffers.flexbuffers` with checks."""

    def __init__(self, data: bytes, decoder: _Decoder, where: str) -> None:
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


def _decode(data: bytes, decoder: _Decoder, where: str, subgraph: int, op_index: int) -> Segment:
    flex = _Flex(data, decoder, where)
    entries, keys = flex.root_map()
    main_blob = flex.blob(flex.get(entries, keys, "4"), 'key "4" (the package)')
    if main_blob is None:
        raise flex.fail('custom options have no package (key "4")')
    chip_name_raw = flex.blob(flex.get(entries, keys, "2"), 'key "2" (chip name)')
    if chip_name_raw is not None and len(chip_name_raw) > _MAX_NAME_BYTES:
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
        packages = [_legacy_package(main_blob, legacy_pc, decoder)]
    else:
        packages = [_package(main_blob, decoder, "package 0")]
    packages += [_package(blob or b"", decoder, f"package {i + 1}") for i, blob in enumerate(extra)]
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


# ---------------------------------------------------------------------------------------------
# Package → MultiExecutable → Executable (field indices of executable.fbs)
# ---------------------------------------------------------------------------------------------


def _package(data: bytes, decoder: _Decoder, where: str) -> Package:
    root = decoder.root(data, where)
    layout = "DWN1" if data[4:8] == PACKAGE_IDENTIFIER else "no-identifier"
    multi = root.raw_bytes(1, "serialized_multi_executable")
    executables: list[Executable] = []
    if multi:
        multi_root = decoder.root(multi, f"{where} multi-executable")
        vec = multi_root.vector(0, 4, "serialized_executables")
        if vec is not None:
            start, count = vec
            if count > MAX_EXECUTABLES:
                multi_root.buf.fail(
                    f"corrupt model: {where} lists {count} executables (a package holds at "
                    f"most 3; more than {MAX_EXECUTABLES} are not decoded)"
                )
            mbuf = multi_root.buf
            for i in range(count):
                at = mbuf.uoffset(start + 4 * i, f"serialized_executables[{i}]")
                mbuf.check_range(at, 4, f"length of serialized_executables[{i}]")
                size = struct.unpack_from("<I", multi, at)[0]
                mbuf.check_range(at + 4, size, f"serialized_executables[{i}]")
                decoder.charge(size, f"serialized_executables[{i}] of {where}")
                blob = multi[at + 4 : at + 4 + size]
                executables.append(decoder.executable(blob, f"{where} executable {i}"))
    signature = root.vector(2, 1, "signature")
    return Package(
        layout=layout,
        min_runtime_version=int(root.scalar(0, "i32")),
        compiler_version=_text(root, 4, "compiler_version"),
        keypair_version=int(root.scalar(3, "i32")),
        signature_bytes=signature[1] if signature else 0,
        virtual_chip_id=int(root.scalar(5, "i32")),
        multi_chip_packages=_length(root, 6, 4, "multi_chip_package"),
        model_identifier=_text(root, 7, "model_identifier"),
        executables=tuple(executables),
    )


def _legacy_package(main: bytes, caching: bytes | None, decoder: _Decoder) -> Package:
    """The 2019 layout: key "4" is a bare main executable, key "3" its parameter-caching one."""
    execs = [decoder.executable(main, 'legacy executable (key "4")')]
    if caching:
        execs.append(decoder.executable(caching, 'legacy executable (key "3")'))
    return Package(
        layout="legacy",
        min_runtime_version=None,
        compiler_version=None,
        keypair_version=0,
        signature_bytes=0,
        virtual_chip_id=0,
        multi_chip_packages=0,
        model_identifier=None,
        executables=tuple(execs),
    )


def _text(table: Table, slot: int, what: str) -> str | None:
    """A string field, refused when it is far longer than any real name."""
    vec = table.vector(slot, 1, what)
    if vec is not None and vec[1] > _MAX_NAME_BYTES:
        table.buf.fail(f"corrupt model: {what} of {table.what} is {vec[1]} bytes long")
    return table.string(slot, what)


def _length(table: Table, slot: int, elem_size: int, what: str) -> int:
    vec = table.vector(slot, elem_size, what)
    return vec[1] if vec else 0


def _executable(t: Table) -> Executable:
    instruction_bytes = sum(
        _length(b, 0, 1, "bitstream") for b in _records(t, 5, "instruction_bitstreams")
    )
    return Executable(
        version=int(t.scalar(0, "i32")),
        name=_text(t, 1, "name") or "",
        type=int(t.scalar(13, "u16", STAND_ALONE)),
        batch_size=int(t.scalar(3, "i32")),
        scratch_size_bytes=int(t.scalar(4, "i32")),
        parameter_bytes=_length(t, 6, 1, "parameters"),
        instruction_bytes=instruction_bytes,
        serialized_model_bytes=_length(t, 2, 1, "serialized_model"),
        input_layers=_layers(_records(t, 8, "input_layers")),
        output_layers=_layers(_records(t, 9, "output_layers")),
        chip=_text(t, 10, "chip"),
        estimated_cycles=int(t.scalar(16, "i64")),
        estimated_cycles_32bit=int(t.scalar(11, "i32")),
        used_narrow_memory_bytes_per_tile=int(t.scalar(12, "i32")),
        parameter_caching_token=int(t.scalar(14, "u64")),
        use_tpu_dram_for_parameters=bool(t.scalar(15, "bool")),
    )


def _records(t: Table, slot: int, what: str) -> list[Table]:
    """A vector of tables that each become a record, charged `_RECORD_COST` apiece first."""
    count = _length(t, slot, 4, what)
    if count:
        t.buf.spend(_RECORD_COST * count, f"{what} of {t.what}")
    return t.tables(slot, what)


def _layers(tables: Sequence[Table]) -> tuple[Layer, ...]:
    return tuple(_layer(t) for t in tables)


def _layer(t: Table) -> Layer:
    numerics = t.table(5, "numerics")
    shape: tuple[tuple[int, int], ...] = ()
    shape_table = t.table(11, "shape")
    if shape_table is not None:
        vec = shape_table.vector(0, 8, "dimension")
        if vec is not None:
            start, count = vec
            flat = struct.unpack_from(f"<{2 * count}i", shape_table.buf.data, start)
            shape = tuple(zip(flat[0::2], flat[1::2], strict=True))
    return Layer(
        name=_text(t, 0, "name") or "",
        size_bytes=int(t.scalar(1, "i32")),
        y_dim=int(t.scalar(2, "i32")),
        x_dim=int(t.scalar(3, "i32")),
        z_dim=int(t.scalar(4, "i32")),
        zero_point=None if numerics is None else int(numerics.scalar(0, "i32")),
        scale=None if numerics is None else float(numerics.scalar(1, "f32")),
        data_type=int(t.scalar(6, "u16")),
        execution_count_per_inference=int(t.scalar(9, "i32", 1)),
        cache_on_dram=bool(t.scalar(10, "bool")),
        shape=shape,
    )
