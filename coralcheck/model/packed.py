"""Vectors of numbers left packed in the file until something reads them.

A per-channel quantized model has one scale and one zero point per output channel of every
weight and bias tensor: 70 MB of convolutions and fully connected layers carry 800,000 of each.
As tuples they cost a Python object per element to make, to scan for the garbage collector and
to free, although nearly all the lint asks of them is how many there are and whether they are
usable. `PackedNumbers` keeps where the vector lies and decodes it on first use; `all_positive`
and `all_within` answer the usual questions from the bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from typing import Any

_SIZES = {"f": 4, "q": 8, "i": 4}
_ONE = {code: struct.Struct(f"<{code}").unpack_from for code in _SIZES}
# The high byte of a float32 (little-endian: the last of its 4) holds the sign and 7 of the 8
# exponent bits: 0x01..0x7E is a positive, finite number that is not zero (0x00 is zero or tiny,
# 0x7F huge, inf or NaN, 0x80 and above negative). This table maps those to 0, the others to 1.
_NOT_SURELY_POSITIVE = bytes(0 if 0x01 <= b <= 0x7E else 1 for b in range(256))


class PackedNumbers:
    """A vector of little-endian numbers of struct format `code` ("f", "q" or "i") in `data`,
    decoded on first use. It behaves as the tuple of its values: len, indexing (an element is
    read alone until the vector is decoded), iteration, `in`, == and hash (equal to the tuple of
    its values), repr, and pickling (as that tuple). The caller has checked that the vector lies
    inside `data`."""

    __slots__ = ("_code", "_count", "_data", "_start", "_values")

    def __init__(self, data: Any, start: int, count: int, code: str) -> None:
        self._data = data
        self._start = start
        self._count = count
        self._code = code
        self._values: tuple | None = None

    @property
    def values(self) -> tuple:
        """The decoded tuple (made once)."""
        values = self._values
        if values is None:
            values = self._values = struct.unpack_from(
                f"<{self._count}{self._code}", self._data, self._start
            )
        return values

    @property
    def code(self) -> str:
        return self._code

    @property
    def raw(self) -> bytes:
        """The vector's bytes as the file holds them."""
        start = self._start
        return bytes(self._data[start : start + self._count * _SIZES[self._code]])

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        values = self._values
        if values is None:
            if type(index) is int:
                count = self._count
                if -count <= index < count:
                    at = self._start + (index % count) * _SIZES[self._code]
                    return _ONE[self._code](self._data, at)[0]
                raise IndexError("tuple index out of range")
            values = self.values
        return values[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values)

    def __contains__(self, value: object) -> bool:
        return value in self.values

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedNumbers):
            return self is other or self.values == other.values
        if isinstance(other, tuple):
            return self.values == other
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return repr(self.values)

    def __reduce__(self) -> tuple[type, tuple[tuple]]:
        return tuple, (self.values,)

    def count(self, value: object) -> int:
        return self.values.count(value)

    def index(self, value: object) -> int:
        return self.values.index(value)


def all_positive(scales: tuple[float, ...] | PackedNumbers) -> bool:
    """Every value is a finite number above 0 (no NaN). A packed float32 vector is answered from
    the high byte of each value when they all say so (real scales: always), else decoded."""
    if type(scales) is PackedNumbers and scales._code == "f":
        start = scales._start
        high_bytes = scales._data[start + 3 : start + 4 * scales._count : 4]
        if 1 not in high_bytes.translate(_NOT_SURELY_POSITIVE):
            return True
    return all(0.0 < s < math.inf for s in scales)


def all_within(values: tuple[int, ...] | PackedNumbers, low: int, high: int) -> bool:
    """Every value lies in low..high. A packed vector of zeros (the zero points of symmetric,
    per-channel quantization) is answered from its bytes, else decoded."""
    if type(values) is PackedNumbers and low <= 0 <= high:
        start = values._start
        end = start + values._count * _SIZES[values._code]
        if values._data[start:end] == bytes(end - start):
            return True
    return all(low <= v <= high for v in values)


def usable_per_channel(scales: object, zero_points: object, low: int, high: int) -> bool:
    """Per-channel parameters the reader left packed, answered from their bytes in one call:
    as many zero points as scales, every scale a finite number above 0, every zero point in
    low..high. False also when they are not packed (the caller checks them one by one)."""
    if type(scales) is not PackedNumbers or type(zero_points) is not PackedNumbers:
        return False
    count = scales._count
    if zero_points._count != count or scales._code != "f" or zero_points._code != "q":
        return False
    data, start = scales._data, scales._start
    if 1 in data[start + 3 : start + 4 * count : 4].translate(_NOT_SURELY_POSITIVE):
        return all_positive(scales) and all_within(zero_points, low, high)
    start = zero_points._start
    if low <= 0 <= high and zero_points._data[start : start + 8 * count] == bytes(8 * count):
        return True
    return all_within(zero_points, low, high)


def all_usable_per_channel(pairs: list[tuple[Any, Any]], low: int, high: int) -> bool:
    """`usable_per_channel` of every (scales, zero points) pair, as converters write them: every
    scale surely positive by its high byte, every zero point 0 (compared as bytes). In one loop
    without a call per pair (Q009 asks it of thousands of weights). False when any pair is not
    packed, does not match, or is not surely usable (a scale that is tiny, zero points other
    than 0): the caller then asks `usable_per_channel` of each pair."""
    if not low <= 0 <= high:
        return False
    zeros: dict[int, bytes] = {}
    for scales, zero_points in pairs:
        if type(scales) is not PackedNumbers or type(zero_points) is not PackedNumbers:
            return False
        count = scales._count
        if zero_points._count != count or scales._code != "f" or zero_points._code != "q":
            return False
        start = scales._start
        if 1 in scales._data[start + 3 : start + 4 * count : 4].translate(_NOT_SURELY_POSITIVE):
            return False
        start, size = zero_points._start, 8 * count
        zero = zeros.get(size)
        if zero is None:
            zero = zeros[size] = bytes(size)
        if zero_points._data[start : start + size] != zero:
            return False
    return True
