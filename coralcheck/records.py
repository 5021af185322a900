"""The base of the records that analysis fills in (`MutableRecord`: a report, an outcome), and how
they pickle: a worker process sends the report of a large model back pickled, and a long list of
NamedTuples (3,500 op placements) pickles as rows (`_RecordRows`), not record by record."""

from collections.abc import Callable
from typing import Any


class MutableRecord:
    """A record whose fields (`_fields`, also its `__slots__`) can be assigned: `_replace`,
    equality and repr as a NamedTuple or a dataclass has them."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _replace(self, **changes: Any) -> Any:
        """A shallow copy with `changes` (field name -> value)."""
        unknown = changes.keys() - set(self._fields)
        if unknown:
            raise ValueError(f"Got unexpected field names: {sorted(unknown)!r}")
        copy = object.__new__(type(self))
        for name in self._fields:
            setattr(copy, name, changes[name] if name in changes else getattr(self, name))
        return copy

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._fields)

    __hash__ = None  # type: ignore[assignment]  # mutable: equal values, not one identity

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({values})"

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """Pickled as its field values, long lists of records as rows (`_RecordRows`): a worker
        process sends the report of a large model back, and pickle writes each NamedTuple
        through a Python-level `__getnewargs__` (6 ms for 3,500 op placements, 0.7 ms as
        rows)."""
        values = tuple(_compact(getattr(self, name)) for name in self._fields)
        return _rebuilt_record, (type(self), values)


def _rebuilt_record(kind: type[MutableRecord], values: tuple[Any, ...]) -> MutableRecord:
    record = object.__new__(kind)
    for name, value in zip(kind._fields, values, strict=True):
        object.__setattr__(record, name, value)
    return record


class _RecordRows:
    """A list of records of one NamedTuple class, pickled as the class and plain tuples (each
    made a record again by `_record_list` when unpickled)."""

    __slots__ = ("kind", "rows")

    def __init__(self, kind: type, rows: list[tuple[Any, ...]]) -> None:
        self.kind, self.rows = kind, rows

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return _record_list, (self.kind, self.rows)


def _record_list(kind: Any, rows: list[tuple[Any, ...]]) -> list[Any]:
    return list(map(kind._make, rows))


def _compact(value: Any) -> Any:
    """A list of 16 or more records of one NamedTuple class as `_RecordRows`, else `value`."""
    if type(value) is not list or len(value) < 16:
        return value
    kind = type(value[0])
    if not (issubclass(kind, tuple) and hasattr(kind, "_make")):
        return value
    if any(type(v) is not kind for v in value):
        return value
    return _RecordRows(kind, list(map(tuple, value)))
