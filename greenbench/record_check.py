"""Is a row read back from records.jsonl one that the readers can use? Types from `Record`.

Rows are checked on read because a results folder outlives the code that wrote it and can be
edited by hand: one row with `attempt: "2"` or a list as `workload` would otherwise break every
comparison of the folder. The expected type of each column is the `Record` TypedDict's, so the
schema is written once. Checking is cheap: rows written by one producer share their keys and
value types, and a shape once found good is not looked at again.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from greenbench.records import Record

_NUMBERS = frozenset({int, float})  # JSON writes 2.0 as 2.0 and 2 as 2: either is a number
_TYPES_OF: dict[Any, frozenset[type]] = {
    str: frozenset({str}),
    int: _NUMBERS,
    float: _NUMBERS,
    bool: frozenset({bool}),
}


@dataclass(frozen=True)
class Column:
    """What one column's values may be."""

    types: frozenset[type]
    nullable: bool  # None allowed (and NaN, pandas' missing value, as a row from a frame has)
    choices: frozenset[str] | None = None  # a Literal's values


def _column(hint: Any) -> Column:
    args = typing.get_args(hint)
    nullable = isinstance(hint, types.UnionType) and type(None) in args
    if nullable:
        (hint,) = [a for a in args if a is not type(None)]
    if typing.get_origin(hint) is typing.Literal:
        literal = frozenset(typing.get_args(hint))
        return Column(frozenset({str}), nullable, literal)
    return Column(_TYPES_OF[hint], nullable)


SCHEMA: dict[str, Column] = {
    name: _column(hint) for name, hint in typing.get_type_hints(Record).items()
}
REQUIRED = frozenset(name for name, column in SCHEMA.items() if not column.nullable)
_CHOICES = {name: c for name, c in SCHEMA.items() if c.choices is not None}
_FINITE = [name for name, c in SCHEMA.items() if not c.nullable and c.types >= _NUMBERS]
# an ok row measured a window of some unit: readers label and split by it
OK_NEEDS = ("unit",)
_good_shapes: set[tuple[tuple[str, ...], tuple[type, ...]]] = set()
_MAX_SHAPES = 4096


def row_problem(row: Any) -> str | None:
    """Why `row` (a parsed JSON line) is no record the readers can use; None when it is one."""
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    missing = REQUIRED - row.keys()
    if missing:
        return f"no {', '.join(sorted(missing))}"
    shape = (tuple(row), tuple(map(type, row.values())))
    if shape not in _good_shapes:
        problem, by_type_alone = _type_problem(row)
        if problem is not None:
            return problem
        if by_type_alone and len(_good_shapes) < _MAX_SHAPES:
            _good_shapes.add(shape)
    return _value_problem(row)


def _type_problem(row: Mapping[str, Any]) -> tuple[str | None, bool]:
    """Why a value has the wrong type; and whether the types alone settled it (no NaN case)."""
    by_type_alone = True
    for name, value in row.items():
        column = SCHEMA.get(name)
        if column is None or type(value) in column.types or (value is None and column.nullable):
            continue  # an unknown column (from a newer version) is kept, not checked
        if column.nullable and type(value) is float and math.isnan(value):
            by_type_alone = False
            continue
        wanted = " or ".join(sorted(t.__name__ for t in column.types))
        return f"{name} is {_shown(value)}, not {wanted}{' or null' * column.nullable}", False
    return None, by_type_alone


def _value_problem(row: Mapping[str, Any]) -> str | None:
    """What a row's shape cannot settle: a Literal's values, NaN in a required number."""
    for name, column in _CHOICES.items():
        value = row.get(name)
        if value is not None and value not in (column.choices or ()):
            choices = ", ".join(sorted(column.choices or ()))
            return f"{name} is {_shown(value)}, not one of {choices}"
    for name in _FINITE:
        if type(row[name]) is float and not math.isfinite(row[name]):
            return f"{name} is {row[name]}, not a finite number"
    if row["status"] == "ok":
        for name in OK_NEEDS:
            if not isinstance(row.get(name), str):
                return f"{name} is {_shown(row.get(name))} in an ok row, not a string"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"
