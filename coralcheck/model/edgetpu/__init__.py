"""Decode the Edge TPU segments of a compiled model (`*_edgetpu.tflite`).

Each segment is one `edgetpu-custom-op` operator. Its custom options are a FlexBuffer map
(read with `flatbuffers.flexbuffers`) whose key "4" (and the keys "7" list) hold `DWN1`
*packages*; a package holds a *MultiExecutable*, which holds the *Executables* the runtime
loads onto the chip. The layout and every field index are those of
`shared/edgetpu/compiled-model-format.md` §1 and §3 (libedgetpu `executable/executable.fbs`);
no generated code is used: the flatbuffers are read by field index with the bounds-checked
walker of `coralcheck/model/flatbuf.py`.

The bytes are untrusted: every length is checked against the bytes that hold it, lists are
bounded, and anything that does not decode raises `ModelError` naming the file and the segment.
Parameter and instruction payloads are never parsed: only their lengths are read.

Nested offsets can make a small file name the same bytes many times (thousands of executable
entries or ops pointing at one executable or one package). So all the decoding of one model
shares one read budget (`package.Decoder`: a few times the file's size; every byte copied and every
table and vector read counts), each distinct custom-options blob and executable is decoded once,
and a package may list at most `MAX_EXECUTABLES` executables.

Here: the entry points. `flex`: custom options → segment; `package`: packages → executables,
and the budget; `records`: what they decode to.
"""

from __future__ import annotations

from coralcheck.model.edgetpu import flex
from coralcheck.model.edgetpu.package import Decoder
from coralcheck.model.edgetpu.records import (
    EXECUTABLE_TYPES,
    EXECUTION_ONLY,
    LAYER_DATA_TYPES,
    MAX_EXECUTABLES,
    PACKAGE_IDENTIFIER,
    PARAMETER_CACHING,
    SIGNED_LAYER_TYPES,
    STAND_ALONE,
    VARIABLE_OUTPUT_SUFFIX,
    Executable,
    Layer,
    Package,
    Segment,
)
from coralcheck.model.graph import Model, Operator

__all__ = [
    "EXECUTABLE_TYPES",
    "EXECUTION_ONLY",
    "LAYER_DATA_TYPES",
    "MAX_EXECUTABLES",
    "PACKAGE_IDENTIFIER",
    "PARAMETER_CACHING",
    "SIGNED_LAYER_TYPES",
    "STAND_ALONE",
    "VARIABLE_OUTPUT_SUFFIX",
    "Executable",
    "Layer",
    "Package",
    "Segment",
    "decode_custom_options",
    "decode_segment",
    "decode_segments",
]


def decode_segments(model: Model) -> list[Segment]:
    """Every Edge TPU segment of the model, in subgraph and operator order."""
    decoder = Decoder(model.path, model.file_size)
    return [
        flex.segment(decoder, model, op, sg.index) for sg, op in model.operators() if op.is_edgetpu
    ]


def decode_segment(model: Model, op: Operator, subgraph: int = 0) -> Segment:
    """Decode one `edgetpu-custom-op` node. Raises `ModelError` naming the file and the op."""
    return flex.segment(Decoder(model.path, model.file_size), model, op, subgraph)


def decode_custom_options(
    data: bytes, path: str, where: str = "Edge TPU segment", subgraph: int = 0, op_index: int = 0
) -> Segment:
    """Decode the custom options of an `edgetpu-custom-op` (a FlexBuffer map) → Segment."""
    return flex.custom_options(Decoder(path, len(data)), data, where, subgraph, op_index)
