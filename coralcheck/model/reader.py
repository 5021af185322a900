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
from coralcheck.model.flatbuf import FlatBuffer, Table
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
_NO_OPTIONS: MappingProxyType[str, Any] = MappingProxyType({})


class _Reader:
    def __init__(self, buf: FlatBuffer) -> None:
        self.buf = buf
        self.dtype_names = tensor_type_names()
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

    def buffers(self, root: Table) -> tuple[BufferRef, ...]:
        refs = []
        for i, t in enumerate(root.tables(4, "buffers")):
            vec = t.vector(0, 1, "data")
            offset = int(t.scalar(1, "u64"))
            size = int(t.scalar(2, "u64"))
            if offset > 1:  # data stored outside the flatbuffer (models over 2 GB)
                if offset + size > self.buf.size:
                    self.buf.fail(
                        f"corrupt model: external buffer {i} ({size} bytes at offset {offset}) "
                        f"points past the end of the file ({self.buf.size} bytes)"
                    )
                refs.append(BufferRef(offset, size, external=True))
            elif vec is not None:
                refs.append(BufferRef(vec[0], vec[1]))
            else:
                refs.append(BufferRef(0, 0))
        return tuple(refs)

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
        tensors = tuple(
            self.tensor(i, t, buffers, where) for i, t in enumerate(table.tables(0, "tensors"))
        )
        n = len(tensors)
        inputs = self.indices(table.numbers(1, "i", "inputs"), n, f"{where} inputs")
        outputs = self.indices(table.numbers(2, "i", "outputs"), n, f"{where} outputs")
        producers: list[int | None] = [None] * n
        consumers: list[list[int]] = [[] for _ in range(n)]
        operators = []
        for i, t in enumerate(table.tables(3, "operators")):
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
            tensors=tensors,
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

    def tensor(self, index: int, t: Table, buffers: tuple[BufferRef, ...], where: str) -> Tensor:
        # The hot loop of large models (10,000+ tensors): positional arguments, no re-checks.
        shape = t.numbers(0, "i", "shape")
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
        name, code, version, custom = opcodes[opcode_index]
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
