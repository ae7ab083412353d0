"""Latency targets such as `p90<=50ms` or `ttft_p90<=200ms`: parsed once, read against summaries.

A target names a percentile of one latency metric, a comparison and a limit:

- `p50`, `p90`, `p99`: a call's duration (the record columns `call_p50_s`, ...), every phase;
- `ttft_p50`, ... : LM inference's time to first token (`ttft_p50_s`, ...: prefill calls);
- `tpot_p50`, ... : LM inference's time per output token (`tpot_p50_s`, ...: decode calls).

Limits take `us`, `ms` or `s`; `<=` and `<` compare. `compare --latency` and the report's filter
share `parse_latency_target`; a summary row is judged by `LatencyTarget.met_by` on its column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from greenbench.errors import GreenbenchError
from greenbench.records import PERCENTILES

METRICS = {"": "call", "ttft_": "ttft", "tpot_": "tpot"}  # prefix as written -> column's metric
UNITS_S = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
FORMS = (
    "p50|p90|p99, ttft_p50|ttft_p90|ttft_p99 or tpot_p50|tpot_p90|tpot_p99, then <= or <, "
    "then a number with us, ms or s: p90<=50ms, p99<1s, ttft_p90<=200ms, tpot_p50<=30ms"
)
_PATTERN = re.compile(
    rf"^\s*(?P<metric>ttft_|tpot_)?(?P<percentile>{'|'.join(PERCENTILES)})\s*(?P<op><=|<)\s*"
    r"(?P<limit>[0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(?P<unit>us|µs|ms|s)\s*$",
    re.IGNORECASE,
)
Comparison = Literal["<=", "<"]


@dataclass(frozen=True)
class LatencyTarget:
    """One parsed target: `metric` call, ttft or tpot; `percentile` p50, p90 or p99."""

    metric: str
    percentile: str
    op: Comparison
    limit_s: float
    text: str  # as written, tidied: `ttft_p90<=200ms`

    @property
    def name(self) -> str:
        """`p90`, `ttft_p90`: the metric as targets and table headers write it."""
        return self.percentile if self.metric == "call" else f"{self.metric}_{self.percentile}"

    @property
    def column(self) -> str:
        """The record and summary column holding the metric, in seconds: `call_p90_s`."""
        return f"{self.metric}_{self.percentile}_s"

    def met_by(self, value_s: float) -> bool:
        """Whether a latency (seconds) meets the target; a missing one (NaN) does not."""
        if not math.isfinite(value_s):
            return False
        return value_s <= self.limit_s if self.op == "<=" else value_s < self.limit_s

    def __str__(self) -> str:
        return self.text


def parse_latency_target(text: str) -> LatencyTarget:
    """A target from its text; GreenbenchError (one line naming the accepted forms) if bad."""
    found = _PATTERN.match(text)
    if found is None:
        raise GreenbenchError(f"--latency: cannot read {text!r}; write {FORMS}")
    unit = found["unit"].lower()
    limit_s = float(found["limit"]) * UNITS_S[unit]
    if not (math.isfinite(limit_s) and limit_s > 0):
        raise GreenbenchError(f"--latency: {text!r}: the limit must be above 0; write {FORMS}")
    prefix = (found["metric"] or "").lower()
    percentile = found["percentile"].lower()
    op: Comparison = "<=" if found["op"] == "<=" else "<"
    tidy = f"{prefix}{percentile}{op}{found['limit']}{unit}"
    return LatencyTarget(METRICS[prefix], percentile, op, limit_s, tidy)


def parse_latency_targets(texts: list[str] | None) -> list[LatencyTarget]:
    """Every `--latency` given (all must hold), in order; none: an empty list."""
    return [parse_latency_target(t) for t in texts or []]
