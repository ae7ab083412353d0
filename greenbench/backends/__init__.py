"""Where a cell runs: one Backend per device family, found here by the device string.

A new backend is one module defining a Backend (backends/base.py) plus one line in BACKENDS.
"""

from __future__ import annotations

from greenbench.backends import (
    coreml,
    cpu,
    cuda_family,
    mps,
    onnx_runtime,
    openvino_runtime,
    torch_device,
    xpu,
)
from greenbench.backends.base import Backend, DeviceInfo
from greenbench.tasks.base import WorkloadKind
from greenbench.variants import Variant

# the registry, in the order `greenbench devices` and messages list them
BACKENDS: tuple[Backend, ...] = (
    cpu.BACKEND,
    cuda_family.BACKEND,  # NVIDIA (NVML), GH200, Jetson (rails), AMD under ROCm (AMD SMI)
    mps.BACKEND,
    xpu.BACKEND,
    torch_device.NPU,
    onnx_runtime.BACKEND,
    openvino_runtime.BACKEND,
    coreml.BACKEND,
)


def _claim(name: str) -> tuple[Backend, str]:
    for backend in BACKENDS:
        device = backend.parse(name)
        if device is not None:
            return backend, device
    known = ", ".join(form for backend in BACKENDS for form in backend.forms)
    raise ValueError(f"unknown device '{name}' (known: {known})")


def parse_device(name: str) -> str:
    """Normalise a device name (`cuda:0`, `cpu`, `onnxruntime:CPU`); ValueError when unknown."""
    return _claim(name)[1]


def backend_for(device: str) -> Backend:
    return _claim(device)[0]


def check_available(device: str) -> None:
    """Raise GreenbenchError naming what is missing when `device` cannot be used here."""
    backend_for(device).check_available(device)


def skip_reason(kind: WorkloadKind, variant: Variant, device: str) -> str | None:
    """Why `variant` of a `kind` workload cannot run on `device`, known without running."""
    backend = backend_for(device)
    return (
        backend.skip_reason(kind, variant)
        or variant.skip_reason(kind)
        or _kernel_skip_reason(backend, variant)
        or variant.missing_package()
    )


def _kernel_skip_reason(backend: Backend, variant: Variant) -> str | None:
    """A torch device whose kernels do not run the variant: say where it does run."""
    base = variant.base.name
    if backend.variants is None or base in backend.variants:
        return None
    return f"{base} runs on {' and '.join(variant_devices(variant))}, not {backend.device_type}"


def variant_devices(variant: Variant) -> list[str]:
    """The torch device types whose kernels run `variant` (graph runtimes decide their own)."""
    base = variant.base.name
    return [b.device_type for b in BACKENDS if b.variants is not None and base in b.variants]


def list_devices() -> list[DeviceInfo]:
    """Every backend's devices, present or not, and how each is measured."""
    return [row for backend in BACKENDS for row in backend.device_rows()]
