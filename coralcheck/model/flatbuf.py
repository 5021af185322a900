"""A bounds-checked FlatBuffers table reader over an mmap or bytes.

The `tflite` binding reads whatever offsets a file claims, so a corrupt or hostile file can make
it read past the end, loop, or allocate from a forged length. Every read here is checked first:
offsets and lengths must stay inside the file, and vector lengths are bounded by the bytes that
are left. FlatBuffers offsets to tables, vectors and strings only point forward (unsigned), so a
walk can never cycle; but many offsets may point at the same table, so a small hostile file can
make a naive walk read the same bytes billions of times. Reads are therefore counted: a file
whose tables and vectors are each reached once reads at most its own size, so reading more than
twice that (plus slack) fails. Any violation raises `ModelError` naming the file and the problem.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from operator import add, itemgetter
from typing import Any, NoReturn

from coralcheck.errors import ModelError

_U8 = struct.Struct("<B").unpack_from
_I8 = struct.Struct("<b").unpack_from
_U16 = struct.Struct("<H").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I64 = struct.Struct("<q").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_F32 = struct.Struct("<f").unpack_from

_SIZES = {"?": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "f": 4, "q": 8, "Q": 8, "d": 8}

_SCALARS = {
    "u8": (_U8, 1),
    "i8": (_I8, 1),
    "bool": (_U8, 1),
    "i16": (struct.Struct("<h").unpack_from, 2),
    "u16": (_U16, 2),
    "i32": (_I32, 4),
    "u32": (_U32, 4),
    "i64": (_I64, 8),
    "u64": (_U64, 8),
    "f32": (_F32, 4),
    "f64": (struct.Struct("<d").unpack_from, 8),
}


# Bytes a walk may read beyond twice the file size (shared strings and the like in real files).
_READ_SLACK = 1 << 16


class FlatBuffer:
    """The bytes of one file plus its name, for error messages."""

    __slots__ = ("data", "path", "read_budget", "readers", "size", "vtables")

    def __init__(self, data: object, path: str) -> None:
        self.data = data
        self.path = path
        self.size = len(data)  # type: ignore[arg-type]
        self.read_budget = 2 * self.size + _READ_SLACK
        # Valid vtables by position: (field offsets, object length). Builders share one vtable
        # among all tables of the same shape, so thousands of tensors have a handful.
        self.vtables: dict[int, tuple[tuple[int, ...], int]] = {}
        # Field kinds -> vtable position -> `fields_reader` answer.
        self.readers: dict[tuple[str, ...], dict[int, FieldsReader | None]] = {}

    def fail(self, problem: str) -> NoReturn:
        raise ModelError(self.path, problem)

    def spend(self, nbytes: int, what: str) -> None:
        """Count `nbytes` read; fail once the walk has read far more than the file holds."""
        self.read_budget -= nbytes
        if self.read_budget < 0:
            self.fail(
                f"corrupt model: {what} is reached again and again through shared offsets "
                f"(more than twice the file's {self.size} bytes read); refusing to go on"
            )

    def check_range(self, start: int, length: int, what: str) -> None:
        """Fail unless bytes [start, start + length) lie inside the file."""
        if start < 0 or length < 0 or start + length > self.size:
            self.fail(
                f"corrupt model: {what} at byte {start} (+{length}) lies outside the file "
                f"({self.size} bytes)"
            )

    def uoffset(self, at: int, what: str) -> int:
        """Follow the unsigned 32-bit offset stored at `at` (relative to `at`)."""
        self.check_range(at, 4, what)
        return at + _U32(self.data, at)[0]

    def root(self, what: str = "root table") -> Table:
        return Table(self, self.uoffset(0, what), what)

    def vtable(self, vt: int) -> tuple[tuple[int, ...], int] | None:
        """(field offsets, object length) of the vtable at `vt`; None when there is no valid
        vtable there (a `Table` built on it raises the precise error)."""
        found = self.vtables.get(vt)
        if found is None:
            size = self.size
            if vt < 0 or vt + 4 > size:
                return None
            vt_len, obj_len = _U16_PAIR(self.data, vt)
            if vt_len < 4 or vt_len % 2 or vt + vt_len > size:
                return None
            # Every field's offset at once: one unpack instead of one per field read.
            unpack = _VTABLES.get(vt_len)
            if unpack is None:
                unpack = _VTABLES[vt_len] = struct.Struct(f"<{vt_len // 2 - 2}H").unpack_from
            found = self.vtables[vt] = (unpack(self.data, vt + 4), obj_len)
        return found

    def reader_table(self, kinds: tuple[str, ...]) -> dict[int, FieldsReader | None]:
        """The `fields_reader` answers for `kinds` so far, by vtable position (hot loops look
        them up here first: it spares hashing `kinds` for every table)."""
        known = self.readers.get(kinds)
        if known is None:
            known = self.readers[kinds] = {}
        return known

    def fields_reader(self, vt: int, kinds: tuple[str, ...]) -> FieldsReader | None:
        """How to read fields 0, 1, ... of every table that uses the vtable at `vt` in one call.

        `kinds[slot]` is the struct code of field `slot` ("?", "b", "B", "i", "I", "q", "Q", "f",
        "d"), "O" for an offset to a vector, string or table, or "" for a field not read (see
        `field_kinds`). The answer is a `FieldsReader`, or None when the vtable is not valid, or
        a read field overruns the object or overlaps another (a hostile file): such tables are
        read with `Table`, which raises the precise error or reads the fields one by one.
        """
        known = self.reader_table(kinds)
        if vt in known:
            return known[vt]
        layout = self.vtables.get(vt) or self.vtable(vt)
        reader = None if layout is None else _fields_reader(kinds, *layout)
        known[vt] = reader
        return reader


# vtable length -> the struct that unpacks all its field offsets at once.
_VTABLES: dict[int, Any] = {}
# struct code -> its vector readers, for `numbers_at`.
_VECTORS: dict[str, VectorReaders] = {}
_U16_PAIR = struct.Struct("<HH").unpack_from


# How to read the fields of every table of one vtable in one call (`fields_reader`), a tuple
# (read in hot loops as `unpack, fill, pick, obj_len, offsets = reader`):
# - `unpack(data, pos)`: the table's offset to its vtable (`pos - vt`, first) and its read
#   fields, in the order they lie in the table;
# - `pick(unpack(data, pos) + fill)`: the read fields in slot order (one field: its value), an
#   absent one as 0 (False for a bool; an absent offset as None: it differs from a present
#   empty vector);
# - `obj_len`: the table's length in bytes;
# - `offsets`: by slot, where the field lies in the table (0: absent).
FieldsReader = tuple[Any, ...]


def field_kinds(count: int, kinds: dict[int, str]) -> tuple[str, ...]:
    """The `kinds` argument of `FlatBuffer.fields_reader` for a table of `count` fields of
    which those in `kinds` (slot -> struct code or "O") are read."""
    return tuple(kinds.get(slot, "") for slot in range(count))


_FIELD_SIZES = {"O": 4, **_SIZES}
# What an absent field reads as, by kind (else 0): the schema default of a bool is False.
_ABSENT = {"O": None, "?": False}


def _fields_reader(
    kinds: tuple[str, ...], offsets: tuple[int, ...], obj_len: int
) -> FieldsReader | None:
    """`FlatBuffer.fields_reader` for a vtable of `offsets` and `obj_len`."""
    padded = (*offsets[: len(kinds)], *(0,) * (len(kinds) - len(offsets)))
    present = sorted((off, slot) for slot, off in enumerate(padded) if off and kinds[slot])
    fmt, end = ["<i"], 4  # the table's own offset to its vtable comes first
    for off, slot in present:
        size = _FIELD_SIZES[kinds[slot]]
        if off < end or off + size > obj_len:
            return None  # overlaps the field before it, or overruns the table
        fmt.append(f"{off - end}x{'I' if kinds[slot] == 'O' else kinds[slot]}")
        end = off + size
    order = [slot for _, slot in present]
    absent = [slot for slot, kind in enumerate(kinds) if kind and not padded[slot]]
    fill = tuple(_ABSENT.get(kinds[slot], 0) for slot in absent)
    where = {slot: i for i, slot in enumerate(order + absent, start=1)}
    pick = itemgetter(*(where[slot] for slot, kind in enumerate(kinds) if kind))
    return (struct.Struct("".join(fmt)).unpack_from, fill, pick, obj_len, padded)


class VectorReaders(dict[int, Callable[[Any, int], tuple]]):
    """Element count -> the `unpack_from` of a vector of that many scalars of struct format
    `code`. They are kept: shapes, scales and op inputs repeat the same few formats
    thousands of times (up to 1024 elements are kept, whatever a hostile file claims). An
    `unpack_from` raises `struct.error` when the vector would run past the end of the buffer,
    before it allocates anything: a forged count costs nothing."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    def __missing__(self, count: int) -> Callable[[Any, int], tuple]:
        unpack = struct.Struct(f"<{count}{self.code}").unpack_from
        if count <= 1024:
            self[count] = unpack
        return unpack


class Table:
    """One FlatBuffers table, its vtable checked against the file bounds.

    `what` names the table in error messages ("tensors[3] of subgraphs[0] of model"); it is
    composed from the parent chain only when a message needs it, which keeps the walk fast.
    """

    __slots__ = ("_data", "_name", "_offsets", "_parent", "_vt", "buf", "obj_len", "pos")

    def __init__(
        self, buf: FlatBuffer, pos: int, what: str | tuple[str, int], parent: Table | None = None
    ) -> None:
        self.buf = buf
        self.pos = pos
        self._name = what
        self._parent = parent
        size = buf.size
        if pos < 0 or pos + 4 > size:
            buf.check_range(pos, 4, self.what)
        data = buf.data
        self._data = data
        vt = pos - _I32(data, pos)[0]
        layout = buf.vtables.get(vt) or buf.vtable(vt)
        if layout is None:
            self._invalid_vtable(vt)
        offsets, obj_len = layout  # type: ignore[misc]
        if pos + obj_len > size:
            buf.check_range(pos, obj_len, self.what)
        buf.read_budget -= 4
        if buf.read_budget < 0:
            buf.spend(0, self.what)
        self._offsets = offsets
        self._vt = vt
        self.obj_len = obj_len

    def _invalid_vtable(self, vt: int) -> NoReturn:
        """Say what is wrong with the vtable at `vt` (`FlatBuffer.vtable` refused it)."""
        buf = self.buf
        if vt < 0 or vt + 4 > buf.size:
            buf.check_range(vt, 4, f"vtable of {self.what}")
        vt_len = _U16_PAIR(self._data, vt)[0]
        if vt_len < 4 or vt_len % 2:
            buf.fail(f"corrupt model: vtable of {self.what} has an invalid length {vt_len}")
        buf.check_range(vt, vt_len, f"vtable of {self.what}")
        raise AssertionError("unreachable: the vtable is valid")  # pragma: no cover

    @property
    def what(self) -> str:
        name = self._name if isinstance(self._name, str) else f"{self._name[0]}[{self._name[1]}]"
        return name if self._parent is None else f"{name} of {self._parent.what}"

    def field(self, slot: int, size: int) -> int:
        """Absolute position of field `slot`, or 0 when it is absent (the schema default)."""
        offsets = self._offsets
        if slot >= len(offsets):
            return 0
        off = offsets[slot]
        if not off:
            return 0
        if off + size > self.obj_len:
            self.buf.fail(f"corrupt model: field {slot} of {self.what} overruns the table")
        return self.pos + off

    def scalar(self, slot: int, kind: str, default: int | float = 0) -> int | float:
        offsets = self._offsets
        if slot >= len(offsets) or not offsets[slot]:
            return default
        unpack, size = _SCALARS[kind]
        return unpack(self._data, self.field(slot, size))[0]

    def fingerprint(self) -> tuple[int, bytes]:
        """Where the vtable is (the same bytes wherever a file names that position) and the
        inline fields: tables with equal fingerprints hold equal scalars (offset fields are
        equal only as offsets; what they point at may differ)."""
        return self._vt, bytes(self._data[self.pos + 4 : self.pos + self.obj_len])

    def has(self, slot: int) -> bool:
        offsets = self._offsets
        return slot < len(offsets) and offsets[slot] != 0

    def table(self, slot: int, what: str) -> Table | None:
        at = self.field(slot, 4)
        if not at:
            return None
        return Table(self.buf, at + _U32(self._data, at)[0], what, self)

    def vector(self, slot: int, elem_size: int, what: str) -> tuple[int, int] | None:
        """(start of elements, count) of a vector field, with its length bounded by the file."""
        offsets = self._offsets
        if slot >= len(offsets) or not offsets[slot]:
            return None
        off = offsets[slot]
        if off + 4 > self.obj_len:
            self.field(slot, 4)  # fails: the offset overruns the table
        at = self.pos + off
        buf = self.buf
        data = self._data
        target = at + _U32(data, at)[0]
        if target + 4 > buf.size:
            buf.check_range(target, 4, f"length of {what} of {self.what}")
        count = _U32(data, target)[0]
        start = target + 4
        nbytes = count * elem_size
        if nbytes > buf.size - start:
            buf.fail(
                f"corrupt model: {what} of {self.what} claims {count} elements, more than the "
                f"{buf.size - start} bytes left in the file"
            )
        buf.read_budget -= 4 + nbytes
        if buf.read_budget < 0:
            buf.spend(0, f"{what} of {self.what}")
        return start, count

    def numbers(self, slot: int, code: str, what: str) -> tuple:
        """A vector of scalars (struct format `code`) as a tuple; () when absent."""
        vec = self.vector(slot, _SIZES[code], what)
        if vec is None:
            return ()
        return numbers_at(self._data, code, *vec)

    def string(self, slot: int, what: str) -> str | None:
        vec = self.vector(slot, 1, what)
        if vec is None:
            return None
        start, count = vec
        return str(self._data[start : start + count], "utf-8", "replace")

    def raw_bytes(self, slot: int, what: str) -> bytes | None:
        vec = self.vector(slot, 1, what)
        if vec is None:
            return None
        start, count = vec
        return bytes(self._data[start : start + count])

    def table_positions(self, slot: int, what: str) -> list[int]:
        """The positions of a vector of tables, counted as `tables` counts them (4 bytes each)
        but not checked: the caller reads the tables itself (checking each as it goes), and
        calls `check_tables` before it reads one it cannot, so that a bad table raises the
        error `tables` would have raised before any field was read."""
        vec = self.vector(slot, 4, what)
        if vec is None:
            return []
        start, count = vec
        offsets = numbers_at(self._data, "I", start, count)
        positions = list(map(add, offsets, range(start, start + 4 * count, 4)))
        buf = self.buf
        buf.read_budget -= 4 * count
        if buf.read_budget < 0:
            self.check_tables(positions, 0, what)  # raises where the budget runs out
        return positions

    def check_tables(self, positions: list[int], first: int, what: str) -> None:
        """Check the tables at `positions[first:]` (counted by `table_positions`) as `tables`
        checks them: raises the error of the first bad one."""
        buf, data, size = self.buf, self._data, self.buf.size
        buf.read_budget += 4 * (len(positions) - first)  # counted again, table by table
        vtables = buf.vtables
        for i in range(first, len(positions)):
            pos = positions[i]
            layout = vtables.get(pos - _I32(data, pos)[0]) if pos + 4 <= size else None
            if layout is not None and pos + layout[1] <= size and buf.read_budget >= 4:
                buf.read_budget -= 4
            else:  # a vtable seen for the first time, or a bad table: the full checks
                Table(buf, pos, (what, i), self)

    def tables(self, slot: int, what: str) -> list[Table]:
        """A vector of tables; each element's offset is checked when its table is built."""
        vec = self.vector(slot, 4, what)
        if vec is None:
            return []
        start, count = vec
        buf = self.buf
        offsets = struct.unpack_from(f"<{count}I", self._data, start)
        return [Table(buf, start + 4 * i + off, (what, i), self) for i, off in enumerate(offsets)]


def numbers_at(data: Any, code: str, start: int, count: int) -> tuple:
    """`count` scalars of struct format `code` at `start` (a checked vector) as a tuple."""
    readers = _VECTORS.get(code)
    if readers is None:
        readers = _VECTORS[code] = VectorReaders(code)
    return readers[count](data, start)
