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

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from greenbench.energy.meter import COMPONENTS
from greenbench.energy.methods import METHODS
from greenbench.protocol import RELIABLE_WINDOW_S
from greenbench.stats import SUMMARY_KEYS, as_keys, summarize

MIN_VALID_WINDOWS = 2  # fewer give no interval
MAX_CV = 0.10
THROTTLE_DROP = 0.10
BUSY_PCT = 50.0  # a trace sample counts as under load at this GPU utilization or more


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
    "power_limit_w",
    *(f"method_{c}" for c in COMPONENTS),
]


def verdicts(frame: pd.DataFrame) -> list[Verdict]:
    """One verdict per run, cell and phase that has measured (`ok`) windows."""
    ok = frame.loc[frame["status"] == "ok", [c for c in RULE_COLUMNS if c in frame]]
    if "valid" not in ok:  # records from before the column count as valid (stats.valid_mask)
        ok = ok.assign(valid=True)
    # plain lists per column: the rules run per cell, where pandas' overhead would dominate
    columns = {c: ok[c].tolist() for c in ok}
    found = []
    for (run_id, cell_id, phase), rows in ok.groupby(CELL, sort=False).indices.items():
        part = {c: [values[i] for i in rows] for c, values in columns.items()}
        reasons = tuple(_reasons(part))
        found.append(Verdict(str(run_id), str(cell_id), str(phase), not reasons, reasons))
    return found


def with_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the records with their cell's verdict on every row: `cell_valid` and
    `cell_reasons` (a tuple). The functions below read these columns where a frame has them,
    so a frame judged once is not judged again."""
    bad = {(v.run_id, v.cell_id, v.phase): v.reasons for v in verdicts(frame) if not v.valid}
    out = frame.copy()
    cells = list(zip(*(out[c].astype(str) for c in CELL), strict=True)) if len(out) else []
    # failed and skipped rows have no verdict: valid, with nothing to compare
    out["cell_reasons"] = [bad.get(cell, ()) for cell in cells]
    out["cell_valid"] = [cell not in bad for cell in cells]
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
    judged = as_keys(_judged(frame), keys)
    ok = judged.loc[judged["status"] == "ok", [*dict.fromkeys([*keys, *CELL]), "cell_reasons"]]
    cells = ok.drop_duplicates(CELL)
    rows = []
    for group, part in cells.groupby(list(keys), sort=False, dropna=False):
        several_runs = part["run_id"].nunique() > 1
        reasons = tuple(
            f"run {run_id}: {reason}" if several_runs else reason
            for run_id, cell_reasons in zip(part["run_id"], part["cell_reasons"], strict=True)
            for reason in cell_reasons
        )
        rows.append(
            {
                **dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True)),
                "cell_valid": not reasons,
                "cell_reasons": reasons,
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


def _number(value: Any) -> Any:
    """A repetition as written: 1, not 1.0 (a column with failed rows holds floats)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _present(values: list[Any]) -> list[Any]:
    """The values that are not missing (pandas' dropna)."""
    return [v for v in values if not (v is None or (isinstance(v, float) and math.isnan(v)))]


def _reasons(part: dict[str, list[Any]]) -> list[str]:
    """The rules against one cell's windows, given as a list per column."""
    # `valid` False marks an invalid window; missing counts as valid (stats.valid_mask)
    mask = [v != False for v in part["valid"]]  # noqa: E712 - numpy's False_ too
    reasons = [
        f"repetition {_number(repetition)}: {validity}"
        for repetition, validity, ok in zip(part["repetition"], part["validity"], mask, strict=True)
        if not ok
    ]
    valid = [e for e, ok in zip(part["energy_per_unit_j"], mask, strict=True) if ok]
    if len(valid) < MIN_VALID_WINDOWS:
        reasons.append(
            f"{len(valid)} valid window(s): at least {MIN_VALID_WINDOWS} give an interval"
        )
    short = sum(not bool(r) for r in part["reliable"])
    if short:
        reasons.append(
            f"{short} window(s) shorter than {RELIABLE_WINDOW_S:.0f} s, the meter's resolution: "
            "raise --min-window"
        )
    cv = summarize(valid).cv
    if cv > MAX_CV:
        reasons.append(f"J per unit varies {cv:.0%} over its windows (at most {MAX_CV:.0%})")
    pids = sorted({p for text in _present(part["gpu_foreign_pids"]) for p in json.loads(text)})
    if pids:
        reasons.append(f"other processes computed on the measured GPU (pids {pids})")
    if not _present(part.get("power_limit_w", [])):
        reasons += _throttling(part)
    labels = {m for c in COMPONENTS for m in _present(part[f"method_{c}"])}
    reasons += [f"unknown method label '{m}'" for m in sorted(labels - set(METHODS))]
    return reasons


def _throttling(part: dict[str, list[Any]]) -> list[str]:
    found = []
    for repetition, trace in zip(part["repetition"], part["gpu_trace"], strict=True):
        if not _present([trace]):
            continue
        busy = [r for r in json.loads(trace) if r[3] >= BUSY_PCT]
        clocks = [r[5] for r in busy]
        if clocks and min(clocks) < (1 - THROTTLE_DROP) * max(clocks):
            found.append(
                f"repetition {_number(repetition)}: the SM clock fell from {max(clocks):.0f} to "
                f"{min(clocks):.0f} MHz under load (thermal or power throttling)"
            )
    return found
