"""bytes → verified `Model`. The only code that reads raw TFLite flatbuffers is this package:

- `flatbuf`: the bounds-checked FlatBuffers reads and the read budget;
- `walk`: the walk over a vector of tables, fast where it can and checked where not;
- `tensors`, `operators`, `buffers`: each kind of table, read fast and read checked (and
  `opcodes`, the operator codes);
- this module: the file read whole (up to `READ_WHOLE_BYTES`, 64 MiB: nothing can change it
  under the reader) or mapped (larger ones: a mapped file truncated meanwhile would be SIGBUS,
  see `refuse_mapping`), told apart from files that are no model, and the model and its
  subgraphs put together.

Weight buffers are located (offset, size) but their bytes are not parsed, so a 300 MB model
loads about as fast as a 3 MB one.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from coralcheck.errors import ModelError
from coralcheck.fileio import open_regular
from coralcheck.model import buffers as buffer_reads
from coralcheck.model import opcodes as opcode_reads
from coralcheck.model import operators as operator_reads
from coralcheck.model import tensors as tensor_reads
from coralcheck.model.flatbuf import FlatBuffer, Table
from coralcheck.model.graph import BufferRef, Model, Operator, Subgraph, Tensor
from coralcheck.model.opcodes import (
    CUSTOM,
    MAX_CUSTOM_CODE_BYTES,
    PLACEHOLDER_FOR_GREATER_OP_CODES,
    OpCode,
)
from coralcheck.model.walk import ReadState

__all__ = [
    "CUSTOM",
    "IDENTIFIER",
    "MAX_CUSTOM_CODE_BYTES",
    "PLACEHOLDER_FOR_GREATER_OP_CODES",
    "READ_WHOLE_BYTES",
    "SCHEMA_VERSION",
    "MappingRefused",
    "load",
    "parse",
    "refuse_mapping",
]

SCHEMA_VERSION = 3


# --- the file -----------------------------------------------------------------------------------

IDENTIFIER = b"TFL3"

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

# Files up to this size are read whole; larger ones are mapped (a 200 MB model loads in
# milliseconds: its weights are never touched). A mapped file that someone truncates while it is
# read kills the process with SIGBUS, so the CLI checks the models it maps in worker processes
# (`coralcheck.commands.lint.check_all`); a file that is read cannot change under the reader.
READ_WHOLE_BYTES = 64 << 20
# Which large files may be mapped here: True for any, else the (st_dev, st_ino) of those that
# may (none, in the CLI's own process, but files it holds a read lease on): see `refuse_mapping`.
_MAY_MAP: ContextVar[bool | frozenset[tuple[int, int]]] = ContextVar(
    "coralcheck_may_map", default=True
)


class MappingRefused(ModelError):
    """The file is larger than `READ_WHOLE_BYTES` and mapping it was refused here."""


@contextlib.contextmanager
def refuse_mapping(but: frozenset[tuple[int, int]] = frozenset()) -> Iterator[None]:
    """Within: a file too large to read whole raises `MappingRefused` instead of being mapped
    (the caller checks it in a worker process instead), but for the files in `but`, by their
    (st_dev, st_ino): those nobody can truncate meanwhile (`isolation.leased`). By inode, not by
    name: a file renamed over the leased one meanwhile is refused."""
    token = _MAY_MAP.set(but)
    try:
        yield
    finally:
        _MAY_MAP.reset(token)


def has_identifier(data: Any) -> bool:
    """The file says it is a TFLite flatbuffer ("TFL3" at bytes 4-8)."""
    return bytes(data[4:8]) == IDENTIFIER


def other_format(data: Any) -> str | None:
    """What the file looks like when it is not a model ("a PNG image"), from its first bytes."""
    head = bytes(data[:8])
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            return what
    return None


class ModelField:
    """The fields of table Model (tflite schema.fbs), by vtable slot."""

    VERSION = 0
    OPERATOR_CODES = 1
    SUBGRAPHS = 2
    DESCRIPTION = 3
    BUFFERS = 4
    METADATA = 6
    SIGNATURE_DEFS = 7


class SubGraphField:
    TENSORS = 0
    INPUTS = 1
    OUTPUTS = 2
    OPERATORS = 3
    NAME = 4


def load(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> Model:
    """Read and verify a TFLite model from a path or from bytes. Raises `ModelError`."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source) if isinstance(source, memoryview) else source
        return parse(data, "<bytes>")
    path = os.fspath(source)
    data = read_or_map(path)
    return parse(data, path)


def read_or_map(path: str) -> Any:
    """The bytes of the model file at `path`: a `bytes` read whole, or a read-only mmap."""
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
        may_map = _MAY_MAP.get()
        if may_map is not True and (st.st_dev, st.st_ino) not in may_map:
            raise MappingRefused(path, f"larger than {READ_WHOLE_BYTES} bytes: not mapped here")
        return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except ValueError:  # mmap of a file emptied meanwhile
        raise ModelError(path, "empty file (0 bytes)") from None
    except OSError as e:
        raise ModelError(path, f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def parse(data: Any, path: str) -> Model:
    """Verify and decode a TFLite flatbuffer held in `data` (bytes or mmap)."""
    size = len(data)
    if size < 16:
        raise ModelError(path, f"not a TFLite model: only {size} bytes")
    identified = has_identifier(data)
    try:
        return _Reader(FlatBuffer(data, path)).model(identified)
    except ModelError as e:
        # Schema v1/v2 files had no identifier: say what they are, not "not a TFLite model".
        old_schema = isinstance(e, _SchemaVersionError) and e.version in (1, 2)
        if identified or old_schema:
            raise
        other = other_format(data)
        hint = f"looks like {other}" if other else "no 'TFL3' identifier"
        raise ModelError(path, f"not a TFLite model ({hint})") from e


class _SchemaVersionError(ModelError):
    """A well-formed model root whose schema version is not 3."""

    def __init__(self, path: str, version: int) -> None:
        super().__init__(
            path, f"unsupported TFLite schema version {version} (expected {SCHEMA_VERSION})"
        )
        self.version = version


class _Reader(ReadState):
    """One model's read. Each vector of tables is read by `ReadState.tables` with a fast method
    (`_buffers_fast`, `_tensors_fast`, `_operators_fast`) and a checked one (`buffer`, `tensor`,
    `operator`) of the modules of each table kind."""

    def model(self, identified: bool) -> Model:
        buf, M = self.buf, ModelField
        root = buf.root("model")
        version = int(root.scalar(M.VERSION, "u32"))
        if version != SCHEMA_VERSION:
            raise _SchemaVersionError(buf.path, version)
        buffers = tuple(self.tables(root, M.BUFFERS, "buffers", self._buffers_fast, self.buffer))
        opcodes = opcode_reads.opcodes(self, root)
        subgraph_tables = root.tables(M.SUBGRAPHS, "subgraphs")
        if not subgraph_tables:
            buf.fail("corrupt model: no subgraphs")
        subgraphs = tuple(
            self.subgraph(i, t, opcodes, buffers) for i, t in enumerate(subgraph_tables)
        )
        metadata = buffer_reads.metadata(self, root, len(buffers))
        runtime = None
        if "min_runtime_version" in metadata:
            ref = buffers[metadata["min_runtime_version"]]
            raw = bytes(buf.data[ref.offset : ref.offset + min(ref.size, 64)])
            runtime = raw.split(b"\0", 1)[0].decode("ascii", errors="replace") or None
        return Model(
            path=buf.path,
            file_size=buf.size,
            version=version,
            description=root.string(M.DESCRIPTION, "description") or "",
            has_identifier=identified,
            subgraphs=subgraphs,
            buffers=buffers,
            metadata=metadata,
            signature_defs=buffer_reads.signatures(self, root, subgraphs),
            min_runtime_version=runtime,
            _data=buf.data,
        )

    def subgraph(
        self, index: int, table: Table, opcodes: list[OpCode], buffers: tuple[BufferRef, ...]
    ) -> Subgraph:
        S = SubGraphField
        where = f"subgraph {index}"
        tensors = self.tables(
            table,
            S.TENSORS,
            "tensors",
            lambda first, positions: self._tensors_fast(first, positions, buffers),
            lambda i, t: self.tensor(i, t, buffers, where),
        )
        n = len(tensors)
        indices = operator_reads.indices
        inputs = indices(self, table.numbers(S.INPUTS, "i", "inputs"), n, f"{where} inputs")
        outputs = indices(self, table.numbers(S.OUTPUTS, "i", "outputs"), n, f"{where} outputs")
        operators = self.tables(
            table,
            S.OPERATORS,
            "operators",
            lambda first, positions: self._operators_fast(first, positions, table, opcodes, n),
            lambda i, t: self.operator(i, t, opcodes, n, where),
        )
        producers: list[int | None] = [None] * n
        # Each tensor's readers as a tuple grown by one (most tensors have one or two: no list
        # to make and convert), as a list past a few (a tensor read by 100,000 ops would make
        # the tuples quadratic).
        consumers: list[tuple[int, ...] | list[int]] = [()] * n
        many = []
        for i, op in enumerate(operators):
            for tensor in op.inputs:
                if tensor >= 0:
                    readers = consumers[tensor]
                    if not readers:
                        consumers[tensor] = (i,)
                    elif readers[-1] != i:
                        if type(readers) is list:
                            readers.append(i)
                        elif len(readers) < 16:
                            consumers[tensor] = (*readers, i)
                        else:
                            consumers[tensor] = [*readers, i]
                            many.append(tensor)
            for tensor in op.outputs:
                if tensor >= 0:
                    producers[tensor] = i
        for tensor in many:
            consumers[tensor] = tuple(consumers[tensor])
        return Subgraph(
            index=index,
            name=table.string(S.NAME, "name") or "",
            tensors=tuple(tensors),
            operators=tuple(operators),
            inputs=inputs,
            outputs=outputs,
            producers=tuple(producers),
            consumers=tuple(consumers),  # type: ignore[arg-type]
        )

    # The reads of each table kind (tests/test_fast_paths.py replaces the fast ones by reads of
    # nothing, to compare the two).

    def _buffers_fast(self, first: int, positions: list[int]) -> list[BufferRef]:
        return buffer_reads.fast_buffers(self, first, positions)

    def buffer(self, index: int, t: Table) -> BufferRef:
        return buffer_reads.buffer(self, index, t)

    def _tensors_fast(
        self, first: int, positions: list[int], buffers: tuple[BufferRef, ...]
    ) -> list[Tensor]:
        return tensor_reads.fast_tensors(self, first, positions, buffers)

    def tensor(self, index: int, t: Table, buffers: tuple[BufferRef, ...], where: str) -> Tensor:
        return tensor_reads.tensor(self, index, t, buffers, where)

    def _operators_fast(
        self, first: int, positions: list[int], parent: Table, opcodes: list[OpCode], n: int
    ) -> list[Operator]:
        return operator_reads.fast_operators(self, first, positions, parent, opcodes, n)

    def operator(
        self, index: int, t: Table, opcodes: list[OpCode], n_tensors: int, where: str
    ) -> Operator:
        return operator_reads.operator(self, index, t, opcodes, n_tensors, where)
