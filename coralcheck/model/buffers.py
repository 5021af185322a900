"""Buffer, Metadata and SignatureDef tables → `BufferRef`, the metadata map, `SignatureDef`.

Buffers have two reads (see `coralcheck.model.walk`): `fast_buffers`, one loop over the tables
straight from the bytes, and `buffer`, field by field through `Table`. A buffer is located
(offset, size), never read: weights stay in the file.
"""

from __future__ import annotations

import struct
from types import MappingProxyType

from coralcheck.model.flatbuf import _I32, _U32, Table, field_kinds
from coralcheck.model.graph import BufferRef, SignatureDef, Subgraph
from coralcheck.model.walk import ReadState, new_record


class BufferField:
    """The fields of table Buffer (tflite schema.fbs), by vtable slot."""

    DATA = 0
    OFFSET = 1  # data stored after the flatbuffer (models over 2 GB), and its size
    SIZE = 2


class MetadataField:
    NAME = 0
    BUFFER = 1


class SignatureDefField:
    INPUTS = 0
    OUTPUTS = 1
    SIGNATURE_KEY = 2
    SUBGRAPH_INDEX = 4


class TensorMapField:
    NAME = 0
    TENSOR_INDEX = 1


B = BufferField
# The fast read reads the data vector only: a table with external data (offset and size fields)
# is left to the plain read.
BUFFER_KINDS = field_kinds(3, {B.DATA: "O"})
NO_DATA = BufferRef(0, 0)


def buffer(r: ReadState, index: int, t: Table) -> BufferRef:
    """One buffer, every field read and checked through `Table`."""
    vec = t.vector(B.DATA, 1, "data")
    offset = int(t.scalar(B.OFFSET, "u64"))
    size = int(t.scalar(B.SIZE, "u64"))
    if offset > 1:  # data stored outside the flatbuffer (models over 2 GB)
        if offset + size > r.buf.size:
            r.buf.fail(
                f"corrupt model: external buffer {index} ({size} bytes at offset {offset}) "
                f"points past the end of the file ({r.buf.size} bytes)"
            )
        return BufferRef(offset, size, external=True)
    if vec is not None:
        return BufferRef(vec[0], vec[1])
    return BufferRef(0, 0)


def fast_buffers(r: ReadState, first: int, positions: list[int]) -> list[BufferRef]:
    """`buffer` of the tables from `first` on, up to the first unusual one: the common buffer,
    its bytes in the file (no external offset and size fields)."""
    data, size, buf = r.data, r.size, r.buf
    readers = buf.reader_table(BUFFER_KINDS)
    budget = buf.read_budget
    # The reader of the previous table (none yet: the first guess fails), as in
    # `tensors.fast_tensors`: buffers share a vtable or two.
    vt, unpack = None, _I32
    fill = pick = None
    obj_len = data_off = 0
    refs = []
    for i in range(first, len(positions)):
        pos = positions[i]
        try:
            # (the guess only where its table would fit: else the offset to the vtable)
            values = unpack(data, pos) if pos + obj_len <= size else _I32(data, pos)
            if pos - values[0] != vt:
                vt = pos - values[0]
                reader = readers.get(vt) or buf.fields_reader(vt, BUFFER_KINDS)
                if reader is None:
                    break
                unpack, fill, pick, obj_len, offsets = reader
                if offsets[B.OFFSET] or offsets[B.SIZE]:
                    break  # (external data)
                data_off = offsets[B.DATA]
                values = unpack(data, pos)
            if pos + obj_len > size:
                break
            data_at = pick(values + fill)
            if data_at is None:
                refs.append(NO_DATA)
                continue
            start = pos + data_off + data_at + 4
            count = _U32(data, start - 4)[0]
        except struct.error:  # past the end of the file
            break
        if count > size - start or budget < 4 + count:
            break
        budget -= 4 + count
        refs.append(new_record(BufferRef, (start, count, False)))
    buf.read_budget = budget
    return refs


def metadata(r: ReadState, root: Table, n_buffers: int) -> MappingProxyType[str, int]:
    """Metadata name -> buffer index."""
    entries = {}
    for t in root.tables(6, "metadata"):
        name = t.string(MetadataField.NAME, "name") or ""
        index = int(t.scalar(MetadataField.BUFFER, "u32"))
        if index >= n_buffers:
            r.buf.fail(f"corrupt model: metadata {name!r} uses missing buffer {index}")
        entries[name] = index
    return MappingProxyType(entries)


def signatures(
    r: ReadState, root: Table, subgraphs: tuple[Subgraph, ...]
) -> tuple[SignatureDef, ...]:
    S, M = SignatureDefField, TensorMapField
    out = []
    for t in root.tables(7, "signature_defs"):
        index = int(t.scalar(S.SUBGRAPH_INDEX, "u32"))
        if index >= len(subgraphs):
            r.buf.fail(f"corrupt model: signature names missing subgraph {index}")
        n = len(subgraphs[index].tensors)
        maps = []
        for slot, what in ((S.INPUTS, "signature inputs"), (S.OUTPUTS, "signature outputs")):
            entries = {}
            for m in t.tables(slot, what):
                tensor = int(m.scalar(M.TENSOR_INDEX, "u32"))
                if tensor >= n:
                    r.buf.fail(f"corrupt model: {what} name missing tensor {tensor}")
                entries[m.string(M.NAME, "name") or ""] = tensor
            maps.append(MappingProxyType(entries))
        key = t.string(S.SIGNATURE_KEY, "signature_key") or ""
        out.append(SignatureDef(key, index, maps[0], maps[1]))
    return tuple(out)
