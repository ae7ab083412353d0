"""Apple silicon energy: IOReport without sudo (zeus-apple-silicon), else powermetrics with
passwordless sudo, else CodeCarbon's CPU estimate with the GPU labelled `none` and why.

IOReport (`ioreport`) gives mJ per window for the CPU, the GPU (and its SRAM), the Neural
Engine and DRAM: the CPU is `cpu`, GPU + GPU SRAM + ANE (the SoC's accelerators) are `gpu`, DRAM
is `ram` where the chip reports it (else CodeCarbon's RAM estimate). powermetrics
(`powermetrics`) reports CPU, GPU and ANE mJ per sampling interval, NUL-separated plists;
a window's energy is each interval's share that lies inside it.
"""

from __future__ import annotations

import dataclasses
import plistlib
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from greenbench.carbon.zones import Zone
from greenbench.energy import rapl
from greenbench.energy.meter import KWH_TO_J, GpuNotMeasured, Measurement, Meter
from greenbench.errors import one_line

INSTALL = "pip install 'greenbench[apple]'"
INTERVAL_MS = 100
POWERMETRICS = [
    "sudo",
    "-n",  # never prompt: without passwordless sudo it fails at once
    "powermetrics",
    "--samplers",
    "cpu_power,gpu_power,ane_power",
    "-f",
    "plist",
    "-i",
    str(INTERVAL_MS),
]


def _joules(mj: int | float | None) -> float | None:
    return None if mj is None else float(mj) / 1e3


def with_energy(m: Measurement, energy: dict[str, float], methods: dict[str, str]) -> Measurement:
    """A window with some components' energy and labels replaced, its emissions recomputed."""
    energy = {**m.energy_j, **energy}
    intensity = m.carbon_intensity_g_per_kwh
    return dataclasses.replace(
        m,
        energy_j=energy,
        methods={**m.methods, **methods},
        emissions_g=sum(energy.values()) / KWH_TO_J * intensity,
    )


class IOReportMeter:
    """A CPU/RAM meter's windows with IOReport's CPU, GPU + ANE and DRAM energy in place."""

    LABEL = "greenbench"

    def __init__(self, base: Meter, monitor: Any) -> None:
        self.base, self.monitor = base, monitor

    def begin_window(self) -> None:
        self.base.begin_window()
        self.monitor.begin_window(self.LABEL)

    def end_window(self) -> Measurement:
        metrics = self.monitor.end_window(self.LABEL)
        m = self.base.end_window()
        energy, methods = {}, {}
        cpu = _joules(metrics.cpu_total_mj)
        if cpu is not None:  # else CodeCarbon's CPU reading, under its own label
            energy["cpu"], methods["cpu"] = cpu, "ioreport"
        parts = [metrics.gpu_mj, metrics.gpu_sram_mj, metrics.ane_mj]
        if any(p is not None for p in parts):
            energy["gpu"] = sum(_joules(p) or 0.0 for p in parts)
            methods["gpu"] = "ioreport"
        dram = _joules(metrics.dram_mj)
        if dram is not None:
            energy["ram"], methods["ram"] = dram, "ioreport"
        return with_energy(m, energy, methods)

    def close(self) -> None:
        self.base.close()


@dataclass(frozen=True)
class Sample:
    """One powermetrics interval: when it ended (our clock), how long it was, its joules."""

    end: float
    seconds: float
    cpu_j: float
    gpu_j: float  # GPU + ANE


def parse_sample(document: bytes, end: float) -> Sample | None:
    """One plist from `powermetrics -f plist` (top-level `elapsed_ns`, `processor` with
    `cpu_energy`, `gpu_energy`, `ane_energy` in mJ); None when it has no energy figures."""
    try:
        data = plistlib.loads(document.strip(b"\0\n "))
    except Exception:  # noqa: BLE001 - a truncated or foreign document: skip it
        return None
    processor = data.get("processor", {})
    if "elapsed_ns" not in data or "cpu_energy" not in processor:
        return None
    gpu_mj = processor.get("gpu_energy", 0) + processor.get("ane_energy", 0)
    cpu_j = processor["cpu_energy"] / 1e3
    return Sample(end, data["elapsed_ns"] / 1e9, cpu_j, gpu_mj / 1e3)


class PowermetricsSampler:
    """Samples from a powermetrics stream (a thread reads it); each interval's energy split
    over windows by overlap."""

    def __init__(self, stream: IO[bytes] | None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.samples: list[Sample] = []
        self._buffer = b""
        self._arrived = threading.Condition()
        self._thread: threading.Thread | None = None
        if stream is not None:
            self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
            self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        while chunk := stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536):
            self.feed(chunk, self.clock())

    def feed(self, chunk: bytes, now: float) -> None:
        """Bytes of the stream, read at `now`: every plist they complete is a sample."""
        *documents, self._buffer = (self._buffer + chunk).split(b"\0")
        with self._arrived:
            for document in documents:
                sample = parse_sample(document, now)
                if sample is not None:
                    self.samples.append(sample)
            self._arrived.notify_all()

    def wait_past(self, t: float, timeout_s: float) -> bool:
        """Wait until a sample ends at or after `t`; False when none came in time."""
        with self._arrived:
            return self._arrived.wait_for(
                lambda: bool(self.samples) and self.samples[-1].end >= t, timeout_s
            )

    def energy(self, start: float, end: float) -> tuple[float, float]:
        """(CPU J, GPU + ANE J) in [start, end]: each sample's joules times the share of its
        interval inside the window."""
        cpu = gpu = 0.0
        for s in self.samples:
            overlap = min(end, s.end) - max(start, s.end - s.seconds)
            if overlap > 0 and s.seconds > 0:
                share = overlap / s.seconds
                cpu, gpu = cpu + s.cpu_j * share, gpu + s.gpu_j * share
        return cpu, gpu


class PowermetricsMeter:
    """A CPU/RAM meter's windows with powermetrics' CPU and GPU + ANE energy in place."""

    def __init__(self, base: Meter, sampler: PowermetricsSampler, process: Any = None) -> None:
        self.base, self.sampler, self.process = base, sampler, process
        self.wait_s = 3 * INTERVAL_MS / 1e3 + 1  # for the sample that covers a window's end
        self._start = 0.0

    def begin_window(self) -> None:
        self.base.begin_window()
        self._start = self.sampler.clock()

    def end_window(self) -> Measurement:
        end = self.sampler.clock()
        m = self.base.end_window()
        if not self.sampler.wait_past(end, self.wait_s):
            return dataclasses.replace(
                m, invalid="powermetrics stopped sending samples before the window's end"
            )
        cpu, gpu = self.sampler.energy(self._start, end)
        methods = {"cpu": "powermetrics", "gpu": "powermetrics"}
        return with_energy(m, {"cpu": cpu, "gpu": gpu}, methods)

    def close(self) -> None:
        try:
            if self.process is not None:
                self.process.terminate()
                self.process.wait(timeout=5)
        finally:
            self.base.close()


def ioreport_monitor() -> tuple[Any, str | None]:
    """zeus-apple-silicon's monitor, or (None, why not)."""
    try:
        from zeus_apple_silicon import AppleEnergyMonitor  # optional: greenbench[apple]
    except ImportError:
        return None, f"zeus-apple-silicon is not installed ({INSTALL})"
    try:
        return AppleEnergyMonitor(), None
    except Exception as e:  # noqa: BLE001 - IOReport unavailable here: say so
        return None, f"IOReport cannot be read ({one_line(e)})"


def passwordless_sudo() -> bool:
    if shutil.which("powermetrics") is None or shutil.which("sudo") is None:
        return False
    check = subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=10)
    return check.returncode == 0


def apple_meter(zone: Zone) -> Meter:
    """How an Apple silicon cell is measured: IOReport, else powermetrics, else `none`."""
    base = rapl.cpu_meter(zone)
    monitor, why = ioreport_monitor()
    if monitor is not None:
        return IOReportMeter(base, monitor)
    if passwordless_sudo():
        process = subprocess.Popen(POWERMETRICS, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        return PowermetricsMeter(base, PowermetricsSampler(process.stdout), process)
    return GpuNotMeasured(
        base, f"{why}; or allow passwordless sudo for powermetrics; CPU: CodeCarbon's estimate"
    )


def apple_method() -> str:
    """How `greenbench devices` says an Apple silicon GPU is measured here."""
    monitor, why = ioreport_monitor()
    if monitor is not None:
        return "ioreport: IOReport energy (CPU, GPU, ANE, DRAM) via zeus-apple-silicon, no sudo"
    return (
        f"none: {why}; powermetrics is used instead when sudo needs no password "
        "(sudo -n powermetrics)"
    )
