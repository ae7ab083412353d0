"""A cell's meter on a CUDA device: CodeCarbon for CPU and RAM, NVML for exactly its GPU."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

from greenbench.energy.meter import KWH_TO_J, Measurement, Meter
from greenbench.energy.nvml import (
    Cooldown,
    ForeignProcesses,
    NvmlGpu,
    NvmlGpuMeter,
    PowerSampler,
    foreign_processes,
    gpu_for_torch_index,
    nvml_gpus,
)
from greenbench.errors import GreenbenchError, one_line


class CpuRamAndNvmlMeter:
    """Windows of a CodeCarbon meter (CPU, RAM) with NVML's GPU energy and power trace added."""

    def __init__(
        self, base: Meter, gpu: NvmlGpuMeter, nvml: Any, cooldown: Cooldown | None = None
    ) -> None:
        """`nvml` is the library `gpu` reads (pynvml; amdsmi for AMDs, with its own cooldown)."""
        self.base, self.gpu, self.nvml = base, gpu, nvml
        self.cooldown = cooldown if cooldown is not None else Cooldown(nvml, gpu.gpus)

    def begin_window(self) -> None:
        self.base.begin_window()
        self.gpu.begin_window()

    def end_window(self) -> Measurement:
        m = self.base.end_window()
        window = self.gpu.end_window()
        others = self.foreign_processes()
        intensity = m.carbon_intensity_g_per_kwh
        extra_g = window.energy_j / KWH_TO_J * intensity if math.isfinite(intensity) else 0.0
        trace = tuple(
            (round(s.t - window.started, 3), s.gpu, s.power_w, s.utilization_pct)
            + (s.temperature_c, s.sm_clock_mhz, 1.0 if s.instant else 0.0)
            for s in window.trace
        )
        return dataclasses.replace(
            m,
            energy_j={**m.energy_j, "gpu": window.energy_j},
            methods={**m.methods, "gpu": window.method},
            emissions_g=m.emissions_g + extra_g,
            gpu_trace=trace,
            gpu_foreign_pids=tuple(pid for _, pid in others.found),
            note=_joined(m.note, window.note, others.note),
            invalid=_joined(m.invalid, window.invalid),
        )

    def foreign_processes(self) -> ForeignProcesses:
        return foreign_processes(self.nvml, self.gpu.gpus)

    def shutdown(self) -> None:
        self.nvml.nvmlShutdown()

    def close(self) -> None:
        try:
            self.gpu.sampler.stop()
            self.base.close()
        finally:
            self.shutdown()


def _joined(*parts: str | None) -> str | None:
    return "; ".join(p for p in parts if p) or None


def _pynvml() -> Any:
    import pynvml  # lazy: only NVIDIA machines need it

    return pynvml


def find_gpu(device_index: int, nvml: Any) -> NvmlGpu:
    """torch's cuda:device_index as NVML numbers it (after nvmlInit); GreenbenchError when it
    cannot be told (a MIG instance, a UUID NVML does not know)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return gpu_for_torch_index(device_index, nvml_gpus(nvml), visible, torch_uuid_of(device_index))


def nvml_index_of(device_index: int, nvml: Any | None = None) -> int:
    """The NVML index of torch's cuda:device_index, for a reader that takes NVML indices;
    GreenbenchError when NVML cannot tell."""
    nvml = _pynvml() if nvml is None else nvml
    try:
        nvml.nvmlInit()
        try:
            return find_gpu(device_index, nvml).index
        finally:
            nvml.nvmlShutdown()
    except GreenbenchError:
        raise
    except Exception as e:  # noqa: BLE001 - any NVML failure: this GPU cannot be read
        raise GreenbenchError(
            f"cuda:{device_index}: NVML cannot be read ({one_line(e)}), so its energy cannot be "
            "measured; check the NVIDIA driver (nvidia-smi)"
        ) from None


def nvml_meter_for(
    device_indices: Sequence[int], base: Meter, nvml: Any | None = None
) -> CpuRamAndNvmlMeter:
    """The meter for torch's cuda:i, every i in device_indices, together; GreenbenchError when
    a GPU cannot be identified, any other exception when NVML cannot be used."""
    nvml = _pynvml() if nvml is None else nvml
    nvml.nvmlInit()
    try:
        gpus = [find_gpu(i, nvml) for i in device_indices]
        sampler = PowerSampler(nvml, gpus)
        sampler.start()
        return CpuRamAndNvmlMeter(base, NvmlGpuMeter(nvml, gpus, sampler), nvml)
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
