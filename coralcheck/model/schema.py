"""Names from the TFLite schema, taken from the `tflite` binding (never copied into this repo).

The binding's generated classes give the enum names (operators, tensor types, option unions) and
the option-table accessors. Only scalars and small vectors of option tables are read through it,
after `flatbuf.Table` has checked the table's bounds.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

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


def _enum_names(enum_class: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and type(v) is int}


@cache
def builtin_operator_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return _enum_names(BuiltinOperator)


@cache
def tensor_type_names() -> dict[int, str]:
    from tflite.TensorType import TensorType

    return _enum_names(TensorType)


@cache
def builtin_options_names() -> dict[int, str]:
    from tflite.BuiltinOptions import BuiltinOptions

    return _enum_names(BuiltinOptions)


def operator_name(code: int) -> str:
    """The builtin's schema name, or UNKNOWN_<code> for an op newer than the binding."""
    return builtin_operator_names().get(code, f"UNKNOWN_{code}")


def tensor_type_name(code: int) -> str:
    return tensor_type_names().get(code, f"UNKNOWN_{code}")


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SKIP = ("GetRootAs", "Init")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


@cache
def _option_fields(options_name: str) -> tuple[tuple[str, str, bool], ...] | None:
    """(snake_name, accessor, is_vector) for each field of an options table in the binding."""
    import tflite

    cls = getattr(tflite, options_name, None)
    if cls is None:
        return None
    names = [n for n in vars(cls) if not n.startswith("_") and not n.startswith(_SKIP)]
    fields = []
    for name in names:
        if name.endswith(("AsNumpy", "Length", "IsNone")) or "BufferHasIdentifier" in name:
            continue
        is_vector = f"{name}AsNumpy" in names
        fields.append((_snake(name), name, is_vector))
    return tuple(fields)


def decode_options(options_type: int, data: Any, pos: int) -> tuple[str | None, dict[str, Any]]:
    """Decode a builtin options table at `pos` (already bounds-checked) into a plain dict.

    Enum-valued fields that rules read (padding, fused activation) are turned into their names.
    Raises the binding's low-level errors on a corrupt vector; the reader turns them into
    `ModelError`.
    """
    name = builtin_options_names().get(options_type)
    if name is None or name == "NONE":
        return None, {}
    fields = _option_fields(name)
    if fields is None:
        return name, {}
    import tflite

    table = getattr(tflite, name)()
    table.Init(data, pos)
    out: dict[str, Any] = {}
    for snake, accessor, is_vector in fields:
        if is_vector:
            if getattr(table, f"{accessor}IsNone")():
                value: Any = ()
            else:
                value = tuple(int(x) for x in getattr(table, f"{accessor}AsNumpy")())
        else:
            value = getattr(table, accessor)()
            if hasattr(value, "Init") or isinstance(value, bytes):
                continue  # nested tables/strings: no rule needs them
        out[snake] = value
    if "fused_activation_function" in out:
        code = out["fused_activation_function"]
        out["fused_activation_function"] = (
            FUSED_ACTIVATIONS[code] if 0 <= code < len(FUSED_ACTIVATIONS) else f"UNKNOWN_{code}"
        )
    if "padding" in out:
        code = out["padding"]
        out["padding"] = PADDINGS[code] if 0 <= code < len(PADDINGS) else f"UNKNOWN_{code}"
    return name, out
