"""NVIDIA Jetson: energy from the board's INA3221 power rails, since NVML's counter is absent.

The rails are found as Zeus's Jetson layer finds them: under /sys/bus/i2c/drivers/ina3221x
(older L4T: iio `rail_name_N` with `in_power{N}_input` in mW, or `in_voltage`/`in_current` in
mV and mA) or .../ina3221 (newer: hwmon `in{N}_label` with `in{N}_input` mV and `curr{N}_input`
mA, `power{N}_input` in uW where the driver has it, per the hwmon ABI). greenbench reads them
itself rather than through Zeus: Zeus keeps one rail per kind (a second GPU rail overwrites the
first), files a combined VDD_CPU_GPU_CV rail as CPU alone, misses VIN_SYS_5V0, and samples in a
spawned process without a trace.

Which rails count: every rail whose name has GPU is the GPU component (VDD_GPU_SOC includes the
SoC; VDD_CPU_GPU_CV on Orin NX/Nano includes the CPU, whose component is then `in-gpu-rail`),
rails with CPU alone are the CPU component; the rest (VDD_IN, VIN_SYS_5V0, VDD_SOC, ...) are
named in the note, not counted. RAM stays CodeCarbon's estimate. Power is sampled at 10 Hz and
integrated over each window (`jetson-rails`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from greenbench.energy.meter import KWH_TO_J, Measurement, Meter
from greenbench.energy.nvml import (
    MAX_TRACE_GAP_S,
    SAMPLE_PERIOD_S,
    PowerSampler,
    Sample,
    integrate_power,
    trace_gap,
)
from greenbench.errors import GreenbenchError, one_line

DRIVERS = ("ina3221x", "ina3221")
GPU_PART, CPU_PART = 0, 1  # Sample.gpu of a sample of the GPU rails' or the CPU rails' sum
SKIPPED_LABELS = ("sum", "nc")  # hwmon's "sum of shunt voltages", unconnected channels


@dataclass(frozen=True)
class Rail:
    name: str
    power: Path | None  # a power file, or
    voltage: Path | None  # voltage and current files
    current: Path | None
    power_scale: float = 1.0  # to mW: 1 for iio's mW, 1e-3 for hwmon's uW

    def read_w(self) -> float:
        if self.power is not None:
            return float(self.power.read_text().strip()) * self.power_scale / 1000
        assert self.voltage is not None and self.current is not None
        millivolts = float(self.voltage.read_text().strip())
        milliamps = float(self.current.read_text().strip())
        return millivolts * milliamps / 1e6

    @property
    def is_gpu(self) -> bool:
        return "GPU" in self.name.upper()

    @property
    def is_cpu(self) -> bool:
        return "CPU" in self.name.upper() and not self.is_gpu


def _rail(directory: Path, name: str, index: str, hwmon: bool) -> Rail | None:
    if hwmon:
        power, scale = directory / f"power{index}_input", 1e-3
        voltage, current = directory / f"in{index}_input", directory / f"curr{index}_input"
    else:
        power, scale = directory / f"in_power{index}_input", 1.0
        voltage = directory / f"in_voltage{index}_input"
        current = directory / f"in_current{index}_input"
    if power.is_file():
        return Rail(name, power, None, None, scale)
    if voltage.is_file() and current.is_file():
        return Rail(name, None, voltage, current)
    return None


def find_rails(root: Path = Path("/")) -> list[Rail]:
    """Every INA3221 rail the board exposes, in sysfs order."""
    rails: list[Rail] = []
    seen: set[str] = set()
    for driver in DRIVERS:
        for device in sorted((root / "sys/bus/i2c/drivers" / driver).glob("*")):
            for sub in sorted(device.glob("*")):
                if not sub.is_dir():
                    continue
                for directory in [sub, *sorted(sub.glob("hwmon*"))]:
                    for label in sorted(directory.glob("in*_label")):
                        name = label.read_text().strip()
                        match = re.fullmatch(r"in(\d+)_label", label.name)
                        if match and not name.lower().startswith(SKIPPED_LABELS):
                            rail = _rail(directory, name, match[1], hwmon=True)
                            if rail and rail.name not in seen:
                                rails.append(rail)
                                seen.add(rail.name)
                    for label in sorted(directory.glob("rail_name_*")):
                        name = label.read_text().strip()
                        index = label.name.removeprefix("rail_name_")
                        rail = _rail(directory, name, index, hwmon=False)
                        if rail and rail.name not in seen:
                            rails.append(rail)
                            seen.add(rail.name)
    return rails


def is_jetson(root: Path = Path("/")) -> bool:
    """An L4T (Jetson) board: its release file, or a device-tree model naming Jetson."""
    if (root / "etc/nv_tegra_release").is_file():
        return True
    model = root / "proc/device-tree/model"
    try:
        text = model.read_text(errors="replace").lower()
    except OSError:
        return False
    return "jetson" in text or "tegra" in text


@dataclass(frozen=True)
class RailPlan:
    """Which rails make which component, in words for the method note."""

    gpu: tuple[Rail, ...]
    cpu: tuple[Rail, ...]
    ignored: tuple[Rail, ...]

    @property
    def cpu_in_gpu(self) -> bool:
        return any("CPU" in r.name.upper() for r in self.gpu)

    def describe(self) -> str:
        parts = [f"GPU from {', '.join(r.name for r in self.gpu)}"]
        if self.cpu:
            parts.append(f"CPU from {', '.join(r.name for r in self.cpu)}")
        elif self.cpu_in_gpu:
            parts.append("CPU inside the GPU rail")
        if self.ignored:
            parts.append(f"not counted: {', '.join(r.name for r in self.ignored)}")
        return "Jetson rails: " + "; ".join(parts)


def plan_rails(rails: Sequence[Rail]) -> RailPlan:
    gpu = tuple(r for r in rails if r.is_gpu)
    if not gpu:
        names = ", ".join(r.name for r in rails) or "none"
        raise GreenbenchError(
            f"this Jetson exposes no GPU power rail (rails: {names}), so the GPU's energy "
            "cannot be measured; in a container, mount /sys from the host"
        )
    cpu = tuple(r for r in rails if r.is_cpu)
    ignored = tuple(r for r in rails if r not in gpu and r not in cpu)
    return RailPlan(gpu, cpu, ignored)


def _first_number(paths: Sequence[Path], scale: float) -> float:
    for path in paths:
        try:
            return float(path.read_text().strip()) * scale
        except (OSError, ValueError):
            continue
    return 0.0


class RailSampler(PowerSampler):
    """A thread summing the GPU rails' and the CPU rails' power at 10 Hz (Sample.gpu says
    which: GPU_PART, CPU_PART), with the GPU's load (per mille in sysfs) and temperature."""

    def __init__(
        self,
        plan: RailPlan,
        root: Path = Path("/"),
        period_s: float = SAMPLE_PERIOD_S,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        super().__init__(None, [], period_s, clock, wait)
        self.plan = plan
        platform = root / "sys/devices/platform"
        loads = [*platform.glob("*gpu*/load"), *platform.glob("*/*gpu*/load")]
        self.load_files = sorted(loads)
        zones = sorted((root / "sys/devices/virtual/thermal").glob("thermal_zone*"))
        self.temperature_files = [
            z / "temp" for z in zones if _type(z).lower().startswith(("gpu-therm", "gpu"))
        ]

    def sample_once(self) -> None:
        now = self.clock()
        gpu_w = sum(r.read_w() for r in self.plan.gpu)
        cpu_w = sum(r.read_w() for r in self.plan.cpu)
        load = _first_number(self.load_files, 0.1)  # per mille -> %
        temperature = _first_number(self.temperature_files, 1e-3)  # m°C -> °C
        taken = [Sample(now, GPU_PART, gpu_w, load, temperature, 0.0)]
        if self.plan.cpu:
            taken.append(Sample(now, CPU_PART, cpu_w, 0.0, 0.0, 0.0))
        with self._lock:
            self.samples.extend(taken)

    def sample_safely(self) -> None:
        try:
            self.sample_once()
        except (OSError, ValueError):
            self.failures += 1


def _type(zone: Path) -> str:
    try:
        return (zone / "type").read_text().strip()
    except OSError:
        return ""


class JetsonRailMeter:
    """CodeCarbon's RAM (and CPU where no rail has it) with the rails' GPU and CPU energy."""

    def __init__(self, base: Meter, sampler: RailSampler) -> None:
        self.base, self.sampler, self.plan = base, sampler, sampler.plan
        self._t0: float | None = None

    def begin_window(self) -> None:
        self.base.begin_window()
        self._t0 = self.sampler.clock()

    def end_window(self) -> Measurement:
        assert self._t0 is not None, "end_window without begin_window"
        m = self.base.end_window()
        t0, t1 = self._t0, self.sampler.clock()
        self.sampler.sample_safely()  # a sample at the edge, so short windows have one
        trace = self.sampler.between(t0, t1 + 1)
        energy, methods = dict(m.energy_j), dict(m.methods)
        invalid = []
        for part, component in ((GPU_PART, "gpu"), (CPU_PART, "cpu")):
            samples = [s for s in trace if s.gpu == part]
            if part == CPU_PART and not self.plan.cpu:
                if self.plan.cpu_in_gpu:
                    energy["cpu"], methods["cpu"] = 0.0, "in-gpu-rail"
                continue
            energy[component], methods[component] = integrate_power(samples, t0, t1), "jetson-rails"
            gap = trace_gap(samples, t0, t1)
            if gap > MAX_TRACE_GAP_S:
                invalid.append(
                    f"Jetson {component.upper()} rails: the power trace has a {gap:.1f} s hole "
                    f"(sysfs reads failed; at most {MAX_TRACE_GAP_S:g} s)"
                )
        intensity = m.carbon_intensity_g_per_kwh
        emissions = sum(energy.values()) / KWH_TO_J * intensity if math.isfinite(intensity) else 0.0
        gpu_trace = tuple(
            (round(s.t - t0, 3), 0, s.power_w, s.utilization_pct, s.temperature_c, 0.0, 1.0)
            for s in trace
            if s.gpu == GPU_PART
        )
        self._t0 = None
        note = "; ".join(p for p in (m.note, self.plan.describe()) if p)
        return dataclasses.replace(
            m,
            energy_j=energy,
            methods=methods,
            emissions_g=emissions,
            gpu_trace=gpu_trace,
            note=note,
            invalid="; ".join(p for p in (m.invalid, *invalid) if p) or None,
        )

    def close(self) -> None:
        try:
            self.sampler.stop()
        finally:
            self.base.close()


def jetson_meter(base: Meter, root: Path = Path("/")) -> JetsonRailMeter:
    """The rails' meter over `base`; GreenbenchError when the board shows no GPU rail."""
    plan = plan_rails(find_rails(root))
    sampler = RailSampler(plan, root)
    try:
        sampler.sample_once()  # an unreadable rail fails here, clearly
    except (OSError, ValueError) as e:
        raise GreenbenchError(
            f"the Jetson's power rails cannot be read ({one_line(e)}); run greenbench as a user "
            "who can read /sys/bus/i2c/drivers/ina3221*"
        ) from None
    sampler.start()
    return JetsonRailMeter(base, sampler)
