"""Parameter memory: how many bytes of parameters the compiler will store for the ops predicted to
run on the Edge TPU, against the on-chip cache of the target release (facts.md §6).

The compiler pads filters and adds per-channel data; rules/compilers.toml [memory] holds the fitted
estimator (output channels padded to a multiple of 64, plus 12 bytes per padded channel; compiler
1.0 pads to 16 and adds 16, its release entry says), within 10% of the real compiled parameter bytes
of the corpus's models with constant filters (12% for 1.0). Only tensor sizes are read, never
weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from coralcheck.edgetpu.target import Target
from coralcheck.model.graph import Model, Tensor
from coralcheck.report import Memory

# The input position of the filter, and the filter axis holding the output channels.
_FILTERS = {
    "CONV_2D": (1, 0),
    "FULLY_CONNECTED": (1, 0),
    "TRANSPOSE_CONV": (1, 0),
    "DEPTHWISE_CONV_2D": (1, -1),
}


def _stored_filter_bytes(weights: Tensor, axis: int, padding: int, per_channel: int) -> int:
    """Estimated stored bytes of a filter and its per-channel data."""
    channels = max(weights.shape[axis], 1)
    per_output = weights.nbytes // channels
    padded = math.ceil(channels / padding) * padding
    return padded * (per_output + per_channel)


def parameter_bytes(model: Model, on_tpu: Sequence[bool], target: Target) -> int:
    """Estimated parameter bytes the compiler stores for the ops placed on the Edge TPU.

    Filters of conv/FC ops use the fitted estimator (their bias and scales are the per-channel
    bytes); other 8-bit constants count as they are; int32 shapes, axes and the like are
    compile-time values, not parameters. A constant shared by several ops counts once.
    """
    memory, release = target.knowledge.memory, target.release
    padding = release.channel_padding or int(memory.get("channel_padding", 1))
    per_channel = release.bytes_per_channel
    if per_channel is None:
        per_channel = int(memory.get("bytes_per_channel", 0))
    sg = model.main
    tensors = sg.tensors
    counted: set[int] = set()
    # Stored bytes by (filter shape, dtype, channel axis): a model repeats a few filter shapes.
    stored_by_filter: dict[tuple[tuple[int, ...], str, int], int] = {}
    total = 0
    for op in sg.operators:
        if not on_tpu[op.index]:
            continue
        inputs = op.inputs
        constants = [i for i in inputs if i >= 0 and i not in counted and tensors[i].is_constant]
        where = _FILTERS.get(op.opcode)
        if where is not None:
            position, axis = where
            index = inputs[position] if position < len(inputs) else -1
            weights = tensors[index] if index >= 0 else None
            if weights is not None and weights.is_constant and weights.shape:
                key = (weights.shape, weights.dtype, axis)
                stored = stored_by_filter.get(key)
                if stored is None:
                    stored = _stored_filter_bytes(weights, axis, padding, per_channel)
                    stored_by_filter[key] = stored
                total += stored if index in constants else 0
                counted.update(constants)
                continue
        for i in constants:
            t = tensors[i]
            if t.dtype in ("INT8", "UINT8"):
                counted.add(i)
                total += t.data_size
    return total


def estimate_memory(model: Model, on_tpu: Sequence[bool], target: Target) -> Memory:
    """Parameter bytes of the Edge TPU ops against the target's on-chip cache."""
    params = parameter_bytes(model, on_tpu, target)
    cache = target.release.parameter_cache_bytes
    on_chip = min(params, cache)
    return Memory(
        parameter_bytes=params,
        cache_bytes=cache,
        on_chip_bytes=on_chip,
        off_chip_bytes=params - on_chip,
        source="estimate",
    )
