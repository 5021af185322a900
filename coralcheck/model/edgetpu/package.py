"""DWN1 packages → MultiExecutable → Executables (field indices of libedgetpu executable.fbs,
`shared/edgetpu/compiled-model-format.md` §3), read with the bounds-checked walker of
`coralcheck/model/flatbuf.py` on one read budget per model (`Decoder`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from coralcheck.errors import ModelError
from coralcheck.model.edgetpu.records import (
    MAX_EXECUTABLES,
    PACKAGE_IDENTIFIER,
    STAND_ALONE,
    Executable,
    Layer,
    Package,
    Segment,
)
from coralcheck.model.flatbuf import FlatBuffer, Table

# Names (of executables, layers = tensor names, chips) are short; a longer one is a wrong offset.
MAX_NAME_BYTES = 4096
# What decoding a model's Edge TPU segments may read and copy in all, as a multiple of the file
# size (plus slack for tiny files): a real package is read about 4 times (copied out of the
# FlexBuffer, its executables copied out of it, their fields read).
_BUDGET_PER_FILE_BYTE = 8
_BUDGET_SLACK = 1 << 20
# What one table that becomes a Python record (a layer, an instruction bitstream) costs the
# budget: it takes microseconds and hundreds of bytes, not the 4 bytes of its offset. A real
# executable has a handful of layers; a hostile one can point thousands at one table.
_RECORD_COST = 512


class Decoder:
    """What decoding the segments of one model shares: one read budget, and what was decoded
    (by its bytes: each distinct custom-options blob and executable is decoded once)."""

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

    def __init__(self, data: bytes, decoder: Decoder) -> None:
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


def read_package(data: bytes, decoder: Decoder, where: str) -> Package:
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


def read_legacy_package(main: bytes, caching: bytes | None, decoder: Decoder) -> Package:
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
    if vec is not None and vec[1] > MAX_NAME_BYTES:
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
