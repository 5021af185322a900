"""Operator tables → `Operator` records, builtin options decoded.

Operators have two reads (see `coralcheck.model.walk`): `fast_operators`, one loop over the
tables straight from the bytes, and `operator`, field by field through `Table`. They give equal
records. `fast_operators` is one loop of 90 lines on purpose, as `tensors.fast_tensors` (the
rare fields, intermediates and custom options, and the options tables have helpers).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from coralcheck.model.flatbuf import _I32, _U32, FlatBuffer, Table, VectorReaders, field_kinds
from coralcheck.model.graph import Operator
from coralcheck.model.opcodes import OpCode
from coralcheck.model.schema import decode_options, option_fields
from coralcheck.model.walk import ReadState, layouts, new_record

NO_OPTIONS: MappingProxyType[str, Any] = MappingProxyType({})


class OperatorField:
    """The fields of table Operator, by vtable slot."""

    OPCODE_INDEX = 0
    INPUTS = 1
    OUTPUTS = 2
    BUILTIN_OPTIONS_TYPE = 3
    BUILTIN_OPTIONS = 4
    CUSTOM_OPTIONS = 5
    CUSTOM_OPTIONS_FORMAT = 6  # (not read)
    MUTATING_VARIABLE_INPUTS = 7  # (not read)
    INTERMEDIATES = 8
    LARGE_CUSTOM_OPTIONS_OFFSET = 9  # custom options after the flatbuffer (models over 2 GB)
    LARGE_CUSTOM_OPTIONS_SIZE = 10


F = OperatorField
# What the fast read reads of each table (`FlatBuffer.fields_reader`); `pick` gives the values
# in slot order: opcode_index, inputs, outputs, builtin_options_type, builtin_options,
# custom_options, intermediates, large custom options offset and size.
OPERATOR_KINDS = field_kinds(
    11,
    {
        F.OPCODE_INDEX: "I",
        F.INPUTS: "O",
        F.OUTPUTS: "O",
        F.BUILTIN_OPTIONS_TYPE: "B",
        F.BUILTIN_OPTIONS: "O",
        F.CUSTOM_OPTIONS: "O",
        F.INTERMEDIATES: "O",
        F.LARGE_CUSTOM_OPTIONS_OFFSET: "Q",
        F.LARGE_CUSTOM_OPTIONS_SIZE: "Q",
    },
)

# The fields of nearly every operator (read alone where the vtable has no other).
_COMMON_KINDS = field_kinds(
    5,
    {
        F.OPCODE_INDEX: "I",
        F.INPUTS: "O",
        F.OUTPUTS: "O",
        F.BUILTIN_OPTIONS_TYPE: "B",
        F.BUILTIN_OPTIONS: "O",
    },
)
# Where the fields the fast read follows lie in the table (from the offsets by slot), then
# whether the large custom options are there.
_FOLLOWED = itemgetter(
    F.INPUTS,
    F.OUTPUTS,
    F.BUILTIN_OPTIONS,
    F.CUSTOM_OPTIONS,
    F.INTERMEDIATES,
    F.LARGE_CUSTOM_OPTIONS_OFFSET,
)
_INTS = VectorReaders("i")


# --- the checked read ---------------------------------------------------------------------------


def operator(
    r: ReadState, index: int, t: Table, opcodes: list[OpCode], n_tensors: int, where: str
) -> Operator:
    """One operator, every field read and checked through `Table`."""
    what = f"operator {index} of {where}"
    opcode_index = int(t.scalar(F.OPCODE_INDEX, "u32"))
    if opcode_index >= len(opcodes):
        r.buf.fail(
            f"corrupt model: {what} uses operator code {opcode_index}, but there are {len(opcodes)}"
        )
    tensor_lists = tuple(
        indices(r, t.numbers(slot, "i", name), n_tensors, f"{what} {name}", True)
        for slot, name in (
            (F.INPUTS, "inputs"),
            (F.OUTPUTS, "outputs"),
            (F.INTERMEDIATES, "intermediates"),
        )
    )
    options_type, options = None, NO_OPTIONS
    options_table = t.table(F.BUILTIN_OPTIONS, "builtin_options")
    if options_table is not None:
        options_type, options = decoded_options(
            r,
            t.scalar(F.BUILTIN_OPTIONS_TYPE, "u8"),  # type: ignore[arg-type]
            options_table,
        )
    custom_offset, custom_size = -1, 0
    vec = t.vector(F.CUSTOM_OPTIONS, 1, "custom_options")
    if vec is not None:
        custom_offset, custom_size = vec
    else:
        large_offset = int(t.scalar(F.LARGE_CUSTOM_OPTIONS_OFFSET, "u64"))
        large_size = int(t.scalar(F.LARGE_CUSTOM_OPTIONS_SIZE, "u64"))
        if large_offset > 1:
            r.buf.check_range(large_offset, large_size, f"large custom options of {what}")
            r.buf.spend(large_size, f"large custom options of {what}")
            custom_offset, custom_size = large_offset, large_size
    return make_operator(
        index,
        opcodes[opcode_index],
        tensor_lists,  # type: ignore[arg-type]
        options_type,
        options,
        custom_offset,
        custom_size,
    )


def indices(
    r: ReadState, values: tuple[int, ...], count: int, what: str, optional: bool = False
) -> tuple[int, ...]:
    """`values`, checked to name tensors 0..count-1 (or -1, an omitted input, if `optional`)."""
    low = -1 if optional else 0
    if values and (min(values) < low or max(values) >= count):
        bad = next(v for v in values if v < low or v >= count)
        r.buf.fail(f"corrupt model: {what} names tensor {bad}, but there are {count}")
    return values


def decoded_options(
    r: ReadState, options_type: int, table: Table
) -> tuple[str | None, MappingProxyType[str, Any]]:
    """Decode builtin options; equal scalar-only tables (the common case) decode once."""
    key = (options_type, *table.fingerprint())
    cached = r.options_cache.get(key)
    if cached is not None:
        return cached
    name, options = decode_options(options_type, table)
    result = (name, MappingProxyType(options))
    # A present vector (even an empty one) lives elsewhere in the file: equal fingerprints
    # cannot vouch for it, so only tables whose vectors are all absent are cached.
    fields = option_fields(name) if name else None
    if not any(f.vector and table.has(f.slot) for f in fields or ()):
        r.options_cache[key] = result  # type: ignore[index]
    return result


def make_operator(
    index: int,
    opcode: OpCode,
    tensor_lists: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]],
    options_type: str | None,
    options: MappingProxyType[str, Any],
    custom_offset: int,
    custom_size: int,
) -> Operator:
    """The `Operator` both reads (fast and checked) build from what they decoded."""
    name, code, version, custom = opcode
    inputs, outputs, intermediates = tensor_lists
    return new_record(
        Operator,
        (
            index,
            name,
            code,
            version,
            inputs,
            outputs,
            intermediates,
            custom,
            options_type,
            options,
            custom_offset,
            custom_size,
        ),
    )


# --- the fast read ------------------------------------------------------------------------------


def fast_operators(
    r: ReadState,
    first: int,
    positions: list[int],
    parent: Table,
    opcodes: list[OpCode],
    n_tensors: int,
) -> list[Operator]:
    """`operator` of the tables from `first` on, up to the first unusual one.

    Longer: one loop over every op table of the model; a function call per table would cost
    about a tenth of the table's read (bench_load's many_ops has 3,500 of them).
    """
    data, size, buf = r.data, r.size, r.buf
    find = _operator_layouts(buf)
    n_opcodes = len(opcodes)
    # The layout of the table before (ops share a vtable or two: the guess mostly holds).
    vt, unpack = None, _I32
    fill = pick = None
    obj_len = inputs_off = outputs_off = options_off = 0
    rare_offsets: tuple[int, int] | None = None
    operators = []
    for index in range(first, len(positions)):
        pos = positions[index]
        # As in `tensors.fast_tensors`, `unpack_from` checks the bounds of the reads: past the
        # end of the file, struct.error.
        try:
            # (the guess only where its table would fit: else the offset to the vtable)
            values = unpack(data, pos) if pos + obj_len <= size else _I32(data, pos)
            if pos - values[0] != vt:
                vt = pos - values[0]
                found = find(vt)
                if found is None:
                    break
                unpack, fill, pick, obj_len, inputs_off, outputs_off, options_off, rare_offsets = (
                    found
                )
                values = unpack(data, pos)
            if pos + obj_len > size:
                break
            fields = pick(values + fill)
            if rare_offsets is not None:
                fields, rare = fields[:5], fields[5:]
            opcode_index, inputs_at, outputs_at, options_type, options_at = fields
            if opcode_index >= n_opcodes:
                break
            inputs = outputs = ()
            spent = 0
            if inputs_at is not None:
                at = pos + inputs_off + inputs_at
                count = _U32(data, at)[0]
                inputs = _INTS[count](data, at + 4)
                if count and (min(inputs) < -1 or max(inputs) >= n_tensors):
                    break
                spent = 4 + 4 * count
            if outputs_at is not None:
                at = pos + outputs_off + outputs_at
                count = _U32(data, at)[0]
                outputs = _INTS[count](data, at + 4)
                if count and (min(outputs) < -1 or max(outputs) >= n_tensors):
                    break
                spent += 4 + 4 * count
            extra = _NO_EXTRA
            if rare_offsets is not None:  # intermediates or custom options (LSTMs, custom ops)
                extra = _extra(data, pos, rare, rare_offsets, n_tensors)
                if extra is None:
                    break
            if options_at is not None:
                options_pos = pos + options_off + options_at
                options_vt = options_pos - _I32(data, options_pos)[0]
        except struct.error:
            break
        intermediates, custom_offset, custom_size, extra_spent, charge = extra
        spent += extra_spent
        # The options are read with the budget spent so far, as `operator` reads them.
        budget = buf.read_budget
        if budget < spent:
            break
        buf.read_budget = budget - spent
        options_name, options = None, NO_OPTIONS
        if options_at is not None:
            where = (options_type, options_pos, options_vt, pos, index, parent)
            options_name, options = _options(r, where)
        if charge:
            if buf.read_budget < charge:
                buf.read_budget = budget
                break
            buf.read_budget -= charge
        lists, opcode = (inputs, outputs, intermediates), opcodes[opcode_index]
        op = make_operator(index, opcode, lists, options_name, options, custom_offset, custom_size)
        operators.append(op)
    return operators


def _operator_layouts(buf: FlatBuffer) -> Callable[[int], tuple[Any, ...] | None]:
    """`walk.layouts` for operator tables: `(unpack, fill, pick, obj_len, inputs offset,
    outputs offset, builtin options offset, rare)`, where `pick` gives opcode_index, inputs,
    outputs, builtin_options_type, builtin_options, and then, where the vtable has any of the
    rare fields, custom_options, intermediates and the large custom options offset and size:
    `rare` is then where custom_options and intermediates lie (else None)."""
    find_all = layouts(buf, OPERATOR_KINDS, _FOLLOWED)
    common = buf.reader_table(_COMMON_KINDS)
    known: dict[int, tuple[Any, ...] | None] = {}

    def find(vt: int) -> tuple[Any, ...] | None:
        if vt in known:
            return known[vt]
        found = find_all(vt)
        if found is not None:
            *reader, inputs, outputs, options, custom, intermediates, large = found
            if custom or intermediates or large:
                found = (*reader, inputs, outputs, options, (custom, intermediates))
            else:  # (a subset of what the whole reader found valid)
                reader = common.get(vt) or buf.fields_reader(vt, _COMMON_KINDS)  # type: ignore[assignment]
                found = (*reader[:4], inputs, outputs, options, None)  # type: ignore[index]
        known[vt] = found
        return found

    return find


# (intermediates, custom options offset, size, bytes read, bytes the custom options cost)
_NO_EXTRA: tuple[tuple[int, ...], int, int, int, int] = ((), -1, 0, 0, 0)


def _extra(
    data: Any, pos: int, rare: tuple[Any, ...], rare_offsets: tuple[int, int], n_tensors: int
) -> tuple[tuple[int, ...], int, int, int, int] | None:
    """The intermediates and custom options of the operator table at `pos` (its `rare` fields,
    which lie at `rare_offsets`), or None when they name missing tensors or run past the end of
    the file. Raises struct.error when a length does."""
    custom_at, intermediates_at, large_offset, large_size = rare
    size = len(data)
    intermediates: tuple[int, ...] = ()
    spent = 0
    if intermediates_at is not None:
        at = pos + rare_offsets[1] + intermediates_at
        count = _U32(data, at)[0]
        intermediates = _INTS[count](data, at + 4)
        if count and (min(intermediates) < -1 or max(intermediates) >= n_tensors):
            return None
        spent = 4 + 4 * count
    custom_offset, custom_size = -1, 0
    if custom_at is not None:
        at = pos + rare_offsets[0] + custom_at
        custom_size = _U32(data, at)[0]
        custom_offset = at + 4
        if custom_size > size - custom_offset:
            return None
    elif large_offset > 1:
        if large_offset + large_size > size:
            return None
        custom_offset, custom_size = large_offset, large_size
    # Custom options count as read, like any vector (large ones have no length word): ops that
    # share one copy cannot make the decoding of compiled models read it again and again.
    charge = custom_size + (4 if custom_at is not None else 0)
    return intermediates, custom_offset, custom_size, spent, charge


def _options(
    r: ReadState, where: tuple[int, int, int, int, int, Table]
) -> tuple[str | None, MappingProxyType[str, Any]]:
    """The builtin options (of type `options_type`) at `options_pos`, whose vtable is at
    `options_vt`, of the operator table at `pos` (`index` of `parent`): equal to an options
    table decoded before (by its fingerprint), taken from the cache straight from the bytes;
    else decoded through `Table`."""
    options_type, options_pos, options_vt, pos, index, parent = where
    buf = r.buf
    layout = buf.vtables.get(options_vt)
    if layout is not None and options_pos + layout[1] <= r.size and buf.read_budget >= 4:
        inline = bytes(r.data[options_pos + 4 : options_pos + layout[1]])
        found = r.options_cache.get((options_type, options_vt, inline))
        if found is not None:
            buf.read_budget -= 4  # as the Table would
            return found
    table = r.again(pos, ("operators", index), parent)
    options = table.table(F.BUILTIN_OPTIONS, "builtin_options")
    return decoded_options(r, options_type, options)  # type: ignore[arg-type]
