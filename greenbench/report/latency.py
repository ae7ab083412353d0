"""The cells meeting the report's latency target (`greenbench report --latency p90<=50ms`).

The target is read by greenbench.latency_target, as `compare --latency` reads it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pandas as pd

from greenbench.latency_target import LatencyTarget, parse_latency_target
from greenbench.stats import LATENCY_COLUMNS as STATS_LATENCY

__all__ = ["LATENCY_COLUMNS", "LatencyCut", "LatencyTarget", "meeting", "parse_latency_target"]

# a target's metric name (p90, ttft_p90, ...) -> the summary column (seconds) it is read from
LATENCY_COLUMNS = {
    column.removeprefix("call_").removesuffix("_s"): column for column in STATS_LATENCY
}


class LatencyCut(NamedTuple):
    """The cells a latency target keeps, and what the page says about them."""

    kept: pd.DataFrame
    target: LatencyTarget
    total: int
    unknown: list[str]  # labels of cells with no call latency to judge

    def header(self) -> str:
        """ "cells meeting p90 <= 50 ms: 5 of 9", and the cells that could not be judged."""
        line = f"cells meeting {self.target}: {len(self.kept)} of {self.total}"
        if self.unknown:
            line += f" ({len(self.unknown)} without call latencies, left out: "
            line += f"{', '.join(self.unknown)})"
        return line

    def none_left(self) -> str:
        """Why a view is empty under the target."""
        return f"no cell meets {self.target} ({len(self.kept)} of {self.total})"


def meeting(summary: pd.DataFrame, target: LatencyTarget) -> LatencyCut:
    """The summary rows (cells) whose latency meets `target`."""
    if summary.empty or target.column not in summary:
        values = pd.Series(math.nan, index=summary.index, dtype=float)
    else:
        values = pd.to_numeric(summary[target.column], errors="coerce")
    met = values.map(target.met_by).astype(bool)
    labels = summary["label"] if "label" in summary else pd.Series("", index=summary.index)
    unknown = [str(label) for label in labels[values.isna()]]
    return LatencyCut(summary[met], target, len(summary), unknown)
