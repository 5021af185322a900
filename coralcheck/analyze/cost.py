"""Multiply-accumulates per op, estimated from tensor shapes alone (no weights are read).

Counted: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, CONV_3D, BATCH_MATMUL and
the LSTM ops; every other op counts 0 (elementwise work is small next to these).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from coralcheck.edgetpu.opview import OpView


def op_macs(view: OpView) -> int:
    """Estimated multiply-accumulates of one inference of this op (0 when not a MAC-heavy op)."""
    counter = _COUNTERS.get(view.op.opcode)
    if counter is None or not view.outputs:
        return 0
    try:
        return max(int(counter(view)), 0)
    except (IndexError, ValueError, ZeroDivisionError, AttributeError):
        return 0  # a malformed op: no estimate rather than an error


def work(macs: Sequence[int], views: Sequence[OpView]) -> list[int]:
    """Per op, the work the verdict weighs (rules/catalogue.toml [verdict]): its
    multiply-accumulates; in a model without any (lookup tables, forests written as comparisons),
    the elements it writes, so that a 1000-wide comparison weighs more than a final ARG_MAX."""
    if any(macs):
        return list(macs)
    return [max(sum(t.num_elements for t in view.outputs), 1) for view in views]


def _out(view: OpView) -> int:
    return view.outputs[0].num_elements


def _filter(view: OpView, position: int = 1) -> tuple[int, ...]:
    t = view.input(position)
    return t.shape if t is not None else ()


def _conv(view: OpView) -> int:
    # filter [out_channels, kh, kw, in_channels]: each output element sums kh*kw*in_channels.
    return _out(view) * math.prod(_filter(view)[1:])


def _depthwise(view: OpView) -> int:
    # filter [1, kh, kw, channels]: each output element sums kh*kw inputs.
    kh_kw = _filter(view)[1:3]
    return _out(view) * math.prod(kh_kw)


def _fully_connected(view: OpView) -> int:
    # weights [units, depth]: each output element is a depth-long dot product.
    return _out(view) * _filter(view)[-1]


def _transpose_conv(view: OpView) -> int:
    # inputs (output_shape, filter [out_channels, kh, kw, in_channels], input): each input
    # element is scattered into kh*kw*out_channels outputs.
    f = _filter(view, 1)
    data = view.input(2)
    return (data.num_elements if data is not None else 0) * math.prod(f[:3])


def _conv3d(view: OpView) -> int:
    # filter [kd, kh, kw, in_channels, out_channels]
    return _out(view) * math.prod(_filter(view)[:4])


def _batch_matmul(view: OpView) -> int:
    lhs = view.input(0)
    if lhs is None:
        return 0
    depth = lhs.shape[-2] if view.option("adj_x", False) else lhs.shape[-1]
    return _out(view) * depth


def _lstm(view: OpView) -> int:
    # 4 gates, each a matrix product of [input, state] with [depth + units, units] per step.
    data, out = view.input(0), view.outputs[0]
    if data is None:
        return 0
    depth, units = data.shape[-1], out.shape[-1]
    steps = data.num_elements // max(depth, 1)
    return steps * 4 * units * (depth + units)


_COUNTERS = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "TRANSPOSE_CONV": _transpose_conv,
    "CONV_3D": _conv3d,
    "BATCH_MATMUL": _batch_matmul,
    "LSTM": _lstm,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm,
}
