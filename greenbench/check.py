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
  value while the GPU was busy (thermal or power throttling);
- every method label is one greenbench knows (energy.methods).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from greenbench.energy.meter import COMPONENTS
from greenbench.energy.methods import METHODS
from greenbench.protocol import RELIABLE_WINDOW_S
from greenbench.stats import summarize, valid_mask

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


def verdicts(frame: pd.DataFrame) -> list[Verdict]:
    """One verdict per run, cell and phase that has measured (`ok`) windows."""
    ok = frame[frame["status"] == "ok"]
    found = []
    for (run_id, cell_id, phase), part in ok.groupby(["run_id", "cell_id", "phase"], sort=False):
        reasons = tuple(_reasons(part))
        found.append(Verdict(str(run_id), str(cell_id), str(phase), not reasons, reasons))
    return found


def _reasons(part: pd.DataFrame) -> list[str]:
    reasons = []
    mask = valid_mask(part)
    valid = part[mask]
    for _, row in part[~mask].iterrows():
        reasons.append(f"repetition {row['repetition']}: {row['validity']}")
    if len(valid) < MIN_VALID_WINDOWS:
        reasons.append(
            f"{len(valid)} valid window(s): at least {MIN_VALID_WINDOWS} give an interval"
        )
    short = int((~part["reliable"].astype(bool)).sum())
    if short:
        reasons.append(
            f"{short} window(s) shorter than {RELIABLE_WINDOW_S:.0f} s, the meter's resolution: "
            "raise --min-window"
        )
    cv = summarize(valid["energy_per_unit_j"]).cv
    if cv > MAX_CV:
        reasons.append(f"J per unit varies {cv:.0%} over its windows (at most {MAX_CV:.0%})")
    pids = sorted({p for text in part["gpu_foreign_pids"].dropna() for p in json.loads(text)})
    if pids:
        reasons.append(f"other processes computed on the measured GPU (pids {pids})")
    reasons += _throttling(part)
    labels = {m for c in COMPONENTS for m in part[f"method_{c}"].dropna().unique()}
    reasons += [f"unknown method label '{m}'" for m in sorted(labels - set(METHODS))]
    return reasons


def _throttling(part: pd.DataFrame) -> list[str]:
    found = []
    for _, row in part[part["gpu_trace"].notna()].iterrows():
        busy = [r for r in json.loads(row["gpu_trace"]) if r[3] >= BUSY_PCT]
        clocks = [r[5] for r in busy]
        if clocks and min(clocks) < (1 - THROTTLE_DROP) * max(clocks):
            found.append(
                f"repetition {row['repetition']}: the SM clock fell from {max(clocks):.0f} to "
                f"{min(clocks):.0f} MHz under load (thermal or power throttling)"
            )
    return found
