"""Partitioning: which of the mappable ops join the Edge TPU segment(s), as TFLite's delegate
partitioning groups them (see coralcheck.analyze.placement's docstring), and which op on the CPU
each op left off the Edge TPU depends on (`blame`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from coralcheck.model.graph import Subgraph
from coralcheck.report import TpuSegment


def partition(
    supported: Sequence[bool],
    preds: Sequence[Sequence[int]],
    start: int = 0,
    earlier: Sequence[int] = (),
) -> list[int]:
    """TFLite's delegate partitioning: the subset ("epoch") of every op; even epochs have the
    kind of op 0, odd ones the other kind (see the module docstring).

    An op's epoch depends only on earlier ops, so the epochs of ops before `start` may be given
    (`earlier`, from a partition with the same `supported[:start]` and op 0's kind).
    """
    if not supported:
        return []
    first_kind = supported[0]
    epochs = [*earlier[:start], *([0] * (len(supported) - start))]
    for i in range(start, len(supported)):
        latest = 0
        for p in preds[i]:
            if epochs[p] > latest:
                latest = epochs[p]
        latest_kind = first_kind if latest % 2 == 0 else not first_kind
        epochs[i] = latest if latest_kind == supported[i] else latest + 1
    return epochs


def segment_epoch(supported: Sequence[bool]) -> int:
    """The epoch of the first delegated subset: the Edge TPU segment."""
    return 0 if supported and supported[0] else 1


def tpu_ops(
    supported: Sequence[bool], epochs: Sequence[int], multiple_subgraphs: bool = False
) -> list[bool]:
    """The ops the compiler delegates: those of the first delegated subset, or with `-a`
    (`multiple_subgraphs`) those of every delegated subset."""
    if multiple_subgraphs:
        return list(supported)
    seg = segment_epoch(supported)
    return [s and e == seg for s, e in zip(supported, epochs, strict=True)]


def segments(
    sg: Subgraph, epochs: Sequence[int], on_tpu: Sequence[bool], macs: Sequence[int]
) -> list[TpuSegment]:
    """The segments the delegated ops form: one per epoch that holds one (see `partition`)."""
    order = sorted({e for e, on in zip(epochs, on_tpu, strict=True) if on})
    if not order:
        return []
    number = {e: n for n, e in enumerate(order)}
    # Per op: its segment (0-based), or -1 on the CPU.
    seg_of = [number[e] if on else -1 for e, on in zip(epochs, on_tpu, strict=True)]
    ops: list[list[int]] = [[] for _ in order]
    cpu_after: list[list[int]] = [[] for _ in order]
    inputs: list[dict[int, None]] = [{} for _ in order]
    outputs: list[dict[int, None]] = [{} for _ in order]
    tensors, producers, consumers = sg.tensors, sg.producers, sg.consumers
    n_tensors = len(tensors)
    graph_inputs, graph_outputs = set(sg.inputs), set(sg.outputs)
    for i, op in enumerate(sg.operators):
        n = seg_of[i]
        if n < 0:  # a CPU op: after the last segment whose epoch is not after its own
            slot = bisect_right(order, epochs[i]) - 1
            if slot >= 0:
                cpu_after[slot].append(i)
            continue
        ops[n].append(i)
        for t in op.inputs:
            if not 0 <= t < n_tensors:
                continue
            p = producers[t]
            if p is None:  # a graph input, a state tensor, or a constant (not an input)
                if t in graph_inputs or tensors[t].is_variable:
                    inputs[n][t] = None
            elif seg_of[p] != n:
                inputs[n][t] = None
        for t in op.outputs:
            if 0 <= t < n_tensors:
                if t in graph_outputs:
                    outputs[n][t] = None
                    continue
                for c in consumers[t]:
                    if seg_of[c] != n:
                        outputs[n][t] = None
                        break
    return [
        TpuSegment(
            number=n + 1,
            ops=tuple(ops[n]),
            inputs=tuple(inputs[n]),
            outputs=tuple(outputs[n]),
            cpu_after=tuple(cpu_after[n]),
            macs=sum(macs[i] for i in ops[n]),
        )
        for n in range(len(order))
    ]


def unmap_boundary_quantizes(
    sg: Subgraph, candidates: Sequence[int], supported: Sequence[bool], on_tpu: list[bool]
) -> set[int]:
    """Take the output QUANTIZEs (`placement.output_quantizes`) fed by the CPU off the Edge TPU
    (also where they would have made a segment of their own, the first one or, with -a, any);
    returns their indices. Producers come before consumers: one pass in op order settles
    chains."""
    unmapped = set()
    producers = sg.producers
    for i in candidates:
        if not supported[i]:
            continue
        feeding = [producers[t] for t in sg.operators[i].inputs if t >= 0]
        if any(p is not None and not on_tpu[p] for p in feeding):
            on_tpu[i] = False
            unmapped.add(i)
    return unmapped


def blame(
    supported: Sequence[bool],
    epochs: Sequence[int],
    on_tpu: Sequence[bool],
    preds,
    anchor_of: dict[int, int],
) -> list[int | None]:
    """Per op: the earliest root cause after the segment that it depends on (None for none).
    An op of a cause unit (`analyze.causes`) stands for its unit's anchor."""
    seg = segment_epoch(supported)
    cause: list[int | None] = [None] * len(supported)
    for i, ok in enumerate(supported):
        if on_tpu[i] or epochs[i] < seg:
            continue
        upstream = [cause[p] for p in preds[i] if cause[p] is not None]
        earliest = min(upstream) if upstream else None  # type: ignore[type-var]
        cause[i] = earliest if earliest is not None or ok else anchor_of.get(i, i)
    return cause
