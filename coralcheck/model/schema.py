"""Names from the TFLite schema, taken from the `tflite` binding (never copied into this repo).

The binding's generated modules are the schema in Python: enum classes (operators, tensor types,
option unions) and one class per options table whose accessors give each field's name, vtable
slot, type and default. Importing the binding costs about 100 ms (its package imports all ~200
modules, and flatbuffers imports numpy) and its accessors read without bounds checks, so this
module reads only the generated sources a model needs, with `ast`, and decodes option tables
with the bounds-checked `flatbuf.Table`. tests/test_reader.py checks that the result
equals what the binding itself returns.

What is derived from the binding is plain data (dicts and tuples of str, int, float, bool),
each table built by one function from one generated module (`enum_names`,
`option_field_rows`) and fetched through `_derived`, the one place where a persistent cache of
derived data can step in: a process that finds it there never imports `ast` nor reads the
binding.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

if TYPE_CHECKING:
    import ast

    from coralcheck.model.flatbuf import Table

T = TypeVar("T")

# Bytes per element for each TFLite tensor type; 0 = not a fixed-size element.
DTYPE_BYTES: dict[str, float] = {
    "FLOAT32": 4,
    "FLOAT16": 2,
    "BFLOAT16": 2,
    "FLOAT64": 8,
    "INT32": 4,
    "UINT32": 4,
    "INT64": 8,
    "UINT64": 8,
    "INT16": 2,
    "UINT16": 2,
    "INT8": 1,
    "UINT8": 1,
    "INT4": 0.5,
    "BOOL": 1,
    "COMPLEX64": 8,
    "COMPLEX128": 16,
    "STRING": 0,
    "RESOURCE": 0,
    "VARIANT": 0,
}

# numpy dtype names for zero-copy views of constant data.
NUMPY_DTYPES: dict[str, str] = {
    "FLOAT32": "<f4",
    "FLOAT16": "<f2",
    "FLOAT64": "<f8",
    "INT32": "<i4",
    "UINT32": "<u4",
    "INT64": "<i8",
    "UINT64": "<u8",
    "INT16": "<i2",
    "UINT16": "<u2",
    "INT8": "i1",
    "UINT8": "u1",
    "BOOL": "?",
    "COMPLEX64": "<c8",
    "COMPLEX128": "<c16",
}

FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")
PADDINGS = ("SAME", "VALID")


@cache
def _binding_dir() -> str:
    """Where the `tflite` package's generated modules are (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("tflite")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the tflite package (a coralcheck dependency) is not installed")
    return str(next(iter(spec.submodule_search_locations)))


def binding_source(name: str) -> str:
    """The path of the binding's generated module for class `name` (it may not exist)."""
    return os.path.join(_binding_dir(), f"{name}.py")


def _derived(entry: str, source: str, build: Callable[[], T]) -> T:
    """`build()`: plain data named `entry`, derived from the generated module at `source`. Kept
    in the per-user data cache (coralcheck.datacache) keyed by that module and this one, so a
    later process neither imports `ast` nor parses the binding."""
    from coralcheck.datacache import cached

    return cached(entry, [source, __file__], build)


def _binding_class(name: str) -> ast.ClassDef | None:
    """The syntax tree of the binding's generated class `name`, or None if there is none."""
    import ast  # only here: ~1 ms to import, and a cached derivation never needs it

    path = binding_source(name)
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError:
        return None
    for node in ast.parse(source, filename=path).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    return None


def enum_names(enum: str) -> dict[int, str]:
    """Value -> name of the binding's enum class `enum` (the first name of a value)."""
    import ast

    cls = _binding_class(enum)
    if cls is None:
        raise ImportError(f"the tflite package has no {enum}")
    names = {}
    for node in cls.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and type(node.value.value) is int
        ):
            names.setdefault(node.value.value, node.targets[0].id)
    return names


def _enum(enum: str) -> dict[int, str]:
    return _derived(f"tflite-enum-{enum}", binding_source(enum), lambda: enum_names(enum))


@cache
def builtin_operator_names() -> dict[int, str]:
    return _enum("BuiltinOperator")


@cache
def tensor_type_names() -> dict[int, str]:
    return _enum("TensorType")


@cache
def builtin_options_names() -> dict[int, str]:
    return _enum("BuiltinOptions")


def operator_name(code: int) -> str:
    """The builtin's schema name, or UNKNOWN_<code> for an op newer than the binding."""
    return builtin_operator_names().get(code, f"UNKNOWN_{code}")


def tensor_type_name(code: int) -> str:
    return tensor_type_names().get(code, f"UNKNOWN_{code}")


_CAMEL = r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])"
_SKIP_PREFIXES = ("GetRootAs", "Init", "_")
_SKIP_SUFFIXES = ("AsNumpy", "Length", "IsNone", "BufferHasIdentifier")

# flatbuffers.number_types flags -> (flatbuf.Table scalar kind, struct code for vectors).
_FLAGS = {
    "BoolFlags": ("bool", "?"),
    "Int8Flags": ("i8", "b"),
    "Uint8Flags": ("u8", "B"),
    "Int16Flags": ("i16", "h"),
    "Uint16Flags": ("u16", "H"),
    "Int32Flags": ("i32", "i"),
    "Uint32Flags": ("u32", "I"),
    "Int64Flags": ("i64", "q"),
    "Uint64Flags": ("u64", "Q"),
    "Float32Flags": ("f32", "f"),
    "Float64Flags": ("f64", "d"),
}


def _snake(name: str) -> str:
    import re  # (imported at start-up anyway; compiled patterns are cached by `re`)

    return re.sub(_CAMEL, "_", name).lower()


class OptionField(NamedTuple):
    """One scalar or scalar-vector field of an options table, as the binding's accessor reads
    it: `self._tab.Offset(4 + 2 * slot)`, then `Get(<flags>, ...)`, else `return <default>`."""

    name: str
    slot: int
    kind: str
    code: str
    default: Any
    vector: bool


def _accessor_field(method: ast.FunctionDef) -> OptionField | None:
    import ast

    voffset, flags = None, None
    for node in ast.walk(method):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr == "Offset" and node.args and isinstance(node.args[0], ast.Constant):
            voffset = node.args[0].value
        elif node.func.attr == "Get" and node.args and isinstance(node.args[0], ast.Attribute):
            flags = node.args[0].attr
    if voffset is None or flags not in _FLAGS:
        return None  # strings, nested tables, vectors of tables: no rule reads them
    last = method.body[-1]
    default = (
        last.value.value
        if isinstance(last, ast.Return) and isinstance(last.value, ast.Constant)
        else 0
    )
    kind, code = _FLAGS[flags]
    vector = len(method.args.args) > 1  # `def Field(self, j)` reads element j
    return OptionField(_snake(method.name), (voffset - 4) // 2, kind, code, default, vector)


def option_field_rows(options_name: str) -> tuple[tuple[Any, ...], ...] | None:
    """The `OptionField`s of options table `options_name` as plain tuples (None: unknown)."""
    import ast

    cls = _binding_class(options_name)
    if cls is None:
        return None
    rows = []
    for node in cls.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith(_SKIP_PREFIXES):
            continue
        if node.name.endswith(_SKIP_SUFFIXES):
            continue
        field = _accessor_field(node)
        if field is not None:
            rows.append(tuple(field))
    return tuple(rows)


@cache
def option_fields(options_name: str) -> tuple[OptionField, ...] | None:
    """The scalar and scalar-vector fields of options table `options_name` (None: unknown)."""
    rows = _derived(
        f"tflite-options-{options_name}",
        binding_source(options_name),
        lambda: option_field_rows(options_name),
    )
    return None if rows is None else tuple(OptionField._make(row) for row in rows)


def decode_options(options_type: int, table: Table) -> tuple[str | None, dict[str, Any]]:
    """Decode a builtin options table into a plain dict of snake_case schema field names.

    Enum-valued fields that rules read (padding, fused activation) are turned into their names.
    Every read is bounds-checked by `table`, which raises `ModelError` on a corrupt field.
    """
    name = builtin_options_names().get(options_type)
    if name is None or name == "NONE":
        return None, {}
    fields = option_fields(name)
    if fields is None:
        return name, {}
    out: dict[str, Any] = {}
    for f in fields:
        if f.vector:
            out[f.name] = table.numbers(f.slot, f.code, f.name)
        else:
            value = table.scalar(f.slot, f.kind, f.default)
            out[f.name] = bool(value) if f.kind == "bool" else value
    if "fused_activation_function" in out:
        code = out["fused_activation_function"]
        out["fused_activation_function"] = (
            FUSED_ACTIVATIONS[code] if 0 <= code < len(FUSED_ACTIVATIONS) else f"UNKNOWN_{code}"
        )
    if "padding" in out:
        code = out["padding"]
        out["padding"] = PADDINGS[code] if 0 <= code < len(PADDINGS) else f"UNKNOWN_{code}"
    return name, out
