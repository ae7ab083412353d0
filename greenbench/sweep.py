"""Sweeps: a numeric workload parameter given a list of values runs one cell per value.

`[params.slm-135m] batch = [1, 4, 16]` in a suite, `--param batch=1,4,16` on the command line
or `params={"slm-135m": {"batch": [1, 4]}}` from Python; several swept keys of one workload
form their product. This module checks such a list and expands a workload's overrides into
one plain set per cell; records name the values in `params` and in the cell's id.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from greenbench.cell import Cell


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sweepable(defaults: Mapping[str, Any], key: str) -> bool:
    """Only parameters whose default is a number take a list of values."""
    return key in defaults and is_number(defaults[key])


def sweep_problem(key: str, values: Any, defaults: Mapping[str, Any]) -> str | None:
    """Why `values` (a list given for `key`) is not a sweep greenbench runs; None when it is."""
    if not isinstance(values, list):
        return None
    if not sweepable(defaults, key):
        if key in defaults and isinstance(defaults[key], list):
            return None  # a parameter that takes a list as its one value (phases)
        return f"'{key}' cannot be swept: only numeric parameters take a list of values"
    if not values:
        return f"'{key}': an empty list sweeps nothing; give at least one value"
    for value in values:
        if not is_number(value):
            return f"'{key}': a sweep takes numbers, got {value!r}"
    if len(set(values)) != len(values):
        repeated = next(v for i, v in enumerate(values) if v in values[:i])
        return f"'{key}': {json.dumps(repeated)} is given twice; give each value once"
    return None


def swept_keys(overrides: Mapping[str, Any], defaults: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys of `overrides` that sweep, in their given order."""
    return tuple(k for k, v in overrides.items() if isinstance(v, list) and sweepable(defaults, k))


def expand(
    overrides: Mapping[str, Any], defaults: Mapping[str, Any]
) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """One plain set of overrides per cell (the product of the swept lists, first key
    outermost), each with the swept keys; overrides without a sweep give one set."""
    keys = swept_keys(overrides, defaults)
    if not keys:
        return [(dict(overrides), ())]
    combos = itertools.product(*(overrides[k] for k in keys))
    return [({**overrides, **dict(zip(keys, combo, strict=True))}, keys) for combo in combos]


def comma_sweep(raw: str) -> list[Any] | None:
    """`1,4,16` -> [1, 4, 16]; None for text that is not a comma list. Raises ValueError
    naming the first item that is not a number."""
    if "," not in raw or raw[0] in "\"'[{":
        return None
    values: list[Any] = []
    for part in raw.split(","):
        text = part.strip()
        try:
            value = json.loads(text) if text else None
        except json.JSONDecodeError:
            value = None
        if not is_number(value):
            raise ValueError(f"a comma list sweeps numbers; '{text}' is not one")
        values.append(value)
    return values


def sweeps_text(cells: Iterable[Cell]) -> str:
    """`slm-135m batch=1,4,16`: each workload's swept values, `; `-separated ('' if none)."""
    found: dict[str, dict[str, list[Any]]] = {}
    for cell in cells:
        for key in cell.swept:
            values = found.setdefault(cell.workload, {}).setdefault(key, [])
            if cell.params[key] not in values:
                values.append(cell.params[key])

    def listed(key: str, given: list[Any]) -> str:
        return f"{key}={','.join(json.dumps(v) for v in given)}"

    return "; ".join(
        f"{workload} " + " ".join(listed(k, vs) for k, vs in keys.items())
        for workload, keys in found.items()
    )


def _loads(params: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if isinstance(params, Mapping):
        return dict(params)
    if not isinstance(params, str) or not params:
        return {}
    try:
        loaded = json.loads(params)
    except json.JSONDecodeError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def varying_params(rows: Iterable[tuple[Any, Any]]) -> list[str]:
    """The parameter keys whose value differs between rows of the same group: `rows` are
    (group, params JSON) pairs, e.g. (workload, params). In first-seen key order."""
    loaded = [(group, _loads(params)) for group, params in rows]
    order = list(dict.fromkeys(key for _, values in loaded for key in values))
    seen: dict[Any, dict[str, set[str]]] = {}
    for group, values in loaded:
        by_key = seen.setdefault(group, {})
        for key in order:
            by_key.setdefault(key, set()).add(json.dumps(values.get(key), sort_keys=True))
    return [k for k in order if any(len(by_key[k]) > 1 for by_key in seen.values())]


def param_value(params: str | Mapping[str, Any] | None, key: str) -> Any:
    """One parameter of a record's params (JSON); None when it has none of that name."""
    return _loads(params).get(key)


def without_param(params: str | Mapping[str, Any] | None, key: str) -> str:
    """The params JSON (sorted keys, as records write it) less one key."""
    values = _loads(params)
    values.pop(key, None)
    return json.dumps(values, sort_keys=True)
