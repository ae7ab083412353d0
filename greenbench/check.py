"""`greenbench check`: a validity verdict for every measured cell and phase, by stated rules.

A cell is valid when all of these hold; each one that fails is a reason in its verdict.
- every window is valid (net energy > 0, counters plausible and moving, other processes under
  a quarter of the CPU, idle settled and the same before and after the windows, no call far
  slower than the rest carrying a share of the window: see records.window_figures), and at
  least MIN_VALID_WINDOWS are;
- every window lasted the meter's resolution (protocol.RELIABLE_WINDOW_S, `reliable`);
- J per unit varies at most MAX_CV over its windows;
- no other process computed on a measured GPU;
- no window's GPU trace shows the SM clock fall more than THROTTLE_DROP below its highest
  value while the GPU was busy (thermal or power throttling; not judged in cells run under a
  set power limit, whose clocks the driver moves to hold it: that is what was asked for);
- every method label is one greenbench knows (energy.methods).

`compare` and the report's ratio views leave invalid cells out unless asked (leave_out_invalid);
tables and charts mark them (group_verdicts).
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from greenbench.energy.meter import COMPONENTS
from greenbench.energy.methods import METHODS
from greenbench.gpu_clocks import busy_clocks_of_text
from greenbench.protocol import RELIABLE_WINDOW_S
from greenbench.stats import SUMMARY_KEYS, as_keys, floats, summarize

MIN_VALID_WINDOWS = 2  # fewer give no interval
MAX_CV = 0.10
THROTTLE_DROP = 0.10


@dataclass(frozen=True)
class Verdict:
    run_id: str
    cell_id: str
    phase: str
    valid: bool
    reasons: tuple[str, ...]


CELL = ["run_id", "cell_id", "phase"]  # what a verdict is about
# the columns the rules read: judging a narrow frame keeps thousands of cells fast
RULE_COLUMNS = [
    *CELL,
    "repetition",
    "valid",
    "validity",
    "reliable",
    "energy_per_unit_j",
    "gpu_foreign_pids",
    "gpu_trace",
    "gpu_busy_samples",
    "gpu_busy_sm_clock_low_mhz",
    "gpu_busy_sm_clock_high_mhz",
    "power_limit_w",
    *(f"method_{c}" for c in COMPONENTS),
]


def verdicts(frame: pd.DataFrame) -> list[Verdict]:
    """One verdict per run, cell and phase that has measured (`ok`) windows."""
    cells, found = _judge(frame)
    return [
        Verdict(str(run_id), str(cell_id), str(phase), i not in found, tuple(found.get(i, ())))
        for i, (run_id, cell_id, phase) in enumerate(cells)
    ]


def with_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the records with their cell's verdict on every row: `cell_valid` and
    `cell_reasons` (a tuple). The functions below read these columns where a frame has them,
    so a frame judged once is not judged again."""
    cells, found = _judge(frame)
    bad = {tuple(str(key) for key in cells[i]): tuple(found[i]) for i in sorted(found)}
    out = frame.copy(deep=False)  # only the two verdict columns are new
    if not len(out):
        out["cell_reasons"], out["cell_valid"] = [], []
        return out
    # failed and skipped rows have no verdict: valid, with nothing to compare; a row belongs
    # to a cell by the text of its keys, so only rows of a run with an invalid cell are looked up
    reasons = np.empty(len(out), dtype=object)
    reasons.fill(())
    valid = np.ones(len(out), dtype=bool)
    if bad:
        keys = [out[c].astype(str) for c in CELL]
        rows = np.flatnonzero(keys[0].isin({cell[0] for cell in bad}).to_numpy())
        for row, *cell in zip(rows, *(k.iloc[rows] for k in keys), strict=True):
            cell_reasons = bad.get(tuple(cell))
            if cell_reasons is not None:
                reasons[row], valid[row] = cell_reasons, False
    out["cell_reasons"] = reasons
    out["cell_valid"] = valid
    return out


def _judged(frame: pd.DataFrame) -> pd.DataFrame:
    return frame if "cell_valid" in frame else with_verdicts(frame)


def leave_out_invalid(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The records of every cell but the invalid ones, and how many cells were left out.

    Failed and skipped records stay: they carry no figures to compare.
    """
    judged = _judged(frame)
    invalid = ~judged["cell_valid"].astype(bool)
    if not invalid.any():
        return judged, 0
    left_out = len(judged.loc[invalid, CELL].drop_duplicates())
    return judged[~invalid].reset_index(drop=True), left_out


def group_verdicts(frame: pd.DataFrame, keys: Sequence[str] = SUMMARY_KEYS) -> pd.DataFrame:
    """One row per group of `ok` records, keyed as stats.summarize_frame keys its rows (missing
    keys read ""), with `cell_valid` (every cell of the group valid) and `cell_reasons` (a tuple:
    the invalid cells' reasons, each led by its run where the group holds several runs)."""
    judged = _judged(frame)
    columns = [*dict.fromkeys([*keys, *CELL]), "cell_reasons"]
    narrow = judged[[c for c in dict.fromkeys([*columns, "status"]) if c in judged]]
    ok = as_keys(narrow, keys)
    ok = ok.loc[ok["status"] == "ok", columns]
    cells = ok.drop_duplicates(CELL)
    grouped = cells.groupby(list(keys), sort=False, dropna=False)
    number = grouped.ngroup().to_numpy()
    several_runs = grouped["run_id"].nunique().to_numpy() > 1
    reasons: dict[int, list[str]] = defaultdict(list)
    invalid = np.flatnonzero(cells["cell_reasons"].map(len).to_numpy(dtype=bool))
    for index, run_id, cell_reasons in zip(
        number[invalid],
        cells["run_id"].iloc[invalid],
        cells["cell_reasons"].iloc[invalid],
        strict=True,
    ):
        lead = f"run {run_id}: " if several_runs[index] else ""
        reasons[int(index)] += [f"{lead}{reason}" for reason in cell_reasons]
    rows = []
    for index, group in enumerate(grouped.size().index.tolist()):
        found = tuple(reasons.get(index, ()))
        rows.append(
            {
                **dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True)),
                "cell_valid": not found,
                "cell_reasons": found,
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "cell_valid", "cell_reasons"])


def with_group_verdicts(
    summary: pd.DataFrame, frame: pd.DataFrame, keys: Sequence[str] = SUMMARY_KEYS
) -> pd.DataFrame:
    """`summary` (from stats.summarize_frame(frame, keys)) with each row's group verdict."""
    if summary.empty:
        return summary.assign(
            cell_valid=pd.Series(dtype=bool), cell_reasons=pd.Series(dtype=object)
        )
    marked = summary.merge(group_verdicts(frame, keys), on=list(keys), how="left")
    marked["cell_valid"] = marked["cell_valid"].astype(object).fillna(True).astype(bool)
    marked["cell_reasons"] = [r if isinstance(r, tuple) else () for r in marked["cell_reasons"]]
    return marked


def _judge(frame: pd.DataFrame) -> tuple[list[tuple[Any, Any, Any]], dict[int, list[str]]]:
    """Every cell's keys (in the order of their first `ok` row) and the reasons of the invalid
    ones, by their index in that list. Each rule runs over all cells at once; only the cells a
    rule finds are turned into text, one value at a time, as the rule reads it."""
    ok = frame.loc[frame["status"] == "ok", [c for c in RULE_COLUMNS if c in frame]]
    if "valid" not in ok:  # records from before the column count as valid (stats.valid_mask)
        ok = ok.assign(valid=True)
    grouped = ok.groupby(CELL, sort=False)  # a row with a missing key is in no cell
    cells = grouped.size().index.tolist()
    if not cells:
        return [], {}
    number = grouped.ngroup()
    keyed = number.notna().to_numpy()
    ok, cell = ok[keyed], number[keyed].to_numpy(dtype=np.intp)
    counted = _counted(ok["valid"])
    found: dict[int, list[str]] = defaultdict(list)
    for rule in (
        _invalid_windows(ok, cell, counted),
        _too_few_valid(cell, counted, len(cells)),
        _short_windows(ok, cell, len(cells)),
        _spread(ok, cell, counted, len(cells)),
        _foreign_processes(ok, cell),
        _throttled_cells(ok, cell, len(cells)),
        _unknown_methods(ok, cell),
    ):
        for index, reason in rule:
            found[index].append(reason)
    return cells, dict(found)


Reasons = Iterator[tuple[int, str]]  # (cell index, reason), in row order within a cell


def _invalid_windows(ok: pd.DataFrame, cell: np.ndarray, counted: np.ndarray) -> Reasons:
    rows = np.flatnonzero(~counted)
    repetitions = ok["repetition"].iloc[rows].tolist()
    why = ok["validity"].iloc[rows].tolist()
    for index, repetition, validity in zip(cell[rows], repetitions, why, strict=True):
        yield int(index), f"repetition {_number(repetition)}: {validity}"


def _too_few_valid(cell: np.ndarray, counted: np.ndarray, cells: int) -> Reasons:
    valid = np.bincount(cell[counted], minlength=cells)
    for index in np.flatnonzero(valid < MIN_VALID_WINDOWS):
        yield (
            int(index),
            f"{valid[index]} valid window(s): at least {MIN_VALID_WINDOWS} give an interval",
        )


def _short_windows(ok: pd.DataFrame, cell: np.ndarray, cells: int) -> Reasons:
    short = np.bincount(cell[_falsy(ok["reliable"])], minlength=cells)
    for index in np.flatnonzero(short):
        yield (
            int(index),
            f"{short[index]} window(s) shorter than {RELIABLE_WINDOW_S:.0f} s, the meter's "
            "resolution: raise --min-window",
        )


def _spread(ok: pd.DataFrame, cell: np.ndarray, counted: np.ndarray, cells: int) -> Reasons:
    """J per unit's CV over each cell's valid windows, as stats.summarize gives it: computed
    for all cells at once, then again by summarize itself for the cells near or over MAX_CV,
    so that the verdict and the printed figure are summarize's to the last bit."""
    energy = ok["energy_per_unit_j"]
    rows = np.flatnonzero(counted)
    values = _floats(energy.iloc[rows])
    finite = np.isfinite(values)
    rows, values, of = rows[finite], values[finite], cell[rows[finite]]
    n = np.bincount(of, minlength=cells)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(of, weights=values, minlength=cells) / n
        variance = np.bincount(of, weights=(values - mean[of]) ** 2, minlength=cells) / (n - 1)
        cv = np.sqrt(variance) / np.abs(mean)
    near = np.flatnonzero((n >= 2) & ~(cv < MAX_CV * (1 - 1e-6)))
    if not len(near):
        return
    rows = np.flatnonzero(counted & np.isin(cell, near))
    order = np.argsort(cell[rows], kind="stable")
    rows = rows[order]
    values_of = energy.iloc[rows].tolist()
    for index, part in itertools.groupby(
        zip(cell[rows], values_of, strict=True), key=lambda pair: pair[0]
    ):
        exact = summarize([value for _, value in part]).cv
        if exact > MAX_CV:
            yield (
                int(index),
                f"J per unit varies {exact:.0%} over its windows (at most {MAX_CV:.0%})",
            )


def _foreign_processes(ok: pd.DataFrame, cell: np.ndarray) -> Reasons:
    column = ok["gpu_foreign_pids"]
    rows = np.flatnonzero(_present_mask(column))
    parsed: dict[Any, Any] = {}
    pids: dict[int, set[Any]] = defaultdict(set)
    for index, text in zip(cell[rows], column.iloc[rows].tolist(), strict=True):
        if text not in parsed:
            parsed[text] = json.loads(text)
        pids[int(index)].update(parsed[text])
    for index in sorted(pids):
        if pids[index]:
            yield (
                index,
                f"other processes computed on the measured GPU (pids {sorted(pids[index])})",
            )


def _throttled_cells(ok: pd.DataFrame, cell: np.ndarray, cells: int) -> Reasons:
    """Throttling in the windows of cells run without a set power limit, in row order."""
    limited = np.zeros(cells, dtype=bool)
    if "power_limit_w" in ok:
        limited[cell[_present_mask(ok["power_limit_w"])]] = True
    judged = ~limited[cell]
    found: list[tuple[int, str]] = []  # (row, reason)
    if "gpu_busy_samples" in ok:  # windows recorded with their busy clock range: all at once
        counted = _present_mask(ok["gpu_busy_samples"]) & judged
        low = floats(ok["gpu_busy_sm_clock_low_mhz"]).to_numpy()
        high = floats(ok["gpu_busy_sm_clock_high_mhz"]).to_numpy()
        with np.errstate(invalid="ignore"):
            fell = np.flatnonzero(counted & (low < (1 - THROTTLE_DROP) * high))
        repetitions = ok["repetition"].iloc[fell].tolist()
        for row, repetition in zip(fell.tolist(), repetitions, strict=True):
            found.append((row, _throttled(repetition, high[row], low[row])))
        judged = judged & ~counted
    rows = np.flatnonzero(_present_mask(ok["gpu_trace"]) & judged)  # older records: the trace
    repetitions = ok["repetition"].iloc[rows].tolist()
    traces = ok["gpu_trace"].iloc[rows].tolist()
    for row, repetition, trace in zip(rows.tolist(), repetitions, traces, strict=True):
        reason = _throttling(repetition, trace)
        if reason:
            found.append((row, reason))
    for at, why in sorted(found):
        yield int(cell[at]), why


def _unknown_methods(ok: pd.DataFrame, cell: np.ndarray) -> Reasons:
    labels: dict[int, set[Any]] = defaultdict(set)
    for component in COMPONENTS:
        column = ok[f"method_{component}"]
        rows = np.flatnonzero(_present_mask(column) & ~column.isin(list(METHODS)).to_numpy())
        for index, label in zip(cell[rows], column.iloc[rows].tolist(), strict=True):
            labels[int(index)].add(label)
    for index in sorted(labels):
        yield from ((index, f"unknown method label '{m}'") for m in sorted(labels[index]))


def _throttling(repetition: Any, trace: str) -> str | None:
    """The reason one window's GPU trace shows throttling, None if it does not."""
    busy = busy_clocks_of_text(trace)
    low, high = busy.low_mhz, busy.high_mhz
    if low is not None and high is not None and low < (1 - THROTTLE_DROP) * high:
        return _throttled(repetition, high, low)
    return None


def _throttled(repetition: Any, high: Any, low: Any) -> str:
    return (
        f"repetition {_number(repetition)}: the SM clock fell from {high:.0f} to {low:.0f} MHz "
        "under load (thermal or power throttling)"
    )


def _number(value: Any) -> Any:
    """A repetition as written: 1, not 1.0 (a column with failed rows holds floats)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _numpy_kind(values: pd.Series) -> str:
    """The numpy dtype kind of a plain numpy column; "" for object and extension columns."""
    dtype = values.dtype
    return dtype.kind if isinstance(dtype, np.dtype) and dtype.kind in "biuf" else ""


def _counted(valid: pd.Series) -> np.ndarray:
    """The windows that count: `valid` False (numpy's False_ too, or 0) marks an invalid one;
    missing counts as valid (stats.valid_mask)."""
    kind = _numpy_kind(valid)
    if kind == "b":
        return valid.to_numpy(copy=True)
    if kind:
        return valid.to_numpy() != 0
    return np.asarray(valid.astype(object).ne(False), dtype=bool)


def _falsy(values: pd.Series) -> np.ndarray:
    """Where a value is false as Python's bool() reads it (None is; NaN is not)."""
    kind = _numpy_kind(values)
    if kind == "b":
        return ~values.to_numpy()
    if kind:
        return values.to_numpy() == 0
    return np.fromiter((not v for v in values.tolist()), dtype=bool, count=len(values))


def _floats(values: pd.Series) -> np.ndarray:
    """The values as floats, None as NaN (stats.summarize drops both)."""
    if _numpy_kind(values):
        return values.to_numpy(dtype=float)
    return np.array([math.nan if v is None else float(v) for v in values.tolist()], dtype=float)


def _present_mask(values: pd.Series) -> np.ndarray:
    """Where a value is not missing: missing is None or a float NaN (pd.NA is a value)."""
    kind = _numpy_kind(values)
    if kind == "f":
        return ~np.isnan(values.to_numpy())
    if kind:
        return np.ones(len(values), dtype=bool)
    present = ~values.isna().to_numpy()
    rows = np.flatnonzero(~present)
    candidates = values.iloc[rows].tolist()
    if not all(t is type(None) or issubclass(t, float) for t in set(map(type, candidates))):
        present[rows] = [not _missing(v) for v in candidates]
    return present


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
