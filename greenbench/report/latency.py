"""The report's latency target (`greenbench report --latency p90<=50ms`) and the cells meeting it.

`parse_latency_target` is the one place the target's text is read, so that it can be swapped
for the compare command's own parser without touching the views.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import pandas as pd

from greenbench.errors import GreenbenchError

# metric name -> the summary column (seconds, from the windows' call times) it is read from
LATENCY_COLUMNS = {"p50": "call_p50_s", "p90": "call_p90_s", "p99": "call_p99_s"}
UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
OPERATORS = ("<=", "<")
_TARGET = re.compile(
    r"^\s*(?P<metric>[a-z0-9]+)\s*(?P<operator><=|<)\s*(?P<number>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?)"
    r"\s*(?P<unit>s|ms|us|µs)\s*$",
    re.IGNORECASE,
)
EXAMPLE = "give e.g. p90<=50ms (metric p50, p90 or p99; operator <= or <; unit s, ms or us)"


class LatencyTarget(NamedTuple):
    """An upper bound on a call-latency percentile, e.g. p90 <= 0.05 s."""

    metric: str  # a key of LATENCY_COLUMNS
    operator: str  # "<=" or "<"
    seconds: float

    @property
    def column(self) -> str:
        return LATENCY_COLUMNS[self.metric]

    def met_by(self, seconds: float) -> bool:
        """Whether a latency meets the target; an unknown one (NaN) never does."""
        if not math.isfinite(seconds):
            return False
        return seconds <= self.seconds if self.operator == "<=" else seconds < self.seconds

    def __str__(self) -> str:
        return f"{self.metric} {self.operator} {_milliseconds(self.seconds)} ms"


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1e3:.6g}"


def parse_latency_target(text: str) -> LatencyTarget:
    """`p90<=50ms` -> LatencyTarget("p90", "<=", 0.05); anything else: a one-line error."""
    match = _TARGET.match(text)
    if match is None:
        raise GreenbenchError(f"--latency {text!r}: not a latency target; {EXAMPLE}")
    metric = match["metric"].lower()
    if metric not in LATENCY_COLUMNS:
        raise GreenbenchError(f"--latency {text!r}: no latency metric '{metric}'; {EXAMPLE}")
    seconds = float(match["number"]) * UNITS[match["unit"].lower()]
    if not seconds > 0:
        raise GreenbenchError(f"--latency {text!r}: the bound must be above zero; {EXAMPLE}")
    return LatencyTarget(metric, match["operator"], seconds)


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
