"""The immutable model graph every analysis reads: subgraphs, operators, tensors, quantization.

Nothing here holds weight bytes: a tensor knows where its constant data lies in the file and how
large it is; `Model.tensor_data` gives a zero-copy numpy view only when a caller asks.

The records are `NamedTuple`s: a 10,000-tensor model builds tens of thousands of them, and a
NamedTuple is created at import and constructed several times faster than a frozen dataclass.
Being tuples, they compare by value (field by field, as the dataclasses did) and `json.dumps`
would write them as lists. `Model` is a plain class: it compares by identity.
"""

# (No `from __future__ import annotations` here: a NamedTuple compiles each string annotation
# into a ForwardRef when its class is made, 0.3 ms of every run.)
import math
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn

from coralcheck.model.packed import PackedNumbers
from coralcheck.model.schema import DTYPE_BYTES, NUMPY_DTYPES

EDGETPU_CUSTOM_CODE = "edgetpu-custom-op"
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Quantization(NamedTuple):
    """Affine quantization of a tensor: real = scale * (q - zero_point).

    A vector of more than one value (per-channel scales and zero points) is a `PackedNumbers`,
    decoded from the file on first use; it behaves as the tuple of its values."""

    scale: tuple[float, ...] | PackedNumbers
    zero_point: tuple[int, ...] | PackedNumbers
    quantized_dimension: int = 0
    min: tuple[float, ...] | PackedNumbers = ()
    max: tuple[float, ...] | PackedNumbers = ()

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1

    @property
    def is_set(self) -> bool:
        """True when there is at least one scale (converters leave empty tables on float ones)."""
        return bool(self.scale)


class Tensor(NamedTuple):
    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    buffer: int
    is_variable: bool
    quantization: Quantization | None
    data_offset: int = -1  # absolute file offset of constant data, -1 = none
    data_size: int = 0  # bytes of constant data stored in the file

    @property
    def is_constant(self) -> bool:
        """Has data in the file (weights, bias, constant shapes)."""
        return self.data_size > 0

    @property
    def is_dynamic(self) -> bool:
        """Some dimension is unknown until run time (shape_signature -1)."""
        return self.shape_signature is not None and any(d < 0 for d in self.shape_signature)

    @property
    def num_elements(self) -> int:
        return math.prod(self.shape) if self.shape else 1

    @property
    def nbytes(self) -> int:
        """Bytes the tensor occupies at run time (from its static shape)."""
        return int(self.num_elements * DTYPE_BYTES.get(self.dtype, 0))

    @property
    def is_quantized(self) -> bool:
        return self.quantization is not None and self.quantization.is_set


class Operator(NamedTuple):
    index: int
    opcode: str  # builtin name ("CONV_2D"), or "CUSTOM:<custom_code>" for custom ops
    builtin_code: int
    version: int
    inputs: tuple[int, ...]  # -1 marks an omitted optional input
    outputs: tuple[int, ...]
    intermediates: tuple[int, ...] = ()
    custom_code: str | None = None
    options_type: str | None = None
    options: Mapping[str, Any] = _EMPTY
    custom_options_offset: int = -1
    custom_options_size: int = 0

    @property
    def is_custom(self) -> bool:
        return self.custom_code is not None

    @property
    def is_edgetpu(self) -> bool:
        """A compiled Edge TPU segment (the compiler's custom op)."""
        return self.custom_code == EDGETPU_CUSTOM_CODE

    @property
    def log_name(self) -> str:
        """The name the compiler prints in its op table (custom ops are just CUSTOM)."""
        return "CUSTOM" if self.is_custom else self.opcode


class Subgraph(NamedTuple):
    index: int
    name: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    producers: tuple[int | None, ...]  # per tensor: the index of the op that writes it
    consumers: tuple[tuple[int, ...], ...]  # per tensor: ops that read it, in op order

    def op_inputs(self, op: Operator) -> list[Tensor]:
        """The op's present inputs (omitted optional inputs skipped)."""
        return [self.tensors[i] for i in op.inputs if i >= 0]

    def op_outputs(self, op: Operator) -> list[Tensor]:
        return [self.tensors[i] for i in op.outputs if i >= 0]

    def producer_of(self, tensor: int) -> Operator | None:
        p = self.producers[tensor]
        return None if p is None else self.operators[p]

    def consumers_of(self, tensor: int) -> list[Operator]:
        return [self.operators[i] for i in self.consumers[tensor]]

    def predecessors(self, op: Operator) -> list[int]:
        """Indices of the ops whose outputs this op reads."""
        preds = {self.producers[i] for i in op.inputs if i >= 0}
        return sorted(p for p in preds if p is not None)

    def successors(self, op: Operator) -> list[int]:
        succ = {c for i in op.outputs if i >= 0 for c in self.consumers[i]}
        return sorted(succ)


class SignatureDef(NamedTuple):
    key: str
    subgraph_index: int
    inputs: Mapping[str, int]
    outputs: Mapping[str, int]


class BufferRef(NamedTuple):
    """Where a buffer's bytes are: inside the flatbuffer, or external (models over 2 GB)."""

    offset: int
    size: int
    external: bool = False


class Model:
    """A loaded model: read-only after construction, equal only to itself.

    `_data` is the file's bytes (an mmap or bytes) that `read_bytes` and `tensor_data` view.
    """

    __slots__ = (
        "_data",
        "buffers",
        "description",
        "file_size",
        "has_identifier",
        "is_compiled",
        "metadata",
        "min_runtime_version",
        "path",
        "signature_defs",
        "subgraphs",
        "version",
    )

    path: str
    file_size: int
    version: int
    description: str
    has_identifier: bool
    subgraphs: tuple[Subgraph, ...]
    buffers: tuple[BufferRef, ...]
    metadata: Mapping[str, int]  # name -> buffer index
    signature_defs: tuple[SignatureDef, ...]
    min_runtime_version: str | None
    is_compiled: bool  # contains at least one Edge TPU segment (`edgetpu-custom-op`)
    _data: Any

    def __init__(
        self,
        path: str,
        file_size: int,
        version: int,
        description: str,
        has_identifier: bool,
        subgraphs: tuple[Subgraph, ...],
        buffers: tuple[BufferRef, ...],
        metadata: Mapping[str, int],
        signature_defs: tuple[SignatureDef, ...],
        min_runtime_version: str | None,
        _data: Any = None,
    ) -> None:
        init = object.__setattr__  # the class refuses plain assignment
        init(self, "path", path)
        init(self, "file_size", file_size)
        init(self, "version", version)
        init(self, "description", description)
        init(self, "has_identifier", has_identifier)
        init(self, "subgraphs", subgraphs)
        init(self, "buffers", buffers)
        init(self, "metadata", metadata)
        init(self, "signature_defs", signature_defs)
        init(self, "min_runtime_version", min_runtime_version)
        init(self, "_data", _data)
        # Asked by every check (and again by the analysis): one scan of the ops, here.
        compiled = any(op.is_edgetpu for sg in subgraphs for op in sg.operators)
        init(self, "is_compiled", compiled)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"cannot assign to field {name!r}: a Model is read-only")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete field {name!r}: a Model is read-only")

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in (
                "path",
                "file_size",
                "version",
                "description",
                "has_identifier",
                "subgraphs",
                "buffers",
                "metadata",
                "signature_defs",
                "min_runtime_version",
            )
        )
        return f"Model({fields})"

    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    def operators(self) -> Iterator[tuple[Subgraph, Operator]]:
        for sg in self.subgraphs:
            for op in sg.operators:
                yield sg, op

    def read_bytes(self, offset: int, size: int) -> bytes:
        """A copy of `size` bytes at `offset` (the reader checked these ranges)."""
        return bytes(self._data[offset : offset + size])

    def custom_options(self, op: Operator) -> bytes:
        if op.custom_options_offset < 0:
            return b""
        return self.read_bytes(op.custom_options_offset, op.custom_options_size)

    def metadata_bytes(self, name: str) -> bytes | None:
        index = self.metadata.get(name)
        if index is None or index >= len(self.buffers):
            return None
        ref = self.buffers[index]
        return self.read_bytes(ref.offset, ref.size) if ref.size else b""

    def tensor_data(self, tensor: Tensor) -> Any:
        """A read-only, zero-copy numpy view of the tensor's constant data (None if none)."""
        if not tensor.is_constant:
            return None
        import numpy as np

        dtype = NUMPY_DTYPES.get(tensor.dtype)
        if dtype is None:
            return np.frombuffer(self._data, np.uint8, tensor.data_size, tensor.data_offset)
        item = np.dtype(dtype).itemsize
        count = tensor.data_size // item
        view = np.frombuffer(self._data, dtype, count, tensor.data_offset)
        if count == tensor.num_elements:  # shape () is a scalar: a 0-d array, as in TFLite
            view = view.reshape(tensor.shape)
        return view
