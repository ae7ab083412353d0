"""NVIDIA GPUs through torch's CUDA: NVML measures exactly the cell's GPU, found by UUID.

A cell's cuda:N is matched to its NVML device by UUID (torch's, or a `GPU-...` entry of
CUDA_VISIBLE_DEVICES), never by assuming torch and NVML number GPUs alike. CodeCarbon measures
the CPU and RAM beside it.
"""

from __future__ import annotations

from typing import Any

from greenbench.backends.base import DeviceInfo, Emit, RayRequest
from greenbench.backends.torch_device import PRECISIONS, TorchBackend
from greenbench.carbon.zones import Zone
from greenbench.energy.codecarbon_meter import CodeCarbonMeter
from greenbench.energy.gpu_meter import find_gpu, nvml_index_of, nvml_meter_for
from greenbench.energy.grace_hopper import NOTE as GH200_NOTE
from greenbench.energy.grace_hopper import ModuleMeter, is_grace_hopper
from greenbench.energy.meter import Meter
from greenbench.errors import GreenbenchError, one_line
from greenbench.variants import Variant

# variant base -> the smallest CUDA compute capability it runs on
MIN_CAPABILITY = {"bf16": (8, 0), "int4-wo": (8, 0), "fp8": (8, 9)}


def device_index(device: str) -> int:
    _, _, index = device.partition(":")
    return int(index) if index else 0


def gpu_meter(index: int, zone: Zone, emit: Emit, nvml: Any | None = None) -> Meter:
    """CodeCarbon for CPU and RAM, greenbench's NVML meter for torch's cuda:index.

    A GPU that cannot be identified (a MIG instance, a UUID NVML does not know) fails the cell:
    measuring another GPU, or all of a shared one, would give a wrong number. When the NVML
    meter cannot start for another reason, CodeCarbon reads the same GPU (by its NVML index,
    found by UUID) under its own label, the reason in every record; and when no reader finds
    the GPU the cell fails: a CUDA cell never records 0 J for its GPU.
    """
    base = CodeCarbonMeter(zone)
    try:
        meter = nvml_meter_for([index], base, nvml)
    except GreenbenchError:
        base.close()
        raise
    except Exception as e:  # noqa: BLE001 - the meter could not start: CodeCarbon's reading
        base.close()
        reason = f"greenbench's NVML meter could not start ({one_line(e)}); GPU read by CodeCarbon"
        emit({"type": "stage", "stage": reason})
        nvml_index = nvml_index_of(index, nvml)
        return CodeCarbonMeter(zone, [nvml_index], note=reason)
    if is_grace_hopper(meter.nvml, meter.gpu.gpus[0]):
        return ModuleMeter(meter)  # the counter covers CPU and memory too
    return meter


class CudaBackend(TorchBackend):
    name = "CUDA"
    device_type = "cuda"
    forms = ("cuda", "cuda:N")
    variants = PRECISIONS | {"int8-wo", "int4-wo", "fp8"}

    def check_available(self, device: str) -> None:
        import torch

        if not torch.cuda.is_available():
            raise GreenbenchError(
                f"device '{device}' is not available: this torch ({torch.__version__}) sees no "
                "CUDA GPU; install a CUDA build of torch and the NVIDIA driver, or use --device cpu"
            )
        count = torch.cuda.device_count()
        if device_index(device) >= count:
            raise GreenbenchError(
                f"device '{device}' is not available: {count} CUDA device(s) visible "
                f"(check CUDA_VISIBLE_DEVICES), use cuda:0..cuda:{count - 1}"
            )

    def device_skip_reason(self, variant: Variant, device: str) -> str | None:
        need = MIN_CAPABILITY.get(variant.base.name)
        if need is None:
            return None
        import torch

        have = torch.cuda.get_device_capability(device)
        if have < need:
            return (
                f"{variant.base.name} needs compute capability >= {need[0]}.{need[1]}; "
                f"{torch.cuda.get_device_name(device)} has {have[0]}.{have[1]}"
            )
        return None

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        return gpu_meter(device_index(device), zone, emit)

    def synchronize(self, device: str) -> None:
        import torch

        torch.cuda.synchronize(device)

    def free_memory_bytes(self, device: str) -> int | None:
        import torch

        return torch.cuda.mem_get_info(device)[0]

    def ray_request(self, device: str) -> RayRequest:
        return RayRequest(gpus=1)

    def node_device(self, device: str) -> str:
        return "cuda:0"  # the one GPU Ray made visible to this task

    def device_rows(self) -> list[DeviceInfo]:
        return cuda_rows()


def cuda_rows() -> list[DeviceInfo]:
    import torch

    if not torch.cuda.is_available():
        return [
            DeviceInfo(
                "cuda",
                False,
                "no CUDA GPU visible to this torch",
                f"torch {torch.__version__}: install a CUDA build and the NVIDIA driver",
            )
        ]
    nvml: Any = None
    try:
        import pynvml

        pynvml.nvmlInit()
        nvml = pynvml
    except Exception as e:  # noqa: BLE001 - no NVML: say so per GPU below
        nvml_error = f"NVML unavailable ({type(e).__name__}); CodeCarbon's reading"
    infos = []
    try:
        for i in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(i)
            if not nvml:
                infos.append(DeviceInfo(f"cuda:{i}", True, name, nvml_error))
                continue
            try:
                gpu = find_gpu(i, nvml)  # as the cell's meter will find it
            except GreenbenchError as e:  # a MIG instance, an unknown UUID: not measurable
                infos.append(DeviceInfo(f"cuda:{i}", True, name, f"cannot be measured: {e}"))
                continue
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
                method = "nvml-counter: NVML total-energy counter"
            except nvml.NVMLError:
                method = "nvml-power: NVML power sampled at 10 Hz, integrated"
            if is_grace_hopper(nvml, gpu):
                method = f"{method.replace('nvml-', 'nvml-module-', 1)} ({GH200_NOTE})"
            infos.append(
                DeviceInfo(f"cuda:{i}", True, f"{name} (NVML {gpu.index}, {gpu.uuid})", method)
            )
    finally:
        if nvml:
            nvml.nvmlShutdown()
    return infos


BACKEND = CudaBackend()
