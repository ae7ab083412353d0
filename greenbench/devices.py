"""`greenbench devices`: what this machine has, and how each device's energy will be measured."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # what --device takes
    present: bool
    what: str
    method: str  # how its energy is measured, or why it cannot be used


def rapl_domains(root: Path = POWERCAP) -> list[str]:
    """Readable RAPL energy counters (`package-0`, `dram`, ...) under the powercap tree."""
    found = []
    for zone in sorted(root.glob("intel-rapl*")) if root.is_dir() else []:
        name_file, energy_file = zone / "name", zone / "energy_uj"
        if name_file.is_file() and energy_file.is_file() and os.access(energy_file, os.R_OK):
            try:
                int(energy_file.read_text().strip())
            except (OSError, ValueError):
                continue
            found.append(name_file.read_text().strip())
    return found


def cpu_info(root: Path = POWERCAP) -> DeviceInfo:
    from greenbench.environment import cpu_model

    domains = rapl_domains(root)
    if domains:
        method = f"rapl: energy counters ({', '.join(domains)}); RAM: ram-estimate"
    else:
        method = (
            "cpu-load-estimate: CodeCarbon's TDP x load model (no readable RAPL counter under "
            f"{root}); RAM: ram-estimate"
        )
    return DeviceInfo(
        "cpu", True, f"{cpu_model() or platform.processor()} ({os.cpu_count()} cores)", method
    )


def cuda_info() -> list[DeviceInfo]:
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
    try:
        import pynvml

        from greenbench.energy.gpu_meter import torch_uuid_of
        from greenbench.energy.nvml import gpu_for_torch_index, nvml_gpus

        pynvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - no NVML: say so per GPU below
        pynvml, nvml_error = None, f"NVML unavailable ({type(e).__name__}); CodeCarbon's reading"
    infos = []
    try:
        gpus = nvml_gpus(pynvml) if pynvml else []
        for i in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(i)
            if not pynvml:
                infos.append(DeviceInfo(f"cuda:{i}", True, name, nvml_error))
                continue
            gpu = gpu_for_torch_index(
                i, gpus, os.environ.get("CUDA_VISIBLE_DEVICES"), torch_uuid_of(i)
            )
            try:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
                method = "nvml-counter: NVML total-energy counter"
            except pynvml.NVMLError:
                method = "nvml-power: NVML power sampled at 10 Hz, integrated"
            infos.append(
                DeviceInfo(f"cuda:{i}", True, f"{name} (NVML {gpu.index}, {gpu.uuid})", method)
            )
    finally:
        if pynvml:
            pynvml.nvmlShutdown()
    return infos


def other_torch_devices() -> list[DeviceInfo]:
    from greenbench.backends.torch_device import check_available
    from greenbench.errors import GreenbenchError

    infos = []
    for device, what in (("mps", "Apple GPU"), ("xpu", "Intel GPU"), ("npu", "Ascend NPU")):
        try:
            check_available(device)
            infos.append(
                DeviceInfo(device, True, what, "CPU package energy and RAM via CodeCarbon")
            )
        except GreenbenchError as e:
            infos.append(DeviceInfo(device, False, what, str(e).split(": ", 1)[-1]))
    return infos


def runtime_devices() -> list[DeviceInfo]:
    """ONNX Runtime providers and OpenVINO devices this machine offers."""
    infos = []
    try:
        import onnxruntime

        from greenbench.backends.onnx_runtime import PROVIDERS

        have = set(onnxruntime.get_available_providers())
        for name, (provider, package) in PROVIDERS.items():
            present = provider in have
            method = "as the device it runs on (CPU package, or NVML for CUDA)"
            infos.append(
                DeviceInfo(
                    f"onnxruntime:{name}",
                    present,
                    provider,
                    method if present else f"install {package}",
                )
            )
    except ImportError:
        infos.append(
            DeviceInfo("onnxruntime:*", False, "ONNX Runtime", "pip install 'greenbench[onnx]'")
        )
    try:
        import openvino

        from greenbench.backends.openvino_runtime import offers

        have_ov = openvino.Core().available_devices
        for target in ("CPU", "GPU", "NPU"):
            present = offers(have_ov, target)
            method = (
                "CPU package via CodeCarbon" if target == "CPU" else "in-cpu-package (Intel SoC)"
            )
            infos.append(
                DeviceInfo(
                    f"openvino:{target}",
                    present,
                    f"OpenVINO {target}",
                    method if present else f"no {target} driver for OpenVINO here",
                )
            )
    except ImportError:
        infos.append(
            DeviceInfo("openvino:*", False, "OpenVINO", "pip install 'greenbench[openvino]'")
        )
    return infos


def list_devices() -> list[DeviceInfo]:
    return [cpu_info(), *cuda_info(), *other_torch_devices(), *runtime_devices()]
