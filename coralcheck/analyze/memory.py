"""Parameter memory: how many bytes of parameters the compiler will store for the ops predicted to
run on the Edge TPU, against the on-chip cache of the target release (facts.md §6).

The compiler pads filters and adds per-channel data; rules/compilers.toml [memory] holds the fitted
estimator (output channels padded to a multiple of 64, plus 12 bytes per padded channel), within
8% of the real compiled parameter bytes on the corpus. Only tensor sizes are read, never weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from coralcheck.edgetpu.constraints import OpView
from coralcheck.edgetpu.knowledge import Target
from coralcheck.model.graph import Model
from coralcheck.report import Memory

# The input position of the filter, and the filter axis holding the output channels.
_FILTERS = {
    "CONV_2D": (1, 0),
    "FULLY_CONNECTED": (1, 0),
    "TRANSPOSE_CONV": (1, 0),
    "DEPTHWISE_CONV_2D": (1, -1),
}


def _filter_bytes(view: OpView, padding: int, per_channel: int) -> tuple[int, int] | None:
    """(filter tensor index, estimated stored bytes of the filter and its per-channel data)."""
    where = _FILTERS.get(view.op.opcode)
    weights = view.input(where[0]) if where is not None else None
    if weights is None or not weights.is_constant or not weights.shape or where is None:
        return None
    channels = max(weights.shape[where[1]], 1)
    per_output = weights.nbytes // channels
    padded = math.ceil(channels / padding) * padding
    return weights.index, padded * (per_output + per_channel)


def parameter_bytes(
    model: Model, on_tpu: list[bool], target: Target, views: Sequence[OpView] | None = None
) -> int:
    """Estimated parameter bytes the compiler stores for the ops placed on the Edge TPU.

    Filters of conv/FC ops use the fitted estimator (their bias and scales are the per-channel
    bytes); other 8-bit constants count as they are; int32 shapes, axes and the like are
    compile-time values, not parameters. A constant shared by several ops counts once.
    `views` are the main subgraph's op views when the caller has them (the prediction's).
    """
    memory = target.knowledge.memory
    padding = int(memory.get("channel_padding", 1))
    per_channel = int(memory.get("bytes_per_channel", 0))
    sg = model.main
    counted: set[int] = set()
    total = 0
    for op in sg.operators:
        if not on_tpu[op.index]:
            continue
        view = views[op.index] if views is not None else OpView(model, sg, op)
        constants = [t for t in view.inputs if t.is_constant and t.index not in counted]
        filt = _filter_bytes(view, padding, per_channel)
        if filt is not None:
            index, stored = filt
            total += stored if any(t.index == index for t in constants) else 0
            counted.update(t.index for t in constants)
            continue
        for t in constants:
            if t.dtype in ("INT8", "UINT8"):
                counted.add(t.index)
                total += t.data_size
    return total


def estimate_memory(
    model: Model, on_tpu: list[bool], target: Target, views: Sequence[OpView] | None = None
) -> Memory:
    """Parameter bytes of the Edge TPU ops against the target's on-chip cache."""
    params = parameter_bytes(model, on_tpu, target, views)
    cache = target.release.parameter_cache_bytes
    on_chip = min(params, cache)
    return Memory(
        parameter_bytes=params,
        cache_bytes=cache,
        on_chip_bytes=on_chip,
        off_chip_bytes=params - on_chip,
        source="estimate",
    )
