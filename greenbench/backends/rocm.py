"""AMD GPUs through a ROCm build of torch, which calls them `cuda`: AMD SMI measures exactly the
cell's GPU (energy/amdsmi.py), NVML is never loaded on this path; CodeCarbon measures the CPU
and RAM beside it, as on NVIDIA.

greenbench reads amdsmi itself rather than through Zeus's AMDGPUs: Zeus maps only integer
HIP_VISIBLE_DEVICES entries (no UUIDs, no ROCR_VISIBLE_DEVICES), wraps neither the process
list nor temperature for a cooldown, and would bring scikit-learn, pandas and pydantic along.
Its handling of amdsmi's quirks (both energy-count keys, "N/A" power fields, the counter's
start-up check) is followed here.
"""

from __future__ import annotations

from typing import Any

from greenbench.backends.base import DeviceInfo, Emit
from greenbench.backends.cuda import CudaBackend, device_index
from greenbench.carbon.zones import Zone
from greenbench.energy.amdsmi import (
    AMD_INSTALL_HINT,
    amd_meter_for,
    counter_ticks,
    find_amd_gpu,
    load_amdsmi,
    why_not,
)
from greenbench.energy.codecarbon_meter import CodeCarbonMeter
from greenbench.energy.meter import Meter
from greenbench.errors import GreenbenchError
from greenbench.variants import Variant

FP8_ARCHES = ("gfx94", "gfx95")  # MI300 and newer: fp8 matrix cores
WHAT = "AMD GPU (ROCm)"


def is_rocm_torch() -> bool:
    """A ROCm build of torch (torch.version.hip set): its `cuda` devices are AMD GPUs."""
    try:
        import torch
    except ImportError:
        return False
    return bool(getattr(torch.version, "hip", None))


def amd_gpu_meter(index: int, zone: Zone, emit: Emit, amdsmi: Any | None = None) -> Meter:
    """CodeCarbon for CPU and RAM, AMD SMI for torch's cuda:index; no fallback to another
    reader: CodeCarbon would read the GPU through the same AMD SMI."""
    amdsmi = load_amdsmi() if amdsmi is None else amdsmi
    base = CodeCarbonMeter(zone)
    try:
        return amd_meter_for(index, base, amdsmi)
    except BaseException:
        base.close()
        raise


class RocmBackend(CudaBackend):
    name = "AMD GPU (ROCm)"

    def check_available(self, device: str) -> None:
        import torch

        if not torch.cuda.is_available():
            raise GreenbenchError(
                f"device '{device}' is not available: this ROCm torch ({torch.__version__}) sees "
                "no AMD GPU; check the amdgpu driver (amd-smi list) and the render group"
            )
        super().check_available(device)

    def device_skip_reason(self, variant: Variant, device: str) -> str | None:
        if variant.base.name != "fp8":
            return None  # NVIDIA's compute capabilities do not apply to AMD GPUs
        import torch

        arch = str(getattr(torch.cuda.get_device_properties(device), "gcnArchName", ""))
        if arch.startswith(FP8_ARCHES):
            return None
        name = torch.cuda.get_device_name(device)
        return f"fp8 needs an MI300 (gfx94x) or newer; {name} is {arch}"

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        return amd_gpu_meter(device_index(device), zone, emit)

    def device_rows(self) -> list[DeviceInfo]:
        return amd_rows()

    def family_row(self) -> DeviceInfo:
        """The row saying how AMD GPUs would be measured, on a machine without a ROCm torch."""
        return DeviceInfo(
            "cuda",
            False,
            WHAT,
            f"amdsmi-counter (AMD SMI); needs a ROCm build of torch and {AMD_INSTALL_HINT}",
        )


def amd_rows(amdsmi: Any | None = None) -> list[DeviceInfo]:
    """One row per AMD GPU this ROCm torch sees, with how its cell would be measured."""
    import torch

    if not torch.cuda.is_available():
        return [DeviceInfo("cuda", False, WHAT, "this ROCm torch sees no AMD GPU (amd-smi list)")]
    try:
        amdsmi = load_amdsmi() if amdsmi is None else amdsmi
    except GreenbenchError as e:
        return [DeviceInfo("cuda", True, WHAT, f"cannot be measured: {e}")]
    try:
        amdsmi.amdsmi_init(amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS)
    except amdsmi.AmdSmiException as e:
        return [DeviceInfo("cuda", True, WHAT, f"cannot be measured: AMD SMI: {why_not(e)}")]
    rows = []
    try:
        for i in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(i)
            try:
                gpu = find_amd_gpu(i, amdsmi)
            except GreenbenchError as e:
                rows.append(DeviceInfo(f"cuda:{i}", True, name, f"cannot be measured: {e}"))
                continue
            try:
                counter_ticks(amdsmi, gpu)
                method = "amdsmi-counter: AMD SMI energy counter, checked at start-up"
            except (amdsmi.AmdSmiException, KeyError) as e:
                method = f"amdsmi-power: AMD SMI power integrated (no counter: {why_not(e)})"
            rows.append(DeviceInfo(f"cuda:{i}", True, f"{name} ({gpu.bus_id})", method))
    finally:
        amdsmi.amdsmi_shut_down()
    return rows


BACKEND = RocmBackend()
