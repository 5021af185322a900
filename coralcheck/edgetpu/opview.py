"""An operator with its tensors, as the predictor, the constraint functions and the rules see it
(`OpView`, made per op on first use by `OpViews`), and what of an op its verdict may depend on
(`op_signatures`: ops with equal signatures share the predictor's decisions).

Only tensor metadata is read, except small integer constants (axes, strides, paddings, zero
padding) whose values some constraints need (`OpView.values`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import Any, overload

from coralcheck.model.graph import Model, Operator, Subgraph, Tensor
from coralcheck.model.schema import NUMPY_DTYPES

# Longest constant tensor whose values a check reads (axes, strides, paddings, zero padding).
_MAX_VALUES_READ = 1 << 20
# struct codes of the tensor types whose values `OpView.values` reads.
_INTEGER_CODES = {
    "INT8": "b",
    "UINT8": "B",
    "INT16": "h",
    "UINT16": "H",
    "INT32": "i",
    "UINT32": "I",
    "INT64": "q",
    "UINT64": "Q",
    "BOOL": "?",
}


class OpView:
    """One operator with its tensors, as the constraint checks and the predictor see it.

    `inputs` and `outputs` are the op's present tensors; `activations` are its non-constant,
    non-variable inputs and its outputs: the data the op computes on. They are resolved once,
    when the view is made: the predictor's steps, the constraints and the checks all read them.
    """

    __slots__ = ("activations", "inputs", "model", "op", "outputs", "subgraph")

    def __init__(self, model: Model, subgraph: Subgraph, op: Operator) -> None:
        self.model = model
        self.subgraph = subgraph
        self.op = op
        self.inputs = inputs = subgraph.op_inputs(op)
        self.outputs = outputs = subgraph.op_outputs(op)
        activations = [t for t in inputs if not t.is_constant and not t.is_variable]
        activations += [t for t in outputs if not t.is_variable]
        self.activations = activations

    def input(self, position: int) -> Tensor | None:
        """The tensor at input position `position` (None when omitted or absent)."""
        if position >= len(self.op.inputs) or self.op.inputs[position] < 0:
            return None
        return self.subgraph.tensors[self.op.inputs[position]]

    def values(self, tensor: Tensor | None) -> list[int] | None:
        """A small integer constant's values (None if not constant, not integer, or too large).

        Read with `struct`, not `Model.tensor_data`: these are a few bytes (axes, paddings,
        strides), and numpy's import alone takes longer than the whole lint of most models.
        Values are what `tensor_data` gives: whole elements in file order, and the raw bytes of
        a type numpy has no name for.
        """
        if tensor is None or not tensor.is_constant or tensor.data_size > _MAX_VALUES_READ:
            return None
        code = _INTEGER_CODES.get(tensor.dtype, None if tensor.dtype in NUMPY_DTYPES else "B")
        if code is None:  # floats and complex numbers
            return None
        size = struct.calcsize(code)
        count = tensor.data_size // size
        raw = self.model.read_bytes(tensor.data_offset, count * size)
        return [int(v) for v in struct.unpack(f"<{count}{code}", raw)]

    def option(self, name: str, default: Any = None) -> Any:
        return self.op.options.get(name, default)


class OpViews(Sequence[OpView]):
    """The views of every op of a subgraph, each made when it is first read.

    The predictor reads the views of a few ops only (one per signature), and most checks
    select ops by signature group before they look at any: making all views up front costs
    ~1.3 µs per op (4.7 ms for a model of 3,500 ops) for objects mostly never read.
    """

    __slots__ = ("_made", "_model", "_subgraph")

    def __init__(self, model: Model, subgraph: Subgraph) -> None:
        self._model = model
        self._subgraph = subgraph
        self._made: list[OpView | None] = [None] * len(subgraph.operators)

    def __len__(self) -> int:
        return len(self._made)

    @overload
    def __getitem__(self, index: int) -> OpView: ...

    @overload
    def __getitem__(self, index: slice) -> list[OpView]: ...

    def __getitem__(self, index: int | slice) -> OpView | list[OpView]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._made)))]
        view = self._made[index]
        if view is None:
            op = self._subgraph.operators[index]
            view = self._made[index] = OpView(self._model, self._subgraph, op)
        return view

    def __iter__(self) -> Iterator[OpView]:
        for i in range(len(self._made)):
            yield self[i]


def op_signatures(subgraph: Subgraph) -> list[tuple[Any, ...]]:
    """Everything about each op that its verdict, MACs and the signature-grouped checks read.

    That is: opcode (builtin code, custom code), version, options, and per input position
    (omitted: -1) and per output the tensor's dtype, shape, constness and variableness, and
    which inputs are also outputs of the op. Not in it: the tensors' names, indices and place in
    the graph, constant values and quantization parameters. Ops with equal signatures therefore
    get the same decisions from every constraint that reads only these (all but those in
    `READS_CONSTANT_DATA`); only messages, which name tensors, differ.

    A signature holds small numbers, not the descriptions: each distinct tensor description and
    each distinct set of options is numbered once, so that grouping 3,500 ops hashes a few
    integers per op instead of every shape and option again. Options whose values cannot be
    hashed are told apart by their mapping's identity (the reader shares one mapping between ops
    of equal scalar options).
    """
    tensors = subgraph.tensors
    described = zip(
        map(_DTYPE, tensors),
        map(_SHAPE, tensors),
        [size > 0 for size in map(_DATA_SIZE, tensors)],
        map(_IS_VARIABLE, tensors),
        strict=True,
    )
    numbers: dict[Any, int] = {}
    kinds = [numbers.setdefault(d, len(numbers)) for d in described]
    options_by_mapping: dict[int, Any] = {}
    signatures = []
    for op in subgraph.operators:
        ins, outs, options = op.inputs, op.outputs, op.options
        options_key = options_by_mapping.get(id(options))
        if options_key is None:
            options_key = options_by_mapping[id(options)] = _options_key(options, numbers)
        aliases = None if outs[0:1] == () or set(ins).isdisjoint(outs) else _aliases(ins, outs)
        signatures.append(
            (
                op.opcode,
                op.builtin_code,
                op.custom_code,
                op.version,
                options_key,
                tuple([kinds[i] if i >= 0 else -1 for i in ins]),
                tuple([kinds[i] if i >= 0 else -1 for i in outs]),
                aliases,
            )
        )
    return signatures


_DTYPE, _SHAPE, _DATA_SIZE, _IS_VARIABLE = (
    attrgetter(name) for name in ("dtype", "shape", "data_size", "is_variable")
)


def _options_key(options: Any, numbers: dict[Any, int]) -> Any:
    """A number for options of these values (one per distinct set), or the mapping's identity
    when a value cannot be hashed."""
    items = ("options", *options.items())
    try:
        return numbers.setdefault(items, len(numbers))
    except TypeError:
        return ("mapping", id(options))


def _aliases(inputs: tuple[int, ...], outputs: tuple[int, ...]) -> tuple[bool, ...]:
    """Per input position: whether that tensor is also an output of the op."""
    return tuple(i >= 0 and i in outputs for i in inputs)
