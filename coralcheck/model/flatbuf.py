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

    __slots__ = ("data", "path", "read_budget", "size")

    def __init__(self, data: object, path: str) -> None:
        self.data = data
        self.path = path
        self.size = len(data)  # type: ignore[arg-type]
        self.read_budget = 2 * self.size + _READ_SLACK

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
        if vt < 0 or vt + 4 > size:
            buf.check_range(vt, 4, f"vtable of {self.what}")
        vt_len, obj_len = _U16_PAIR(data, vt)
        if vt_len < 4 or vt_len % 2:
            buf.fail(f"corrupt model: vtable of {self.what} has an invalid length {vt_len}")
        if vt + vt_len > size:
            buf.check_range(vt, vt_len, f"vtable of {self.what}")
        if pos + obj_len > size:
            buf.check_range(pos, obj_len, self.what)
        buf.read_budget -= 4
        if buf.read_budget < 0:
            buf.spend(0, self.what)
        # Every field's offset at once: one unpack instead of one per field read.
        unpack = _VTABLES.get(vt_len)
        if unpack is None:
            unpack = _VTABLES[vt_len] = struct.Struct(f"<{vt_len // 2 - 2}H").unpack_from
        self._offsets = unpack(data, vt + 4)
        self._vt = vt
        self.obj_len = obj_len

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
        data = self._data
        vt_len = _U16_PAIR(data, self._vt)[0]
        return bytes(data[self._vt : self._vt + vt_len]) + bytes(
            data[self.pos + 4 : self.pos + max(self.obj_len, 4)]
        )

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
        if vec is None or vec[1] == 0:
            return ()
        start, count = vec
        unpack = _VECTORS.get((code, count))
        if unpack is None:
            unpack = struct.Struct(f"<{count}{code}").unpack_from
            if count <= 8:  # shapes, scales, op inputs: the same few formats again and again
                _VECTORS[code, count] = unpack
        return unpack(self._data, start)

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

    def tables(self, slot: int, what: str) -> list[Table]:
        """A vector of tables; each element's offset is checked when its table is built."""
        vec = self.vector(slot, 4, what)
        if vec is None:
            return []
        start, count = vec
        buf = self.buf
        offsets = struct.unpack_from(f"<{count}I", self._data, start)
        return [Table(buf, start + 4 * i + off, (what, i), self) for i, off in enumerate(offsets)]
