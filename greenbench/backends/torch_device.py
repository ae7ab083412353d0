"""torch devices: parse names, check they exist here, synchronise at window edges."""

from __future__ import annotations

import re

from greenbench.errors import GreenbenchError

DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "npu")
_DEVICE_RE = re.compile(r"^(?P<type>[a-z]+)(?::(?P<index>\d+))?$")


def parse_device(name: str) -> str:
    """Normalise a device name (`cuda:0`, `cpu`, `onnxruntime:CPU`); ValueError when unknown."""
    if name.strip().lower().startswith("onnxruntime:"):
        from greenbench.backends import onnx_runtime

        return onnx_runtime.parse(name.strip())
    if name.strip().lower().startswith("openvino:"):
        from greenbench.backends import openvino_runtime

        return openvino_runtime.parse(name.strip())
    match = _DEVICE_RE.match(name.strip().lower())
    if not match or match["type"] not in DEVICE_TYPES:
        raise ValueError(
            f"unknown device '{name}' (known: {', '.join(DEVICE_TYPES)}, cuda:N, "
            "onnxruntime:CPU|CUDA|OpenVINO|QNN|VitisAI|DirectML, openvino:CPU|GPU|NPU)"
        )
    if match["type"] == "cpu" and match["index"] is not None:
        raise ValueError(f"unknown device '{name}': the CPU takes no index, use 'cpu'")
    return name.strip().lower()


def device_type(device: str) -> str:
    return device.split(":", 1)[0]


def device_index(device: str) -> int:
    _, _, index = device.partition(":")
    return int(index) if index else 0


def check_available(device: str) -> None:
    """Raise GreenbenchError naming what is missing when `device` cannot be used here."""
    import torch

    kind = device_type(device)
    if kind == "cpu":
        return
    if kind == "onnxruntime":
        from greenbench.backends import onnx_runtime

        onnx_runtime.check_available(device)
        return
    if kind == "openvino":
        from greenbench.backends import openvino_runtime

        openvino_runtime.check_available(device)
        return
    if kind == "cuda":
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
        return
    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise GreenbenchError(
                f"device '{device}' is not available: MPS needs Apple silicon and macOS 12.3+"
            )
        return
    if kind == "xpu":
        if not (hasattr(torch, "xpu") and torch.xpu.is_available()):
            raise GreenbenchError(
                f"device '{device}' is not available: this torch sees no Intel XPU; install "
                "torch's XPU build and the Intel GPU driver"
            )
        return
    if kind == "npu":
        try:
            import torch_npu  # noqa: F401
        except ImportError:
            raise GreenbenchError(
                f"device '{device}' is not available: Ascend NPUs need the torch_npu package "
                "and the CANN toolkit"
            ) from None
        if not torch.npu.is_available():  # type: ignore[attr-defined]
            raise GreenbenchError(f"device '{device}' is not available: torch_npu sees no NPU")


def synchronize(device: str) -> None:
    """Wait for queued device work, so a window edge marks the end of real work."""
    import torch

    kind = device_type(device)
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()
    elif kind == "xpu":
        torch.xpu.synchronize(device)
    elif kind == "npu":
        torch.npu.synchronize(device)  # type: ignore[attr-defined]


def gpu_indices(device: str) -> list[int]:
    """The CUDA indices (as torch numbers them) that a cell on `device` uses."""
    return [device_index(device)] if device_type(device) == "cuda" else []


def free_memory_bytes(device: str) -> int | None:
    """Memory free for a new model on `device`, or None where we cannot tell."""
    kind = device_type(device)
    if kind == "cpu":
        import psutil

        return psutil.virtual_memory().available
    if kind == "cuda":
        import torch

        return torch.cuda.mem_get_info(device)[0]
    return None
