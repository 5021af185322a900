"""The inferred size limits: undocumented limits derived from real compiler output (the
evidence of each is beside its numbers in rules/ops.toml), each a constraint function registered
by name with what it limits (`limit=`, for O003's documentation).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from coralcheck.edgetpu import layout
from coralcheck.edgetpu.constraints import constraint_check
from coralcheck.edgetpu.knowledge import Constraint
from coralcheck.edgetpu.opview import OpView
from coralcheck.model.graph import Tensor
from coralcheck.wording import quote, shape_text


def _shape(t: Tensor) -> str:
    return shape_text(t.shape)


def _largest(tensors: list[Tensor], measure: Callable[[Tensor], int]) -> tuple[Tensor, int] | None:
    """The first of the largest tensors by `measure`, with its size (None for no tensors)."""
    best: tuple[Tensor, int] | None = None
    for t in tensors:
        size = measure(t)
        if best is None or size > best[1]:
            best = (t, size)
    return best


@lru_cache(maxsize=4096)
def _row_elements(shape: tuple[int, ...]) -> int:
    """`layout.row_elements`, remembered: checked for every tensor of every op, and a model has
    thousands of tensors but few distinct shapes."""
    return layout.row_elements(shape)


@constraint_check("max-row-elements", limit="rows of at most {limit:,} elements")
def max_row_elements(view: OpView, c: Constraint) -> str | None:
    limit = int(c.params["limit"])
    found = _largest(view.activations, lambda t: _row_elements(t.shape))
    if found is None or found[1] <= limit:
        return None
    t, row = found
    _, x, z = layout.inner3(t.shape)
    return (
        f"tensor {quote(t.name)} {_shape(t)} has rows of {x} x {z} = {row} elements; rows above "
        f"{limit} did not map in real compiles"
    )


@constraint_check("max-elements", limit="at most {limit:,} elements")
def max_elements(view: OpView, c: Constraint) -> str | None:
    limit = int(c.params["limit"])
    found = _largest(view.activations, lambda t: t.num_elements)
    if found is None or found[1] <= limit:
        return None
    t, n = found
    where = f"{quote(t.name)} {_shape(t)}"
    return f"moves {n} elements ({where}); above {limit} did not map in real compiles"


@constraint_check(
    "max-reduced-elements",
    reads_constant_data=True,
    limit="at most {limit:,} values reduced into each output",
)
def max_reduced_elements(view: OpView, c: Constraint) -> str | None:
    limit = int(c.params["limit"])
    data, axes = view.input(0), view.values(view.input(1))
    if data is None or axes is None:
        return None
    rank = len(data.shape)
    reduced = {layout.normalize_axis(a, rank) for a in axes}
    window = layout.elements([d for i, d in enumerate(data.shape) if i in reduced])
    if window <= limit:
        return None
    return (
        f"reduces {window} values into each output (axes {sorted(reduced)} of "
        f"{quote(data.name)} {_shape(data)}); above {limit} did not map"
    )


@constraint_check("max-output-elements", limit="outputs of at most {limit:,} elements")
def max_output_elements(view: OpView, c: Constraint) -> str | None:
    limit = int(c.params["limit"])
    for t in view.outputs:
        if t.num_elements > limit:
            return (
                f"output {quote(t.name)} {_shape(t)} has {t.num_elements} elements; above "
                f"{limit} did not map in real compiles"
            )
    return None


@constraint_check("max-upscale", limit="upscaling by at most {factor:g}x")
def max_upscale(view: OpView, c: Constraint) -> str | None:
    factor = float(c.params["factor"])
    src, dst = view.input(0), view.outputs[0] if view.outputs else None
    if src is None or dst is None or len(src.shape) < 3 or len(dst.shape) < 3:
        return None
    (h_in, w_in), (h_out, w_out) = src.shape[-3:-1], dst.shape[-3:-1]
    scale = max(h_out / max(h_in, 1), w_out / max(w_in, 1))
    if scale <= factor:
        return None
    return (
        f"upscales {h_in}x{w_in} to {h_out}x{w_out} ({scale:.1f}x); above {factor:g}x is not "
        "expected to map (the exact limit is not known)"
    )


@constraint_check("large-input-note")
def large_input_note(view: OpView, c: Constraint) -> str | None:
    t = view.input(0)
    width = layout.inner3(t.shape)[2] if t is not None else 0
    return c.text if width >= int(c.params["min_input"]) else None


@constraint_check("large-output-note")
def large_output_note(view: OpView, c: Constraint) -> str | None:
    big = any(t.num_elements >= int(c.params["min_output"]) for t in view.outputs)
    return c.text if big else None
