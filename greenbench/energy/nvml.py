"""NVIDIA GPUs through NVML: which NVML device a torch index is, its energy, its power trace.

torch numbers the GPUs it can see (CUDA_VISIBLE_DEVICES, in CUDA's order); NVML numbers every
GPU in PCI order. A cell's `cuda:N` is matched to its NVML device by UUID (from torch, or from a
`GPU-...` entry of CUDA_VISIBLE_DEVICES), never by assuming the two numberings agree. torch
prints UUIDs bare (no GPU-/MIG- prefix), so a MIG instance is recognised by NVML's list of a
MIG-mode GPU's instances; a GPU in MIG mode is never measured whole.

Energy comes from NVML's total-energy counter (label `nvml-counter`); a GPU without one gets
energy from a power trace sampled at 10 Hz or more, integrated over the window (`nvml-power`):
never a silent zero. All NVML calls go through an injected module (pynvml, or a fake in tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from greenbench.energy.pid_namespace import in_initial_pid_namespace, own_pids
from greenbench.errors import GreenbenchError

SAMPLE_PERIOD_S = 0.1  # 10 Hz


@dataclass(frozen=True)
class NvmlGpu:
    index: int  # NVML's (PCI order)
    uuid: str  # "GPU-..."
    bus_id: str
    name: str
    handle: Any = field(repr=False, compare=False)
    # the UUIDs of its MIG instances when the GPU is in MIG mode, else None
    mig_uuids: tuple[str, ...] | None = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nvml_gpus(nvml: Any) -> list[NvmlGpu]:
    """Every GPU NVML sees (nvmlInit must have been called)."""
    gpus = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        gpus.append(
            NvmlGpu(
                index=index,
                uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                bus_id=_text(nvml.nvmlDeviceGetPciInfo(handle).busId),
                name=_text(nvml.nvmlDeviceGetName(handle)),
                handle=handle,
                mig_uuids=_mig_uuids(nvml, handle),
            )
        )
    return gpus


def _mig_uuids(nvml: Any, handle: Any) -> tuple[str, ...] | None:
    """The UUIDs of a GPU's MIG instances if it is in MIG mode; None if not (or no MIG API)."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except (nvml.NVMLError, AttributeError):  # not MIG-capable, or an older pynvml
        return None
    if current != getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1):
        return None
    uuids = []
    try:
        slots = nvml.nvmlDeviceGetMaxMigDeviceCount(handle)
    except nvml.NVMLError:
        slots = 0
    for slot in range(slots):
        try:
            instance = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            uuids.append(_text(nvml.nvmlDeviceGetUUID(instance)))
        except nvml.NVMLError:  # no instance in this slot
            continue
    return tuple(uuids)  # in MIG mode even with none: CUDA then sees only instances


def _uuid_key(uuid: str) -> str:
    """A UUID without its GPU-/MIG- prefix: torch prints UUIDs bare."""
    text = uuid.strip().lower()
    return text[4:] if text.startswith(("gpu-", "mig-")) else text


def _mig_error(torch_index: int, uuid: str) -> str:
    return (
        f"cuda:{torch_index} is a MIG instance ({uuid}): NVML's energy counter covers the "
        "whole GPU, so greenbench cannot measure one instance; use a whole GPU"
    )


def _whole(torch_index: int, gpu: NvmlGpu) -> NvmlGpu:
    """The GPU, unless it is in MIG mode: then cuda:N is one of its instances."""
    if gpu.mig_uuids is not None:
        raise GreenbenchError(_mig_error(torch_index, f"on {gpu.uuid}, in MIG mode"))
    return gpu


def gpu_for_torch_index(
    torch_index: int,
    gpus: Sequence[NvmlGpu],
    visible: str | None = None,
    torch_uuid: str | None = None,
) -> NvmlGpu:
    """The NVML device behind torch's `cuda:torch_index`.

    torch_uuid (torch.cuda.get_device_properties(i).uuid) decides when known. Otherwise the
    index-th entry of CUDA_VISIBLE_DEVICES: a UUID (or a unique prefix of one), or an ordinal,
    read as NVML's PCI order (set CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA agrees).
    """
    if torch_uuid and torch_uuid.upper().startswith("MIG-"):
        raise GreenbenchError(_mig_error(torch_index, torch_uuid))
    if torch_uuid:
        key = _uuid_key(torch_uuid)
        matches = [g for g in gpus if _uuid_key(g.uuid) == key]
        if matches:
            return _whole(torch_index, matches[0])
        for gpu in gpus:
            if any(_uuid_key(u) == key for u in gpu.mig_uuids or ()):
                raise GreenbenchError(_mig_error(torch_index, f"MIG-{key} on {gpu.uuid}"))
        raise GreenbenchError(f"cuda:{torch_index}: no NVML device has UUID {torch_uuid}")
    if visible is None or not visible.strip():
        if torch_index >= len(gpus):
            raise GreenbenchError(f"cuda:{torch_index}: NVML sees only {len(gpus)} GPU(s)")
        return _whole(torch_index, gpus[torch_index])
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if torch_index >= len(entries):
        raise GreenbenchError(
            f"cuda:{torch_index} is not visible: CUDA_VISIBLE_DEVICES={visible} lists "
            f"{len(entries)} device(s)"
        )
    entry = entries[torch_index]
    if entry.upper().startswith("MIG-"):
        raise GreenbenchError(_mig_error(torch_index, entry))
    if entry.upper().startswith("GPU-"):
        matches = [g for g in gpus if _uuid_key(g.uuid).startswith(_uuid_key(entry))]
        if len(matches) != 1:
            raise GreenbenchError(
                f"CUDA_VISIBLE_DEVICES entry {entry} matches {len(matches)} NVML GPUs; "
                "give a longer UUID"
            )
        return _whole(torch_index, matches[0])
    try:
        ordinal = int(entry)
    except ValueError:
        raise GreenbenchError(
            f"CUDA_VISIBLE_DEVICES entry '{entry}' is not an index or UUID"
        ) from None
    if not 0 <= ordinal < len(gpus):
        raise GreenbenchError(f"CUDA_VISIBLE_DEVICES entry {ordinal}: NVML sees {len(gpus)} GPU(s)")
    return _whole(torch_index, gpus[ordinal])


@dataclass(frozen=True)
class Sample:
    t: float  # time.monotonic()
    gpu: int  # NVML index
    power_w: float
    utilization_pct: float
    temperature_c: float
    sm_clock_mhz: float
    instant: bool = True  # NVML's instantaneous power field; False: its 1 s moving average


class PowerSampler:
    """A thread reading power, utilization, temperature and SM clock of the GPUs at 10 Hz."""

    def __init__(
        self,
        nvml: Any,
        gpus: Sequence[NvmlGpu],
        period_s: float = SAMPLE_PERIOD_S,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        """`wait(seconds)` pauses between samples; by default it waits on the stop event, so
        stop() ends a pause at once. Tests pass a fake clock and wait and call run() directly."""
        self.nvml, self.gpus, self.period_s, self.clock = nvml, list(gpus), period_s, clock
        self.samples: list[Sample] = []
        # NVML index -> True once instantaneous power was read, False when the driver has none
        self.instant: dict[int, bool] = {}
        self.failures = 0  # samples skipped because an NVML read failed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.wait = wait if wait is not None else self._stop.wait
        self._thread: threading.Thread | None = None

    def sample_once(self) -> None:
        nvml, now = self.nvml, self.clock()
        taken = []
        for gpu in self.gpus:
            h = gpu.handle
            power_w, instant = self._power_w(gpu)
            taken.append(
                Sample(
                    now,
                    gpu.index,
                    power_w,
                    float(nvml.nvmlDeviceGetUtilizationRates(h).gpu),
                    float(nvml.nvmlDeviceGetTemperature(h, 0)),  # NVML_TEMPERATURE_GPU
                    float(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM)),
                    instant,
                )
            )
        with self._lock:
            self.samples.extend(taken)

    def _power_w(self, gpu: NvmlGpu) -> tuple[float, bool]:
        """Instantaneous power where the driver has the field (as Zeus reads it), else NVML's
        power reading, which on Ampere (but GA100), Hopper and newer is a 1 s moving average."""
        nvml = self.nvml
        if self.instant.get(gpu.index, True):
            try:
                field = nvml.nvmlDeviceGetFieldValues(gpu.handle, [nvml.NVML_FI_DEV_POWER_INSTANT])
                if field[0].nvmlReturn != nvml.NVML_SUCCESS:
                    raise nvml.NVMLError(field[0].nvmlReturn)
                self.instant[gpu.index] = True
                return float(field[0].value.uiVal) / 1000, True  # mW
            except (nvml.NVMLError, AttributeError):
                if self.instant.get(gpu.index):  # it worked before: a failed read, not no field
                    raise
                self.instant[gpu.index] = False  # an older driver or pynvml: averaged power
        return float(nvml.nvmlDeviceGetPowerUsage(gpu.handle)) / 1000, False

    def sample_safely(self) -> None:
        """sample_once, but a failed NVML read skips the sample (counted in `failures`) instead
        of ending the thread: the next one may succeed, and a window whose trace has a hole
        says so (MAX_TRACE_GAP_S)."""
        try:
            self.sample_once()
        except self.nvml.NVMLError:
            self.failures += 1

    def run(self) -> None:
        """The sampling loop (start() runs it in a thread): a sample, then wait out the rest of
        the period, until stop()."""
        while not self._stop.is_set():
            started = self.clock()
            self.sample_safely()
            self.wait(max(0.0, self.period_s - (self.clock() - started)))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="greenbench-gpu-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def between(self, t0: float, t1: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if t0 <= s.t <= t1]


def integrate_power(samples: Sequence[Sample], t0: float, t1: float) -> float:
    """Energy in J of one GPU over [t0, t1]: trapezoids between samples, flat at the ends."""
    points = sorted((s.t, s.power_w) for s in samples)
    if not points:
        return 0.0
    if len(points) == 1:
        return points[0][1] * (t1 - t0)
    energy = points[0][1] * max(0.0, points[0][0] - t0)  # before the first sample
    for (ta, pa), (tb, pb) in zip(points, points[1:], strict=False):
        energy += (pa + pb) / 2 * (tb - ta)
    energy += points[-1][1] * max(0.0, t1 - points[-1][0])  # after the last
    return energy


# A counter and the integrated power trace of the same window may differ this much before one
# of them is called wrong. Generous: on Ampere and newer NVML's power reading is a 1 s moving
# average, so the trace lags power steps at the window's edges.
COUNTER_TRACE_TOLERANCE = 0.2
PLAUSIBILITY_MIN_S = 2.0  # shorter windows have too few samples to judge a counter by
PLAUSIBILITY_MIN_J = 1.0  # nor can a window a GPU spent almost nothing in
# A counter that did not move at all over this long (five of its ~100 ms updates) while the
# trace shows power is frozen, however short the window (the protocol's idle samples are short)
FROZEN_MIN_S = 0.5
# A power trace with a longer hole (ten sample periods: NVML reads failing) is not integrated
# into a window's energy, nor used to judge a counter.
MAX_TRACE_GAP_S = 1.0


@dataclass(frozen=True)
class GpuWindow:
    energy_j: float
    # what this window used: nvml-counter, or nvml-power(-averaged) if any GPU integrated
    method: str
    started: float  # sampler clock at the window's start
    trace: list[Sample]
    note: str | None = None  # why a GPU with a counter was integrated in this window
    invalid: str | None = None  # why its energy cannot be right


class NvmlGpuMeter:
    """GPU energy per window for the given GPUs: counter deltas, or the integrated power trace.

    Each window says what it used: a counter read that fails at a window's edge integrates the
    trace for that window, labelled so. Where a counter was used, it is checked against the
    integrated trace: a gap beyond COUNTER_TRACE_TOLERANCE, or a counter that did not move
    while the GPU was busy (frozen, as on some vGPUs), makes the window invalid.
    """

    # what its windows are labelled, and the library a failed read names (subclasses: AMD SMI)
    COUNTER_LABEL, POWER_LABEL, AVERAGED_LABEL = "nvml-counter", "nvml-power", "nvml-power-averaged"
    LIBRARY = "NVML"

    def __init__(self, nvml: Any, gpus: Sequence[NvmlGpu], sampler: PowerSampler) -> None:
        self.nvml, self.gpus, self.sampler = nvml, list(gpus), sampler
        self.counters = {g.index: self._counter(g) is not None for g in self.gpus}
        self._start: tuple[float, dict[int, float | None]] | None = None

    def _counter(self, gpu: NvmlGpu) -> float | None:
        try:
            return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)) / 1000  # mJ
        except self.nvml.NVMLError:
            return None

    def begin_window(self) -> None:
        self._start = (self.sampler.clock(), {g.index: self._counter(g) for g in self.gpus})

    def end_window(self) -> GpuWindow:
        """The window's GPU energy, how it was measured, and its power trace."""
        assert self._start is not None, "end_window without begin_window"
        t0, before = self._start
        t1 = self.sampler.clock()
        self.sampler.sample_safely()  # a sample at the edge, so short windows have one
        trace = self.sampler.between(t0, t1 + 1)
        total, integrated, notes, invalid = 0.0, [], [], []
        for gpu in self.gpus:
            samples = [s for s in trace if s.gpu == gpu.index]
            traced = integrate_power(samples, t0, t1)
            gap = trace_gap(samples, t0, t1)
            after = self._counter(gpu) if self.counters[gpu.index] else None
            start = before[gpu.index]
            if after is not None and start is not None:
                total += after - start
                if gap <= MAX_TRACE_GAP_S:
                    invalid += _implausible(gpu, after - start, traced, samples, t1 - t0)
            else:
                total += traced
                integrated += samples
                if self.counters[gpu.index]:
                    notes.append(f"GPU {gpu.uuid}: its counter could not be read at a window edge")
                if gap > MAX_TRACE_GAP_S:
                    invalid.append(
                        f"GPU {gpu.uuid}: its power trace has a {gap:.1f} s hole "
                        f"({self.LIBRARY} reads failed; at most {MAX_TRACE_GAP_S:g} s), so its "
                        "integrated energy cannot be right"
                    )
        self._start = None
        method = self.COUNTER_LABEL
        if integrated:
            instant = all(s.instant for s in integrated)
            method = self.POWER_LABEL if instant else self.AVERAGED_LABEL
        return GpuWindow(
            total,
            method,
            t0,
            trace,
            note="; ".join(notes) + "; power trace integrated" if notes else None,
            invalid="; ".join(invalid) or None,
        )


def trace_gap(samples: Sequence[Sample], t0: float, t1: float) -> float:
    """The longest stretch of [t0, t1] without a sample (all of it when there is none)."""
    times = sorted(min(max(s.t, t0), t1) for s in samples)
    edges = [t0, *times, t1]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


def _implausible(
    gpu: NvmlGpu, counter_j: float, traced_j: float, samples: Sequence[Sample], seconds: float
) -> list[str]:
    """Why a counter's energy for a window cannot be right, judged by the power trace."""
    busy = max((s.utilization_pct for s in samples), default=0.0)
    if counter_j <= 0 and busy > 0:
        return [
            f"GPU {gpu.uuid}: its energy counter did not move while the GPU was up to {busy:.0f} "
            "% busy (a frozen counter, as on some virtual GPUs)"
        ]
    if counter_j <= 0 and seconds >= FROZEN_MIN_S and traced_j >= PLAUSIBILITY_MIN_J:
        return [  # idle too: a counter stepping every 100 ms moves in half a second
            f"GPU {gpu.uuid}: its energy counter did not move while the GPU drew "
            f"{traced_j / seconds:.0f} W (a frozen counter, as on some virtual GPUs)"
        ]
    if seconds < PLAUSIBILITY_MIN_S or traced_j < PLAUSIBILITY_MIN_J or len(samples) < 3:
        return []
    gap = abs(counter_j - traced_j) / traced_j
    if gap <= COUNTER_TRACE_TOLERANCE:
        return []
    return [
        f"GPU {gpu.uuid}: counter {counter_j:.4g} J against power trace {traced_j:.4g} J, "
        f"{gap:.0%} apart (at most {COUNTER_TRACE_TOLERANCE:.0%}): one of them is wrong"
    ]


@dataclass(frozen=True)
class ForeignProcesses:
    """Other processes computing on the measured GPUs, and what could not be told."""

    found: list[tuple[str, int]]  # (gpu uuid, pid as NVML gives it)
    note: str | None = None  # why NVML's PIDs could not all be matched with this process's


def foreign_processes(
    nvml: Any, gpus: Sequence[NvmlGpu], own: set[int] | None = None, proc: str | None = None
) -> ForeignProcesses:
    """Compute processes on these GPUs that are not this cell's.

    This process is recognised by its PID in every namespace /proc shows (pid_namespace). In a
    container whose /proc shows only its own namespace, NVML may list host PIDs, none of them
    ours: then a single one per GPU is taken to be greenbench's (it computes there), and where
    there are more, all are reported (another process is among them); a note says so.
    """
    own = own if own is not None else own_pids(proc)
    found: list[tuple[str, int]] = []
    unmatched: list[str] = []
    for gpu in gpus:
        try:
            pids = [p.pid for p in nvml.nvmlDeviceGetComputeRunningProcesses(gpu.handle)]
        except nvml.NVMLError:
            continue
        others = [p for p in pids if p not in own]
        if others and len(others) == len(pids) and in_initial_pid_namespace(proc) is False:
            # none is ours as this namespace numbers it: NVML speaks another namespace's PIDs
            unmatched.append(f"{gpu.uuid}: {', '.join(map(str, others))}")
            if len(others) == 1:
                continue  # greenbench's own process
        found += [(gpu.uuid, p) for p in others]
    note = None
    if unmatched:
        note = (
            "NVML lists PIDs from another PID namespace (greenbench runs in a container), so "
            f"they cannot be matched with its own ({'; '.join(unmatched)}): one per GPU is "
            "taken to be greenbench's; where there are more, all are listed, one being greenbench's"
        )
    return ForeignProcesses(found, note)


class Cooldown:
    """Waits between repetitions until the GPUs' power and temperature are back near idle."""

    def __init__(
        self,
        nvml: Any,
        gpus: Sequence[NvmlGpu],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        power_margin: float = 0.10,  # within 10 % (and 5 W) of idle power
        temperature_margin_c: float = 3.0,
    ) -> None:
        self.nvml, self.gpus, self.sleep, self.clock = nvml, list(gpus), sleep, clock
        self.power_margin, self.temperature_margin_c = power_margin, temperature_margin_c
        self.idle: dict[int, tuple[float, float]] = {}

    def _read(self, gpu: NvmlGpu) -> tuple[float, float] | None:
        """Power and temperature now; None when NVML cannot say (a transient error)."""
        try:
            return (
                self.nvml.nvmlDeviceGetPowerUsage(gpu.handle) / 1000,
                float(self.nvml.nvmlDeviceGetTemperature(gpu.handle, 0)),
            )
        except self.nvml.NVMLError:
            return None

    def temperature_c(self) -> float | None:
        """The hottest measured GPU's temperature now (the protocol waits for it to settle)."""
        found = [r[1] for r in map(self._read, self.gpus) if r is not None]
        return max(found) if found else None

    def calibrate(self, seconds: float = 1.0, period_s: float = 0.1) -> None:
        """Learn idle power and temperature: the protocol calls it right after its settled
        idle baseline, so cooldowns wait for that state, not for one still warm from loading."""
        readings: dict[int, list[tuple[float, float]]] = {g.index: [] for g in self.gpus}
        end = self.clock() + seconds
        while True:
            for gpu in self.gpus:
                reading = self._read(gpu)
                if reading is not None:
                    readings[gpu.index].append(reading)
            if self.clock() >= end:
                break
            self.sleep(period_s)
        for index, values in readings.items():
            if values:
                self.idle[index] = (
                    sum(p for p, _ in values) / len(values),
                    sum(t for _, t in values) / len(values),
                )

    def settled(self) -> bool:
        """Every GPU near its idle; one that cannot be read (or never was) does not hold the
        wait: a cooldown is a courtesy to the next window, whose own checks judge it."""
        for gpu in self.gpus:
            reading = self._read(gpu)
            if reading is None or gpu.index not in self.idle:
                continue
            (idle_power, idle_temperature), (power, temperature) = self.idle[gpu.index], reading
            if power > idle_power * (1 + self.power_margin) + 5.0:
                return False
            if temperature > idle_temperature + self.temperature_margin_c:
                return False
        return True

    def __call__(self, max_s: float, period_s: float = 0.2) -> float:
        """Wait until settled or `max_s` passed; the seconds waited (recorded per window)."""
        started = self.clock()
        while not self.settled() and self.clock() - started < max_s:
            self.sleep(period_s)
        return self.clock() - started
