"""Whose CPU time a window holds: this cell's, or other processes'.

CPU energy here is machine-wide (RAPL counts the whole package, CodeCarbon's load model the
whole machine's load), so another busy process lands in the idle baseline and the windows alike.
Each window records the share of the machine's CPU time that other processes used
(`foreign_cpu_share`); beyond MAX_FOREIGN_CPU_SHARE the window is invalid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil

# Other processes may use this much of the machine's CPU time (all cores) before a window's
# energy stops being this cell's: a quarter, i.e. half a core of a 2-core machine.
MAX_FOREIGN_CPU_SHARE = 0.25


@dataclass(frozen=True)
class CpuTimes:
    machine_busy_s: float  # CPU-seconds the whole machine spent busy, all cores
    own_s: float  # of this process, its threads and its live children
    wall_s: float  # time.monotonic()
    cores: int  # logical CPUs of the machine


def cpu_times() -> CpuTimes:
    machine = psutil.cpu_times()
    idle = machine.idle + getattr(machine, "iowait", 0.0) + getattr(machine, "steal", 0.0)
    me = psutil.Process()
    own = _process_s(me)
    for child in me.children(recursive=True):
        try:
            own += _process_s(child)
        except psutil.Error:  # it ended in between
            continue
    return CpuTimes(sum(machine) - idle, own, time.monotonic(), psutil.cpu_count() or 1)


def _process_s(process: psutil.Process) -> float:
    t = process.cpu_times()
    return float(t.user + t.system + t.children_user + t.children_system)


def foreign_share(before: CpuTimes, after: CpuTimes) -> float | None:
    """The share of the machine's CPU time between two readings that other processes used."""
    wall = after.wall_s - before.wall_s
    if wall <= 0:
        return None
    foreign = (after.machine_busy_s - before.machine_busy_s) - (after.own_s - before.own_s)
    return min(max(foreign / (wall * after.cores), 0.0), 1.0)
