"""The machine and software a run used, stored with the run. No environment variables: they
may hold secrets."""

from __future__ import annotations

import importlib.metadata
import platform
import socket
from typing import Any

import psutil

from greenbench.energy.codecarbon_meter import ignored_settings


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpus() -> list[dict[str, Any]]:
    import torch  # lazy, as pynvml below: loaded when an environment is recorded

    if not torch.cuda.is_available():
        return []
    found = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        found.append(
            {
                "index": i,
                "name": props.name,
                "memory_gb": round(props.total_memory / 2**30, 1),
                "compute_capability": f"{props.major}.{props.minor}",
            }
        )
    return found


def gpu_driver() -> str | None:
    """NVIDIA's driver version; None without one, and on a ROCm torch (AMD GPUs never reach
    NVML: its `hip` version is recorded instead)."""
    import torch

    if getattr(torch.version, "hip", None):
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # noqa: BLE001 - no NVIDIA driver is a normal answer here
        return None


def collect_environment() -> dict[str, Any]:
    import torch

    return {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": psutil.cpu_count(logical=True),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpus": gpus(),
        "gpu_driver": gpu_driver(),
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),  # a ROCm build: its cuda devices are AMD's
        # CodeCarbon settings from its config files or CODECARBON_* that greenbench overrode
        "codecarbon_ignored_settings": ignored_settings(),
        "versions": {
            p: _version(p)
            for p in ("greenbench", "torch", "transformers", "torchao", "codecarbon", "pandas")
        },
    }
