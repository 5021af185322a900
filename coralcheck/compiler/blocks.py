"""The per-model summary block of a compiler output ("Input model: ... Number of operations
that will run on CPU: ..."), read field by field: the field names and how each value parses
(`parse_size` for the compiler's "2.87MiB"), and the counts a block leaves implicit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from coralcheck.compiler.failures import INT
from coralcheck.compiler.records import ByteSize, ModelBlock, OpRow

_SIZE = re.compile(r"(\d{1,12}(?:\.\d{1,6})?)\s*(B|KiB|MiB|GiB|KB|MB|GB)", re.IGNORECASE)
_UNIT_BYTES = {
    "b": 1,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "kb": 2**10,
    "mb": 2**20,
    "gb": 2**30,
}


def parse_size(text: str) -> ByteSize | None:
    """`2.87MiB` / `187.00KiB` / `0.00B` → ByteSize; None when the text is not a size.

    Units are binary, as the compiler prints them; "KB"/"MB"/"GB" (seen in hand-edited pastes)
    are read the same way.
    """
    stripped = text.strip()
    match = _SIZE.fullmatch(stripped)
    if not match:
        return None
    factor = _UNIT_BYTES[match.group(2).lower()]
    value = (Decimal(match.group(1)) * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return ByteSize(stripped, int(value))


def parse_int(text: str) -> int | None:
    """A bounded non-negative integer, or None."""
    match = re.fullmatch(INT, text.strip())
    return int(match.group(1)) if match else None


def parse_path(text: str) -> str | None:
    """A path value; None when empty."""
    return text.strip() or None


# The totals a console log prints, in report order: (JSON key, ModelBlock field, text label).
TOTALS = (
    ("ops_total", "known_total_ops", "ops"),
    ("ops_tpu", "ops_tpu", "ops on the Edge TPU"),
    ("ops_cpu", "ops_cpu", "ops on the CPU"),
    ("tpu_segments", "tpu_subgraphs", "Edge TPU segments"),
)
TOTAL_LABEL = {key: label for key, _, label in TOTALS}

# "<key>: <value>" lines of a model block → (ModelBlock field, value parser).
BLOCK_FIELDS: dict[str, tuple[str, Callable[[str], object]]] = {
    "Input model": ("input_model", parse_path),
    "Input size": ("input_size", parse_size),
    "Output model": ("output_model", parse_path),
    "Output size": ("output_size", parse_size),
    "On-chip memory available for caching model parameters": ("on_chip_available", parse_size),
    "On-chip memory used for caching model parameters": ("on_chip_used", parse_size),
    "On-chip memory remaining for caching model parameters": ("on_chip_remaining", parse_size),
    "Off-chip memory used for streaming uncached model parameters": (
        "off_chip_streamed",
        parse_size,
    ),
    "Number of Edge TPU subgraphs": ("tpu_subgraphs", parse_int),
    "Total number of operations": ("total_ops", parse_int),
    "Operation log": ("operation_log", parse_path),
    "Number of operations that will run on Edge TPU": ("ops_tpu", parse_int),
    "Number of operations that will run on CPU": ("ops_cpu", parse_int),
}
BLOCK_FIELD = re.compile("(" + "|".join(re.escape(key) for key in BLOCK_FIELDS) + r")\s*:\s*(.*)")


@dataclass
class BlockDraft:
    """A model block being filled line by line."""

    values: dict[str, Any] = field(default_factory=dict)
    rows: list[OpRow] = field(default_factory=list)
    not_all_mapped_notice: bool = False
    # True once a line that is not part of the block followed it: a cut-off excerpt that ends
    # inside the block cannot tell whether the "not all operations" paragraph would follow.
    closed: bool = False

    def freeze(self, run_succeeded: bool | None) -> ModelBlock:
        """The immutable block, with ops_tpu/ops_cpu derived where the log allows it."""
        block = ModelBlock(**self.values, rows=tuple(self.rows))
        return _with_derived_counts(block, self.not_all_mapped_notice, self.closed, run_succeeded)


def _with_derived_counts(
    block: ModelBlock, notice: bool, closed: bool, run_succeeded: bool | None
) -> ModelBlock:
    """Fill ops_tpu/ops_cpu the compiler left implicit (all-mapped run, cut-off count line)."""
    total, tpu, cpu = block.total_ops, block.ops_tpu, block.ops_cpu
    if total is None or (tpu is not None and cpu is not None):
        return block
    if tpu is None and cpu is None:
        all_mapped = not notice and closed and run_succeeded is True and block.tpu_subgraphs != 0
        if not all_mapped:
            return block
        tpu, cpu = total, 0
    elif tpu is not None:
        cpu = total - tpu
    elif cpu is not None:
        tpu = total - cpu
    if tpu is None or cpu is None or tpu < 0 or cpu < 0:
        return block
    return replace(block, ops_tpu=tpu, ops_cpu=cpu, ops_counts_derived=True)
