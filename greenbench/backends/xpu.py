"""Intel GPUs through torch's XPU backend: a discrete GPU measured by its Level Zero Sysman
energy counter (pyzes, `greenbench[intel]`), an integrated one inside the CPU package's figure
(`in-cpu-package`), and a GPU neither can read labelled `none` with the reason."""

from __future__ import annotations

import os
from typing import Any

from greenbench.backends.base import DeviceInfo, Emit
from greenbench.backends.torch_device import TorchAccelerator
from greenbench.carbon.zones import Zone
from greenbench.energy import level_zero, rapl
from greenbench.energy.level_zero import LevelZeroMeter, SysmanGpu
from greenbench.energy.meter import GpuNotMeasured, Meter, SharedPackageMeter
from greenbench.errors import GreenbenchError, one_line


def _available(device: str) -> None:
    import torch

    if not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise GreenbenchError(
            f"device '{device}' is not available: this torch sees no Intel XPU; install "
            "torch's XPU build and the Intel GPU driver"
        )


def _synchronize(device: str) -> None:
    import torch

    torch.xpu.synchronize(device)


def _pyzes() -> Any:
    import pyzes  # lazy and optional: greenbench[intel]

    return pyzes


def torch_uuid_of(index: int) -> str | None:
    try:
        import torch

        uuid = getattr(torch.xpu.get_device_properties(index), "uuid", None)
    except Exception:  # noqa: BLE001 - an older torch: match through ZE_AFFINITY_MASK
        return None
    return str(uuid) if uuid else None


def find_gpu(index: int, zes: Any) -> SysmanGpu:
    gpus = level_zero.sysman_gpus(zes)
    mask = os.environ.get("ZE_AFFINITY_MASK")
    return level_zero.gpu_for_torch_index(index, gpus, mask, torch_uuid_of(index))


def xpu_meter(index: int, zone: Zone, zes: Any | None = None) -> Meter:
    """The CPU package and RAM meter with xpu:index's GPU measured the way Sysman allows."""
    base = rapl.cpu_meter(zone)
    try:
        zes = _pyzes() if zes is None else zes
    except ImportError:
        return GpuNotMeasured(base, f"pyzes is not installed ({level_zero.INSTALL})")
    try:
        gpu = find_gpu(index, zes)
    except GreenbenchError as e:
        return GpuNotMeasured(base, str(e))
    except Exception as e:  # noqa: BLE001 - no Level Zero loader or driver: say so
        return GpuNotMeasured(base, f"Level Zero Sysman cannot be used ({one_line(e)})")
    if gpu.integrated:
        return SharedPackageMeter(base)
    if gpu.power is None:
        return GpuNotMeasured(base, f"{gpu.name}: {gpu.reason}")
    return LevelZeroMeter(base, zes, gpu)


def method_of(gpu: SysmanGpu) -> str:
    if gpu.integrated:
        return "in-cpu-package: an integrated GPU, inside the CPU package's figure"
    if gpu.power is None:
        return f"none: {gpu.reason}"
    return "level-zero-counter: Level Zero Sysman card energy counter"


class XpuBackend(TorchAccelerator):
    def __init__(self) -> None:
        super().__init__("xpu", "Intel GPU", _available, _synchronize)
        self.forms = ("xpu", "xpu:N")

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        _, _, index = device.partition(":")
        return xpu_meter(int(index or 0), zone)

    def device_rows(self) -> list[DeviceInfo]:
        return xpu_rows()


def xpu_rows(zes: Any | None = None) -> list[DeviceInfo]:
    try:
        _available("xpu")
    except GreenbenchError as e:
        reason = str(e).split(": ", 1)[-1]
        return [DeviceInfo("xpu", False, "Intel GPU", f"{reason}; energy: {level_zero.INSTALL}")]
    try:
        zes = _pyzes() if zes is None else zes
    except ImportError:
        return [DeviceInfo("xpu", True, "Intel GPU", f"GPU energy: {level_zero.INSTALL}")]
    import torch

    rows = []
    for i in range(torch.xpu.device_count()):
        name = torch.xpu.get_device_name(i)
        try:
            method = method_of(find_gpu(i, zes))
        except Exception as e:  # noqa: BLE001 - not matched or no Sysman: the reason
            method = f"none: {one_line(e)}"
        rows.append(DeviceInfo(f"xpu:{i}", True, name, method))
    return rows


BACKEND = XpuBackend()
