"""A cell's meter on a CUDA device: CodeCarbon for CPU and RAM, NVML for exactly its GPU."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from greenbench.energy.meter import KWH_TO_J, Measurement, Meter
from greenbench.energy.nvml import (
    Cooldown,
    NvmlGpuMeter,
    PowerSampler,
    foreign_processes,
    gpu_for_torch_index,
    nvml_gpus,
)


class CpuRamAndNvmlMeter:
    """Windows of a CodeCarbon meter (CPU, RAM) with NVML's GPU energy and power trace added."""

    def __init__(self, base: Meter, gpu: NvmlGpuMeter, nvml: Any) -> None:
        self.base, self.gpu, self.nvml = base, gpu, nvml
        self.cooldown = Cooldown(nvml, gpu.gpus)

    def begin_window(self) -> None:
        self.base.begin_window()
        self.gpu.begin_window()

    def end_window(self) -> Measurement:
        m = self.base.end_window()
        window = self.gpu.end_window()
        intensity = m.carbon_intensity_g_per_kwh
        extra_g = window.energy_j / KWH_TO_J * intensity if math.isfinite(intensity) else 0.0
        trace = tuple(
            (round(s.t - window.started, 3), s.gpu, s.power_w, s.utilization_pct)
            + (s.temperature_c, s.sm_clock_mhz)
            for s in window.trace
        )
        return dataclasses.replace(
            m,
            energy_j={**m.energy_j, "gpu": window.energy_j},
            methods={**m.methods, "gpu": window.method},
            emissions_g=m.emissions_g + extra_g,
            gpu_trace=trace,
            gpu_foreign_pids=tuple(pid for _, pid in foreign_processes(self.nvml, self.gpu.gpus)),
        )

    def close(self) -> None:
        try:
            self.gpu.sampler.stop()
            self.base.close()
        finally:
            self.nvml.nvmlShutdown()


def nvml_meter_for(device_index: int, base: Meter, nvml: Any | None = None) -> CpuRamAndNvmlMeter:
    """The meter for torch's cuda:device_index; raises when NVML cannot be used."""
    if nvml is None:
        import pynvml  # lazy: only NVIDIA machines need it

        nvml = pynvml
    nvml.nvmlInit()
    try:
        torch_uuid = torch_uuid_of(device_index)
        gpu = gpu_for_torch_index(
            device_index, nvml_gpus(nvml), os.environ.get("CUDA_VISIBLE_DEVICES"), torch_uuid
        )
        sampler = PowerSampler(nvml, [gpu])
        sampler.start()
        return CpuRamAndNvmlMeter(base, NvmlGpuMeter(nvml, [gpu], sampler), nvml)
    except BaseException:
        nvml.nvmlShutdown()
        raise


def torch_uuid_of(device_index: int) -> str | None:
    try:
        import torch

        uuid = getattr(torch.cuda.get_device_properties(device_index), "uuid", None)
    except Exception:  # noqa: BLE001 - no CUDA torch: fall back to CUDA_VISIBLE_DEVICES
        return None
    return str(uuid) if uuid else None
