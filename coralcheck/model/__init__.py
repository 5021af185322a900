"""load: bytes → verified, immutable model graph."""

from coralcheck.model.graph import (
    EDGETPU_CUSTOM_CODE,
    BufferRef,
    Model,
    Operator,
    Quantization,
    SignatureDef,
    Subgraph,
    Tensor,
)
from coralcheck.model.reader import load

__all__ = [
    "EDGETPU_CUSTOM_CODE",
    "BufferRef",
    "Model",
    "Operator",
    "Quantization",
    "SignatureDef",
    "Subgraph",
    "Tensor",
    "load",
]
