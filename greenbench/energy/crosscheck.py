"""Checks a meter's GPU energy against an independent read of the same counter around it.

Each window runs a fixed load for a fixed time inside the meter's window; a direct read of
NVML's total-energy counter, taken just outside the meter's edges, gives the reference. The
gap between the two bounds what greenbench's path (device mapping, window edges, its own
counter reads or power integration) adds or loses. benchmarks/nvml_check.py runs it on a GPU.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from greenbench.energy.meter import Meter
from greenbench.energy.nvml import Sample, integrate_power


@dataclass(frozen=True)
class WindowCheck:
    seconds: float  # between the two direct reads
    greenbench_j: float  # the meter's GPU energy for its window
    method: str  # how the meter measured it
    direct_j: float  # the counter's delta around the window
    trace_j: float  # the window's power trace, integrated (an independent second estimate)

    @property
    def difference(self) -> float:
        """(greenbench - direct) / direct."""
        return (self.greenbench_j - self.direct_j) / self.direct_j

    @property
    def mean_power_w(self) -> float:
        return self.direct_j / self.seconds


def check_window(
    meter: Meter,
    direct_read_j: Callable[[], float],
    load: Callable[[float], None],
    seconds: float,
    sync: Callable[[], None],
    clock: Callable[[], float] = time.monotonic,
) -> WindowCheck:
    """One window of `load(seconds)` measured by the meter, bracketed by direct counter reads."""
    sync()
    before, started = direct_read_j(), clock()
    meter.begin_window()
    load(seconds)
    sync()
    m = meter.end_window()
    after, ended = direct_read_j(), clock()
    window_s = max(ended - started, 1e-9)
    trace = [Sample(t, int(gpu), watts, 0.0, 0.0, 0.0) for t, gpu, watts, *_ in m.gpu_trace]
    return WindowCheck(
        seconds=window_s,
        greenbench_j=m.energy_j["gpu"],
        method=m.methods["gpu"],
        direct_j=after - before,
        trace_j=integrate_power(trace, 0.0, window_s),
    )


@dataclass(frozen=True)
class CheckSummary:
    windows: int
    max_abs_difference: float
    mean_difference: float
    energy_cv: float  # of greenbench's energy across windows (0 for one window)
    trace_vs_direct: float  # mean (trace - direct) / direct
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs_difference <= self.tolerance


def summarise(checks: list[WindowCheck], tolerance: float = 0.02) -> CheckSummary:
    if not checks:
        raise ValueError("no windows to summarise")
    energies = [c.greenbench_j for c in checks]
    cv = statistics.stdev(energies) / statistics.mean(energies) if len(energies) > 1 else 0.0
    return CheckSummary(
        windows=len(checks),
        max_abs_difference=max(abs(c.difference) for c in checks),
        mean_difference=statistics.mean(c.difference for c in checks),
        energy_cv=cv,
        trace_vs_direct=statistics.mean((c.trace_j - c.direct_j) / c.direct_j for c in checks),
        tolerance=tolerance,
    )
