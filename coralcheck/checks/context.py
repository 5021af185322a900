"""What the source-model rules look at (`CheckContext`), and the helpers they share to
phrase groups of ops (`chain`) and to find connected groups of ops (`regions`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from coralcheck.report import Memory
from coralcheck.wording import op_label

if TYPE_CHECKING:
    from coralcheck.analyze.prediction import Prediction
    from coralcheck.edgetpu.opview import OpView
    from coralcheck.edgetpu.target import Target
    from coralcheck.model.graph import Model, Subgraph, Tensor
    from coralcheck.options import Options


class CheckContext:
    """What the source-model checks look at: the model, the target and the prediction."""

    __slots__ = ("_integer_model", "memory", "model", "options", "prediction", "target")

    def __init__(
        self,
        model: Model,
        options: Options,
        target: Target,
        prediction: Prediction,
        memory: Memory,
    ) -> None:
        self.model = model
        self.options = options
        self.target = target
        self.prediction = prediction
        self.memory = memory
        self._integer_model: bool | None = None  # computed when a check first asks

    @property
    def sg(self) -> Subgraph:
        return self.model.main

    @property
    def views(self) -> list[OpView]:
        """Every op of the main subgraph with its tensors (shared with the prediction)."""
        return self.prediction.views

    @property
    def integer_model(self) -> bool:
        """Some op computes on 8-bit tensors (the model was integer-quantized, fully or partly)."""
        if self._integer_model is None:
            self._integer_model = any(
                t.dtype in ("INT8", "UINT8") for v in self.views for t in v.activations
            )
        return self._integer_model

    def consumers(self, tensor: Tensor) -> list[int]:
        return list(self.sg.consumers[tensor.index])

    def producer(self, tensor: Tensor) -> int | None:
        return self.sg.producers[tensor.index]

    def label(self, index: int) -> str:
        """Op `index` of the main subgraph in a message: `CONV_2D (op 3)`."""
        return op_label(index, self.sg.operators[index].opcode)


def chain(ctx: CheckContext, indices: Iterable[int], limit: int = 6, sep: str = " -> ") -> str:
    """Ops as `DEQUANTIZE (op 2) -> WHILE (op 3) -> QUANTIZE (op 4)`, shortened after `limit`;
    `sep=", "` lists ops that do not form a data flow."""
    ordered = sorted(set(indices))
    shown = sep.join(ctx.label(i) for i in ordered[:limit])
    return shown + (f"{sep}... ({len(ordered) - limit} more)" if len(ordered) > limit else "")


def regions(
    ctx: CheckContext, members: set[int], via: Callable[[Tensor], bool]
) -> Iterator[list[int]]:
    """Connected groups of the ops in `members`, joined through tensors for which `via` holds.

    Linear in the ops and their tensors: each tensor's producer and consumers are visited once,
    however many ops read it (one tensor read by 10,000 ops, or 60 times by the same op)."""
    sg = ctx.sg
    seen: set[int] = set()
    tensors_seen: set[int] = set()
    for start in sorted(members):
        if start in seen:
            continue
        group, todo = [], [start]
        seen.add(start)
        while todo:
            i = todo.pop()
            group.append(i)
            op = sg.operators[i]
            for t in (*op.inputs, *op.outputs):
                if t < 0 or t in tensors_seen:
                    continue
                tensors_seen.add(t)
                if not via(sg.tensors[t]):
                    continue
                producer = sg.producers[t]
                for j in ([producer] if producer is not None else []) + list(sg.consumers[t]):
                    if j in members and j not in seen:
                        seen.add(j)
                        todo.append(j)
        yield sorted(group)
