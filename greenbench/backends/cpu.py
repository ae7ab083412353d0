"""The CPU through torch: CodeCarbon measures the package (RAPL where readable) and RAM."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import psutil

from greenbench.backends.base import DeviceInfo, RayRequest
from greenbench.backends.torch_device import PRECISIONS, TorchBackend
from greenbench.energy.cpu_load import MAX_FOREIGN_CPU_SHARE
from greenbench.environment import cpu_model

POWERCAP = Path("/sys/class/powercap")


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
    domains = rapl_domains(root)
    if domains:
        method = f"rapl: energy counters ({', '.join(domains)}); RAM: ram-estimate"
    else:
        method = (
            "cpu-load-estimate: CodeCarbon's TDP x load model (no readable RAPL counter under "
            f"{root}); RAM: ram-estimate"
        )
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

    def ray_request(self, device: str) -> RayRequest:
        return RayRequest()  # every node has a CPU

    def device_rows(self) -> list[DeviceInfo]:
        return [cpu_info()]


BACKEND = CpuBackend()
