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

    __slots__ = ("data", "layouts", "path", "read_budget", "size", "vtables")

    def __init__(self, data: object, path: str) -> None:
        self.data = data
        self.path = path
        self.size = len(data)  # type: ignore[arg-type]
        self.read_budget = 2 * self.size + _READ_SLACK
        # Valid vtables by position: (field offsets, object length). Builders share one vtable
        # among all tables of the same shape, so thousands of tensors have a handful.
        self.vtables: dict[int, tuple[tuple[int, ...], int]] = {}
        # Field sizes -> vtable position -> `field_offsets` answer.
        self.layouts: dict[tuple[int, ...], dict[int, tuple[int, ...] | None]] = {}

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

    def field_offsets(self, vt: int, sizes: tuple[int, ...]) -> tuple[int, ...] | None:
        """The offsets (0: absent) of fields 0, 1, ... of the tables using the (valid) vtable at
        `vt`, when each present field of `sizes[slot]` bytes lies inside the table; else None
        (`Table.field` raises the precise error). A size 0 marks a field that is not read."""
        known = self.field_table(sizes)
        if vt not in known:
            offsets, obj_len = self.vtables[vt]
            padded = (*offsets[: len(sizes)], *(0,) * (len(sizes) - len(offsets)))
            fits = all(
                not off or not n or off + n <= obj_len for off, n in zip(padded, sizes, strict=True)
            )
            known[vt] = padded if fits else None
        return known[vt]

    def field_table(self, sizes: tuple[int, ...]) -> dict[int, tuple[int, ...] | None]:
        """The `field_offsets` answers for `sizes` so far, by vtable position (hot loops look
        them up here first: it spares hashing `sizes` for every table)."""
        known = self.layouts.get(sizes)
        if known is None:
            known = self.layouts[sizes] = {}
        return known


# vtable length -> the struct that unpacks all its field offsets at once.
_VTABLES: dict[int, Any] = {}
# (struct code, count) -> the unpacker of a short vector.
_VECTORS: dict[tuple[str, int], Any] = {}
_U16_PAIR = struct.Struct("<HH").unpack_from


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

    def fingerprint(self) -> bytes:
        """The vtable and the inline fields: tables with equal fingerprints hold equal scalars
        (offset fields are equal only as offsets; what they point at may differ)."""
        return fingerprint(self._data, self.pos, self._vt, self.obj_len)

    def field_offsets(self, sizes: tuple[int, ...]) -> tuple[int, ...] | None:
        """`FlatBuffer.field_offsets` of this table's vtable."""
        return self.buf.field_offsets(self._vt, sizes)

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
        """The positions of a vector of tables, each checked and counted as `tables` checks
        them (a bad one raises the same error); the caller reads their fields itself."""
        vec = self.vector(slot, 4, what)
        if vec is None:
            return []
        start, count = vec
        buf, data, size = self.buf, self._data, self.buf.size
        vtables = buf.vtables
        positions = struct.unpack_from(f"<{count}I", data, start)
        out = []
        for i, off in enumerate(positions):
            pos = start + 4 * i + off
            layout = vtables.get(pos - _I32(data, pos)[0]) if pos + 4 <= size else None
            if layout is not None and pos + layout[1] <= size and buf.read_budget >= 4:
                buf.read_budget -= 4
            else:  # a vtable seen for the first time, or a bad table: the full checks
                Table(buf, pos, (what, i), self)
            out.append(pos)
        return out

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
    if not count:
        return ()
    unpack = _VECTORS.get((code, count))
    if unpack is None:
        unpack = struct.Struct(f"<{count}{code}").unpack_from
        if count <= 8:  # shapes, scales, op inputs: the same few formats again and again
            _VECTORS[code, count] = unpack
    return unpack(data, start)


def span(data: Any, size: int, at: int, elem_size: int) -> tuple[int, int] | None:
    """(start, count) of the vector whose offset is stored at `at` (inside the file of `size`
    bytes), or None when it does not fit the file (`Table.vector` raises the precise error).
    Spends nothing: the caller counts 4 + count * elem_size bytes."""
    start = at + _U32(data, at)[0] + 4
    if start > size:
        return None
    count = _U32(data, start - 4)[0]
    if count * elem_size > size - start:
        return None
    return start, count


def fingerprint(data: Any, pos: int, vt: int, obj_len: int) -> bytes:
    """`Table.fingerprint` of the (checked) table at `pos` with the vtable at `vt`."""
    vt_len = _U16_PAIR(data, vt)[0]
    return bytes(data[vt : vt + vt_len]) + bytes(data[pos + 4 : pos + max(obj_len, 4)])
