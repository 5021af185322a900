"""bytes → verified `Model`. The only module that reads raw TFLite flatbuffers.

The file is mmapped, never read whole: weight buffers are located (offset, size) but their bytes
are not touched, so a 300 MB model loads about as fast as a 3 MB one.
"""

from __future__ import annotations

import mmap
import os
import stat
from types import MappingProxyType
from typing import Any

from coralcheck.errors import ModelError
from coralcheck.model.flatbuf import (
    _I8,
    _I32,
    _U8,
    _U32,
    _U64,
    FlatBuffer,
    Table,
    fingerprint,
    numbers_at,
    span,
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


def _map_file(path: str) -> Any:
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(mode):
            # Opening a FIFO would block until a writer comes; a pipe cannot be mapped anyway.
            raise ModelError(path, "not a regular file (a pipe or device?): save the model first")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise ModelError(path, "empty file (0 bytes)")
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise ModelError(path, "no such file") from None
    except IsADirectoryError:
        raise ModelError(path, "is a directory, not a model file") from None
    except PermissionError:
        raise ModelError(path, "permission denied") from None
    except OSError as e:
        raise ModelError(path, f"cannot read: {e.strerror or e}") from None


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


_NO_DATA = BufferRef(0, 0)
_NOT_QUANTIZED = Quantization((), ())
# TFLite sizes tensors in 64-bit bytes and rejects larger ones; a corrupt shape beyond that
# would give sizes and MAC counts no float can hold (and math.prod of 100,000 huge dims takes
# minutes).
_MOST_ELEMENTS = 2**63
_NO_OPTIONS: MappingProxyType[str, Any] = MappingProxyType({})

# Bytes of each field the reader reads, by vtable slot (0: not read), for the fast paths.
# Tensor: shape, type, buffer, name, quantization, is_variable, (sparsity), shape_signature.
_TENSOR_FIELDS = (4, 1, 4, 4, 4, 1, 0, 4)
# QuantizationParameters: min, max, scale, zero_point, (details_type, details), quantized_dimension.
_QUANTIZATION_FIELDS = (4, 4, 4, 4, 0, 0, 4)
# Buffer: data, offset, size.
_BUFFER_FIELDS = (4, 8, 8)
# Operator: opcode_index, inputs, outputs, builtin_options_type, builtin_options, custom_options,
# (custom_options_format, mutating_variable_inputs), intermediates, large custom options offset
# and size.
_OPERATOR_FIELDS = (4, 4, 4, 1, 4, 4, 0, 0, 4, 8, 8)


def _holds(shape: tuple[int, ...]) -> bool:
    """A tensor of `shape` has fewer than 2^63 elements (the product is checked dimension by
    dimension: it stops at the first one out of range)."""
    elements = 1
    for d in shape:
        elements *= d
        if not -_MOST_ELEMENTS < elements < _MOST_ELEMENTS:
            return False
    return True


class _Reader:
    def __init__(self, buf: FlatBuffer) -> None:
        self.buf = buf
        self.data, self.size = buf.data, buf.size
        self.dtype_names = tensor_type_names()
        # Where each vtable puts the fields the fast paths read (FlatBuffer.field_offsets).
        self.tensor_fields = buf.field_table(_TENSOR_FIELDS)
        self.quantization_fields = buf.field_table(_QUANTIZATION_FIELDS)
        self.options_cache: dict[tuple[int, bytes], tuple[str | None, MappingProxyType]] = {}

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
    # A table is read by a `_fast` method that takes the field offsets from its (shared, once
    # checked) vtable and reads the fields with as few calls as it can, giving up (None) at
    # anything unusual; only a table it gave up on is read again by the plain method through
    # `Table`, which gives the same object or raises the precise error. The fast path spends the
    # read budget exactly as the plain one does.

    def _again(self, pos: int, what: tuple[str, int], parent: Table) -> Table:
        """The table at `pos` that `Table.table_positions` already checked and counted."""
        self.buf.read_budget += 4  # the Table spends it again
        return Table(self.buf, pos, what, parent)

    def buffers(self, root: Table) -> tuple[BufferRef, ...]:
        refs = []
        for i, pos in enumerate(root.table_positions(4, "buffers")):
            ref = self._buffer_fast(pos)
            refs.append(ref or self.buffer(i, self._again(pos, ("buffers", i), root)))
        return tuple(refs)

    def _buffer_fast(self, pos: int) -> BufferRef | None:
        data, size = self.data, self.size
        fields = self.buf.field_offsets(pos - _I32(data, pos)[0], _BUFFER_FIELDS)
        if fields is None:
            return None
        data_at, offset_at, size_at = fields
        offset = _U64(data, pos + offset_at)[0] if offset_at else 0
        length = _U64(data, pos + size_at)[0] if size_at else 0
        vec = span(data, size, pos + data_at, 1) if data_at else None
        if (data_at and vec is None) or (offset > 1 and offset + length > size):
            return None
        spent = 4 + vec[1] if vec is not None else 0
        if self.buf.read_budget < spent:
            return None
        self.buf.read_budget -= spent
        if offset > 1:
            return BufferRef(offset, length, external=True)
        return BufferRef(vec[0], vec[1]) if vec is not None else _NO_DATA

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
        for t in root.tables(1, "operator_codes"):
            deprecated = int(t.scalar(0, "i8"))
            builtin = int(t.scalar(3, "i32"))
            # Old files only set the deprecated int8 field; new ones set 127 there.
            code = max(deprecated, builtin)
            version = int(t.scalar(2, "i32", 1))
            custom = t.string(1, "custom_code") if code == CUSTOM else None
            if code == CUSTOM:
                name = f"CUSTOM:{custom}" if custom else "CUSTOM"
            else:
                name = operator_name(code)
            out.append((name, code, version, custom))
        return out

    def subgraph(
        self,
        index: int,
        table: Table,
        opcodes: list[tuple[str, int, int, str | None]],
        buffers: tuple[BufferRef, ...],
    ) -> Subgraph:
        where = f"subgraph {index}"
        tensors = []
        for i, pos in enumerate(table.table_positions(0, "tensors")):
            budget = self.buf.read_budget
            tensor = self._tensor_fast(i, pos, buffers)
            if tensor is None:
                self.buf.read_budget = budget
                tensor = self.tensor(i, self._again(pos, ("tensors", i), table), buffers, where)
            tensors.append(tensor)
        n = len(tensors)
        inputs = self.indices(table.numbers(1, "i", "inputs"), n, f"{where} inputs")
        outputs = self.indices(table.numbers(2, "i", "outputs"), n, f"{where} outputs")
        producers: list[int | None] = [None] * n
        consumers: list[list[int]] = [[] for _ in range(n)]
        operators = []
        for i, t in enumerate(table.tables(3, "operators")):
            budget = self.buf.read_budget
            op = self._operator_fast(i, t, opcodes, n)
            if op is None:
                self.buf.read_budget = budget
                op = self.operator(i, t, opcodes, n, where)
            for tensor in op.inputs:
                if tensor >= 0 and (not consumers[tensor] or consumers[tensor][-1] != i):
                    consumers[tensor].append(i)
            for tensor in op.outputs:
                if tensor >= 0:
                    producers[tensor] = i
            operators.append(op)
        name = table.string(4, "name") or ""
        return Subgraph(
            index=index,
            name=name,
            tensors=tuple(tensors),
            operators=tuple(operators),
            inputs=inputs,
            outputs=outputs,
            producers=tuple(producers),
            consumers=tuple(tuple(c) for c in consumers),
        )

    def indices(
        self, values: tuple[int, ...], count: int, what: str, optional: bool = False
    ) -> tuple[int, ...]:
        low = -1 if optional else 0
        if values and (min(values) < low or max(values) >= count):
            bad = next(v for v in values if v < low or v >= count)
            self.buf.fail(f"corrupt model: {what} names tensor {bad}, but there are {count}")
        return values

    def _tensor_fast(self, index: int, pos: int, buffers: tuple[BufferRef, ...]) -> Tensor | None:
        """`tensor`, for a well-formed tensor table at `pos` (None: read it with `tensor`)."""
        data, size = self.data, self.size
        vt = pos - _I32(data, pos)[0]
        fields = self.tensor_fields.get(vt) or self.buf.field_offsets(vt, _TENSOR_FIELDS)
        if fields is None:
            return None
        shape_at, type_at, buffer_at, name_at, quant_at, variable_at, _, signature_at = fields
        spent = 0
        shape: tuple[int, ...] = ()
        if shape_at:
            vec = span(data, size, pos + shape_at, 4)
            if vec is None:
                return None
            shape = numbers_at(data, "i", *vec)
            spent += 4 + 4 * vec[1]
            if len(shape) > 2 and not _holds(shape):  # two int32 dimensions always fit
                return None
        signature = None
        if signature_at:
            vec = span(data, size, pos + signature_at, 4)
            if vec is None:
                return None
            signature = numbers_at(data, "i", *vec)
            spent += 4 + 4 * vec[1]
        elif shape and min(shape) < 0:
            signature = shape  # old converters wrote -1 into the shape itself
        buffer = _U32(data, pos + buffer_at)[0] if buffer_at else 0
        n_buffers = len(buffers)
        if buffer >= n_buffers and n_buffers:
            return None
        ref = buffers[buffer] if buffer < n_buffers else _NO_DATA
        quantization = None
        if quant_at:
            at = pos + quant_at
            found = self._quantization_fast(at + _U32(data, at)[0])
            if found is None:
                return None
            quantization, quant_spent = found
            spent += quant_spent
        name = ""
        if name_at:
            vec = span(data, size, pos + name_at, 1)
            if vec is None:
                return None
            start, length = vec
            name = str(data[start : start + length], "utf-8", "replace")
            spent += 4 + length
        if self.buf.read_budget < spent:
            return None
        self.buf.read_budget -= spent
        dtype = _I8(data, pos + type_at)[0] if type_at else 0
        return Tensor(
            index,
            name,
            self.dtype_names.get(dtype) or tensor_type_name(dtype),  # type: ignore[arg-type]
            shape,
            signature,
            buffer,
            bool(_U8(data, pos + variable_at)[0]) if variable_at else False,
            quantization,
            ref.offset if ref.size else -1,
            ref.size,
        )

    def _quantization_fast(self, pos: int) -> tuple[Quantization, int] | None:
        """`quantization` of the table at `pos` and the bytes it reads, or None (see above)."""
        data, size = self.data, self.size
        if pos + 4 > size:
            return None
        vt = pos - _I32(data, pos)[0]
        layout = self.buf.vtables.get(vt) or self.buf.vtable(vt)
        if layout is None or pos + layout[1] > size:
            return None
        fields = self.quantization_fields.get(vt) or self.buf.field_offsets(
            vt, _QUANTIZATION_FIELDS
        )
        if fields is None:
            return None
        min_at, max_at, scale_at, zero_at, _, _, dimension_at = fields
        if min_at or max_at:
            return None  # rare (calibration ranges): left to `quantization`
        spent = 4  # the table
        scale: tuple[float, ...] = ()
        if scale_at:
            vec = span(data, size, pos + scale_at, 4)
            if vec is None:
                return None
            scale = numbers_at(data, "f", *vec)
            spent += 4 + 4 * vec[1]
        zero_point: tuple[int, ...] = ()
        if zero_at:
            vec = span(data, size, pos + zero_at, 8)
            if vec is None:
                return None
            zero_point = numbers_at(data, "q", *vec)
            spent += 4 + 8 * vec[1]
        dimension = _I32(data, pos + dimension_at)[0] if dimension_at else 0
        if not (scale or zero_point or dimension):
            return _NOT_QUANTIZED, spent  # the empty table converters write for float tensors
        return Quantization(scale, zero_point, dimension), spent

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
            self.dtype_names.get(dtype) or tensor_type_name(dtype),  # type: ignore[arg-type]
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

    def _operator_fast(
        self, index: int, t: Table, opcodes: list[tuple[str, int, int, str | None]], n_tensors: int
    ) -> Operator | None:
        """`operator`, for a well-formed operator table (None: read it with `operator`)."""
        buf = self.buf
        data = buf.data
        fields = t.field_offsets(_OPERATOR_FIELDS)
        if fields is None:
            return None
        code_at, inputs_at, outputs_at, options_type_at, options_at, custom_at, _, _, *rest = fields
        intermediates_at, large_offset_at, large_size_at = rest
        opcode_index = _U32(data, t.pos + code_at)[0] if code_at else 0
        if opcode_index >= len(opcodes):
            return None
        spent = 0
        tensor_lists = []
        for at in (inputs_at, outputs_at, intermediates_at):
            values: tuple[int, ...] = ()
            if at:
                vec = span(data, self.size, t.pos + at, 4)
                if vec is None:
                    return None
                values = numbers_at(data, "i", *vec)
                spent += 4 + 4 * vec[1]
                if values and (min(values) < -1 or max(values) >= n_tensors):
                    return None
            tensor_lists.append(values)
        # The options are read through `Table` (they are decoded once per distinct table), with
        # the budget spent so far, as `operator` reads them.
        if buf.read_budget < spent:
            return None
        buf.read_budget -= spent
        options_type, options = None, _NO_OPTIONS
        if options_at:
            options_type, options = self._options_fast(t, options_at, options_type_at)
        custom_offset, custom_size = -1, 0
        if custom_at:
            vec = span(data, self.size, t.pos + custom_at, 1)
            if vec is None or buf.read_budget < 4 + vec[1]:
                return None
            buf.read_budget -= 4 + vec[1]
            custom_offset, custom_size = vec
        else:
            large_offset = _U64(data, t.pos + large_offset_at)[0] if large_offset_at else 0
            large_size = _U64(data, t.pos + large_size_at)[0] if large_size_at else 0
            if large_offset > 1:
                if large_offset + large_size > buf.size:
                    return None
                custom_offset, custom_size = large_offset, large_size
        return _operator(
            index,
            opcodes[opcode_index],
            tensor_lists,
            options_type,
            options,
            custom_offset,
            custom_size,
        )

    def _options_fast(
        self, t: Table, options_at: int, options_type_at: int
    ) -> tuple[str | None, MappingProxyType[str, Any]]:
        """`options` of operator table `t`: a table seen before (by its fingerprint) is taken
        from the cache straight from the bytes; any other is read through `Table`."""
        data, size = self.data, self.size
        at = t.pos + options_at
        pos = at + _U32(data, at)[0]
        options_type = _U8(data, t.pos + options_type_at)[0] if options_type_at else 0
        vt = pos - _I32(data, pos)[0] if pos + 4 <= size else -1
        layout = self.buf.vtables.get(vt)
        if layout is not None and pos + layout[1] <= size and self.buf.read_budget >= 4:
            cached = self.options_cache.get((options_type, fingerprint(data, pos, vt, layout[1])))
            if cached is not None:
                self.buf.read_budget -= 4  # as the Table would
                return cached
        return self.options(options_type, t.table(4, "builtin_options"))  # type: ignore[arg-type]

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
        key = (options_type, table.fingerprint())
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
    return Operator(
        index=index,
        opcode=name,
        builtin_code=code,
        version=version,
        inputs=inputs,
        outputs=outputs,
        intermediates=intermediates,
        custom_code=custom,
        options_type=options_type,
        options=options,
        custom_options_offset=custom_offset,
        custom_options_size=custom_size,
    )
