"""OperatorCode tables → (name, builtin code, version, custom code) for each operator code."""

from __future__ import annotations

from coralcheck.model.flatbuf import Table
from coralcheck.model.schema import operator_name
from coralcheck.model.walk import ReadState

CUSTOM = 32
PLACEHOLDER_FOR_GREATER_OP_CODES = 127
# Custom op names are identifiers ("TFLite_Detection_PostProcess", "edgetpu-custom-op", Flex
# ops): far below this.
MAX_CUSTOM_CODE_BYTES = 1024

# (name, builtin code, version, custom code) of one operator code.
OpCode = tuple[str, int, int, str | None]


class OperatorCodeField:
    """The fields of table OperatorCode (tflite schema.fbs), by vtable slot."""

    DEPRECATED_BUILTIN_CODE = 0  # int8: all old files set
    CUSTOM_CODE = 1
    VERSION = 2
    BUILTIN_CODE = 3


C = OperatorCodeField


def opcodes(r: ReadState, root: Table) -> list[OpCode]:
    """(name, builtin code, version, custom code) for each operator code."""
    out = []
    for index, t in enumerate(root.tables(1, "operator_codes")):
        deprecated = int(t.scalar(C.DEPRECATED_BUILTIN_CODE, "i8"))
        builtin = int(t.scalar(C.BUILTIN_CODE, "i32"))
        # Old files only set the deprecated int8 field; new ones set 127 there.
        code = max(deprecated, builtin)
        version = int(t.scalar(C.VERSION, "i32", 1))
        custom = None
        if code == CUSTOM:
            check_custom_code_length(r, t, index)
            custom = t.string(C.CUSTOM_CODE, "custom_code")
            name = f"CUSTOM:{custom}" if custom else "CUSTOM"
        else:
            name = operator_name(code)
        out.append((name, code, version, custom))
    return out


def check_custom_code_length(r: ReadState, t: Table, index: int) -> None:
    """A custom op's name is a short identifier; a longer one is an offset gone astray (into
    weights or a compiled package), and every op of that code, finding and output format would
    repeat its megabytes."""
    vec = t.vector(C.CUSTOM_CODE, 1, "custom_code")
    if vec is not None and vec[1] > MAX_CUSTOM_CODE_BYTES:
        r.buf.fail(
            f"corrupt model: the custom op name (custom_code) of operator_codes[{index}] is "
            f"{vec[1]:,} bytes long (at most {MAX_CUSTOM_CODE_BYTES} are read)"
        )
