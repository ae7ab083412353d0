"""The measurement protocol for one cell: idle baseline, warmup, measured windows, repetitions.

Pure control flow over a Meter, a clock and the phases' step functions, so its rules are tested
with a fake meter and a fake clock.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from greenbench.energy.cpu_load import CpuTimes, foreign_share
from greenbench.energy.meter import Measurement, Meter

CpuProbe = Callable[[], CpuTimes]  # energy.cpu_load.cpu_times, or a fake

# Counters update about every 100 ms and CodeCarbon samples load every second: windows shorter
# than this give figures we call less reliable.
RELIABLE_WINDOW_S = 5.0


@dataclass(frozen=True)
class ProtocolSettings:
    repetitions: int = 3
    min_window_s: float = 5.0
    min_calls: int = 2
    warmup_calls: int = 1
    idle_s: float = 3.0
    cell_timeout_s: float = 1800.0
    cooldown_max_s: float = 60.0  # GPUs: longest wait for power and temperature to settle


def _no_reset() -> None:
    return None


@dataclass(frozen=True)
class Phase:
    """One measured activity of a workload, e.g. decode of N tokens."""

    name: str
    unit: str  # what a unit of useful work is: "token", "image", "sample"
    units_per_call: int
    step: Callable[[], object]  # one call of the work
    reset: Callable[[], None] = _no_reset  # unmeasured, before warmup and before each window


@dataclass(frozen=True)
class Window:
    phase: str
    unit: str
    repetition: int  # 1-based
    calls: int
    unit_count: int
    duration_s: float
    measurement: Measurement
    started_at: float = 0.0  # wall-clock (Unix) time the window began, for power-over-time views
    cooldown_s: float = 0.0  # waited before this window's repetition for the device to settle
    foreign_cpu_share: float | None = None  # of the machine's CPU time, used by other processes


@dataclass(frozen=True)
class IdleBaseline:
    duration_s: float
    measurement: Measurement
    foreign_cpu_share: float | None = None  # of the machine's CPU time, used by other processes

    def power_w(self, component: str | None = None) -> float:
        """Mean idle power of one component, or of all of them."""
        if self.duration_s <= 0:
            return 0.0
        energy = (
            self.measurement.total_j if component is None else self.measurement.energy_j[component]
        )
        return energy / self.duration_s


@dataclass(frozen=True)
class ProtocolResult:
    idle: IdleBaseline
    windows: list[Window]


def run_protocol(
    phases: Sequence[Phase],
    meter: Meter,
    settings: ProtocolSettings,
    sync: Callable[[], None] = _no_reset,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
    on_window: Callable[[Window], None] | None = None,
    cooldown: Callable[[float], float] | None = None,
    cpu_probe: CpuProbe | None = None,
) -> ProtocolResult:
    """Measure every phase `settings.repetitions` times, after an idle baseline and a warmup.

    Repetitions are interleaved across phases (prefill, decode, prefill, decode, ...) so slow
    drift such as heating spreads evenly over the phases instead of biasing the last one.
    Between repetitions, `cooldown(max_s)` (GPUs) waits for the device to settle near idle and
    returns how long it waited; the first window of the repetition records it. With
    `cpu_probe`, the idle baseline and every window record the share of the machine's CPU
    time that other processes used.
    """
    sync()
    meter.begin_window()
    started, before = clock(), _probe(cpu_probe)
    sleep(settings.idle_s)
    idle = IdleBaseline(
        duration_s=clock() - started,
        measurement=meter.end_window(),
        foreign_cpu_share=_share(cpu_probe, before),
    )

    for phase in phases:
        phase.reset()
        for _ in range(settings.warmup_calls):
            phase.step()
        sync()

    windows: list[Window] = []
    for repetition in range(1, settings.repetitions + 1):
        waited = 0.0
        if cooldown is not None and repetition > 1:
            waited = cooldown(settings.cooldown_max_s)
        for phase in phases:
            before = _probe(cpu_probe)
            window = _measure_window(phase, repetition, meter, settings, sync, clock)
            window = dataclasses.replace(window, foreign_cpu_share=_share(cpu_probe, before))
            if waited:
                window = dataclasses.replace(window, cooldown_s=waited)
                waited = 0.0
            windows.append(window)
            if on_window is not None:
                on_window(window)
    return ProtocolResult(idle=idle, windows=windows)


def _probe(cpu_probe: CpuProbe | None) -> CpuTimes | None:
    return cpu_probe() if cpu_probe is not None else None


def _share(cpu_probe: CpuProbe | None, before: CpuTimes | None) -> float | None:
    if cpu_probe is None or before is None:
        return None
    return foreign_share(before, cpu_probe())


def _measure_window(
    phase: Phase,
    repetition: int,
    meter: Meter,
    settings: ProtocolSettings,
    sync: Callable[[], None],
    clock: Callable[[], float],
) -> Window:
    """Repeat the phase until both the minimum call count and the minimum duration are met."""
    phase.reset()
    sync()
    meter.begin_window()
    started_at = time.time()
    started = clock()
    calls = 0
    while True:
        phase.step()
        calls += 1
        if calls >= settings.min_calls:
            sync()  # the clock must see finished work, not queued work
            if clock() - started >= settings.min_window_s:
                break
    duration = clock() - started
    measurement = meter.end_window()
    return Window(
        phase=phase.name,
        unit=phase.unit,
        repetition=repetition,
        calls=calls,
        unit_count=calls * phase.units_per_call,
        duration_s=duration,
        measurement=measurement,
        started_at=started_at,
    )
