"""A bounds-checked FlatBuffers table reader over an mmap or bytes.

The `tflite` binding reads whatever offsets a file claims, so a corrupt or hostile file can make
it read past the end, loop, or allocate from a forged length. Every read here is checked first:
offsets and lengths must stay inside the file, and vector lengths are bounded by the bytes that
are left. FlatBuffers offsets to tables, vectors and strings only point forward (unsigned), so a
walk can never cycle. Any violation raises `ModelError` naming the file and the problem.
"""

from __future__ import annotations

import struct
from typing import NoReturn

from coralcheck.errors import ModelError

_U8 = struct.Struct("<B").unpack_from
_I8 = struct.Struct("<b").unpack_from
_U16 = struct.Struct("<H").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I64 = struct.Struct("<q").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_F32 = struct.Struct("<f").unpack_from

_SCALARS = {
    "u8": (_U8, 1),
    "i8": (_I8, 1),
    "bool": (_U8, 1),
    "u16": (_U16, 2),
    "i32": (_I32, 4),
    "u32": (_U32, 4),
    "i64": (_I64, 8),
    "u64": (_U64, 8),
    "f32": (_F32, 4),
}


class FlatBuffer:
    """The bytes of one file plus its name, for error messages."""

    __slots__ = ("data", "path", "size")

    def __init__(self, data: object, path: str) -> None:
        self.data = data
        self.path = path
        self.size = len(data)  # type: ignore[arg-type]

    def fail(self, problem: str) -> NoReturn:
        raise ModelError(self.path, problem)

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


class Table:
    """One FlatBuffers table, its vtable checked against the file bounds."""

    __slots__ = ("_data", "_vt", "_vt_len", "buf", "obj_len", "pos", "what")

    def __init__(self, buf: FlatBuffer, pos: int, what: str) -> None:
        self.buf = buf
        self.pos = pos
        self.what = what
        buf.check_range(pos, 4, what)
        data = buf.data
        self._data = data
        vt = pos - _I32(data, pos)[0]
        buf.check_range(vt, 4, f"vtable of {what}")
        vt_len, obj_len = _U16(data, vt)[0], _U16(data, vt + 2)[0]
        if vt_len < 4 or vt_len % 2:
            buf.fail(f"corrupt model: vtable of {what} has an invalid length {vt_len}")
        buf.check_range(vt, vt_len, f"vtable of {what}")
        buf.check_range(pos, max(obj_len, 4), what)
        self._vt = vt
        self._vt_len = vt_len
        self.obj_len = obj_len

    def field(self, slot: int, size: int) -> int:
        """Absolute position of field `slot`, or 0 when it is absent (the schema default)."""
        at = 4 + 2 * slot
        if at >= self._vt_len:
            return 0
        off = _U16(self._data, self._vt + at)[0]
        if not off:
            return 0
        if off + size > self.obj_len:
            self.buf.fail(f"corrupt model: field {slot} of {self.what} overruns the table")
        return self.pos + off

    def scalar(self, slot: int, kind: str, default: int | float = 0) -> int | float:
        unpack, size = _SCALARS[kind]
        at = self.field(slot, size)
        return unpack(self._data, at)[0] if at else default

    def has(self, slot: int) -> bool:
        return self.field(slot, 1) != 0

    def _target(self, slot: int, what: str) -> int | None:
        at = self.field(slot, 4)
        if not at:
            return None
        return self.buf.uoffset(at, f"{what} of {self.what}")

    def table(self, slot: int, what: str) -> Table | None:
        target = self._target(slot, what)
        return None if target is None else Table(self.buf, target, f"{what} of {self.what}")

    def vector(self, slot: int, elem_size: int, what: str) -> tuple[int, int] | None:
        """(start of elements, count) of a vector field, with its length bounded by the file."""
        target = self._target(slot, what)
        if target is None:
            return None
        buf = self.buf
        buf.check_range(target, 4, f"length of {what} of {self.what}")
        count = _U32(self._data, target)[0]
        start = target + 4
        if count * elem_size > buf.size - start:
            buf.fail(
                f"corrupt model: {what} of {self.what} claims {count} elements, more than the "
                f"{buf.size - start} bytes left in the file"
            )
        return start, count

    def numbers(self, slot: int, code: str, what: str) -> tuple:
        """A vector of scalars (struct format `code`) as a tuple; () when absent."""
        size = struct.calcsize(code)
        vec = self.vector(slot, size, what)
        if vec is None or vec[1] == 0:
            return ()
        start, count = vec
        return struct.unpack_from(f"<{count}{code}", self._data, start)

    def string(self, slot: int, what: str) -> str | None:
        raw = self.raw_bytes(slot, what)
        return None if raw is None else raw.decode("utf-8", errors="replace")

    def raw_bytes(self, slot: int, what: str) -> bytes | None:
        vec = self.vector(slot, 1, what)
        if vec is None:
            return None
        start, count = vec
        return bytes(self._data[start : start + count])

    def tables(self, slot: int, what: str) -> list[Table]:
        """A vector of tables; each element's offset is checked before it is followed."""
        vec = self.vector(slot, 4, what)
        if vec is None:
            return []
        start, count = vec
        buf = self.buf
        return [Table(buf, buf.uoffset(start + 4 * i, what), f"{what}[{i}]") for i in range(count)]
