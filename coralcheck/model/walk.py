"""The verified walk over a vector of tables: a fast read where it can, the checked one where not.

Large models hold 10,000+ tensors and thousands of buffers and ops, so each kind of table has
two reads (`coralcheck.model.tensors`, `.operators`, `.buffers`):

- a *fast* one that goes through the tables in one loop (a third of the time of the plain
  reads): it reads all of a table's fields in one call with the reader of its vtable (tables
  share a few vtables: each reader is built once, `layouts`; where tables of one vtable follow
  each other, the reader of the table before is tried first, and the first value it reads, the
  offset to the vtable, tells whether it was the right one) and its vectors with as few calls
  as it can, checking the table as `Table` would. It stops at the first table with anything
  unusual and returns those it read;
- a *plain* one through `Table`, which gives the same record or raises the precise error.

`ReadState.tables` reads the table the fast loop stopped at with the plain read and resumes the
fast loop after it. Tables are thus read in file order, and the fast loop spends the read budget
(`FlatBuffer.read_budget`) exactly as the plain reads do.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any, TypeVar

from coralcheck.model.flatbuf import FlatBuffer, Table
from coralcheck.model.graph import Quantization

_R = TypeVar("_R")


class ReadState:
    """The file being read and what its reads share."""

    def __init__(self, buf: FlatBuffer) -> None:
        self.buf = buf
        self.data, self.size = buf.data, buf.size
        # Equal quantizations share one record: less memory, fewer objects to allocate (the
        # tensors around an op often share theirs).
        self.quantizations: dict[tuple, Quantization] = {}
        # The same for one scale and one zero point (nearly every tensor), by (scale, zero
        # point, quantized dimension): found without making their tuples.
        self.per_tensor_quantizations: dict[tuple[float, int, int], Quantization] = {}
        # (options type, *fingerprint) -> decoded options.
        self.options_cache: dict[tuple[int, int, bytes], tuple[str | None, MappingProxyType]] = {}

    def again(self, pos: int, what: tuple[str, int], parent: Table) -> Table:
        """The table at `pos` that `Table.table_positions` already counted."""
        self.buf.read_budget += 4  # the Table spends it again
        return Table(self.buf, pos, what, parent)

    def tables(
        self,
        parent: Table,
        slot: int,
        what: str,
        fast: Callable[[int, list[int]], list[_R]],
        plain: Callable[[int, Table], _R],
    ) -> list[_R]:
        """The records of the vector of tables `what` (field `slot` of `parent`): as many as
        `fast(first, positions)` reads at a time, and each table it stops at read by
        `plain(index, table)`. Before the first of those, every table from there on is checked
        as `Table.tables` checks them: a bad one raises the error the plain reads would raise."""
        positions = parent.table_positions(slot, what)
        records: list[_R] = []
        checked = False
        while True:
            records += fast(len(records), positions)
            i = len(records)
            if i == len(positions):
                return records
            if not checked:
                parent.check_tables(positions, i, what)
                checked = True
            records.append(plain(i, self.again(positions[i], (what, i), parent)))


def layouts(
    buf: FlatBuffer, kinds: tuple[str, ...], offsets: Callable[[tuple[int, ...]], tuple[int, ...]]
) -> Callable[[int], tuple[Any, ...] | None]:
    """`find(vt)`: how a fast read reads the tables of the vtable at `vt`, as one tuple of
    locals: `(unpack, fill, pick, obj_len, *offsets(offset of each field by slot))` (see
    `FlatBuffer.fields_reader`); None when the plain read must read them. The tables of a file
    share a few vtables (often in turn: activations, weights, biases): each is looked up once."""
    readers = buf.reader_table(kinds)
    known: dict[int, tuple[Any, ...] | None] = {}

    def find(vt: int) -> tuple[Any, ...] | None:
        if vt in known:
            return known[vt]
        reader = readers.get(vt) or buf.fields_reader(vt, kinds)
        found = known[vt] = None if reader is None else (*reader[:4], *offsets(reader[4]))
        return found

    return find


# `tuple.__new__(Record, values)` builds a NamedTuple record without the Python-level `__new__`
# the class generates: ~0.1 µs instead of ~0.2 µs, for each of tens of thousands of records.
new_record: Callable[[type[_R], tuple[Any, ...]], _R] = tuple.__new__  # type: ignore[assignment]
