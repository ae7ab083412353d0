"""The measurement protocol for one cell: settled idle, warmup until steady, measured windows,
repetitions, and idle again after the windows.

Pure control flow over a Meter, a clock and the phases' step functions, so its rules are tested
with a fake meter and a fake clock.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from greenbench.energy.cpu_load import CpuTimes, foreign_share
from greenbench.energy.meter import COMPONENTS, Measurement, Meter

CpuProbe = Callable[[], CpuTimes]  # energy.cpu_load.cpu_times, or a fake

# Counters update about every 100 ms and CodeCarbon samples load every second: windows shorter
# than this give figures we call less reliable.
RELIABLE_WINDOW_S = 5.0

# Idle is measured in samples of about this length; their spread is the idle's uncertainty.
IDLE_SAMPLE_S = 1.0
# Idle has settled when its last samples' powers lie within this share of their mean (a range,
# so a baseline still falling shows), or within IDLE_STABLE_W for small idle powers ...
IDLE_STABLE_SPREAD = 0.05
IDLE_STABLE_W = 0.5
# ... and, where the meter reads temperatures (GPUs), the hottest device moved at most
# TEMPERATURE_STABLE_C over the last TEMPERATURE_SPAN_S: NVML reports whole degrees, and a GPU
# cooling by less than 0.1 °C/s is within a few degrees, a few percent of idle power, of rest.
TEMPERATURE_STABLE_C = 1.0
TEMPERATURE_SPAN_S = 10.0
# Idle measured after the windows may differ from idle before them by at most this share (or
# IDLE_STABLE_W): beyond it the baseline drifted during the cell, and no net figure is sure.
IDLE_DRIFT_MAX = 0.10
# Warmup has settled when the last WARMUP_STEADY_CALLS calls took at most this many times
# the shortest of them: compilation, autotuning and cache filling are over.
WARMUP_STEADY_CALLS = 3
WARMUP_STEADY_RATIO = 1.5


@dataclass(frozen=True)
class ProtocolSettings:
    repetitions: int = 3
    min_window_s: float = 5.0
    min_calls: int = 2
    warmup_calls: int = 1  # at least; then more until call times settle
    idle_s: float = 3.0  # idle measured before the windows, and as long again after them
    cell_timeout_s: float = 1800.0
    cooldown_max_s: float = 60.0  # GPUs: longest wait for power and temperature to settle
    # longest wait for idle power to settle; where temperatures are read (GPUs, which cool
    # slowly) at least cooldown_max_s
    settle_max_s: float = 20.0
    warmup_max_s: float = 20.0  # longest warmup past `warmup_calls` while call times settle
    # the cells of a sweep (one workload, variant and device; several parameter values) run in
    # one child, their windows interleaved under one idle baseline; false: one child per value
    # (a large value that may run out of memory then costs only its own cell)
    interleave_sweeps: bool = True


class Cooldown(Protocol):
    """A device that heats under load (GPUs): read its temperature, wait for it to cool."""

    def temperature_c(self) -> float | None:
        """The hottest measured device's temperature now."""
        ...

    def calibrate(self) -> None:
        """Learn the resting state: called right after the settled idle baseline."""
        ...

    def __call__(self, max_s: float) -> float:
        """Wait until back near the resting state, at most `max_s`; the seconds waited."""
        ...


def _no_reset() -> None:
    return None


@dataclass(frozen=True)
class TokenLatency:
    """What one call of a text-generation phase says about per-token latency.

    `ttft`: a call is a prefill, whose last logits give the first output token, so its time is
    the time to first token. `tpot`: a call decodes `tokens_per_call` tokens one step after
    another, so its time divided by them is the time per output token.
    """

    metric: Literal["ttft", "tpot"]
    tokens_per_call: int = 1


@dataclass(frozen=True)
class Phase:
    """One measured activity of a workload, e.g. decode of N tokens."""

    name: str
    unit: str  # what a unit of useful work is: "token", "image", "sample"
    units_per_call: int
    step: Callable[[], object]  # one call of the work
    reset: Callable[[], None] = _no_reset  # unmeasured, before warmup and before each window
    token_latency: TokenLatency | None = None  # text generation: TTFT or TPOT from call times


@dataclass(frozen=True)
class Warmup:
    """How a phase was warmed up before its windows."""

    calls: int = 0
    duration_s: float = 0.0
    steady: bool = True  # False: call times had not settled when warmup_max_s ran out


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
    call_times_s: tuple[float, ...] = ()  # each call's duration, the device synchronised
    warmup: Warmup = Warmup()
    token_latency: TokenLatency | None = None  # the phase's, for TTFT/TPOT columns


@dataclass(frozen=True)
class IdleSample:
    """One short idle window."""

    duration_s: float
    measurement: Measurement
    temperature_c: float | None = None  # hottest measured device at the sample's end

    @property
    def power_w(self) -> float:
        return self.measurement.total_j / self.duration_s if self.duration_s > 0 else 0.0


@dataclass(frozen=True)
class IdleBaseline:
    """The idle power subtracted from every window of a cell, and how well it is known.

    `samples` holds the idle samples one by one (the first `samples_before` preceded the
    windows, the rest followed them), so their spread gives the idle's standard error;
    `duration_s` and `measurement` pool them.
    """

    samples: tuple[IdleSample, ...]  # at least one
    samples_before: int
    foreign_cpu_share: float | None = None  # of the machine's CPU time, used by other processes
    settle_s: float = 0.0  # waited for idle to settle, before and after the windows together
    settled: bool = True  # False: idle still moved when settle_max_s ran out

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.samples)

    @functools.cached_property
    def measurement(self) -> Measurement:
        """Every sample's measurement as one (read for every window's record)."""
        return _sum_measurements([s.measurement for s in self.samples])

    def power_w(self, component: str | None = None) -> float:
        """Mean idle power of one component, or of all of them."""
        if self.duration_s <= 0:
            return 0.0
        energy = (
            self.measurement.total_j if component is None else self.measurement.energy_j[component]
        )
        return energy / self.duration_s

    def power_sd_w(self) -> float | None:
        """The spread of the samples' power (sample standard deviation)."""
        powers = [s.power_w for s in self.samples]
        return statistics.stdev(powers) if len(powers) >= 2 else None

    def power_se_w(self) -> float | None:
        """The standard error of the idle power: it is in every window's net energy."""
        sd = self.power_sd_w()
        return sd / math.sqrt(len(self.samples)) if sd is not None else None

    def power_before_w(self) -> float | None:
        return _mean_power(self.samples[: self.samples_before])

    def power_after_w(self) -> float | None:
        return _mean_power(self.samples[self.samples_before :])

    def temperature_c(self) -> float | None:
        found = [s.temperature_c for s in self.samples if s.temperature_c is not None]
        return sum(found) / len(found) if found else None


def _mean_power(samples: Sequence[IdleSample]) -> float | None:
    duration = sum(s.duration_s for s in samples)
    return sum(s.measurement.total_j for s in samples) / duration if duration > 0 else None


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
    cooldown: Cooldown | None = None,
    cpu_probe: CpuProbe | None = None,
) -> ProtocolResult:
    """Measure every phase `settings.repetitions` times between two settled idle baselines.

    Idle: short samples until the last few agree (and a GPU's temperature stopped moving), at
    most `settle_max_s`; the same after the windows, so a baseline that drifted shows. Warmup:
    at least `warmup_calls`, then until call times settle, at most `warmup_max_s` more.
    Repetitions are interleaved across phases (prefill, decode, prefill, decode, ...) so slow
    drift such as heating spreads evenly over the phases instead of biasing the last one.
    Between repetitions and before the last idle, `cooldown(max_s)` (GPUs) waits for the device
    to settle near the idle it learnt; the first window of a repetition records the wait. With
    `cpu_probe`, idle and every window record the share of the machine's CPU time that other
    processes used.
    """
    idle = _IdleMeter(meter, settings, sync, clock, sleep, cooldown, cpu_probe)
    before = idle.settle()
    if cooldown is not None:
        cooldown.calibrate()  # the settled state is the one to cool back to

    warmups = {phase.name: _warm_up(phase, settings, sync, clock) for phase in phases}

    windows: list[Window] = []
    for repetition in range(1, settings.repetitions + 1):
        waited = 0.0
        if cooldown is not None and repetition > 1:
            waited = cooldown(settings.cooldown_max_s)
        for phase in phases:
            window = _measure_window(phase, repetition, meter, settings, sync, clock, cpu_probe)
            window = dataclasses.replace(
                window,
                warmup=warmups[phase.name],
                cooldown_s=waited,
            )
            waited = 0.0
            windows.append(window)
            if on_window is not None:
                on_window(window)

    if cooldown is not None:
        cooldown(settings.cooldown_max_s)
    after = idle.settle()
    return ProtocolResult(idle=_pooled(before, after), windows=windows)


@dataclass(frozen=True)
class _Settled:
    samples: tuple[IdleSample, ...]
    settle_s: float
    settled: bool
    foreign_cpu_share: float | None


class _IdleMeter:
    """Takes idle samples until the last few agree."""

    def __init__(
        self,
        meter: Meter,
        settings: ProtocolSettings,
        sync: Callable[[], None],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        cooldown: Cooldown | None,
        cpu_probe: CpuProbe | None,
    ) -> None:
        self.meter, self.sync, self.clock, self.sleep = meter, sync, clock, sleep
        self.temperature = cooldown.temperature_c if cooldown is not None else None
        self.cpu_probe = cpu_probe
        self.count = max(2, round(settings.idle_s / IDLE_SAMPLE_S))  # samples a baseline uses
        self.sample_s = settings.idle_s / self.count
        self.max_s = settings.settle_max_s
        if cooldown is not None:
            self.max_s = max(self.max_s, settings.cooldown_max_s)

    def settle(self) -> _Settled:
        self.sync()
        started = self.clock()
        taken: list[tuple[float, IdleSample, CpuTimes | None]] = []  # (start, sample, probe)
        while True:
            taken.append((self.clock() - started, *self._sample()))
            if len(taken) >= self.count:
                if self._steady([s for _, s, _ in taken], self.clock() - started):
                    settled = True
                    break
                if self.clock() - started >= self.max_s + self.count * self.sample_s:
                    settled = False
                    break
        used = taken[-self.count :]
        share = None
        if self.cpu_probe is not None and used[0][2] is not None:
            share = foreign_share(used[0][2], self.cpu_probe())
        return _Settled(tuple(s for _, s, _ in used), used[0][0], settled, share)

    def _sample(self) -> tuple[IdleSample, CpuTimes | None]:
        probe = _probe(self.cpu_probe)
        self.meter.begin_window()
        started = self.clock()
        self.sleep(self.sample_s)
        duration = self.clock() - started
        measurement = self.meter.end_window()
        temperature = self.temperature() if self.temperature is not None else None
        return IdleSample(duration, measurement, temperature), probe

    def _steady(self, samples: Sequence[IdleSample], elapsed_s: float) -> bool:
        powers = [s.power_w for s in samples[-self.count :]]
        mean = sum(powers) / len(powers)
        if max(powers) - min(powers) > max(IDLE_STABLE_SPREAD * abs(mean), IDLE_STABLE_W):
            return False
        if not any(s.temperature_c is not None for s in samples):
            return True
        if elapsed_s < TEMPERATURE_SPAN_S:
            return False  # too short a history to tell a cooling GPU from a cool one
        span = max(1, math.ceil(TEMPERATURE_SPAN_S / self.sample_s))
        temperatures = [s.temperature_c for s in samples[-span:] if s.temperature_c is not None]
        return max(temperatures) - min(temperatures) <= TEMPERATURE_STABLE_C


def _pooled(before: _Settled, after: _Settled) -> IdleBaseline:
    samples = before.samples + after.samples
    shares = [s for s in (before.foreign_cpu_share, after.foreign_cpu_share) if s is not None]
    return IdleBaseline(
        samples=samples,
        samples_before=len(before.samples),
        foreign_cpu_share=max(shares) if shares else None,
        settle_s=before.settle_s + after.settle_s,
        settled=before.settled and after.settled,
    )


def _sum_measurements(parts: Sequence[Measurement]) -> Measurement:
    """One measurement over several windows of the same meter."""
    first = parts[0]
    return dataclasses.replace(
        first,
        energy_j={c: sum(m.energy_j.get(c, 0.0) for m in parts) for c in COMPONENTS},
        emissions_g=sum(m.emissions_g for m in parts),
        gpu_trace=(),
        gpu_foreign_pids=tuple(sorted({p for m in parts for p in m.gpu_foreign_pids})),
        invalid="; ".join(dict.fromkeys(m.invalid for m in parts if m.invalid)) or None,
    )


def _probe(cpu_probe: CpuProbe | None) -> CpuTimes | None:
    return cpu_probe() if cpu_probe is not None else None


def _share(cpu_probe: CpuProbe | None, before: CpuTimes | None) -> float | None:
    if cpu_probe is None or before is None:
        return None
    return foreign_share(before, cpu_probe())


def _timed_call(phase: Phase, sync: Callable[[], None], clock: Callable[[], float]) -> float:
    started = clock()
    phase.step()
    sync()  # the clock must see finished work, not queued work
    return clock() - started


def _warm_up(
    phase: Phase, settings: ProtocolSettings, sync: Callable[[], None], clock: Callable[[], float]
) -> Warmup:
    """`warmup_calls` calls, then more until the last few call times agree (bounded)."""
    phase.reset()
    sync()
    started = clock()
    times = [_timed_call(phase, sync, clock) for _ in range(settings.warmup_calls)]
    extra_started = clock()
    steady = settings.warmup_calls == 0 or _calls_steady(times)
    while not steady and clock() - extra_started < settings.warmup_max_s:
        times.append(_timed_call(phase, sync, clock))
        steady = _calls_steady(times)
    return Warmup(calls=len(times), duration_s=clock() - started, steady=steady)


def _calls_steady(times: Sequence[float]) -> bool:
    recent = times[-WARMUP_STEADY_CALLS:]
    if len(recent) < WARMUP_STEADY_CALLS:
        return False
    return max(recent) <= WARMUP_STEADY_RATIO * min(recent)


def _measure_window(
    phase: Phase,
    repetition: int,
    meter: Meter,
    settings: ProtocolSettings,
    sync: Callable[[], None],
    clock: Callable[[], float],
    cpu_probe: CpuProbe | None,
) -> Window:
    """Repeat the phase until both the minimum call count and the minimum duration are met."""
    phase.reset()
    sync()
    probe = _probe(cpu_probe)  # after the reset: its own work is not the window's
    meter.begin_window()
    started_at = time.time()
    started = clock()
    times: list[float] = []
    while True:
        times.append(_timed_call(phase, sync, clock))
        if len(times) >= settings.min_calls and clock() - started >= settings.min_window_s:
            break
    duration = clock() - started
    measurement = meter.end_window()
    return Window(
        phase=phase.name,
        unit=phase.unit,
        repetition=repetition,
        calls=len(times),
        unit_count=len(times) * phase.units_per_call,
        duration_s=duration,
        measurement=measurement,
        started_at=started_at,
        call_times_s=tuple(times),
        foreign_cpu_share=_share(cpu_probe, probe),
        token_latency=phase.token_latency,
    )
