"""Tensor and QuantizationParameters tables → `Tensor` and `Quantization` records.

Two reads of each (see `coralcheck.model.walk`): `fast_tensors`, one loop over the tables
straight from the bytes, and `tensor`, field by field through `Table`. They give equal records.
`fast_tensors` is one loop of 80 lines on purpose: a function call per tensor costs as much as
a tenth of its read, and a model has tens of thousands (the unusual parts have helpers).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import cache
from operator import itemgetter
from typing import Any

from coralcheck.model.flatbuf import _I32, _U32, Table, VectorReaders, field_kinds, numbers_at
from coralcheck.model.graph import BufferRef, Quantization, Tensor
from coralcheck.model.packed import PackedNumbers
from coralcheck.model.schema import tensor_type_name, tensor_type_names
from coralcheck.model.walk import ReadState, layouts, new_record


class TensorField:
    """The fields of table Tensor (tflite schema.fbs), by vtable slot."""

    SHAPE = 0
    TYPE = 1
    BUFFER = 2
    NAME = 3
    QUANTIZATION = 4
    IS_VARIABLE = 5
    SPARSITY = 6  # (not read)
    SHAPE_SIGNATURE = 7


class QuantizationField:
    """The fields of table QuantizationParameters, by vtable slot."""

    MIN = 0
    MAX = 1
    SCALE = 2
    ZERO_POINT = 3
    DETAILS_TYPE = 4  # (custom quantization: not read)
    DETAILS = 5
    QUANTIZED_DIMENSION = 6


T, Q = TensorField, QuantizationField
# What the fast read reads of each table (`FlatBuffer.fields_reader`); `pick` gives the values
# in slot order: shape, type, buffer, name, quantization, is_variable, shape_signature.
TENSOR_KINDS = field_kinds(
    8,
    {
        T.SHAPE: "O",
        T.TYPE: "b",
        T.BUFFER: "I",
        T.NAME: "O",
        T.QUANTIZATION: "O",
        T.IS_VARIABLE: "?",
        T.SHAPE_SIGNATURE: "O",
    },
)
# ... min, max, scale, zero_point, quantized_dimension.
QUANTIZATION_KINDS = field_kinds(
    7, {Q.MIN: "O", Q.MAX: "O", Q.SCALE: "O", Q.ZERO_POINT: "O", Q.QUANTIZED_DIMENSION: "i"}
)

# Where the fields the fast read follows lie in the table, from `FieldsReader.offsets`.
_FOLLOWED = itemgetter(T.SHAPE, T.NAME, T.QUANTIZATION, T.SHAPE_SIGNATURE)

NO_DATA = BufferRef(0, 0)
NOT_QUANTIZED = Quantization((), ())
# TFLite sizes tensors in 64-bit bytes and rejects larger ones; a corrupt shape beyond that
# would give sizes and MAC counts no float can hold (and math.prod of 100,000 huge dims takes
# minutes).
_MOST_ELEMENTS = 2**63

# A vector's length and its first element (the vector may be shorter).
_COUNT_AND_FLOAT = struct.Struct("<If").unpack_from
_COUNT_AND_INT64 = struct.Struct("<Iq").unpack_from
# Element count -> the `unpack_from` of a vector of int32.
_INTS = VectorReaders("i")
_ITEM_SIZES = {"f": 4, "q": 8}


def holds(shape: tuple[int, ...]) -> bool:
    """A tensor of `shape` has fewer than 2^63 elements (the product is checked dimension by
    dimension: it stops at the first one out of range)."""
    elements = 1
    for d in shape:
        elements *= d
        if not -_MOST_ELEMENTS < elements < _MOST_ELEMENTS:
            return False
    return True


@cache
def dtype_names() -> dict[int, str]:
    """Every int8 type code's name (a tensor's type field is an int8): one lookup per tensor."""
    names = tensor_type_names()
    return {code: names.get(code) or tensor_type_name(code) for code in range(-128, 128)}


# --- the checked read ---------------------------------------------------------------------------


def tensor(
    r: ReadState, index: int, t: Table, buffers: tuple[BufferRef, ...], where: str
) -> Tensor:
    """One tensor, every field read and checked through `Table`."""
    shape = t.numbers(T.SHAPE, "i", "shape")
    if not holds(shape):
        r.buf.fail(
            f"corrupt model: tensor {index} of {where} has a shape of {len(shape)} "
            "dimensions with more elements than a tensor can hold"
        )
    signature = None
    if t.has(T.SHAPE_SIGNATURE):
        signature = t.numbers(T.SHAPE_SIGNATURE, "i", "shape_signature")
    elif shape and min(shape) < 0:
        signature = shape  # old converters wrote -1 into the shape itself
    buffer = t.scalar(T.BUFFER, "u32")
    n_buffers = len(buffers)
    if buffer >= n_buffers and n_buffers:
        r.buf.fail(
            f"corrupt model: tensor {index} of {where} uses buffer {buffer}, "
            f"but there are {n_buffers}"
        )
    ref = buffers[buffer] if buffer < n_buffers else NO_DATA
    q = t.table(T.QUANTIZATION, "quantization")
    dtype = t.scalar(T.TYPE, "i8")
    return Tensor(
        index,
        t.string(T.NAME, "name") or "",
        dtype_names()[dtype],  # type: ignore[index]
        shape,
        signature,
        buffer,  # type: ignore[arg-type]
        bool(t.scalar(T.IS_VARIABLE, "bool")),
        None if q is None else quantization(q),
        ref.offset if ref.size else -1,
        ref.size,
    )


def quantization(q: Table) -> Quantization:
    scale = _numbers(q, Q.SCALE, "f", "scale")
    zero_point = _numbers(q, Q.ZERO_POINT, "q", "zero_point")
    dimension = q.scalar(Q.QUANTIZED_DIMENSION, "i32")
    has_min, has_max = q.has(Q.MIN), q.has(Q.MAX)  # rare: skip two vector reads per tensor
    if not (scale or zero_point or dimension or has_min or has_max):
        return NOT_QUANTIZED  # the empty table converters write for float tensors
    low = _numbers(q, Q.MIN, "f", "min") if has_min else ()
    high = _numbers(q, Q.MAX, "f", "max") if has_max else ()
    return Quantization(scale, zero_point, dimension, low, high)  # type: ignore[arg-type]


def _numbers(t: Table, slot: int, code: str, what: str) -> tuple | PackedNumbers:
    """A vector of quantization parameters: one value as a tuple, more left packed."""
    vec = t.vector(slot, _ITEM_SIZES[code], what)
    return () if vec is None else _numbers_at(t.buf.data, *vec, code)


# --- the fast read ------------------------------------------------------------------------------


def fast_tensors(
    r: ReadState, first: int, positions: list[int], buffers: tuple[BufferRef, ...]
) -> list[Tensor]:
    """`tensor` of the tables from `first` on, up to the first unusual one.

    Longer: one loop over every tensor table of the model; a function call per table would
    cost about a tenth of the table's read (bench_load's many_ops has 10,001 of them).
    """
    data, size, buf = r.data, r.size, r.buf
    find = layouts(buf, TENSOR_KINDS, _FOLLOWED)
    read_quantization = quantization_reader(r)
    names = dtype_names()
    n_buffers = len(buffers)
    budget = buf.read_budget
    # The layout of the table's vtable: looked up by vtable, not guessed from the table before
    # (activations, weights and biases take turns).
    vt = unpack = fill = pick = None
    shape_off = name_off = quant_off = signature_off = obj_len = 0
    tensors = []
    # Each shape made once: a model repeats a few dozen shapes over thousands of tensors (one
    # tuple each would be a tenth of the records' memory).
    shapes: dict[tuple[int, ...], tuple[int, ...]] = {}
    known_shape = shapes.setdefault
    for index in range(first, len(positions)):
        pos = positions[index]
        # A length or a vector past the end of the file raises struct.error, caught below:
        # `unpack_from` checks the bounds of each read, so this loop need not.
        try:
            table_vt = pos - _I32(data, pos)[0]
            if table_vt != vt or pos + obj_len > size:
                vt, found = table_vt, find(table_vt)
                if found is None:
                    break
                unpack, fill, pick, obj_len, shape_off, name_off, quant_off, signature_off = found
                if pos + obj_len > size:
                    break
            values = unpack(data, pos)  # type: ignore[misc]
            shape_at, dtype, buffer, name_at, quant_at, is_variable, signature_at = pick(
                values + fill
            )
            spent = 0
            shape: tuple[int, ...] = ()
            if shape_at is not None:
                at = pos + shape_off + shape_at
                count = _U32(data, at)[0]
                shape = _INTS[count](data, at + 4)
                shape = known_shape(shape, shape)
                spent = 4 + 4 * count
                if count > 2 and not holds(shape):  # two int32 dimensions always fit
                    break
            signature = None
            if signature_at is not None:
                at = pos + signature_off + signature_at
                count = _U32(data, at)[0]
                signature = _INTS[count](data, at + 4)
                spent += 4 + 4 * count
            elif shape and min(shape) < 0:
                signature = shape  # old converters wrote -1 into the shape itself
            if buffer < n_buffers:
                ref = buffers[buffer]
            elif n_buffers:
                break
            else:
                ref = NO_DATA
            quant = None
            if quant_at is not None:
                read = read_quantization(pos + quant_off + quant_at)
                if read is None:
                    break
                quant, quant_spent = read
                spent += quant_spent
            name = ""
            if name_at is not None:
                at = pos + name_off + name_at
                length = _U32(data, at)[0]
                if length > size - at - 4:  # (a slice does not check)
                    break
                name = data[at + 4 : at + 4 + length].decode("utf-8", "replace")
                spent += 4 + length
        except struct.error:
            break
        if budget < spent:
            break
        budget -= spent
        kind, offset = names[dtype], ref.offset if ref.size else -1
        row = (index, name, kind, shape, signature, buffer, is_variable, quant, offset, ref.size)
        tensors.append(new_record(Tensor, row))
    buf.read_budget = budget
    return tensors


def _numbers_at(data: Any, start: int, count: int, code: str) -> tuple | PackedNumbers:
    """`count` quantization parameters at `start` (checked to lie in `data`): one value as a
    tuple, more left packed."""
    return (
        PackedNumbers(data, start, count, code)
        if count > 1
        else numbers_at(data, code, start, count)
    )


def quantization_reader(r: ReadState) -> Callable[[int], tuple[Quantization, int] | None]:
    """The fast read of QuantizationParameters tables: `read(at)` gives the table at `at` and
    the bytes it read, or None when the table is unusual (the plain read then reads the whole
    tensor); it raises struct.error past the end of the file. Each table's reader is guessed
    from the table before, as in `fast_tensors`."""
    data, size, buf = r.data, r.size, r.buf
    readers = buf.reader_table(QUANTIZATION_KINDS)
    shared, shared_per_tensor = r.quantizations, r.per_tensor_quantizations
    vt, unpack = -1, _I32
    fill = pick = None
    offsets: tuple[int, ...] = ()
    scale_off = zero_off = obj_len = 0

    def read(at: int) -> tuple[Quantization, int] | None:
        nonlocal vt, unpack, fill, pick, obj_len, offsets, scale_off, zero_off
        values = unpack(data, at) if at + obj_len <= size else _I32(data, at)
        if at - values[0] != vt:
            vt = at - values[0]
            reader = readers.get(vt) or buf.fields_reader(vt, QUANTIZATION_KINDS)
            if reader is None:
                vt = -1  # (no guess: the next table looks its reader up)
                return None
            unpack, fill, pick, obj_len, offsets = reader
            scale_off, zero_off = offsets[Q.SCALE], offsets[Q.ZERO_POINT]
            values = unpack(data, at)
        if at + obj_len > size:
            return None
        min_at, max_at, scale_at, zero_at, dimension = pick(values + fill)
        if scale_at is not None and zero_at is not None and min_at is None and max_at is None:
            # What converters write: scales and zero points, one each (per tensor) or as many
            # of each (per channel). The length and the first element in one read.
            vec, zvec = at + scale_off + scale_at, at + zero_off + zero_at
            count, element = _COUNT_AND_FLOAT(data, vec)
            zcount, zelement = _COUNT_AND_INT64(data, zvec)
            if count == 1 and zcount == 1:
                # Shared by value, found without making the tuples.
                key = (element, zelement, dimension)
                found = shared_per_tensor.get(key)
                if found is None:
                    parameters = ((element,), (zelement,), dimension, (), ())
                    found = new_record(Quantization, parameters)
                    if element != 0.0:  # (-0.0 == 0.0: a signed zero stays as it is)
                        shared_per_tensor[key] = found
                return found, 24
            if count == zcount > 1 and 8 * count <= size - zvec - 4 and 4 * count <= size - vec - 4:
                # Left packed, and a record of its own (sharing would decode them to hash them).
                scale = PackedNumbers(data, vec + 4, count, "f")
                zero_point = PackedNumbers(data, zvec + 4, count, "q")
                parameters = (scale, zero_point, dimension, (), ())
                return new_record(Quantization, parameters), 12 + 12 * count  # (4 + 8 + 12 each)
        return _other_quantization(
            data, size, shared, at, (min_at, max_at, scale_at, zero_at, dimension), offsets
        )

    return read


def _other_quantization(
    data: Any,
    size: int,
    shared: dict[tuple, Quantization],
    at: int,
    fields: tuple[int | None, int | None, int | None, int | None, int],
    offsets: tuple[int, ...],
) -> tuple[Quantization, int]:
    """The quantization table at `at` of any other kind (calibration ranges, no zero points, an
    empty table, more scales than zero points) from its `fields` (min, max, scale, zero_point,
    quantized_dimension: an absent vector as None) and the bytes it read. Raises struct.error
    past the end of the file."""
    spent = 4  # the table
    vectors: list[tuple | PackedNumbers] = []
    for found_at, slot in zip(fields[:4], (Q.MIN, Q.MAX, Q.SCALE, Q.ZERO_POINT), strict=True):
        if found_at is None:
            vectors.append(())
            continue
        code = "q" if slot == Q.ZERO_POINT else "f"
        item = _ITEM_SIZES[code]
        vec = at + offsets[slot] + found_at
        count = _U32(data, vec)[0]
        if count * item > size - vec - 4:
            raise struct.error("the vector runs past the end of the file")
        vectors.append(_numbers_at(data, vec + 4, count, code))
        spent += 4 + item * count
    low, high, scale, zero_point = vectors
    dimension = fields[4]
    if not (scale or zero_point or dimension or fields[0] is not None or fields[1] is not None):
        return NOT_QUANTIZED, spent  # the empty table converters write for float tensors
    parameters = (scale, zero_point, dimension, low, high)
    if any(type(v) is PackedNumbers for v in vectors):
        return new_record(Quantization, parameters), spent  # (per channel: as above)
    found = shared.get(parameters)
    if found is None:
        found = new_record(Quantization, parameters)
        # (-0.0 == 0.0, but a signed zero must stay as the file has it.)
        if not (0.0 in scale or 0.0 in low or 0.0 in high):  # type: ignore[operator]
            shared[parameters] = found
    return found, spent
