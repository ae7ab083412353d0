"""The meter interface: `begin_window()` / `end_window()` around work, one Measurement out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

COMPONENTS = ("cpu", "gpu", "ram")
KWH_TO_J = 3.6e6


@dataclass(frozen=True)
class Measurement:
    """Energy of one window, per component, with each component's measurement method.

    The window's duration is the caller's to time: it knows where the work began and ended.
    """

    energy_j: dict[str, float]  # component -> joules, for every name in COMPONENTS
    methods: dict[str, str]  # component -> label from energy.methods
    emissions_g: float
    carbon_intensity_g_per_kwh: float
    carbon_source: str
    # GPU power samples of the window: (seconds from its start, NVML index, W, util %, °C, MHz,
    # 1 if the W are instantaneous, 0 if a 1 s moving average)
    gpu_trace: tuple[tuple[float, ...], ...] = ()
    gpu_foreign_pids: tuple[int, ...] = ()  # other processes computing on the measured GPUs
    note: str | None = None  # why a component was measured the way it was (a fallback)
    invalid: str | None = None  # why the meter's reading of this window cannot be right

    @property
    def total_j(self) -> float:
        return sum(self.energy_j.values())


class Meter(Protocol):
    def begin_window(self) -> None: ...

    def end_window(self) -> Measurement: ...

    def close(self) -> None: ...


class SharedPackageMeter:
    """A device inside the CPU package (an Intel iGPU or NPU): its energy is in the CPU figure,
    so its own component is labelled `in-cpu-package` rather than measured apart."""

    def __init__(self, base: Meter) -> None:
        self.base = base

    def begin_window(self) -> None:
        self.base.begin_window()

    def end_window(self) -> Measurement:
        m = self.base.end_window()
        return dataclasses.replace(m, methods={**m.methods, "gpu": "in-cpu-package"})

    def close(self) -> None:
        self.base.close()


class GpuNotMeasured:
    """A CPU/RAM meter's windows for a cell whose GPU cannot be read: `none`, and why."""

    def __init__(self, base: Meter, reason: str) -> None:
        self.base, self.reason = base, reason

    def begin_window(self) -> None:
        self.base.begin_window()

    def end_window(self) -> Measurement:
        m = self.base.end_window()
        note = "; ".join(p for p in (m.note, f"GPU energy not measured: {self.reason}") if p)
        return dataclasses.replace(
            m, energy_j={**m.energy_j, "gpu": 0.0}, methods={**m.methods, "gpu": "none"}, note=note
        )

    def close(self) -> None:
        self.base.close()
