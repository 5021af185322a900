"""How the Edge TPU sees a tensor's shape: up to three innermost dimensions [y, x, z].

MI-2019: "If a tensor has more than 3 dimensions, then only the 3 innermost dimensions may have a
size greater than 1." Everything outside those three must be 1 (so: batch 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def inner3(shape: Sequence[int]) -> tuple[int, int, int]:
    """The three innermost dimensions (y, x, z), padded with 1s on the left: [5, 7] → (1, 5, 7)."""
    # Called for most tensors of every op: one tuple, no loop.
    y, x, z = (1, 1, 1, *shape[-3:])[-3:]
    return max(int(y), 1), max(int(x), 1), max(int(z), 1)


def outer_dims(shape: Sequence[int]) -> tuple[int, ...]:
    """The dimensions outside the three innermost (batch, for a 4-D tensor)."""
    return tuple(shape[:-3]) if len(shape) > 3 else ()


def has_unsupported_rank(shape: Sequence[int]) -> bool:
    """Some dimension outside the three innermost is larger than 1."""
    # max() of the outer dimensions, not any() over a generator: asked for every tensor of
    # every op the predictor decides, and most real models are 4-D.
    return len(shape) > 3 and max(shape[:-3]) > 1


def non_singleton(shape: Sequence[int]) -> int:
    """How many dimensions are larger than 1."""
    return sum(1 for d in shape if d > 1)


def row_elements(shape: Sequence[int]) -> int:
    """Elements in one y-row: x * z of the three innermost dimensions."""
    _, x, z = inner3(shape)
    return x * z


def elements(shape: Sequence[int]) -> int:
    return math.prod(max(int(d), 1) for d in shape) if shape else 1


def batch_axis(rank: int) -> int | None:
    """The axis the Edge TPU treats as batch (outside the three innermost), if the rank has one."""
    return 0 if rank >= 4 else None


def normalize_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis
