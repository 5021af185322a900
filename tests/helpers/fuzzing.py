"""The shared mutation engine and invariant checker for fuzzing the whole lint.

Used by `tests/test_fuzz.py` (a bounded, deterministic CI run through hypothesis) and by
`benchmarks/fuzz_long.py` (hours-long runs that save every crasher to `tests/crashers/`).

A model file is untrusted input. The invariant: linting any byte string gives either a report
(rendered as text and as JSON) or a `coralcheck.ModelError` whose message is one line naming the
file; never any other exception, never more than `TIME_LIMIT_S` seconds, and (checked through the
real CLI in a subprocess) never more than `RSS_LIMIT_MB` of resident memory.

The mutations are structure-aware: `walk()` follows the TFLite flatbuffer (and, inside compiled
models, the FlexBuffer custom options and the DWN1 Package → MultiExecutable → Executable
flatbuffers) with its own tolerant reader, independent of coralcheck's, and records where every
table, vtable, offset, vector, string and interesting scalar lies. The strategies then break
exactly those places: truncation at table boundaries, offsets pointed outside the file or at
themselves, vector lengths inflated to 2^31, unknown enum values, swapped identifiers, and so on.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from conftest import CORPUS as CORPUS_ROOT
from conftest import FIXTURES, REPO

CORPUS = CORPUS_ROOT / "models"
CRASHERS = Path(__file__).resolve().parents[1] / "crashers"

TIME_LIMIT_S = 2.0  # per model, whole lint
HANG_ALARM_S = 10.0  # turn a hang into a failure instead of a stuck CI job
RSS_LIMIT_MB = 200

# Small real models for the CI run: every converter fixture, plus the smallest corpus pairs
# (source and compiled, one of them from the 2019 compiler) so the compiled-model decoder is hit.
CORPUS_SMALL = (
    "coral_test_data_grouper/split_concat.tflite",
    "coral_test_data_grouper/split_concat_edgetpu.tflite",
    "coral_test_data_grouper/keras_lstm_mnist_ptq.tflite",
    "coral_test_data_grouper/keras_lstm_mnist_ptq_edgetpu.tflite",
    "coral_edgetpu_diploria2/mobilenet_v1_0.25_128_quant_edgetpu.tflite",
)


def seed_models(small: bool = True) -> dict[str, Path]:
    """name -> path of the real models to mutate. Corpus models are skipped when absent."""
    models = {p.name: p for p in sorted(FIXTURES.glob("*.tflite"))}
    corpus = [CORPUS / rel for rel in CORPUS_SMALL] if small else sorted(CORPUS.glob("*/*.tflite"))
    for p in corpus:
        if p.is_file():
            models[f"{p.parent.name}/{p.name}"] = p
    return models


def built_seeds() -> dict[str, bytes]:
    """Seeds no converter writes, built with tests/helpers/tflite_builder.py: constant data stored
    after the flatbuffer (Buffer.offset/size, as converters do for models over 2 GB), and the two
    amplification shapes of tests/helpers/hostile.py at a size that still lints (a package
    listing one executable 8 times; Edge TPU ops sharing large custom options stored after the
    flatbuffer), so that mutants grow them into what the read budget must stop."""
    from helpers import hostile
    from helpers.tflite_builder import add_model

    return {
        "built:external_buffers": add_model(external_buffers=True),
        "built:many_executables": hostile.many_executables(count=8, layers=20),
        "built:shared_large_custom_options": hostile.shared_large_custom_options(
            ops=2, parameter_bytes=1024, layers=20
        ),
    }


def seed_names(small: bool = True) -> list[str]:
    return sorted(seed_models(small)) + sorted(built_seeds())


def seed_data(name: str) -> bytes:
    """The bytes of a seed named as `seed_names` names it."""
    if name.startswith("built:"):
        return built_seeds()[name]
    return _seed_path(name).read_bytes()


# ---------------------------------------------------------------------------------------------
# A tolerant flatbuffer walker that records where the structure lies.


@dataclass(frozen=True, slots=True)
class Node:
    """One structural element of the file.

    kind: "table" (pos = table start), "soffset" (the table's signed offset to its vtable),
    "vtable", "uoffset" (a stored forward offset), "vector" / "string" (pos = the length
    field), "scalar" (a schema field with a role), "field" (a field of a table whose schema is
    not modelled: builtin options, unions), "element" (an element of a scalar vector),
    "flexroot" (the root reference of a FlexBuffer), "identifier" (a 4-byte file identifier).
    """

    kind: str
    pos: int
    size: int = 4
    label: str = ""
    role: str = ""  # for scalars/elements: what the value means (enum or index kind)
    count: int = 0  # for vectors: element count; for tables-vectors: element size 4
    elem: str = ""  # for vectors/elements: struct code of the elements ("i", "f", "q", "B", ...)
    target: int = -1  # for uoffsets: where the offset points


# The Edge TPU package inside a compiled model's custom options, in the same notation as
# tflite_builder.SCHEMA (field: (slot, type)); slots from compiled-model-format.md.
EDGETPU_SCHEMA: dict[str, dict[str, tuple[int, str]]] = {
    "Package": {
        "min_runtime_version": (0, "i32"),
        "serialized_multi_executable": (1, "[u8]"),
        "signature": (2, "[u8]"),
        "keypair_version": (3, "i32"),
        "compiler_version": (4, "string"),
        "virtual_chip_id": (5, "i32"),
        "multi_chip_package": (6, "[?]"),
        "model_identifier": (7, "string"),
    },
    "MultiExecutable": {"serialized_executables": (0, "[string]")},
    "Executable": {
        "version": (0, "i32"),
        "name": (1, "string"),
        "serialized_model": (2, "[u8]"),
        "batch_size": (3, "i32"),
        "scratch_size_bytes": (4, "i32"),
        "instruction_bitstreams": (5, "[InstructionBitstream]"),
        "parameters": (6, "[u8]"),
        "dma_hints": (7, "DmaHints"),
        "input_layers": (8, "[Layer]"),
        "output_layers": (9, "[Layer]"),
        "chip": (10, "string"),
        "estimated_cycles": (11, "i32"),
        "used_narrow_memory_bytes_per_tile": (12, "i32"),
        "type": (13, "i16"),
        "parameter_caching_token": (14, "u64"),
        "use_tpu_dram_for_parameters": (15, "bool"),
        "estimated_cycles_64bit": (16, "i64"),
    },
    "InstructionBitstream": {"bitstream": (0, "[u8]"), "field_offsets": (1, "[?]")},
    "DmaHints": {"hints": (0, "[?]"), "fully_deterministic": (1, "bool")},
    "Layer": {
        "name": (0, "string"),
        "size_bytes": (1, "i32"),
        "y_dim": (2, "i32"),
        "x_dim": (3, "i32"),
        "z_dim": (4, "i32"),
        "numerics": (5, "Numerics"),
        "data_type": (6, "i16"),
        "any_layer_type": (7, "u8"),
        "any_layer": (8, "?"),
        "execution_count_per_inference": (9, "i32"),
        "cache_on_dram": (10, "bool"),
        "shape": (11, "TensorShape"),
    },
    "Numerics": {"zero_point": (0, "i32"), "dequantization_factor": (1, "f32")},
    "TensorShape": {"dimension": (0, "[range]")},
}

# What a scalar means to the mutators (default: the field's name).
ROLES = {
    ("Model", "version"): "schema_version",
    ("OperatorCode", "version"): "op_version",
    ("Tensor", "type"): "tensor_type",
    ("Tensor", "buffer"): "buffer_index",
    ("Tensor", "shape_signature"): "shape",
    ("Metadata", "buffer"): "buffer_index",
    ("TensorMap", "tensor_index"): "tensor_index",
    ("SubGraph", "inputs"): "tensor_index",
    ("SubGraph", "outputs"): "tensor_index",
    ("Operator", "inputs"): "tensor_index",
    ("Operator", "outputs"): "tensor_index",
    ("Operator", "intermediates"): "tensor_index",
    ("Operator", "large_custom_options_offset"): "large_offset",
    ("Buffer", "offset"): "large_offset",
    ("Executable", "type"): "executable_type",
    ("Layer", "data_type"): "layer_data_type",
}
# [u8] vectors that hold another structure: "FLEX" = a FlexBuffer (custom options).
NESTED = {
    ("Operator", "custom_options"): "FLEX",
    ("Package", "serialized_multi_executable"): "MultiExecutable",
    ("MultiExecutable", "serialized_executables"): "Executable",
}
TYPE_CODES = {
    "u8": "B",
    "i8": "b",
    "bool": "B",
    "u16": "H",
    "i16": "h",
    "i32": "i",
    "u32": "I",
    "i64": "q",
    "u64": "Q",
    "f32": "f",
    "range": "ii",
}


def _schema() -> dict[str, dict[int, tuple[str, str]]]:
    """table -> slot -> (field name, type): the TFLite tables from tests/helpers/tflite_builder.py
    (one copy of the schema's slot numbers in the tests) plus the Edge TPU package's."""
    from helpers.tflite_builder import SCHEMA

    out: dict[str, dict[int, tuple[str, str]]] = {}
    for table, fields in (*SCHEMA.items(), *EDGETPU_SCHEMA.items()):
        out[table] = {slot: (name, type_) for name, (slot, type_) in fields.items()}
    return out


MAX_NODES = 400_000  # enough for the corpus; bounds the walk of a huge model


class _Walker:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.nodes: list[Node] = []
        self.seen: set[tuple[int, str]] = set()
        self.schema = _schema()

    def add(self, node: Node) -> None:
        if len(self.nodes) < MAX_NODES:
            self.nodes.append(node)

    def read(self, code: str, pos: int) -> int | float | None:
        width = struct.calcsize("<" + code)
        if pos < 0 or pos + width > self.size:
            return None
        return struct.unpack_from("<" + code, self.data, pos)[0]

    def follow(self, at: int, label: str) -> int | None:
        off = self.read("I", at)
        if off is None:
            return None
        target = at + int(off)
        self.add(Node("uoffset", at, 4, label, target=target))
        return target if 0 <= target < self.size else None

    def root(self, base: int, table: str, label: str) -> None:
        """Walk the flatbuffer whose root uoffset is at `base` (offsets relative to `base`)."""
        target = self.follow(base, label)
        if target is not None:
            self.table(target, table, label)

    def table(self, pos: int, name: str | None, label: str) -> None:
        if (pos, name or "") in self.seen or len(self.nodes) >= MAX_NODES:
            return
        self.seen.add((pos, name or ""))
        soff = self.read("i", pos)
        if soff is None:
            return
        vt = pos - int(soff)
        vt_len, obj_len = self.read("H", vt), self.read("H", vt + 2)
        self.add(Node("table", pos, 4, label))
        self.add(Node("soffset", pos, 4, label, target=vt))
        if vt_len is None or obj_len is None or vt_len < 4 or vt + vt_len > self.size:
            return
        self.add(Node("vtable", vt, int(vt_len), label))
        fields = self.schema.get(name or "", {})
        present = []
        for slot in range((int(vt_len) - 4) // 2):
            off = self.read("H", vt + 4 + 2 * slot)
            if off and off < obj_len:
                present.append((slot, int(off)))
        ends = sorted({o for _, o in present} | {int(obj_len)})
        prefix = f"{label}." if label else ""
        for slot, off in present:
            where = pos + off
            if slot not in fields:  # unmodelled (options tables, unions): raw bytes
                width = min(next(e for e in ends if e > off) - off, 8)
                self.add(Node("field", where, width, f"{prefix}@{slot}"))
                continue
            field_name, type_ = fields[slot]
            role = ROLES.get((name or "", field_name), field_name)
            nested = NESTED.get((name or "", field_name))
            self.field(where, type_, f"{prefix}{field_name}", role, nested)

    def field(self, where: int, type_: str, label: str, role: str, nested: str | None) -> None:
        if type_ in TYPE_CODES:
            code = TYPE_CODES[type_]
            self.add(Node("scalar", where, struct.calcsize("<" + code), label, role, 0, code))
            return
        target = self.follow(where, label)
        if target is None:
            return
        if type_ == "string":
            self.vector(target, "B", "string", label, None)
        elif type_ == "?":
            self.table(target, None, label)
        elif not type_.startswith("["):
            self.table(target, type_, label)
        elif type_ in ("[string]", "[?]") or type_.strip("[]") in self.schema:
            elem_type = type_.strip("[]")
            count = self.vector(target, "I", "offsets", label, None)
            for i in range(min(count, 100_000)):
                elem = self.follow(target + 4 + 4 * i, f"{label}[{i}]")
                if elem is None:
                    continue
                if elem_type == "string":
                    self.vector(elem, "B", "string", f"{label}[{i}]", nested)
                else:
                    self.table(elem, None if elem_type == "?" else elem_type, f"{label}[{i}]")
        else:
            self.vector(target, TYPE_CODES[type_.strip("[]")], role, label, nested)

    def vector(self, pos: int, code: str, role: str, label: str, nested: str | None) -> int:
        count = self.read("I", pos)
        if count is None:
            return 0
        count = int(count)
        width = struct.calcsize("<" + code)
        start = pos + 4
        kind = "string" if role == "string" else "vector"
        self.add(Node(kind, pos, 4, label, role, count, code))
        if start + count * width > self.size:
            return 0
        if code in ("i", "f", "q") and count <= 64:
            for i in range(count):
                self.add(Node("element", start + i * width, width, f"{label}[{i}]", role, 0, code))
        if nested == "FLEX":
            self.flexbuffer(start, count, label)
        elif nested:
            self.nested(start, count, nested, label)
        return count

    def nested(self, start: int, count: int, table: str, label: str) -> None:
        if count >= 8 and self.data[start + 4 : start + 8] == b"DWN1":
            self.add(Node("identifier", start + 4, 4, label, "package"))
        if count >= 4:
            self.root(start, table, f"{label}:{table}")

    def flexbuffer(self, start: int, count: int, label: str) -> None:
        """The FlexBuffer root reference (last bytes), and any Edge TPU package inside."""
        if count < 3:
            return
        end = start + count
        width = self.data[end - 1]
        self.add(Node("flexroot", end - 2, 2, label, "flex_type_width"))
        if 0 < width <= 8 and end - 2 - width >= start:
            self.add(Node("flexroot", end - 2 - width, width, label, "flex_root_offset"))
        # The package blob: find its identifier instead of decoding the map (tolerant).
        at = self.data.find(b"DWN1", start, end)
        while at >= 0:
            self.add(Node("identifier", at, 4, label, "package"))
            self.root(at - 4, "Package", f"{label}:Package")
            at = self.data.find(b"DWN1", at + 4, end)


def walk(data: bytes) -> list[Node]:
    """Every structural element of a TFLite file that the walker could reach, in walk order.
    Labels are paths from the root as `tflite_builder.locate` takes them ("subgraphs[0].
    operators[2].inputs"); ":Package" etc. enter a structure nested in a byte vector."""
    w = _Walker(data)
    if len(data) >= 8:
        w.add(Node("identifier", 4, 4, "file", "tflite"))
        w.root(0, "Model", "")
    return w.nodes


# ---------------------------------------------------------------------------------------------
# Mutation strategies. Each takes (data, nodes, rng) and returns (mutated bytes, description).

I32_EXTREMES = (0, 1, -1, -2, 2**31 - 1, -(2**31), 2**16, 2**24 + 1, 255, 256, 1000)
U32_EXTREMES = (0, 1, 2**31, 2**31 - 1, 2**32 - 1, 2**30, 0x7FFFFFF0)
F32_EXTREMES = (0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 1e-45, 3.4e38, 1e-30)
I64_EXTREMES = (0, -1, 2**63 - 1, -(2**63), 2**31, 255, -129)
# Values for enum fields that no schema defines (the schema's enums are all far below these).
UNKNOWN_ENUMS = {
    "b": (-1, -128, 127, 126, 100),
    "B": (255, 254, 200, 128),
    "h": (-1, 3, 99, 32767),
    "i": (-1, 10_000, 2**31 - 1, 209, 255),
    "I": (2**32 - 1, 2**31, 10_000),
}
ENUM_ROLES = {
    "tensor_type",
    "builtin_code",
    "deprecated_builtin_code",
    "builtin_options_type",
    "executable_type",
    "layer_data_type",
    "any_layer_type",
    "schema_version",
}
INDEX_ROLES = {
    "opcode_index",
    "buffer_index",
    "tensor_index",
    "subgraph_index",
    "quantized_dimension",
}
BOUNDARY_KINDS = ("table", "vtable", "vector", "string")


class NoTarget(Exception):
    """The model has no node this strategy can mutate (the mutant would equal the seed)."""


def _pick(nodes: list[Node], rng: random.Random, pred: Callable[[Node], bool]) -> Node:
    candidates = [n for n in nodes if pred(n)]
    if not candidates:
        raise NoTarget
    return rng.choice(candidates)


def _put(buf: bytearray, code: str, pos: int, value: int | float) -> None:
    width = struct.calcsize("<" + code)
    if pos >= 0 and pos + width <= len(buf):
        if code not in "fd":
            bits = 8 * width
            value = int(value) & ((1 << bits) - 1)
            code = {1: "B", 2: "H", 4: "I", 8: "Q"}[width]
        struct.pack_into("<" + code, buf, pos, value)


def _put_bytes(buf: bytearray, pos: int, value: bytes) -> None:
    """Overwrite bytes in place, never growing or shrinking the file (a havoc chain may have
    truncated it under nodes found in the seed)."""
    if pos >= 0 and pos + len(value) <= len(buf):
        buf[pos : pos + len(value)] = value


def bit_flips(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Flip 1 to 8 random bits anywhere in the file."""
    buf = bytearray(data)
    flips = []
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(buf))
        bit = rng.randrange(8)
        buf[pos] ^= 1 << bit
        flips.append(f"{pos}.{bit}")
    return bytes(buf), "bit flips at " + ",".join(flips)


def structural_bit_flip(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Flip one bit inside a structural element (offset, length, vtable, scalar)."""
    node = _pick(nodes, rng, lambda n: n.kind != "table")
    buf = bytearray(data)
    pos = node.pos + rng.randrange(max(node.size, 1))
    if pos >= len(buf):
        raise NoTarget
    bit = rng.randrange(8)
    buf[pos] ^= 1 << bit
    return bytes(buf), f"bit {bit} of byte {pos} flipped ({node.kind} {node.label})"


def truncate_at_boundary(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Cut the file at (or just after) the start of a table, vtable, vector or string."""
    node = _pick(nodes, rng, lambda n: n.kind in BOUNDARY_KINDS and n.pos > 0)
    cut = min(node.pos + rng.choice((0, 0, 1, 2, 3, 4)), len(data) - 1)
    return data[:cut], f"truncated to {cut} bytes at {node.kind} {node.label}"


def offset_outside(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Point a stored offset (or a table's vtable offset) outside the file."""
    node = _pick(nodes, rng, lambda n: n.kind in ("uoffset", "soffset"))
    buf = bytearray(data)
    beyond = len(data) - node.pos
    if node.kind == "uoffset":
        value = rng.choice((beyond, beyond - 1, beyond - 2, beyond + 4096, 2**32 - 1, 2**31))
    else:  # vtable = pos - soffset: negative soffsets point past the end, large ones before 0
        value = rng.choice((-beyond, -(2**31), node.pos + 1, node.pos + 4096, 2**31 - 1))
    _put(buf, "i" if node.kind == "soffset" else "I", node.pos, value)
    return bytes(buf), f"{node.kind} at {node.pos} ({node.label}) set to {value}"


def offset_cycle(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Make offsets self-referential or aliased: a uoffset of 0 (points at itself), a vtable
    offset of 0 (the table is its own vtable), a table's vtable swapped for another's, every
    element of a vector of tables pointed at the same table, or an offset retargeted at a
    different kind of node (a table offset aimed at a vector or a string)."""
    buf = bytearray(data)
    choice = rng.randrange(5)
    if choice == 0:
        node = _pick(nodes, rng, lambda n: n.kind == "uoffset")
        _put(buf, "I", node.pos, 0)
        return bytes(buf), f"uoffset at {node.pos} ({node.label}) points at itself"
    if choice == 1:
        node = _pick(nodes, rng, lambda n: n.kind == "soffset")
        _put(buf, "i", node.pos, 0)
        return bytes(buf), f"table at {node.pos} ({node.label}) is its own vtable"
    if choice == 2:
        a = _pick(nodes, rng, lambda n: n.kind == "soffset")
        b = _pick(nodes, rng, lambda n: n.kind == "vtable" and n.pos != a.target)
        _put(buf, "i", a.pos, a.pos - b.pos)
        return bytes(buf), f"table {a.label} uses the vtable of {b.label}"
    if choice == 3:
        vec = _pick(nodes, rng, lambda n: n.kind == "vector" and n.elem == "I" and n.count > 1)
        first = vec.pos + 4
        if first + 4 > len(data):
            raise NoTarget
        target = first + struct.unpack_from("<I", data, first)[0]
        for i in range(1, vec.count):
            at = first + 4 * i
            _put(buf, "I", at, target - at)
        return bytes(buf), f"every element of {vec.label} points at its first table"
    src = _pick(nodes, rng, lambda n: n.kind == "uoffset")
    dst = _pick(nodes, rng, lambda n: n.kind in BOUNDARY_KINDS and n.pos > src.pos)
    _put(buf, "I", src.pos, dst.pos - src.pos)
    return bytes(buf), f"uoffset {src.label} retargeted at {dst.kind} {dst.label}"


def vector_inflate(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Set a vector's or string's length to 2^31 and friends."""
    node = _pick(nodes, rng, lambda n: n.kind in ("vector", "string"))
    value = rng.choice((2**31, 2**31 - 1, 2**32 - 1, 2**30, 2**28, node.count + 1, 0))
    buf = bytearray(data)
    _put(buf, "I", node.pos, value)
    return bytes(buf), f"length of {node.kind} {node.label} at {node.pos} set to {value}"


def unknown_enum(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Give an enum field (tensor type, op code, option type, executable type...) a value no
    schema defines."""
    node = _pick(nodes, rng, lambda n: n.kind == "scalar" and n.role in ENUM_ROLES)
    value = rng.choice(UNKNOWN_ENUMS.get(node.elem, (255,)))
    buf = bytearray(data)
    _put(buf, node.elem, node.pos, value)
    return bytes(buf), f"{node.role} {node.label} set to {value}"


def bad_index(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Point an index (operator code, buffer, tensor, subgraph, quantized dimension) out of
    range, negative, or at a different valid-looking entry."""
    node = _pick(nodes, rng, lambda n: n.kind in ("scalar", "element") and n.role in INDEX_ROLES)
    value = rng.choice((-1, -2, 2**31 - 1, 2**32 - 1, 0, 1, 2, 3, 4, 5, 7, 100, 65536))
    buf = bytearray(data)
    _put(buf, node.elem, node.pos, value)
    return bytes(buf), f"{node.role} {node.label} set to {value}"


def extreme_value(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Give a number the analysis computes with an extreme value: shape dimensions 0, -1 or
    2^31-1; scales NaN, inf or 0; zero points of 2^63; option fields (strides, dilations,
    axes, activations) 0 or 255; Edge TPU sizes and dimensions negative or huge."""
    node = _pick(
        nodes,
        rng,
        lambda n: n.kind == "field" or (n.kind in ("element", "scalar") and n.role != "bool"),
    )
    buf = bytearray(data)
    if node.kind == "field":
        width = rng.choice([w for w in (1, 2, 4) if w <= node.size] or [1])
        code = {1: "B", 2: "H", 4: "i"}[width]
        value: int | float = rng.choice((0, 255, 128, 127, 2**15, -1, 2**31 - 1, 65535, 4))
        _put(buf, code, node.pos, value)
    else:
        code = node.elem
        if code == "f":
            value = rng.choice(F32_EXTREMES)
        elif code in ("q", "Q"):
            value = rng.choice(I64_EXTREMES)
        elif code in ("I", "H"):
            value = rng.choice(U32_EXTREMES)
        else:
            value = rng.choice(I32_EXTREMES)
        _put(buf, code, node.pos, value)
    return bytes(buf), f"{node.kind} {node.label} ({node.role}) at {node.pos} set to {value}"


def swap_identifiers(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Swap file identifiers ("TFL3" <-> "DWN1", zeroed, an older "TFL2"), custom op names
    (one op's custom code for another's, "edgetpu-custom-op" misspelt), or two operator codes."""
    buf = bytearray(data)
    choice = rng.randrange(3)
    if choice == 0:
        node = _pick(nodes, rng, lambda n: n.kind == "identifier")
        new = rng.choice((b"DWN1", b"TFL3", b"\0\0\0\0", b"TFL2", b"TFL4"))
        _put_bytes(buf, node.pos, new)
        return bytes(buf), f"identifier {node.role} at {node.pos} set to {new!r}"
    if choice == 1:
        codes = [
            n for n in nodes if n.kind == "string" and n.label.endswith("custom_code") and n.count
        ]
        if not codes:
            raise NoTarget
        node = rng.choice(codes)
        start, end = node.pos + 4, node.pos + 4 + node.count
        name = bytes(buf[start:end])
        others = [
            bytes(buf[o.pos + 4 : o.pos + 4 + o.count]) for o in codes if o.count == node.count
        ]
        swaps = [o for o in others if o != name] + [name[::-1], name[:-1] + b"_", name.upper()]
        new = rng.choice(swaps)[: node.count].ljust(node.count, b"_")
        _put_bytes(buf, start, new)
        return bytes(buf), f"custom code {name!r} renamed {new!r}"
    builtins = [n for n in nodes if n.kind == "scalar" and n.role == "builtin_code"]
    if len(builtins) < 2:
        raise NoTarget
    a, b = rng.sample(builtins, 2)
    va, vb = bytes(buf[a.pos : a.pos + 4]), bytes(buf[b.pos : b.pos + 4])
    _put_bytes(buf, a.pos, vb)
    _put_bytes(buf, b.pos, va)
    return bytes(buf), f"operator codes {a.label} and {b.label} swapped"


def vtable_corrupt(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Break a vtable: odd or tiny length, an object length of 0 or 65535, a field offset past
    the object's end."""
    node = _pick(nodes, rng, lambda n: n.kind == "vtable")
    buf = bytearray(data)
    choice = rng.randrange(3)
    if choice == 0:
        value = rng.choice((0, 1, 2, 3, 5, 65535, node.size + 2))
        _put(buf, "H", node.pos, value)
        what = f"length {value}"
    elif choice == 1:
        value = rng.choice((0, 1, 2, 65535))
        _put(buf, "H", node.pos + 2, value)
        what = f"object length {value}"
    else:
        slots = (node.size - 4) // 2
        if slots <= 0:
            raise NoTarget
        slot = rng.randrange(slots)
        value = rng.choice((65535, 65532, 4096, 1, 2, 3))
        _put(buf, "H", node.pos + 4 + 2 * slot, value)
        what = f"field {slot} offset {value}"
    return bytes(buf), f"vtable of {node.label} at {node.pos}: {what}"


def splice(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Insert or delete a few bytes at a structure boundary (every later offset shifts)."""
    node = _pick(nodes, rng, lambda n: n.kind in BOUNDARY_KINDS)
    n = rng.choice((1, 2, 4, 8, 64))
    if rng.random() < 0.5:
        return data[: node.pos] + bytes(n) + data[node.pos :], f"{n} bytes inserted at {node.pos}"
    return data[: node.pos] + data[node.pos + n :], f"{n} bytes deleted at {node.pos}"


def flexbuffer_root(data: bytes, nodes: list[Node], rng: random.Random) -> tuple[bytes, str]:
    """Corrupt a FlexBuffer's root: byte width 0/3/16/255, an unknown type, a root offset of 0
    (points at itself) or larger than the custom options."""
    node = _pick(nodes, rng, lambda n: n.kind == "flexroot")
    buf = bytearray(data)
    if node.role == "flex_type_width":
        at = node.pos + rng.randrange(2)
        value = rng.choice((0, 3, 16, 255, 0x7F, 0x24 << 2, 0xFC))
        _put_bytes(buf, at, bytes([value]))
        what = f"{'width' if at > node.pos else 'type'} byte {value}"
    else:
        value = rng.choice((0, 1, (1 << (8 * node.size)) - 1, 4096))
        _put(buf, {1: "B", 2: "H", 4: "I", 8: "Q"}.get(node.size, "B"), node.pos, value)
        what = f"root offset {value}"
    return bytes(buf), f"flexbuffer {node.label}: {what}"


STRATEGIES: dict[str, Callable[[bytes, list[Node], random.Random], tuple[bytes, str]]] = {
    "bit_flips": bit_flips,
    "structural_bit_flip": structural_bit_flip,
    "truncate_at_boundary": truncate_at_boundary,
    "offset_outside": offset_outside,
    "offset_cycle": offset_cycle,
    "vector_inflate": vector_inflate,
    "unknown_enum": unknown_enum,
    "bad_index": bad_index,
    "extreme_value": extreme_value,
    "swap_identifiers": swap_identifiers,
    "vtable_corrupt": vtable_corrupt,
    "splice": splice,
    "flexbuffer_root": flexbuffer_root,
}


def mutate(data: bytes, nodes: list[Node], strategy: str, seed: int) -> tuple[bytes, str]:
    """Apply one strategy ("havoc" = 2-4 random ones in a row) deterministically from `seed`.

    Raises `NoTarget` when the model has nothing the strategy applies to. Strategies that
    change the layout (truncation, splicing) re-walk nothing: later steps of a havoc chain use
    the seed's nodes, which is fine for a fuzzer (some writes then land on other structure).
    """
    rng = random.Random(seed)
    if strategy != "havoc":
        return STRATEGIES[strategy](data, nodes, rng)
    steps = []
    for _ in range(rng.randint(2, 4)):
        name = rng.choice(list(STRATEGIES))
        with contextlib.suppress(NoTarget):
            data, what = STRATEGIES[name](data, nodes, rng)
            steps.append(what)
    if not steps:
        raise NoTarget
    return data, "; ".join(steps)


ALL_STRATEGIES = (*STRATEGIES, "havoc")


def boundaries(nodes: list[Node]) -> list[int]:
    """Every position where a table, vtable, vector or string starts (sorted, unique)."""
    return sorted({n.pos for n in nodes if n.kind in BOUNDARY_KINDS and n.pos > 0})


# ---------------------------------------------------------------------------------------------
# The invariant.


class Violation(AssertionError):
    """The lint broke the invariant on a mutant."""


class _Hang(BaseException):
    """Raised by the alarm inside a stuck lint (BaseException: a bare `except Exception` in the
    code under test must not swallow it)."""


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    if os.name != "posix" or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise _Hang

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass(slots=True)
class Outcome:
    kind: str  # "report" | "error"
    seconds: float
    message: str = ""
    exit_code: int | None = None
    rss_mb: float | None = None


def rendered_formats() -> tuple[str, ...]:
    """Text and JSON, plus every other report format whose renderer exists yet."""
    import importlib.util

    from coralcheck import render

    names = getattr(render, "FORMATS", ("text", "json"))
    return tuple(
        f
        for f in names
        if f in ("text", "json") or importlib.util.find_spec(f"coralcheck.render.{f}") is not None
    )


def _proc_status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> float | None:
    """Reset this process's peak RSS (Linux `clear_refs` 5) and return the current RSS in MB;
    None where that is not possible (then memory is only checked through the CLI)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return None
    rss = _proc_status_kb("VmRSS")
    return None if rss is None else rss / 1024


def peak_rss_since_reset_mb() -> float | None:
    hwm = _proc_status_kb("VmHWM")
    return None if hwm is None else hwm / 1024


# The CLI's own footprint (interpreter, numpy, rich) is about 45 MB: what one lint may add on top.
LINT_GROWTH_LIMIT_MB = RSS_LIMIT_MB - 60


def lint_in_process(path: Path, compiled: Path | None = None) -> Outcome:
    """Run the whole lint (check → render text, verbose text, JSON and every other format) on
    `path` (paired with its `compiled` twin, as `--compiled` does, when given) and enforce the
    invariant. Raises `Violation` (with the cause chained) when it does not hold."""
    from coralcheck import ModelError
    from coralcheck.api import check
    from coralcheck.render import render

    base_rss = reset_peak_rss()
    start = time.perf_counter()
    try:
        with _alarm(HANG_ALARM_S), warnings.catch_warnings():
            # numpy overflow/divide warnings would reach the CLI user's stderr as noise.
            warnings.simplefilter("error", RuntimeWarning)
            report = check(path) if compiled is None else check(path, compiled_path=str(compiled))
            texts = {fmt: render(report, fmt) for fmt in rendered_formats()}
            texts["verbose"] = render(report, "text", verbose=True)
    except ModelError as e:
        seconds = time.perf_counter() - start
        message = str(e)
        if "\n" in message or "\r" in message:
            raise Violation(f"ModelError message is not one line: {message!r}") from e
        if str(path) not in message and str(compiled) not in message:
            raise Violation(f"ModelError message does not name the file: {message!r}") from e
        _check_time(seconds, path)
        _check_memory(base_rss)
        return Outcome("error", seconds, message)
    except _Hang:
        raise Violation(f"lint still running after {HANG_ALARM_S:.0f} s (hang)") from None
    except Exception as e:
        raise Violation(f"{type(e).__name__}: {e}") from e
    seconds = time.perf_counter() - start
    _check_time(seconds, path)
    _check_memory(base_rss)
    if not all(isinstance(t, str) for t in texts.values()):
        raise Violation("a renderer returned something other than text")
    if not (texts["text"].strip() and texts["json"].strip() and texts["verbose"].strip()):
        raise Violation("the text or JSON report is empty")
    for fmt in ("json", "sarif"):
        if fmt in texts:
            _strict_json(texts[fmt], fmt)
    return Outcome("report", seconds)


def _strict_json(text: str, fmt: str) -> None:
    """RFC 8259 JSON: Python's json accepts NaN and Infinity, jq and JSON.parse do not."""
    import json

    def reject(constant: str) -> None:
        raise Violation(f"--format {fmt} wrote {constant}, which is not JSON")

    try:
        json.loads(text, parse_constant=reject)
    except ValueError as e:
        raise Violation(f"--format {fmt} is not valid JSON: {e}") from e


def _check_memory(base_rss: float | None) -> None:
    peak = peak_rss_since_reset_mb()
    if base_rss is not None and peak is not None and peak - base_rss > LINT_GROWTH_LIMIT_MB:
        raise Violation(f"the lint grew the process by {peak - base_rss:.0f} MB")


def _check_time(seconds: float, path: Path) -> None:
    if seconds > TIME_LIMIT_S:
        raise Violation(f"lint took {seconds:.2f} s (limit {TIME_LIMIT_S} s)")


@dataclass(slots=True)
class ProcessRun:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    rss_mb: float  # peak resident memory of the process itself


# Runs ARGV as a grandchild and reports its wall time and rusage. Needed because a forked child
# inherits the parent's peak RSS (Linux copies the high-water mark at fork and keeps it across
# exec), so wait4() on a child of a big process (pytest, a benchmark that has just built a
# 500 MB model) reports the parent's memory. This small interpreter forks the real child.
_MEASURE = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(sys.argv[1], "w") as f:
    json.dump([os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss / 1024], f)
"""


def measure_process(
    argv: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    preexec_fn: Callable[[], None] | None = None,
) -> ProcessRun:
    """Run `argv` (stdin empty, output captured) and measure its wall time and its own peak RSS.
    `preexec_fn` runs in the measuring process before it forks (CPU affinity, capabilities:
    both are inherited). Raises `Violation` if it is still running after `timeout` seconds."""
    import json
    import shutil
    import tempfile

    exe = argv[0] if os.path.isabs(argv[0]) else shutil.which(argv[0]) or argv[0]
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        result = Path(tmp) / "rusage.json"
        proc = subprocess.Popen(
            [sys.executable, "-c", _MEASURE, str(result), exe, *argv[1:]],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(cwd or REPO),
            preexec_fn=preexec_fn,
            start_new_session=True,  # one process group: a timeout kills the grandchild too
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise Violation(f"{' '.join(argv[:4])} still running after {timeout:.0f} s") from None
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
        if not result.exists():
            raise RuntimeError(f"the measuring process failed: {stderr[-500:]}")
        code, seconds, rss_mb = json.loads(result.read_text())
    return ProcessRun(code, stdout, stderr, seconds, rss_mb)


def run_cli_measured(
    args: list[str],
    cwd: Path | None = None,
    timeout: float = 60.0,
    preexec_fn: Callable[[], None] | None = None,
) -> ProcessRun:
    """`python -m coralcheck ARGS` in a fresh interpreter, with its wall time and peak RSS."""
    from conftest import cli_env

    return measure_process(
        [sys.executable, "-m", "coralcheck", *args], cwd, cli_env(), timeout, preexec_fn
    )


def check_error_contract(run: ProcessRun, path: str, json_stdout: bool = False) -> str:
    """Exit 2, exactly one stderr line `coralcheck: error: <path>: <problem>`, and nothing on
    stdout (with `json_stdout`, the `--format json` document listing the error may be there).
    Returns the problem text. Raises `Violation` otherwise."""
    lines = run.stderr.splitlines()
    prefix = f"coralcheck: error: {path}: "
    if run.exit_code != 2:
        raise Violation(f"exit {run.exit_code}, expected 2; stderr: {run.stderr.strip()[-500:]}")
    if len(lines) != 1 or not lines[0].startswith(prefix) or not lines[0][len(prefix) :].strip():
        raise Violation(f"expected exactly one line {prefix!r}<problem>, got {run.stderr!r}")
    if run.stdout and not (json_stdout and _json_naming(run.stdout, path)):
        raise Violation(f"exit 2 but stdout is not empty: {run.stdout[:200]!r}")
    return lines[0][len(prefix) :]


def _json_naming(text: str, path: str) -> bool:
    import json

    try:
        json.loads(text)
    except ValueError:
        return False
    return json.dumps(path) in text


def lint_subprocess(path: Path, fmt: str = "json", timeout: float = 60.0) -> Outcome:
    """Run the real CLI on `path`; check exit code, the stdout/stderr contract, wall time and
    peak RSS of the child."""
    import json

    run = run_cli_measured([str(path), "--format", fmt], timeout=timeout)
    code = run.exit_code
    if code not in (0, 1, 2):
        raise Violation(f"CLI exit code {code}; stderr: {run.stderr.strip()[-500:]}")
    if code == 2:
        message = check_error_contract(run, str(path), json_stdout=fmt == "json")
    else:
        message = ""
        if run.stderr.strip():
            raise Violation(f"exit {code} with stderr: {run.stderr.strip()[-500:]}")
        try:
            json.loads(run.stdout)
        except ValueError as e:
            raise Violation(f"exit {code} but stdout is not JSON: {run.stdout[:200]!r}") from e
    if run.rss_mb > RSS_LIMIT_MB:
        raise Violation(f"CLI peak RSS {run.rss_mb:.0f} MB (limit {RSS_LIMIT_MB} MB)")
    if run.seconds > TIME_LIMIT_S + 1.0:  # + interpreter start-up
        raise Violation(f"CLI took {run.seconds:.2f} s")
    return Outcome("error" if code == 2 else "report", run.seconds, message, code, run.rss_mb)


# ---------------------------------------------------------------------------------------------
# Crashers: mutants that once broke the invariant, replayed by tests/test_fuzz.py.


def _seed_path(name: str) -> Path:
    """A seed model by the name `seed_models` gives it (fixture file name or corpus path)."""
    return FIXTURES / name if (FIXTURES / name).is_file() else CORPUS / name


def save_crasher(
    data: bytes, note: str, directory: Path = CRASHERS, base: str | None = None
) -> Path:
    """Keep a crasher as a small regression fixture, with a one-line `<id>.txt` note.

    A mutant of a corpus model `base` (read-only, so it stays the same) that differs from it in
    a few bytes, or is a prefix of it, is kept as `<id>.patch.json` (the base by name and hash,
    and the changed bytes): a one-bit flip of a 3 MB model costs a hundred bytes. Anything else
    (mutants of the regenerated fixtures, built models) is kept as `<id>.tflite.gz`.
    Idempotent: the id is a hash of the mutant.
    """
    import gzip
    import hashlib
    import json

    directory.mkdir(parents=True, exist_ok=True)
    ident = hashlib.sha1(data).hexdigest()[:12]
    (directory / f"{ident}.txt").write_text(" ".join(note.split()) + "\n", encoding="utf-8")
    if base is not None and (CORPUS / base).is_file():  # fixtures get regenerated, not corpus
        original = (CORPUS / base).read_bytes()
        recipe: dict = {"base": base, "sha256": hashlib.sha256(original).hexdigest()}
        if len(data) < len(original) and original.startswith(data):
            recipe["truncate"] = len(data)
        elif len(data) == len(original):
            changed = [i for i in range(len(data)) if data[i] != original[i]]
            if len(changed) <= 256:
                recipe["patches"] = [[i, f"{data[i]:02x}"] for i in changed]
        if "truncate" in recipe or "patches" in recipe:
            path = directory / f"{ident}.patch.json"
            path.write_text(json.dumps(recipe) + "\n", encoding="utf-8")
            return path
    path = directory / f"{ident}.tflite.gz"
    path.write_bytes(gzip.compress(data, 9, mtime=0))
    return path


class BaseMissing(Exception):
    """A patch crasher whose base model (in the shared corpus) is not here."""


def load_crasher(path: Path) -> bytes:
    """The bytes of a crasher fixture (see `save_crasher`)."""
    import gzip
    import hashlib
    import json

    if path.name.endswith(".tflite.gz"):
        return gzip.decompress(path.read_bytes())
    if path.name.endswith(".tflite"):
        return path.read_bytes()
    recipe = json.loads(path.read_text(encoding="utf-8"))
    base = CORPUS / recipe["base"]
    if not base.is_file():
        raise BaseMissing(recipe["base"])
    data = base.read_bytes()
    if hashlib.sha256(data).hexdigest() != recipe["sha256"]:
        raise ValueError(f"{path.name}: {recipe['base']} is not the model it was made from")
    if "truncate" in recipe:
        return data[: recipe["truncate"]]
    buf = bytearray(data)
    for at, hex_byte in recipe["patches"]:
        buf[at] = int(hex_byte, 16)
    return bytes(buf)


def crashers(directory: Path = CRASHERS) -> list[Path]:
    """Every crasher fixture in `directory`."""
    return sorted(
        p for p in directory.glob("*") if p.name.endswith((".tflite", ".tflite.gz", ".patch.json"))
    )
