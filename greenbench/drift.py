"""Is the newest run of a cell a regression? One series of per-run J/unit, judged against itself.

Runs of the same cell on the same machine differ by more than each run's own 95% CI (measured:
6-10 % between nightly runs on one VM), so a within-run CI alone calls drift a regression. The
rule here rests on the history's own between-run spread:

- noise floor: the robust spread of the very change tested, run by run through the history:
  each earlier run's change against the median of the BASELINE_RUNS runs before it, and
  1.4826 x the MAD of those changes over the last FLOOR_RUNS runs before the newest. It holds
  the between-run noise and what slow wander adds over the baseline's lag; the MAD ignores the
  odd wild night and an old step (a few outliers among the changes).
- baseline: the median of the previous BASELINE_RUNS runs, whatever their environment. An
  environment change (a torch upgrade, a new driver) is a cause to name beside a flag, not a
  reason to hide a shift: the history's markers say what changed.
- flag: the newest run is a regression when its change against the baseline exceeds both
  `pct` and FLOOR_K noise floors, and its 95% CI lies wholly above the baseline's (the median
  of the baseline runs' CI half-widths about the baseline); an improvement likewise below.
- fewer than MIN_RUNS runs: not judged ("short"), never flagged.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

BASELINE_RUNS = 10  # the rolling baseline: the median of this many previous runs
FLOOR_RUNS = 60  # the noise floor: from this many runs before the newest
FLOOR_K = (
    4.0  # a flag needs a change beyond this many noise floors (benchmarks/regression_detection.py)
)
MIN_BASELINE = 5  # a run's residual needs at least this many runs before it
MIN_RUNS = 15  # the newest run and 14 before it: a floor from at least 9 residuals
DEFAULT_PCT = 5.0  # the smallest change flagged when no --fail-on-regression PCT is given
MAD_TO_SD = 1.4826  # the MAD of a normal sample times this estimates its standard deviation

Status = Literal["regression", "improvement", "steady", "short"]


@dataclass(frozen=True)
class Verdict:
    """The newest run of one series against its history."""

    status: Status
    runs: int  # runs in the series
    change: float  # newest / baseline - 1; NaN when short
    baseline: float  # J/unit; NaN when short
    floor: float  # the between-run noise floor, relative (a standard deviation)
    threshold: float  # the relative change a flag needs: max(pct, FLOOR_K x floor)
    ci_apart: bool  # the newest run's CI and the baseline's do not overlap

    @property
    def flagged(self) -> bool:
        return self.status in ("regression", "improvement")


def residuals(means: Sequence[float], baseline_runs: int = BASELINE_RUNS) -> list[float]:
    """Each run's relative change against the median of the (up to) `baseline_runs` runs
    before it, from the MIN_BASELINE-th run on: the statistic judge tests, run by run."""
    out = []
    for i in range(MIN_BASELINE, len(means)):
        baseline = statistics.median(means[max(0, i - baseline_runs) : i])
        if baseline > 0 and math.isfinite(means[i]):
            out.append(means[i] / baseline - 1)
    return out


def noise_floor(means: Sequence[float], baseline_runs: int = BASELINE_RUNS) -> float:
    """The robust spread, relative, of a series' changes against its rolling baseline: 1.4826
    x the MAD of `residuals` (see the module's docstring); NaN with fewer than 3 of them."""
    found = residuals(means, baseline_runs)
    if len(found) < 3:
        return math.nan
    centre = statistics.median(found)
    return MAD_TO_SD * statistics.median(abs(r - centre) for r in found)


def judge(
    means: Sequence[float],
    ci95s: Sequence[float],
    pct: float = DEFAULT_PCT,
    k: float = FLOOR_K,
    baseline_runs: int = BASELINE_RUNS,
) -> Verdict:
    """The verdict on the last of `means` (runs in time order, with their CI half-widths)."""
    runs = len(means)
    if runs < MIN_RUNS:
        return Verdict("short", runs, math.nan, math.nan, math.nan, math.nan, False)
    newest, newest_ci = means[-1], _or_zero(ci95s[-1])
    earlier = list(means[:-1])
    floor = noise_floor(earlier[-FLOOR_RUNS - baseline_runs :], baseline_runs)
    window = earlier[-baseline_runs:]
    baseline = statistics.median(window)
    spread = statistics.median(_or_zero(c) for c in ci95s[-len(window) - 1 : -1])
    change = newest / baseline - 1 if baseline > 0 else math.nan
    threshold = max(pct / 100, k * (floor if math.isfinite(floor) else 0.0))
    above = newest - newest_ci > baseline + spread
    below = newest + newest_ci < baseline - spread
    status: Status = "steady"
    if math.isfinite(change) and abs(change) > threshold:
        if change > 0 and above:
            status = "regression"
        elif change < 0 and below:
            status = "improvement"
    return Verdict(status, runs, change, baseline, floor, threshold, above or below)


def _or_zero(value: float) -> float:
    """A CI half-width, or 0 where a run had one window (no CI)."""
    return value if math.isfinite(value) else 0.0
