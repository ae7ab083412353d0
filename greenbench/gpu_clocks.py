"""The SM clock of a window's GPU trace while the GPU was busy: what greenbench check's
throttling rule judges.

Recorded with each window (records.window_figures) as three columns, so the rule reads
numbers, not every window's JSON trace: parsing one takes about 0.2 ms, minutes for a year of
GPU history (benchmarks/throttle_rule.py). Records from before these columns have the trace
only; check parses those.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

BUSY_PCT = 50.0  # a trace sample counts as under load at this GPU utilization or more
UTILIZATION, SM_CLOCK = 3, 5  # the fields of a trace row (records.Record.gpu_trace)


@dataclass(frozen=True)
class BusyClocks:
    samples: int  # the trace's rows under load
    low_mhz: float | None  # their lowest and highest SM clock; None without such rows
    high_mhz: float | None


def busy_clocks(trace: Sequence[Sequence[float]]) -> BusyClocks:
    """The SM clock range of the rows of `trace` taken under load."""
    clocks = [row[SM_CLOCK] for row in trace if row[UTILIZATION] >= BUSY_PCT]
    if not clocks:
        return BusyClocks(0, None, None)
    return BusyClocks(len(clocks), float(min(clocks)), float(max(clocks)))


def busy_clocks_of_text(trace: str) -> BusyClocks:
    """busy_clocks of a trace as records.jsonl holds it (JSON)."""
    return busy_clocks(json.loads(trace))
