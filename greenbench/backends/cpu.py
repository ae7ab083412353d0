"""The CPU through torch: its RAPL counters read directly where readable (energy/rapl.py), else
CodeCarbon's estimate, labelled, with how to grant read access when RAPL is root-only."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import psutil

from greenbench.backends.base import DeviceInfo, Emit, RayRequest
from greenbench.backends.torch_device import PRECISIONS, TorchBackend
from greenbench.carbon.zones import Zone
from greenbench.energy import rapl
from greenbench.energy.cpu_load import MAX_FOREIGN_CPU_SHARE
from greenbench.energy.meter import Meter
from greenbench.environment import cpu_model


def rapl_domains(root: Path = rapl.POWERCAP, hwmon: Path = rapl.HWMON) -> list[str]:
    """Readable CPU energy counters (`package-0`, `dram`, `Esocket0`, ...)."""
    return [d.name for d in rapl.find_counters(root, hwmon).readable]


def cpu_info(root: Path = rapl.POWERCAP, hwmon: Path = rapl.HWMON) -> DeviceInfo:
    method = rapl.rapl_summary(rapl.find_counters(root, hwmon))
    method += (
        "; machine-wide, so it counts other processes too: a window where they used over "
        f"{MAX_FOREIGN_CPU_SHARE:.0%} of the CPU is invalid"
    )
    return DeviceInfo(
        "cpu", True, f"{cpu_model() or platform.processor()} ({os.cpu_count()} cores)", method
    )


class CpuBackend(TorchBackend):
    name = "the CPU"
    device_type = "cpu"
    indexed = False
    forms = ("cpu",)
    variants = PRECISIONS | {"int8-dynamic", "int8-wo", "int4-wo"}

    def free_memory_bytes(self, device: str) -> int | None:
        return int(psutil.virtual_memory().available)

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        return rapl.cpu_meter(zone)

    def ray_request(self, device: str) -> RayRequest:
        return RayRequest()  # every node has a CPU

    def device_rows(self) -> list[DeviceInfo]:
        return [cpu_info()]


BACKEND = CpuBackend()
