"""bytes → verified `Model`. The only module that reads raw TFLite flatbuffers.

Weight buffers are located (offset, size) but their bytes are not parsed. A file up to
`READ_WHOLE_BYTES` (64 MiB) is read whole, in one read: nothing can change it under the reader.
A larger one is mapped, and its weight pages are never touched, so a 300 MB model loads about as
fast as a 3 MB one (a mapped file truncated meanwhile would be SIGBUS: see `refuse_mapping`).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import cache
from types import MappingProxyType
from typing import Any, TypeVar

from coralcheck.errors import ModelError
from coralcheck.fileio import open_regular
from coralcheck.model.flatbuf import (
    _I32,
    _U32,
    FlatBuffer,
    Table,
    VectorReaders,
)
from coralcheck.model.graph import (
    BufferRef,
    Model,
    Operator,
    Quantization,
    SignatureDef,
    Subgraph,
    Tensor,
)
from coralcheck.model.schema import (
    decode_options,
    operator_name,
    option_fields,
    tensor_type_name,
    tensor_type_names,
)

IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
CUSTOM = 32
PLACEHOLDER_FOR_GREATER_OP_CODES = 127

# Magic numbers of files people mistake for (or rename to) .tflite.
_OTHER_FORMATS = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a zip archive (a .keras file or a zipped model?)"),
    (b"\x89HDF", "an HDF5 file (a Keras .h5 model?)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{", "a JSON/text file"),
    (b"ONNX", "an ONNX model"),
    (b"\x08", "an ONNX (protobuf) model"),
)


def load(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> Model:
    """Read and verify a TFLite model from a path or from bytes. Raises `ModelError`."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source) if isinstance(source, memoryview) else source
        return parse(data, "<bytes>")
    path = os.fspath(source)
    data = _map_file(path)
    return parse(data, path)


# Files up to this size are read whole; larger ones are mapped (a 200 MB model loads in
# milliseconds: its weights are never touched). A mapped file that someone truncates while it is
# read kills the process with SIGBUS, so the CLI checks the models it maps in worker processes
# (`coralcheck.commands.lint.check_all`); a file that is read cannot change under the reader.
READ_WHOLE_BYTES = 64 << 20
# False where a file must not be mapped (the CLI's own process): see `refuse_mapping`.
_MAY_MAP: ContextVar[bool] = ContextVar("coralcheck_may_map", default=True)


class MappingRefused(ModelError):
    """The file is larger than `READ_WHOLE_BYTES` and mapping it was refused here."""


@contextlib.contextmanager
def refuse_mapping() -> Iterator[None]:
    """Within: a file too large to read whole raises `MappingRefused` instead of being mapped
    (the caller checks it in a worker process instead)."""
    token = _MAY_MAP.set(False)
    try:
        yield
    finally:
        _MAY_MAP.reset(token)


def _map_file(path: str) -> Any:
    try:
        fd, st = open_regular(path)
    except FileNotFoundError:
        raise ModelError(path, "no such file") from None
    except IsADirectoryError:
        raise ModelError(path, "is a directory, not a model file") from None
    except PermissionError:
        raise ModelError(path, "permission denied") from None
    except OSError as e:
        if e.errno == errno.EINVAL:  # a FIFO, a device (opened without blocking)
            raise ModelError(
                path, "not a regular file (a pipe or device?): save the model first"
            ) from None
        raise ModelError(path, f"cannot read: {e.strerror or e}") from None
    try:
        if st.st_size == 0:
            raise ModelError(path, "empty file (0 bytes)")
        if st.st_size <= READ_WHOLE_BYTES:
            with open(fd, "rb", closefd=False) as f:
                return f.read(st.st_size)  # (shorter if the file shrank meanwhile)
        if not _MAY_MAP.get():
            raise MappingRefused(path, f"larger than {READ_WHOLE_BYTES} bytes: not mapped here")
        return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except ValueError:  # mmap of a file emptied meanwhile
        raise ModelError(path, "empty file (0 bytes)") from None
    except OSError as e:
        raise ModelError(path, f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _sniff(data: Any) -> str | None:
    head = bytes(data[:8])
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            return what
    return None


def parse(data: Any, path: str) -> Model:
    """Verify and decode a TFLite flatbuffer held in `data` (bytes or mmap)."""
    size = len(data)
    if size < 16:
        raise ModelError(path, f"not a TFLite model: only {size} bytes")
    has_identifier = bytes(data[4:8]) == IDENTIFIER
    try:
        return _Reader(FlatBuffer(data, path)).model(has_identifier)
    except ModelError as e:
        # Schema v1/v2 files had no identifier: say what they are, not "not a TFLite model".
        old_schema = isinstance(e, _SchemaVersionError) and e.version in (1, 2)
        if has_identifier or old_schema:
            raise
        other = _sniff(data)
        hint = f"looks like {other}" if other else "no 'TFL3' identifier"
        raise ModelError(path, f"not a TFLite model ({hint})") from e


class _SchemaVersionError(ModelError):
    """A well-formed model root whose schema version is not 3."""

    def __init__(self, path: str, version: int) -> None:
        super().__init__(
            path, f"unsupported TFLite schema version {version} (expected {SCHEMA_VERSION})"
        )
        self.version = version


# Custom op names are identifiers ("TFLite_Detection_PostProcess", "edgetpu-custom-op", Flex
# ops): far below this.
MAX_CUSTOM_CODE_BYTES = 1024

_NO_DATA = BufferRef(0, 0)
_NOT_QUANTIZED = Quantization((), ())
# TFLite sizes tensors in 64-bit bytes and rejects larger ones; a corrupt shape beyond that
# would give sizes and MAC counts no float can hold (and math.prod of 100,000 huge dims takes
# minutes).
_MOST_ELEMENTS = 2**63
_NO_OPTIONS: MappingProxyType[str, Any] = MappingProxyType({})

# The fields the fast paths read, by vtable slot, as `FlatBuffer.fields_reader` kinds ("O": an
# offset to a vector or table, "": not read).
# Tensor: shape, type, buffer, name, quantization, is_variable, (sparsity), shape_signature.
_TENSOR_KINDS = ("O", "b", "I", "O", "O", "?", "", "O")
# QuantizationParameters: min, max, scale, zero_point, (details_type, details),
# quantized_dimension.
_QUANTIZATION_KINDS = ("O", "O", "O", "O", "", "", "i")
# Buffer: data, (offset, size: external data, left to the plain read).
_BUFFER_KINDS = ("O", "", "")
# Operator: opcode_index, inputs, outputs, builtin_options_type, builtin_options, custom_options,
# (custom_options_format, mutating_variable_inputs), intermediates, large custom options offset
# and size.
_OPERATOR_KINDS = ("I", "O", "O", "B", "O", "O", "", "", "O", "Q", "Q")

# `tuple.__new__(Record, values)` builds a NamedTuple record without the Python-level `__new__`
# the class generates: ~0.1 µs instead of ~0.2 µs, for each of tens of thousands of records.
_new = tuple.__new__
_R = TypeVar("_R")
# A vector's length and its first element (the vector may be shorter).
_COUNT_AND_FLOAT = struct.Struct("<If").unpack_from
_COUNT_AND_INT64 = struct.Struct("<Iq").unpack_from
# Element count -> the `unpack_from` of a vector of int32, float32 or int64.
_INTS, _FLOATS, _INT64S = VectorReaders("i"), VectorReaders("f"), VectorReaders("q")


def _holds(shape: tuple[int, ...]) -> bool:
    """A tensor of `shape` has fewer than 2^63 elements (the product is checked dimension by
    dimension: it stops at the first one out of range)."""
    elements = 1
    for d in shape:
        elements *= d
        if not -_MOST_ELEMENTS < elements < _MOST_ELEMENTS:
            return False
    return True


@cache
def _dtype_names() -> dict[int, str]:
    """Every int8 type code's name (a tensor's type field is an int8): one lookup per tensor."""
    names = tensor_type_names()
    return {code: names.get(code) or tensor_type_name(code) for code in range(-128, 128)}


class _Reader:
    def __init__(self, buf: FlatBuffer) -> None:
        self.buf = buf
        self.data, self.size = buf.data, buf.size
        self.dtype_names = _dtype_names()
        # How each vtable's tables are read by the fast paths (FlatBuffer.fields_reader).
        self.tensor_readers = buf.reader_table(_TENSOR_KINDS)
        self.quantization_readers = buf.reader_table(_QUANTIZATION_KINDS)
        self.buffer_readers = buf.reader_table(_BUFFER_KINDS)
        self.operator_readers = buf.reader_table(_OPERATOR_KINDS)
        # Equal quantizations share one record: less memory, fewer objects to allocate (the
        # tensors around an op often share theirs).
        self.quantizations: dict[tuple, Quantization] = {}
        # (options type, *fingerprint) -> decoded options.
        self.options_cache: dict[tuple[int, int, bytes], tuple[str | None, MappingProxyType]] = {}

    def model(self, has_identifier: bool) -> Model:
        buf = self.buf
        root = buf.root("model")
        version = int(root.scalar(0, "u32"))
        if version != SCHEMA_VERSION:
            raise _SchemaVersionError(buf.path, version)
        buffers = self.buffers(root)
        opcodes = self.opcodes(root)
        subgraph_tables = root.tables(2, "subgraphs")
        if not subgraph_tables:
            buf.fail("corrupt model: no subgraphs")
        subgraphs = tuple(
            self.subgraph(i, t, opcodes, buffers) for i, t in enumerate(subgraph_tables)
        )
        metadata = self.metadata(root, len(buffers))
        runtime = None
        if "min_runtime_version" in metadata:
            ref = buffers[metadata["min_runtime_version"]]
            raw = bytes(buf.data[ref.offset : ref.offset + min(ref.size, 64)])
            runtime = raw.split(b"\0", 1)[0].decode("ascii", errors="replace") or None
        return Model(
            path=buf.path,
            file_size=buf.size,
            version=version,
            description=root.string(3, "description") or "",
            has_identifier=has_identifier,
            subgraphs=subgraphs,
            buffers=buffers,
            metadata=metadata,
            signature_defs=self.signatures(root, subgraphs),
            min_runtime_version=runtime,
            _data=buf.data,
        )

    # --- the hot loops of large models (10,000+ tensors, thousands of buffers) ---------------
    #
    # The tables of a vector are read by a `_fast` method that goes through them in one loop
    # (a third of the time of the plain reads): it reads all of a table's fields in one call
    # with the reader of the table before (tables share a few vtables; the first value read,
    # the offset to the vtable, tells whether the guess was right, else the vtable's own
    # reader, built once, reads them) and its vectors with as few calls as it can, checking
    # the table as `Table` would. It stops at the first table with anything unusual and
    # returns those it read; `_tables` then reads that one with the plain method through
    # `Table` (which gives the same record or raises the precise error) and resumes the fast
    # loop after it. Tables are thus read in file order, and the fast loop spends the read
    # budget exactly as the plain reads do.

    def _again(self, pos: int, what: tuple[str, int], parent: Table) -> Table:
        """The table at `pos` that `Table.table_positions` already counted."""
        self.buf.read_budget += 4  # the Table spends it again
        return Table(self.buf, pos, what, parent)

    def _tables(
        self,
        parent: Table,
        slot: int,
        what: str,
        fast: Callable[[int, list[int]], list[_R]],
        plain: Callable[[int, Table], _R],
    ) -> list[_R]:
        """The records of the vector of tables `what` (field `slot` of `parent`): as many as
        `fast(first, positions)` reads at a time, and each table it stops at read by
        `plain(index, table)`. Before the first of those, every table from there on is checked
        as `Table.tables` checks them: a bad one raises the error the plain reads would raise."""
        positions = parent.table_positions(slot, what)
        records: list[_R] = []
        checked = False
        while True:
            records += fast(len(records), positions)
            i = len(records)
            if i == len(positions):
                return records
            if not checked:
                parent.check_tables(positions, i, what)
                checked = True
            records.append(plain(i, self._again(positions[i], (what, i), parent)))

    def buffers(self, root: Table) -> tuple[BufferRef, ...]:
        return tuple(self._tables(root, 4, "buffers", self._buffers_fast, self.buffer))

    def _buffers_fast(self, first: int, positions: list[int]) -> list[BufferRef]:
        """`buffer` of the tables from `first` on, up to the first unusual one (see above):
        the common buffer, its bytes in the file (no external offset and size fields)."""
        data, size, buf = self.data, self.size, self.buf
        readers = self.buffer_readers
        budget = buf.read_budget
        # The reader of the previous table (none yet: the first guess fails), as in
        # `_tensors_fast`: buffers share a vtable or two.
        vt, unpack = None, _I32
        fill = pick = data_off = None
        obj_len = 0
        refs = []
        for i in range(first, len(positions)):
            pos = positions[i]
            try:
                # (the guess only where its table would fit: else the offset to the vtable)
                values = unpack(data, pos) if pos + obj_len <= size else _I32(data, pos)
                if pos - values[0] != vt:
                    vt = pos - values[0]
                    reader = readers.get(vt) or buf.fields_reader(vt, _BUFFER_KINDS)
                    if reader is None or reader[5] or reader[6]:
                        break  # (external data: offset and size fields)
                    unpack, fill, pick, obj_len, data_off = reader[:5]
                    values = unpack(data, pos)
                if pos + obj_len > size:
                    break
                data_at = pick(values + fill)
                if data_at is None:
                    refs.append(_NO_DATA)
                    continue
                start = pos + data_off + data_at + 4
                count = _U32(data, start - 4)[0]
            except struct.error:  # past the end of the file
                break
            if count > size - start or budget < 4 + count:
                break
            budget -= 4 + count
            refs.append(_new(BufferRef, (start, count, False)))
        buf.read_budget = budget
        return refs

    def buffer(self, index: int, t: Table) -> BufferRef:
        vec = t.vector(0, 1, "data")
        offset = int(t.scalar(1, "u64"))
        size = int(t.scalar(2, "u64"))
        if offset > 1:  # data stored outside the flatbuffer (models over 2 GB)
            if offset + size > self.buf.size:
                self.buf.fail(
                    f"corrupt model: external buffer {index} ({size} bytes at offset {offset}) "
                    f"points past the end of the file ({self.buf.size} bytes)"
                )
            return BufferRef(offset, size, external=True)
        if vec is not None:
            return BufferRef(vec[0], vec[1])
        return BufferRef(0, 0)

    def opcodes(self, root: Table) -> list[tuple[str, int, int, str | None]]:
        """(name, builtin code, version, custom code) for each operator code."""
        out = []
        for index, t in enumerate(root.tables(1, "operator_codes")):
            deprecated = int(t.scalar(0, "i8"))
            builtin = int(t.scalar(3, "i32"))
            # Old files only set the deprecated int8 field; new ones set 127 there.
            code = max(deprecated, builtin)
            version = int(t.scalar(2, "i32", 1))
            custom = None
            if code == CUSTOM:
                self.check_custom_code_length(t, index)
                custom = t.string(1, "custom_code")
            if code == CUSTOM:
                name = f"CUSTOM:{custom}" if custom else "CUSTOM"
            else:
                name = operator_name(code)
            out.append((name, code, version, custom))
        return out

    def check_custom_code_length(self, t: Table, index: int) -> None:
        """A custom op's name is a short identifier; a longer one is an offset gone astray
        (into weights or a compiled package), and every op of that code, finding and output
        format would repeat its megabytes."""
        vec = t.vector(1, 1, "custom_code")
        if vec is not None and vec[1] > MAX_CUSTOM_CODE_BYTES:
            self.buf.fail(
                f"corrupt model: the custom op name (custom_code) of operator_codes[{index}] is "
                f"{vec[1]:,} bytes long (at most {MAX_CUSTOM_CODE_BYTES} are read)"
            )

    def subgraph(
        self,
        index: int,
        table: Table,
        opcodes: list[tuple[str, int, int, str | None]],
        buffers: tuple[BufferRef, ...],
    ) -> Subgraph:
        where = f"subgraph {index}"
        tensors = self._tables(
            table,
            0,
            "tensors",
            lambda first, positions: self._tensors_fast(first, positions, buffers),
            lambda i, t: self.tensor(i, t, buffers, where),
        )
        n = len(tensors)
        inputs = self.indices(table.numbers(1, "i", "inputs"), n, f"{where} inputs")
        outputs = self.indices(table.numbers(2, "i", "outputs"), n, f"{where} outputs")
        operators = self._tables(
            table,
            3,
            "operators",
            lambda first, positions: self._operators_fast(first, positions, table, opcodes, n),
            lambda i, t: self.operator(i, t, opcodes, n, where),
        )
        producers: list[int | None] = [None] * n
        consumers: list[list[int]] = [[] for _ in range(n)]
        for i, op in enumerate(operators):
            for tensor in op.inputs:
                if tensor >= 0:
                    readers = consumers[tensor]
                    if not readers or readers[-1] != i:
                        readers.append(i)
            for tensor in op.outputs:
                if tensor >= 0:
                    producers[tensor] = i
        name = table.string(4, "name") or ""
        return Subgraph(
            index=index,
            name=name,
            tensors=tuple(tensors),
            operators=tuple(operators),
            inputs=inputs,
            outputs=outputs,
            producers=tuple(producers),
            consumers=tuple(map(tuple, consumers)),
        )

    def indices(
        self, values: tuple[int, ...], count: int, what: str, optional: bool = False
    ) -> tuple[int, ...]:
        low = -1 if optional else 0
        if values and (min(values) < low or max(values) >= count):
            bad = next(v for v in values if v < low or v >= count)
            self.buf.fail(f"corrupt model: {what} names tensor {bad}, but there are {count}")
        return values

    def _tensors_fast(
        self, first: int, positions: list[int], buffers: tuple[BufferRef, ...]
    ) -> list[Tensor]:
        """`tensor` of the tables from `first` on, up to the first unusual one (see above)."""
        data, size, buf = self.data, self.size, self.buf
        readers, quantization_readers = self.tensor_readers, self.quantization_readers
        dtype_names = self.dtype_names
        n_buffers = len(buffers)
        budget = buf.read_budget
        # The readers of the previous tensor and quantization tables (none yet: the first
        # guesses fail). The first field a reader reads is the table's offset to its vtable,
        # which tells whether the guess was right: the tables of a file share a few vtables.
        vt, unpack = None, _I32
        fill = pick = shape_off = name_off = quant_off = signature_off = None
        obj_len = 0
        qvt, qunpack = None, _I32
        qfill = qpick = qlen = min_off = max_off = scale_off = zero_off = None
        quantizations = self.quantizations
        tensors = []
        for index in range(first, len(positions)):
            pos = positions[index]
            # A length or a vector past the end of the file raises struct.error, caught below:
            # `unpack_from` checks the bounds of each read, so this loop need not.
            try:
                # (the guess only where its table would fit: else the offset to the vtable)
                values = unpack(data, pos) if pos + obj_len <= size else _I32(data, pos)
                if pos - values[0] != vt:
                    vt = pos - values[0]
                    reader = readers.get(vt) or buf.fields_reader(vt, _TENSOR_KINDS)
                    if reader is None:
                        break
                    unpack, fill, pick, obj_len, shape_off, _, _, name_off, quant_off = reader[:9]
                    signature_off = reader[11]
                    values = unpack(data, pos)
                if pos + obj_len > size:
                    break
                shape_at, dtype, buffer, name_at, quant_at, is_variable, signature_at = pick(
                    values + fill
                )
                spent = 0
                shape: tuple[int, ...] = ()
                if shape_at is not None:
                    at = pos + shape_off + shape_at
                    count = _U32(data, at)[0]
                    shape = _INTS[count](data, at + 4)
                    spent = 4 + 4 * count
                    if count > 2 and not _holds(shape):  # two int32 dimensions always fit
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
                    ref = _NO_DATA
                quantization = None
                if quant_at is not None:
                    at = pos + quant_off + quant_at
                    values = qunpack(data, at)  # (guessing its reader, as above)
                    if at - values[0] != qvt:
                        qvt = at - values[0]
                        qreader = quantization_readers.get(qvt) or buf.fields_reader(
                            qvt, _QUANTIZATION_KINDS
                        )
                        if qreader is None:
                            break
                        qunpack, qfill, qpick, qlen, min_off, max_off, scale_off, zero_off = (
                            qreader[:8]
                        )
                        values = qunpack(data, at)
                    if at + qlen > size:
                        break
                    min_at, max_at, scale_at, zero_at, dimension = qpick(values + qfill)
                    spent += 4  # the table
                    scale: tuple[float, ...] = ()
                    if scale_at is not None:
                        # The length and the first element in one read: most tensors have one
                        # scale and one zero point.
                        vec = at + scale_off + scale_at
                        count, element = _COUNT_AND_FLOAT(data, vec)
                        scale = (element,) if count == 1 else _FLOATS[count](data, vec + 4)
                        spent += 4 + 4 * count
                    zero_point: tuple[int, ...] = ()
                    if zero_at is not None:
                        vec = at + zero_off + zero_at
                        count, element = _COUNT_AND_INT64(data, vec)
                        zero_point = (element,) if count == 1 else _INT64S[count](data, vec + 4)
                        spent += 4 + 8 * count
                    low: tuple[float, ...] = ()
                    high: tuple[float, ...] = ()
                    if min_at is not None:  # calibration ranges (older converters)
                        vec = at + min_off + min_at
                        count, element = _COUNT_AND_FLOAT(data, vec)
                        low = (element,) if count == 1 else _FLOATS[count](data, vec + 4)
                        spent += 4 + 4 * count
                    if max_at is not None:
                        vec = at + max_off + max_at
                        count, element = _COUNT_AND_FLOAT(data, vec)
                        high = (element,) if count == 1 else _FLOATS[count](data, vec + 4)
                        spent += 4 + 4 * count
                    if scale or zero_point or dimension or min_off or max_off:
                        parameters = (scale, zero_point, dimension, low, high)
                        quantization = quantizations.get(parameters)
                        if quantization is None:
                            quantization = _new(Quantization, parameters)
                            # (-0.0 == 0.0, but a signed zero must stay as the file has it.)
                            if not (0.0 in scale or 0.0 in low or 0.0 in high):
                                quantizations[parameters] = quantization
                    else:
                        quantization = _NOT_QUANTIZED  # the empty table converters write
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
            tensors.append(
                _new(
                    Tensor,
                    (
                        index,
                        name,
                        dtype_names[dtype],
                        shape,
                        signature,
                        buffer,
                        is_variable,
                        quantization,
                        ref.offset if ref.size else -1,
                        ref.size,
                    ),
                )
            )
        buf.read_budget = budget
        return tensors

    def tensor(self, index: int, t: Table, buffers: tuple[BufferRef, ...], where: str) -> Tensor:
        """One tensor, every field read and checked through `Table`."""
        shape = t.numbers(0, "i", "shape")
        if not _holds(shape):
            self.buf.fail(
                f"corrupt model: tensor {index} of {where} has a shape of {len(shape)} "
                "dimensions with more elements than a tensor can hold"
            )
        signature = t.numbers(7, "i", "shape_signature") if t.has(7) else None
        if signature is None and shape and min(shape) < 0:
            signature = shape  # old converters wrote -1 into the shape itself
        buffer = t.scalar(2, "u32")
        n_buffers = len(buffers)
        if buffer >= n_buffers and n_buffers:
            self.buf.fail(
                f"corrupt model: tensor {index} of {where} uses buffer {buffer}, "
                f"but there are {n_buffers}"
            )
        ref = buffers[buffer] if buffer < n_buffers else _NO_DATA
        q = t.table(4, "quantization")
        dtype = t.scalar(1, "i8")
        return Tensor(
            index,
            t.string(3, "name") or "",
            self.dtype_names[dtype],  # type: ignore[index]
            shape,
            signature,
            buffer,  # type: ignore[arg-type]
            bool(t.scalar(5, "bool")),
            None if q is None else self.quantization(q),
            ref.offset if ref.size else -1,
            ref.size,
        )

    @staticmethod
    def quantization(q: Table) -> Quantization:
        scale = q.numbers(2, "f", "scale")
        zero_point = q.numbers(3, "q", "zero_point")
        dimension = q.scalar(6, "i32")
        has_min, has_max = q.has(0), q.has(1)  # rare: skip two vector reads per tensor
        if not (scale or zero_point or dimension or has_min or has_max):
            return _NOT_QUANTIZED  # the empty table converters write for float tensors
        low = q.numbers(0, "f", "min") if has_min else ()
        high = q.numbers(1, "f", "max") if has_max else ()
        return Quantization(scale, zero_point, dimension, low, high)  # type: ignore[arg-type]

    def _operators_fast(
        self,
        first: int,
        positions: list[int],
        parent: Table,
        opcodes: list[tuple[str, int, int, str | None]],
        n_tensors: int,
    ) -> list[Operator]:
        """`operator` of the tables from `first` on, up to the first unusual one (see above)."""
        data, size, buf = self.data, self.size, self.buf
        readers, options_cache, vtables_seen = (
            self.operator_readers,
            self.options_cache,
            buf.vtables,
        )
        n_opcodes = len(opcodes)
        # The reader of the previous table (guessed, as in `_tensors_fast`).
        vt, unpack = None, _I32
        fill = pick = inputs_off = outputs_off = options_off = custom_off = None
        obj_len = 0
        intermediates_off = None
        operators = []
        for index in range(first, len(positions)):
            pos = positions[index]
            try:
                # (the guess only where its table would fit: else the offset to the vtable)
                values = unpack(data, pos) if pos + obj_len <= size else _I32(data, pos)
                if pos - values[0] != vt:
                    vt = pos - values[0]
                    reader = readers.get(vt) or buf.fields_reader(vt, _OPERATOR_KINDS)
                    if reader is None:
                        break
                    unpack, fill, pick, obj_len, _, inputs_off, outputs_off = reader[:7]
                    options_off, custom_off, intermediates_off = reader[8], reader[9], reader[12]
                    values = unpack(data, pos)
            except struct.error:
                break
            if pos + obj_len > size:
                break
            (
                opcode_index,
                inputs_at,
                outputs_at,
                options_type,
                options_at,
                custom_at,
                intermediates_at,
                large_offset,
                large_size,
            ) = pick(values + fill)
            if opcode_index >= n_opcodes:
                break
            # As in `_tensors_fast`, `unpack_from` checks the bounds of the reads (struct.error).
            try:
                inputs = outputs = intermediates = ()
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
                if intermediates_at is not None:
                    at = pos + intermediates_off + intermediates_at
                    count = _U32(data, at)[0]
                    intermediates = _INTS[count](data, at + 4)
                    if count and (min(intermediates) < -1 or max(intermediates) >= n_tensors):
                        break
                    spent += 4 + 4 * count
                custom_offset, custom_size = -1, 0
                if custom_at is not None:
                    at = pos + custom_off + custom_at
                    custom_size = _U32(data, at)[0]
                    custom_offset = at + 4
                    if custom_size > size - custom_offset:
                        break
                elif large_offset > 1:
                    if large_offset + large_size > size:
                        break
                    custom_offset, custom_size = large_offset, large_size
                if options_at is not None:
                    options_pos = pos + options_off + options_at
                    options_vt = options_pos - _I32(data, options_pos)[0]
            except struct.error:
                break
            # The options are read with the budget spent so far, as `operator` reads them.
            budget = buf.read_budget
            if budget < spent:
                break
            buf.read_budget = budget - spent
            options_name, options = None, _NO_OPTIONS
            if options_at is not None:
                # An options table equal to one decoded before (by its fingerprint) is taken
                # from the cache straight from the bytes; any other is decoded through `Table`.
                layout = vtables_seen.get(options_vt)
                found = None
                if layout is not None and options_pos + layout[1] <= size and buf.read_budget >= 4:
                    inline = bytes(data[options_pos + 4 : options_pos + layout[1]])
                    found = options_cache.get((options_type, options_vt, inline))
                    if found is not None:
                        buf.read_budget -= 4  # as the Table would
                if found is None:
                    table = self._again(pos, ("operators", index), parent)
                    found = self.options(options_type, table.table(4, "builtin_options"))  # type: ignore[arg-type]
                options_name, options = found
            # Custom options count as read, like any vector (large ones have no length word):
            # ops that share one copy cannot make the decoding of compiled models read it
            # again and again.
            charge = custom_size + (4 if custom_at is not None else 0)
            if charge:
                if buf.read_budget < charge:
                    buf.read_budget = budget
                    break
                buf.read_budget -= charge
            operators.append(
                _operator(
                    index,
                    opcodes[opcode_index],
                    (inputs, outputs, intermediates),
                    options_name,
                    options,
                    custom_offset,
                    custom_size,
                )
            )
        return operators

    def operator(
        self,
        index: int,
        t: Table,
        opcodes: list[tuple[str, int, int, str | None]],
        n_tensors: int,
        where: str,
    ) -> Operator:
        what = f"operator {index} of {where}"
        opcode_index = int(t.scalar(0, "u32"))
        if opcode_index >= len(opcodes):
            self.buf.fail(
                f"corrupt model: {what} uses operator code {opcode_index}, "
                f"but there are {len(opcodes)}"
            )
        inputs = self.indices(t.numbers(1, "i", "inputs"), n_tensors, f"{what} inputs", True)
        outputs = self.indices(t.numbers(2, "i", "outputs"), n_tensors, f"{what} outputs", True)
        intermediates = self.indices(
            t.numbers(8, "i", "intermediates"), n_tensors, f"{what} intermediates", True
        )
        options_type, options = None, _NO_OPTIONS
        options_table = t.table(4, "builtin_options")
        if options_table is not None:
            options_type, options = self.options(t.scalar(3, "u8"), options_table)  # type: ignore[arg-type]
        custom_offset, custom_size = -1, 0
        vec = t.vector(5, 1, "custom_options")
        if vec is not None:
            custom_offset, custom_size = vec
        else:
            large_offset = int(t.scalar(9, "u64"))
            large_size = int(t.scalar(10, "u64"))
            if large_offset > 1:
                self.buf.check_range(large_offset, large_size, f"large custom options of {what}")
                self.buf.spend(large_size, f"large custom options of {what}")
                custom_offset, custom_size = large_offset, large_size
        return _operator(
            index,
            opcodes[opcode_index],
            (inputs, outputs, intermediates),
            options_type,
            options,
            custom_offset,
            custom_size,
        )

    def options(
        self, options_type: int, table: Table
    ) -> tuple[str | None, MappingProxyType[str, Any]]:
        """Decode builtin options; equal scalar-only tables (the common case) decode once."""
        key = (options_type, *table.fingerprint())
        cached = self.options_cache.get(key)
        if cached is not None:
            return cached
        name, options = decode_options(options_type, table)
        result = (name, MappingProxyType(options))
        # A present vector (even an empty one) lives elsewhere in the file: equal fingerprints
        # cannot vouch for it, so only tables whose vectors are all absent are cached.
        fields = option_fields(name) if name else None
        if not any(f.vector and table.has(f.slot) for f in fields or ()):
            self.options_cache[key] = result
        return result

    def metadata(self, root: Table, n_buffers: int) -> MappingProxyType[str, int]:
        entries = {}
        for t in root.tables(6, "metadata"):
            name = t.string(0, "name") or ""
            buffer = int(t.scalar(1, "u32"))
            if buffer >= n_buffers:
                self.buf.fail(f"corrupt model: metadata {name!r} uses missing buffer {buffer}")
            entries[name] = buffer
        return MappingProxyType(entries)

    def signatures(self, root: Table, subgraphs: tuple[Subgraph, ...]) -> tuple[SignatureDef, ...]:
        out = []
        for t in root.tables(7, "signature_defs"):
            index = int(t.scalar(4, "u32"))
            if index >= len(subgraphs):
                self.buf.fail(f"corrupt model: signature names missing subgraph {index}")
            n = len(subgraphs[index].tensors)
            maps = []
            for slot, what in ((0, "signature inputs"), (1, "signature outputs")):
                entries = {}
                for m in t.tables(slot, what):
                    tensor = int(m.scalar(1, "u32"))
                    if tensor >= n:
                        self.buf.fail(f"corrupt model: {what} name missing tensor {tensor}")
                    entries[m.string(0, "name") or ""] = tensor
                maps.append(MappingProxyType(entries))
            key = t.string(2, "signature_key") or ""
            out.append(SignatureDef(key, index, maps[0], maps[1]))
        return tuple(out)


def _operator(
    index: int,
    opcode: tuple[str, int, int, str | None],
    tensor_lists: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]],
    options_type: str | None,
    options: MappingProxyType[str, Any],
    custom_offset: int,
    custom_size: int,
) -> Operator:
    """The `Operator` both read paths (fast and checked) build from what they decoded."""
    name, code, version, custom = opcode
    inputs, outputs, intermediates = tensor_lists
    return _new(
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
