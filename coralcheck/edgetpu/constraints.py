"""The constraint functions that ops.toml names (`check = "..."`): the registry by name
(`CONSTRAINT_CHECKS`, filled by `@constraint_check`), and the documented constraints of Coral's
op table; the inferred size limits are in coralcheck.edgetpu.limits (importing the
`coralcheck.edgetpu` package registers both).

Each takes the op (an `OpView`) and its `Constraint` (parameters in `constraint.params`) and returns
None when the op passes, or a short sentence saying what fails, naming the tensor or option. For
constraints with effect "note" the sentence is a caveat and the op still maps.

The predictor decides once for all ops of one `op_signatures` (opcode, version, options, the
tensors' dtypes, shapes and constness). So whether a check passes may depend only on what the
signature holds; a check that reads constant values or quantization is registered with
`reads_constant_data=True` (tests/test_placement.py keeps this honest). Messages may name tensors.
"""

from __future__ import annotations

from collections.abc import Callable

from coralcheck.edgetpu import layout
from coralcheck.edgetpu.knowledge import Constraint
from coralcheck.edgetpu.opview import OpView
from coralcheck.model.graph import Tensor
from coralcheck.wording import quote, shape_text

ConstraintCheck = Callable[[OpView, Constraint], "str | None"]
CONSTRAINT_CHECKS: dict[str, ConstraintCheck] = {}
# The checks whose decision reads what `op_signatures` leaves out: a constant's values or
# quantization. The predictor decides the ops they apply to one by one.
READS_CONSTANT_DATA: set[str] = set()


# How a size limit reads in the rules' documentation, filled with the constraint's parameters
# from rules/ops.toml (O003 lists them; see `limit_text`).
LIMIT_TEXTS: dict[str, str] = {}


def constraint_check(
    name: str, *, reads_constant_data: bool = False, limit: str = ""
) -> Callable[[ConstraintCheck], ConstraintCheck]:
    """Register the function of the constraint named `name` in rules/ops.toml (`check = ...`);
    `limit` says what its parameters limit, e.g. "at most {limit:,} elements"."""

    def register(fn: ConstraintCheck) -> ConstraintCheck:
        CONSTRAINT_CHECKS[name] = fn
        if reads_constant_data:
            READS_CONSTANT_DATA.add(name)
        if limit:
            LIMIT_TEXTS[name] = limit
        return fn

    return register


def limit_text(c: Constraint) -> str:
    """What a size-limit constraint allows, with its numbers ("at most 1,048,576 elements");
    "" for a constraint that has no limit text."""
    text = LIMIT_TEXTS.get(c.check, "")
    return text.format(**c.params) if text else ""


def _shape(t: Tensor) -> str:
    return shape_text(t.shape)


# --- documented constraints (Coral's op table) ------------------------------------------------


@constraint_check("no-fused-activation")
def no_fused_activation(view: OpView, c: Constraint) -> str | None:
    act = view.option("fused_activation_function", "NONE")
    if act in (None, "NONE", 0):
        return None
    return f"has a fused {act} activation; this op maps only without one"


@constraint_check("constant-input-is-zero-padding", reads_constant_data=True)
def constant_input_is_zero_padding(view: OpView, c: Constraint) -> str | None:
    constants = [t for t in view.inputs if t.is_constant]
    if not constants:
        return None
    if len(view.inputs) != 2:
        return (
            f"concatenates the constant {quote(constants[0].name)} with {len(view.inputs) - 1} "
            "other inputs; a constant input is allowed only with exactly 2 inputs"
        )
    const = constants[0]
    values = view.values(const)
    if values is None:
        return f"concatenates the constant {quote(const.name)}, whose values cannot be checked"
    q = const.quantization
    zero = int(q.zero_point[0]) if q is not None and q.zero_point else 0
    # Real value 0 is the zero point, not raw 0 (an int8 zero with zero point -128 is stored -128).
    nonzero = sum(1 for v in values if v != zero)
    if nonzero:
        return (
            f"concatenates the constant {quote(const.name)} {_shape(const)}, which is not all "
            f"zeros ({nonzero} of {len(values)} values differ from its zero point {zero}); only an "
            "all-zero constant (zero padding) maps"
        )
    return None


@constraint_check("same-dilation")
def same_dilation(view: OpView, c: Constraint) -> str | None:
    w, h = view.option("dilation_w_factor", 1), view.option("dilation_h_factor", 1)
    if w == h:
        return None
    return f"has dilation {h} (y) x {w} (x); x and y dilation must be equal"


@constraint_check("constant-weights")
def constant_weights(view: OpView, c: Constraint) -> str | None:
    """`either_operand`: a constant input (position 0) may stand in for the weights, as in a
    product of a constant matrix and an activation."""
    weights_at = int(c.params.get("weights_input", 1))
    bias_at = int(c.params.get("bias_input", 3 if view.op.opcode == "TRANSPOSE_CONV" else 2))
    for role, position in (("weights", weights_at), ("bias", bias_at)):
        t = view.input(position)
        if t is None or t.is_constant:
            continue
        if role == "weights" and c.params.get("either_operand") and _constant_input(view):
            continue
        other = (
            " (nor is the input)" if role == "weights" and c.params.get("either_operand") else ""
        )
        return f"{role} {quote(t.name)} are not constant at compile time{other}"
    return None


def _constant_input(view: OpView) -> bool:
    """Whether the op's first input is a compile-time constant."""
    first = view.input(0)
    return first is not None and first.is_constant


@constraint_check("default-weights-format")
def default_weights_format(view: OpView, c: Constraint) -> str | None:
    fmt = view.option("weights_format", 0)
    if fmt in (0, "DEFAULT", None):
        return None
    return f"uses weights format {fmt}; only the default format maps"


@constraint_check("one-dimensional-output")
def one_dimensional_output(view: OpView, c: Constraint) -> str | None:
    """`constant_input_exempt`: the rule does not bind an op whose first input is constant."""
    if c.params.get("constant_input_exempt") and _constant_input(view):
        return None
    for t in view.outputs:
        if layout.non_singleton(t.shape) > 1:
            return f"output {quote(t.name)} {_shape(t)} is not one-dimensional"
    return None


def _axes_outside(view: OpView, axes: list[int], rank: int, allowed: str) -> list[int]:
    """The axes (of a tensor of `rank`) that lie outside the dims `allowed` ("yx" or "yxz")."""
    inner = {"yx": (3, 2), "yxz": (3, 2, 1)}[
        allowed
    ]  # counted from the end: y = -3, x = -2, z = -1
    ok = {rank - k for k in inner if rank - k >= 0}
    return [a for a in (layout.normalize_axis(a, rank) for a in axes) if a not in ok]


@constraint_check("reduce-axes", reads_constant_data=True)
def reduce_axes(view: OpView, c: Constraint) -> str | None:
    data = view.input(0)
    axes = view.values(view.input(1))
    if data is None:
        return None
    if axes is None:
        return "reduction axes are not a compile-time constant"
    allowed = str(c.params.get("axes", "yxz"))
    bad = [
        a for a in _axes_outside(view, axes, len(data.shape), allowed) if _dim_of(data.shape, a) > 1
    ]
    if bad:
        where = "x and/or y" if allowed == "yx" else "x, y and/or z (not batch)"
        return f"reduces axes {bad} of {_shape(data)}; only {where} reductions map"
    return None


@constraint_check("pad-axes", reads_constant_data=True)
def pad_axes(view: OpView, c: Constraint) -> str | None:
    data = view.input(0)
    pads = view.values(view.input(1))
    if data is None:
        return None
    if pads is None:
        return "paddings are not a compile-time constant"
    rank = len(data.shape)
    padded = [
        axis for axis in range(min(rank, len(pads) // 2)) if pads[2 * axis] or pads[2 * axis + 1]
    ]
    allowed = str(c.params.get("axes", "yxz"))
    bad = _axes_outside(view, padded, rank, allowed)
    if bad:
        where = "x and/or y" if allowed == "yx" else "x, y and/or z (not batch)"
        return f"pads axes {bad} of {_shape(data)}; only {where} padding maps"
    return None


@constraint_check("axis-not-batch", reads_constant_data=True)
def axis_not_batch(view: OpView, c: Constraint) -> str | None:
    if view.op.opcode == "SPLIT":
        data, axes = view.input(1), view.values(view.input(0))
        if data is None or axes is None:
            return None if data is None else "split axis is not a compile-time constant"
        axis, shape = axes[0], data.shape
    else:  # PACK: the axis is in the options and refers to the output
        if not view.outputs:
            return None
        axis, shape = int(view.option("axis", 0)), view.outputs[0].shape
    axis = layout.normalize_axis(axis, len(shape))
    # `outermost`: axis 0 counts as the batch at any rank (not only outside the 3 innermost).
    batch = 0 if c.params.get("outermost") else layout.batch_axis(len(shape))
    # A size-1 batch axis is a no-op (yamnet's SPLIT into 1 along axis 0 maps with compiler 16.0).
    if batch == axis and _dim_of(shape, axis) > 1:
        return f"works along the batch axis ({axis}) of shape {shape_text(shape)}"
    return None


def _dim_of(shape, axis: int) -> int:
    return shape[axis] if 0 <= axis < len(shape) else 1


@constraint_check("softmax-1d")
def softmax_1d(view: OpView, c: Constraint) -> str | None:
    limit = int(c.params.get("max_elements", 16000))
    for t in view.inputs[:1]:
        if layout.non_singleton(t.shape) > 1:
            return f"input {quote(t.name)} {_shape(t)} is not 1-D"
        if t.num_elements > limit:
            return f"input {quote(t.name)} has {t.num_elements} elements (at most {limit} map)"
    return None


@constraint_check("max-innermost")
def max_innermost(view: OpView, c: Constraint) -> str | None:
    limit = int(c.params["limit"])
    for t in view.inputs[:1]:
        z = layout.inner3(t.shape)[2]
        if z > limit:
            return (
                f"input {quote(t.name)} {_shape(t)} has {z} elements on its last axis (max {limit})"
            )
    return None


@constraint_check("squeeze-leading")
def squeeze_leading(view: OpView, c: Constraint) -> str | None:
    if not view.inputs or not view.outputs:
        return None
    src, dst = view.inputs[0].shape, view.outputs[0].shape
    # Allowed: the output is the input with leading 1s dropped.
    dropped = len(src) - len(dst)
    if dropped >= 0 and tuple(src[dropped:]) == tuple(dst) and all(d == 1 for d in src[:dropped]):
        return None
    src_text, dst_text = shape_text(src), shape_text(dst)
    return f"squeezes {src_text} to {dst_text}, not only leading 1s (a relayout)"


@constraint_check("unit-strides", reads_constant_data=True)
def unit_strides(view: OpView, c: Constraint) -> str | None:
    strides = view.values(view.input(3))
    if strides is None:
        return "strides are not a compile-time constant"
    if any(s != 1 for s in strides):
        return f"has strides {strides}; only stride 1 (a plain slice) maps"
    return None


@constraint_check("zero-masks")
def zero_masks(view: OpView, c: Constraint) -> str | None:
    set_masks = [m for m in c.params.get("masks", ()) if view.option(m, 0)]
    if set_masks:
        return "uses " + " and ".join(f"{m} = {view.option(m)}" for m in set_masks) + " (must be 0)"
    return None


@constraint_check("constant-alpha")
def constant_alpha(view: OpView, c: Constraint) -> str | None:
    alpha = view.input(1)
    if alpha is not None and not alpha.is_constant:
        return f"alpha {quote(alpha.name)} is not a compile-time constant"
    return None


@constraint_check("integer-input")
def integer_input(view: OpView, c: Constraint) -> str | None:
    for t in view.inputs[:1]:
        if t.dtype not in ("INT8", "UINT8"):
            return f"quantizes {t.dtype} {quote(t.name)}; only integer requantization maps"
    return None
