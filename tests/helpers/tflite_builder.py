"""Build TFLite models byte by byte, and corrupt them, for tests.

Converters only emit well-formed, current models. Tests also need what no converter writes:
unknown op codes, rank-6 tensors, empty or several subgraphs, external buffers, models without
the `TFL3` identifier, old schema versions, and damaged files. This module writes them with
`flatbuffers.Builder` and the `tflite` binding's generated builder functions (`tflite.TensorStart`,
`tflite.TensorAddShape`, ...), so the bytes are what the real schema says, not what coralcheck's
reader expects.

Building (tests/conftest.py puts tests/ on sys.path, so tests import `helpers.tflite_builder`)::

    from helpers.tflite_builder import OpSpec, TensorSpec, build_model

    data = build_model(
        tensors=[
            TensorSpec("x", [1, 4], "INT8", scale=[0.5], zero_point=[-1]),
            TensorSpec("w", [2, 4], data=np.ones((2, 4), np.int8), scale=[0.1], zero_point=[0]),
            TensorSpec("y", [1, 2], "INT8", scale=[0.25], zero_point=[0]),
        ],
        ops=[OpSpec("FULLY_CONNECTED", [0, 1, -1], [2], {"fused_activation_function": "RELU"})],
        inputs=[0],
        outputs=[2],
    )

Corrupting: `locate(data, "subgraphs[0].operators[0].inputs")` finds where a field lives, and
`patch`, `patch_field` and `truncate` return damaged copies.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np
import tflite

IDENTIFIER = b"TFL3"
CUSTOM = 32
PLACEHOLDER_FOR_GREATER_OP_CODES = 127

# Option tables whose name is not the CamelCase of the operator name (None: the op has none).
_OPTIONS_TYPE_OVERRIDES = {
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "L2_POOL_2D": "Pool2DOptions",
    "MEAN": "ReducerOptions",
    "SUM": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions",
    "REDUCE_MIN": "ReducerOptions",
    "REDUCE_PROD": "ReducerOptions",
    "REDUCE_ANY": "ReducerOptions",
    "LOGISTIC": None,
    "RELU": None,
    "RELU6": None,
    "TANH": None,
}

# Option fields given as names rather than numbers, and the binding enum that numbers them.
_OPTION_ENUMS = {
    "fused_activation_function": tflite.ActivationFunctionType,
    "padding": tflite.Padding,
    "weights_format": tflite.FullyConnectedOptionsWeightsFormat,
}


def _enum_value(enum_class: type, name: str) -> int:
    value = getattr(enum_class, name, None)
    if not isinstance(value, int):
        raise ValueError(f"{name!r} is not a {enum_class.__name__}")
    return value


def builtin_code(name: str) -> int:
    """The BuiltinOperator number of an op name ("CONV_2D" -> 3)."""
    return _enum_value(tflite.BuiltinOperator, name)


def tensor_type_code(name: str) -> int:
    """The TensorType number of a dtype name ("INT8" -> 9)."""
    return _enum_value(tflite.TensorType, name)


_NUMPY_TO_TFLITE = {
    "float32": "FLOAT32",
    "float16": "FLOAT16",
    "float64": "FLOAT64",
    "int32": "INT32",
    "int64": "INT64",
    "int16": "INT16",
    "int8": "INT8",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "bool": "BOOL",
    "complex64": "COMPLEX64",
}


@dataclass
class TensorSpec:
    """One tensor. `data` (bytes or an array) makes it a constant with its own buffer.

    `dtype` is a TensorType name or number; it and `shape` default to the array's. `scale=None`
    writes no quantization table; `scale=()` writes an empty one, as converters do for floats.
    `buffer` forces a raw buffer index (see `build_model` for the numbering); `shape=None` with
    no data omits the shape field entirely.
    """

    name: str = ""
    shape: Sequence[int] | None = None
    dtype: str | int | None = None
    data: bytes | np.ndarray | None = None
    buffer: int | None = None
    shape_signature: Sequence[int] | None = None
    scale: Sequence[float] | None = None
    zero_point: Sequence[int] | None = None
    quantized_dimension: int = 0
    min: Sequence[float] | None = None
    max: Sequence[float] | None = None
    is_variable: bool = False

    def type_code(self) -> int:
        dtype = self.dtype
        if dtype is None:
            dtype = (
                _NUMPY_TO_TFLITE[np.asarray(self.data).dtype.name]
                if isinstance(self.data, np.ndarray)
                else "FLOAT32"
            )
        return dtype if isinstance(dtype, int) else tensor_type_code(dtype)

    def shape_or_none(self) -> Sequence[int] | None:
        if self.shape is None and isinstance(self.data, np.ndarray):
            return self.data.shape
        return self.shape

    def data_bytes(self) -> bytes | None:
        if self.data is None:
            return None
        if isinstance(self.data, np.ndarray):
            return (
                np.ascontiguousarray(self.data).astype(self.data.dtype.newbyteorder("<")).tobytes()
            )
        return bytes(self.data)


@dataclass(frozen=True)
class OpCode:
    """One entry of the model's operator_codes, field by field.

    `None` leaves a field out of the file. `OpCode.of(code)` writes what current converters
    write: `deprecated_builtin_code = min(code, 127)` (127 is the placeholder for newer ops)
    and `builtin_code = code`.
    """

    builtin_code: int | None = None
    deprecated_builtin_code: int | None = None
    custom_code: str | None = None
    version: int | None = 1

    @classmethod
    def of(cls, code: int, version: int = 1, custom_code: str | None = None) -> OpCode:
        return cls(code, min(code, PLACEHOLDER_FOR_GREATER_OP_CODES), custom_code, version)


@dataclass
class OpSpec:
    """One operator.

    `opcode`: a builtin name ("ADD"), a number (250 for an op newer than any schema), a
    custom op as "CUSTOM:<custom_code>", or an explicit `OpCode`. `options` are the builtin
    options as snake_case schema field names; enum fields (fused_activation_function,
    padding, weights_format) take names or numbers; vector fields take sequences (int32).
    `options_type` names the options table when it is not the CamelCase of the op name
    (pools and reducers are known). `opcode_index` forces a raw index into operator_codes.
    `large_custom_options_offset/size` point at custom options outside the flatbuffer (as
    converters write them for models over 2 GB); 0 leaves them out.
    """

    opcode: str | int | OpCode
    inputs: Sequence[int] = ()
    outputs: Sequence[int] = ()
    options: Mapping[str, Any] | None = None
    options_type: str | None = None
    custom_options: bytes | None = None
    version: int = 1
    intermediates: Sequence[int] | None = None
    opcode_index: int | None = None
    large_custom_options_offset: int = 0
    large_custom_options_size: int = 0

    def op_code(self) -> OpCode:
        if isinstance(self.opcode, OpCode):
            return self.opcode
        if isinstance(self.opcode, int):
            return OpCode.of(self.opcode, self.version)
        if self.opcode.startswith("CUSTOM:"):
            return OpCode.of(CUSTOM, self.version, self.opcode.removeprefix("CUSTOM:"))
        return OpCode.of(builtin_code(self.opcode), self.version)

    def options_table_name(self) -> str | None:
        if self.options_type is not None:
            return self.options_type
        if not isinstance(self.opcode, str):
            raise ValueError("options on a numeric or explicit opcode need options_type=")
        if self.opcode in _OPTIONS_TYPE_OVERRIDES:
            return _OPTIONS_TYPE_OVERRIDES[self.opcode]
        return "".join(p.capitalize() for p in self.opcode.split("_")) + "Options"


@dataclass
class SubgraphSpec:
    """One subgraph: tensors, operators (tensor indices into `tensors`), inputs, outputs."""

    tensors: Sequence[TensorSpec] = ()
    ops: Sequence[OpSpec] = ()
    inputs: Sequence[int] = ()
    outputs: Sequence[int] = ()
    name: str = ""


@dataclass
class SignatureSpec:
    """One signature def: names mapped to tensor indices of subgraph `subgraph`."""

    key: str
    inputs: Mapping[str, int] = field(default_factory=dict)
    outputs: Mapping[str, int] = field(default_factory=dict)
    subgraph: int = 0


@dataclass
class RawBuffer:
    """A Buffer table written field by field (for external or corrupt buffers).

    `data=None` writes no data vector; `offset`/`size` are written as given (0 = absent).
    """

    data: bytes | None = None
    offset: int = 0
    size: int = 0


def min_runtime_version_bytes(version: str) -> bytes:
    """The metadata value converters write: the version string NUL-padded to 16 bytes."""
    raw = version.encode("ascii")
    return raw + b"\0" * max(16 - len(raw), 0)


# --- building ---------------------------------------------------------------------------


def _numbers(builder: flatbuffers.Builder, values: Sequence[float], dtype: str = "<i4") -> int:
    """A vector of scalars (numpy dtype string; int32 by default)."""
    return builder.CreateNumpyVector(np.asarray(list(values), dtype=dtype))


def _bytes_vector(builder: flatbuffers.Builder, data: bytes, alignment: int) -> int:
    """A [ubyte] vector whose first byte is `alignment`-aligned in the file (as converters do)."""
    builder.StartVector(1, len(data), alignment)
    builder.head -= len(data)
    builder.Bytes[builder.head : builder.head + len(data)] = data
    return builder.EndVector()


def _option_value(name: str, value: Any) -> Any:
    if isinstance(value, str):
        enum_class = _OPTION_ENUMS.get(name)
        if enum_class is None:
            raise ValueError(f"option {name!r} does not take a name ({value!r})")
        return _enum_value(enum_class, value)
    return value


def _camel(snake: str) -> str:
    return "".join(p.capitalize() for p in snake.split("_"))


def _write_options(builder: flatbuffers.Builder, table: str, options: Mapping[str, Any]) -> int:
    def fn(suffix: str) -> Any:
        func = getattr(tflite, f"{table}{suffix}", None)
        if func is None:
            raise ValueError(f"the tflite binding has no {table}{suffix} (unknown option?)")
        return func

    vectors = {}
    for name, value in options.items():
        if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
            fn(f"Start{_camel(name)}Vector")  # the field must be a vector
            arr = value if isinstance(value, np.ndarray) else np.asarray(value, dtype="<i4")
            vectors[name] = builder.CreateNumpyVector(arr)
    fn("Start")(builder)
    for name, value in options.items():
        add = fn(f"Add{_camel(name)}")
        add(builder, vectors[name] if name in vectors else _option_value(name, value))
    return fn("End")(builder)


class _ModelWriter:
    """Writes one model. Buffer numbering: 0 empty, then `buffers`, then constants, metadata."""

    def __init__(self, initial_size: int, alignment: int) -> None:
        self.b = flatbuffers.Builder(initial_size)
        self.alignment = alignment

    def buffer(self, spec: RawBuffer) -> int:
        b = self.b
        data = None if spec.data is None else _bytes_vector(b, spec.data, self.alignment)
        tflite.BufferStart(b)
        if data is not None:
            tflite.BufferAddData(b, data)
        if spec.offset:
            tflite.BufferAddOffset(b, spec.offset)
        if spec.size:
            tflite.BufferAddSize(b, spec.size)
        return tflite.BufferEnd(b)

    def tensor(self, t: TensorSpec, buffer: int) -> int:
        b = self.b
        name = b.CreateString(t.name)
        shape_values = t.shape_or_none()
        shape = None if shape_values is None else _numbers(b, shape_values)
        signature = None if t.shape_signature is None else _numbers(b, t.shape_signature)
        quant = None
        if t.scale is not None or t.zero_point is not None or t.min is not None:
            vecs = {
                "min": None if t.min is None else _numbers(b, t.min, "<f4"),
                "max": None if t.max is None else _numbers(b, t.max, "<f4"),
                "scale": None if t.scale is None else _numbers(b, t.scale, "<f4"),
                "zero_point": None if t.zero_point is None else _numbers(b, t.zero_point, "<i8"),
            }
            tflite.QuantizationParametersStart(b)
            for key, add in (
                ("min", tflite.QuantizationParametersAddMin),
                ("max", tflite.QuantizationParametersAddMax),
                ("scale", tflite.QuantizationParametersAddScale),
                ("zero_point", tflite.QuantizationParametersAddZeroPoint),
            ):
                if vecs[key] is not None:
                    add(b, vecs[key])
            tflite.QuantizationParametersAddQuantizedDimension(b, t.quantized_dimension)
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        if shape is not None:
            tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, t.type_code())
        tflite.TensorAddBuffer(b, buffer)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        if t.is_variable:
            tflite.TensorAddIsVariable(b, True)
        if signature is not None:
            tflite.TensorAddShapeSignature(b, signature)
        return tflite.TensorEnd(b)

    def operator(self, op: OpSpec, opcode_index: int) -> int:
        b = self.b
        inputs = _numbers(b, op.inputs)
        outputs = _numbers(b, op.outputs)
        intermediates = None if op.intermediates is None else _numbers(b, op.intermediates)
        custom = None if op.custom_options is None else b.CreateByteVector(op.custom_options)
        options, options_type = None, 0
        if op.options is not None:
            table = op.options_table_name()
            if table is None:
                raise ValueError(f"{op.opcode} has no builtin options table")
            options_type = _enum_value(tflite.BuiltinOptions, table)
            options = _write_options(b, table, op.options)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, opcode_index)
        tflite.OperatorAddInputs(b, inputs)
        tflite.OperatorAddOutputs(b, outputs)
        if options is not None:
            tflite.OperatorAddBuiltinOptionsType(b, options_type)
            tflite.OperatorAddBuiltinOptions(b, options)
        if custom is not None:
            tflite.OperatorAddCustomOptions(b, custom)
        if intermediates is not None:
            tflite.OperatorAddIntermediates(b, intermediates)
        if op.large_custom_options_offset:
            tflite.OperatorAddLargeCustomOptionsOffset(b, op.large_custom_options_offset)
        if op.large_custom_options_size:
            tflite.OperatorAddLargeCustomOptionsSize(b, op.large_custom_options_size)
        return tflite.OperatorEnd(b)

    def operator_code(self, code: OpCode) -> int:
        b = self.b
        custom = None if code.custom_code is None else b.CreateString(code.custom_code)
        tflite.OperatorCodeStart(b)
        if code.deprecated_builtin_code is not None:
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, code.deprecated_builtin_code)
        if custom is not None:
            tflite.OperatorCodeAddCustomCode(b, custom)
        if code.version is not None:
            tflite.OperatorCodeAddVersion(b, code.version)
        if code.builtin_code is not None:
            tflite.OperatorCodeAddBuiltinCode(b, code.builtin_code)
        return tflite.OperatorCodeEnd(b)

    def subgraph(self, sg: SubgraphSpec, buffers: list[int], opcodes: dict[OpCode, int]) -> int:
        b = self.b
        tensors = [self.tensor(t, buf) for t, buf in zip(sg.tensors, buffers, strict=True)]
        ops = [
            self.operator(op, op.opcode_index if op.opcode_index is not None else opcodes[code])
            for op in sg.ops
            for code in [op.op_code()]
        ]
        tensor_vec = self.table_vector(tflite.SubGraphStartTensorsVector, tensors)
        ops_vec = self.table_vector(tflite.SubGraphStartOperatorsVector, ops)
        inputs = _numbers(b, sg.inputs)
        outputs = _numbers(b, sg.outputs)
        name = b.CreateString(sg.name)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensor_vec)
        tflite.SubGraphAddInputs(b, inputs)
        tflite.SubGraphAddOutputs(b, outputs)
        tflite.SubGraphAddOperators(b, ops_vec)
        tflite.SubGraphAddName(b, name)
        return tflite.SubGraphEnd(b)

    def signature(self, sig: SignatureSpec) -> int:
        b = self.b
        maps = []
        for entries in (sig.inputs, sig.outputs):
            tables = []
            for name, index in entries.items():
                text = b.CreateString(name)
                tflite.TensorMapStart(b)
                tflite.TensorMapAddName(b, text)
                tflite.TensorMapAddTensorIndex(b, index)
                tables.append(tflite.TensorMapEnd(b))
            maps.append(self.table_vector(tflite.SignatureDefStartInputsVector, tables))
        key = b.CreateString(sig.key)
        tflite.SignatureDefStart(b)
        tflite.SignatureDefAddInputs(b, maps[0])
        tflite.SignatureDefAddOutputs(b, maps[1])
        tflite.SignatureDefAddSignatureKey(b, key)
        tflite.SignatureDefAddSubgraphIndex(b, sig.subgraph)
        return tflite.SignatureDefEnd(b)

    def metadata(self, name: str, buffer: int) -> int:
        b = self.b
        text = b.CreateString(name)
        tflite.MetadataStart(b)
        tflite.MetadataAddName(b, text)
        tflite.MetadataAddBuffer(b, buffer)
        return tflite.MetadataEnd(b)

    def table_vector(self, start: Any, offsets: Sequence[int]) -> int:
        start(self.b, len(offsets))
        for off in reversed(offsets):
            self.b.PrependUOffsetTRelative(off)
        return self.b.EndVector()


def _align(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def build_model(
    tensors: Sequence[TensorSpec] = (),
    ops: Sequence[OpSpec] = (),
    inputs: Sequence[int] = (),
    outputs: Sequence[int] = (),
    *,
    name: str = "main",
    subgraphs: Sequence[SubgraphSpec] | None = None,
    buffers: Sequence[bytes | RawBuffer] = (),
    metadata: Mapping[str, bytes] | None = None,
    min_runtime_version: str | None = None,
    signature_defs: Sequence[SignatureSpec] = (),
    operator_codes: Sequence[OpCode] = (),
    external_buffers: bool = False,
    version: int = 3,
    identifier: bytes | None = IDENTIFIER,
    description: str = "coralcheck tests/tflite_builder.py",
    alignment: int = 16,
) -> bytes:
    """A TFLite model file as bytes.

    One subgraph from `tensors`/`ops`/`inputs`/`outputs` (named `name`), or several from
    `subgraphs` (`subgraphs=[]` writes an empty subgraph vector).

    Buffers are numbered: 0 = the empty sentinel every converter writes, then `buffers` in
    order (from 1; for tensors that use `TensorSpec(buffer=...)`), then one per constant
    tensor (in subgraph and tensor order), then one per metadata entry. `operator_codes`
    are written first (indices 0..), before the codes the ops need.

    `external_buffers=True` stores every non-empty buffer after the flatbuffer (Buffer.offset
    and size, as converters do for models over 2 GB), each `alignment`-aligned.
    `identifier=None` leaves out the "TFL3" file identifier; `version` is the schema version.
    """
    if subgraphs is None:
        subgraphs = [SubgraphSpec(tensors, ops, inputs, outputs, name)]
    meta = dict(metadata or {})
    if min_runtime_version is not None:
        meta["min_runtime_version"] = min_runtime_version_bytes(min_runtime_version)

    # Every buffer's content, in file order, and each tensor's buffer index.
    buffer_specs: list[RawBuffer] = [RawBuffer()]
    buffer_specs += [b if isinstance(b, RawBuffer) else RawBuffer(bytes(b)) for b in buffers]
    tensor_buffers: list[list[int]] = []
    for sg in subgraphs:
        indices = []
        for t in sg.tensors:
            raw = t.data_bytes()
            if t.buffer is not None:
                indices.append(t.buffer)
            elif raw is not None:
                indices.append(len(buffer_specs))
                buffer_specs.append(RawBuffer(raw))
            else:
                indices.append(0)
        tensor_buffers.append(indices)
    meta_buffers = {}
    for key, value in meta.items():
        meta_buffers[key] = len(buffer_specs)
        buffer_specs.append(RawBuffer(value))

    codes: dict[OpCode, int] = {}
    for code in operator_codes:
        codes.setdefault(code, len(codes))
    explicit_codes = list(operator_codes)
    for sg in subgraphs:
        for op in sg.ops:
            code = op.op_code()
            if code not in codes:
                codes[code] = len(codes)
                explicit_codes.append(code)

    def write(specs: list[RawBuffer]) -> bytes:
        total = sum(len(s.data or b"") for s in specs)
        w = _ModelWriter(total + 4096, alignment)
        b = w.b
        # Write the big buffers first so they end up last in the file, as converters do.
        buffer_tables = [w.buffer(s) for s in specs]
        code_tables = [w.operator_code(c) for c in explicit_codes]
        sg_tables = [
            w.subgraph(sg, tb, codes) for sg, tb in zip(subgraphs, tensor_buffers, strict=True)
        ]
        sig_tables = [w.signature(s) for s in signature_defs]
        meta_tables = [w.metadata(k, meta_buffers[k]) for k in meta]
        vectors = {
            "buffers": w.table_vector(tflite.ModelStartBuffersVector, buffer_tables),
            "codes": w.table_vector(tflite.ModelStartOperatorCodesVector, code_tables),
            "subgraphs": w.table_vector(tflite.ModelStartSubgraphsVector, sg_tables),
            "signatures": w.table_vector(tflite.ModelStartSignatureDefsVector, sig_tables),
            "metadata": w.table_vector(tflite.ModelStartMetadataVector, meta_tables),
        }
        desc = b.CreateString(description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, version)
        tflite.ModelAddOperatorCodes(b, vectors["codes"])
        tflite.ModelAddSubgraphs(b, vectors["subgraphs"])
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, vectors["buffers"])
        if meta_tables:
            tflite.ModelAddMetadata(b, vectors["metadata"])
        if sig_tables:
            tflite.ModelAddSignatureDefs(b, vectors["signatures"])
        b.Finish(tflite.ModelEnd(b), file_identifier=identifier)
        return bytes(b.Output())

    if not external_buffers:
        return write(buffer_specs)

    # External buffers: the flatbuffer's size does not depend on the offset values, so write
    # it once with placeholders to learn where the data can start, then with the real offsets.
    moved = [s.data is not None and len(s.data) > 0 for s in buffer_specs]
    placeholder = [
        RawBuffer(None, 1 << 40, len(s.data or b"")) if m else s
        for s, m in zip(buffer_specs, moved, strict=True)
    ]
    head = len(write(placeholder))
    final, blobs, pos = [], [], _align(head, alignment)
    for spec, m in zip(buffer_specs, moved, strict=True):
        if not m:
            final.append(spec)
            continue
        assert spec.data is not None
        final.append(RawBuffer(None, pos, len(spec.data)))
        blobs.append((pos, spec.data))
        pos = _align(pos + len(spec.data), alignment)
    flat = write(final)
    assert len(flat) == head, "flatbuffer size changed between passes"
    out = bytearray(flat)
    for at, blob in blobs:
        out += b"\0" * (at - len(out))
        out += blob
    return bytes(out)


def add_model(**kwargs: Any) -> bytes:
    """A tiny valid float model: output = input + constant (shape [1, 4]).

    Small enough to corrupt byte by byte; TFLite itself loads and runs it. Keyword arguments go
    to `build_model` (e.g. `identifier=None`, `version=2`, `external_buffers=True`).
    """
    return build_model(
        tensors=[
            TensorSpec("input", [1, 4], "FLOAT32"),
            TensorSpec("bias", [1, 4], data=np.array([[1, 2, 3, 4]], np.float32)),
            TensorSpec("output", [1, 4], "FLOAT32"),
        ],
        ops=[OpSpec("ADD", [0, 1], [2], {"fused_activation_function": "NONE"})],
        inputs=[0],
        outputs=[2],
        **kwargs,
    )


# --- finding and corrupting bytes -------------------------------------------------------

# Field slots of the tables tests corrupt (the TFLite schema's field order, from 0).
# Types: a struct code ("u32"), "string", "[i32]" (vector of scalars), a table name, or
# "[Table]" (vector of tables). "?" is a table of unknown type (union): reach its fields as
# "@<slot>:<type>", e.g. "builtin_options.@0:[i32]" for ReshapeOptions.new_shape.
SCHEMA: dict[str, dict[str, tuple[int, str]]] = {
    "Model": {
        "version": (0, "u32"),
        "operator_codes": (1, "[OperatorCode]"),
        "subgraphs": (2, "[SubGraph]"),
        "description": (3, "string"),
        "buffers": (4, "[Buffer]"),
        "metadata_buffer": (5, "[i32]"),
        "metadata": (6, "[Metadata]"),
        "signature_defs": (7, "[SignatureDef]"),
    },
    "OperatorCode": {
        "deprecated_builtin_code": (0, "i8"),
        "custom_code": (1, "string"),
        "version": (2, "i32"),
        "builtin_code": (3, "i32"),
    },
    "SubGraph": {
        "tensors": (0, "[Tensor]"),
        "inputs": (1, "[i32]"),
        "outputs": (2, "[i32]"),
        "operators": (3, "[Operator]"),
        "name": (4, "string"),
    },
    "Tensor": {
        "shape": (0, "[i32]"),
        "type": (1, "i8"),
        "buffer": (2, "u32"),
        "name": (3, "string"),
        "quantization": (4, "QuantizationParameters"),
        "is_variable": (5, "bool"),
        "shape_signature": (7, "[i32]"),
    },
    "QuantizationParameters": {
        "min": (0, "[f32]"),
        "max": (1, "[f32]"),
        "scale": (2, "[f32]"),
        "zero_point": (3, "[i64]"),
        "quantized_dimension": (6, "i32"),
    },
    "Operator": {
        "opcode_index": (0, "u32"),
        "inputs": (1, "[i32]"),
        "outputs": (2, "[i32]"),
        "builtin_options_type": (3, "u8"),
        "builtin_options": (4, "?"),
        "custom_options": (5, "[u8]"),
        "intermediates": (8, "[i32]"),
        "large_custom_options_offset": (9, "u64"),
        "large_custom_options_size": (10, "u64"),
    },
    "Buffer": {"data": (0, "[u8]"), "offset": (1, "u64"), "size": (2, "u64")},
    "Metadata": {"name": (0, "string"), "buffer": (1, "u32")},
    "SignatureDef": {
        "inputs": (0, "[TensorMap]"),
        "outputs": (1, "[TensorMap]"),
        "signature_key": (2, "string"),
        "subgraph_index": (4, "u32"),
    },
    "TensorMap": {"name": (0, "string"), "tensor_index": (1, "u32")},
}

_SCALAR_SIZES = {
    "u8": 1,
    "i8": 1,
    "bool": 1,
    "u16": 2,
    "i32": 4,
    "u32": 4,
    "i64": 8,
    "u64": 8,
    "f32": 4,
}
_STRUCT = {
    "u8": "<B",
    "i8": "<b",
    "bool": "<B",
    "u16": "<H",
    "i32": "<i",
    "u32": "<I",
    "i64": "<q",
    "u64": "<Q",
    "f32": "<f",
}


def _u32(data: bytes, at: int) -> int:
    return struct.unpack_from("<I", data, at)[0]


def vtable(data: bytes, table: int) -> tuple[int, int, int]:
    """(vtable position, vtable length, table length) of the table at `table`."""
    vt = table - struct.unpack_from("<i", data, table)[0]
    vt_len, obj_len = struct.unpack_from("<HH", data, vt)
    return vt, vt_len, obj_len


@dataclass(frozen=True)
class Location:
    """Where a field lives in a model file.

    `table`: the table holding the field (for a vector element: the vector's length word).
    `entry`: the field's voffset in that table's vtable (None for vector elements).
    `field`: the field's own bytes (None when the field is absent).
    `target`: where an offset field points (a vector's or string's length word, or a table).
    `type`: the field's schema type (see SCHEMA).
    """

    table: int
    entry: int | None
    field: int | None
    target: int | None
    type: str

    def length(self, data: bytes) -> int:
        """Element count of the vector or string this location points to."""
        assert self.target is not None
        return _u32(data, self.target)

    def element(self, index: int, size: int) -> int:
        """Position of element `index` of a scalar vector with `size`-byte elements."""
        assert self.target is not None
        return self.target + 4 + index * size


def _is_offset(type_: str) -> bool:
    return type_ not in _SCALAR_SIZES


def locate(data: bytes, path: str) -> Location:
    """Find a field by a path from the root Model table.

    Examples: "version", "subgraphs[0].tensors[2].shape", "operator_codes[1].builtin_code",
    "subgraphs[0].operators[0].builtin_options.@0:[i32]", "buffers[3]" (the table itself).
    """
    table = _u32(data, 0)
    type_ = "Model"
    loc = Location(0, None, 0, table, "Model")
    for part in path.split("."):
        name, _, index = ("", "", "") if part.startswith("@") else part.partition("[")
        if part.startswith("@"):
            name = part
            slot_text, _, type_text = name[1:].partition(":")
            slot, field_type = int(slot_text), type_text or "?"
        else:
            if type_ not in SCHEMA:
                raise KeyError(f"{type_} fields are reached as @slot:type, not {name!r}")
            slot, field_type = SCHEMA[type_][name]
        vt, vt_len, _ = vtable(data, table)
        entry = vt + 4 + 2 * slot
        voffset = struct.unpack_from("<H", data, entry)[0] if 4 + 2 * slot < vt_len else 0
        at = table + voffset if voffset else None
        target = at + _u32(data, at) if at is not None and _is_offset(field_type) else None
        loc = Location(table, entry if 4 + 2 * slot < vt_len else None, at, target, field_type)
        if index:
            if target is None:
                raise KeyError(f"{part}: the vector is absent")
            i = int(index.rstrip("]"))
            type_ = field_type.strip("[]")
            if type_ in _SCALAR_SIZES:  # an element of a scalar vector: the path ends here
                element = target + 4 + i * _SCALAR_SIZES[type_]
                loc = Location(target, None, element, None, type_)
                continue
            element = target + 4 + 4 * i
            table = element + _u32(data, element)
            loc = Location(target, None, element, table, type_)
        elif field_type in SCHEMA or field_type == "?":
            if target is None:
                raise KeyError(f"{part}: the table is absent")
            type_, table = field_type, target
    return loc


def patch(data: bytes, at: int, fmt: str, value: int | float) -> bytes:
    """A copy of `data` with `value` packed (struct format or SCHEMA scalar type) at `at`."""
    out = bytearray(data)
    struct.pack_into(_STRUCT.get(fmt, fmt), out, at, value)
    return bytes(out)


def patch_field(data: bytes, path: str, value: int | float) -> bytes:
    """A copy of `data` with the scalar field at `path` set to `value` (it must be present)."""
    loc = locate(data, path)
    if loc.field is None:
        raise KeyError(f"{path} is absent from the file (a default): build it with a value")
    return patch(data, loc.field, loc.type, value)


def truncate(data: bytes, size: int) -> bytes:
    """The first `size` bytes (negative: all but the last -size)."""
    return data[:size]


def with_identifier(data: bytes, identifier: bytes) -> bytes:
    """A copy with bytes 4..8 (the file identifier) replaced."""
    assert len(identifier) == 4
    return data[:4] + identifier + data[8:]
