"""NVIDIA GH200 Grace Hopper: NVML's power and energy of its GPU cover the whole module (Grace
CPU, Hopper GPU, LPDDR5X and HBM), as Zeus documents. A cell on a GH200 is labelled so
(`nvml-module-counter`), and CodeCarbon's CPU and RAM are not added on top: they are inside
the module figure (`in-gpu-module`), and adding them would count them twice.

A GH200 is known by NVML's C2C mode (nvmlDeviceGetC2cModeInfoV: the NVLink-C2C link between
Grace and Hopper, NOT_SUPPORTED on other GPUs; Zeus's test), or by its name where the driver or
pynvml is too old for that call.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from greenbench.energy.gpu_meter import CpuRamAndNvmlMeter
from greenbench.energy.meter import KWH_TO_J, Measurement
from greenbench.energy.nvml import NvmlGpu

MODULE_LABELS = {
    "nvml-counter": "nvml-module-counter",
    "nvml-power": "nvml-module-power",
    "nvml-power-averaged": "nvml-module-power-averaged",
}
NOTE = (
    "GH200: NVML's figure covers the whole module (Grace CPU, Hopper GPU, memory), so "
    "CodeCarbon's CPU and RAM are not added"
)


def is_grace_hopper(nvml: Any, gpu: NvmlGpu) -> bool:
    try:
        if nvml.nvmlDeviceGetC2cModeInfoV(gpu.handle).isC2cEnabled:
            return True
    except (nvml.NVMLError, AttributeError):  # not a GH200, or a driver/pynvml without the call
        pass
    return "GH200" in gpu.name.upper()


class ModuleMeter:
    """A CUDA cell's NVML meter on a GH200: the module figure is the GPU component, CPU and RAM
    are inside it."""

    def __init__(self, inner: CpuRamAndNvmlMeter) -> None:
        self.inner = inner
        self.cooldown = inner.cooldown

    def begin_window(self) -> None:
        self.inner.begin_window()

    def end_window(self) -> Measurement:
        m = self.inner.end_window()
        gpu_j = m.energy_j["gpu"]
        intensity = m.carbon_intensity_g_per_kwh
        return dataclasses.replace(
            m,
            energy_j={**m.energy_j, "cpu": 0.0, "ram": 0.0},
            methods={
                **m.methods,
                "gpu": MODULE_LABELS.get(m.methods["gpu"], m.methods["gpu"]),
                "cpu": "in-gpu-module",
                "ram": "in-gpu-module",
            },
            emissions_g=gpu_j / KWH_TO_J * intensity if math.isfinite(intensity) else 0.0,
            note="; ".join(p for p in (m.note, NOTE) if p),
        )

    def close(self) -> None:
        self.inner.close()
