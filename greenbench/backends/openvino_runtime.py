"""The OpenVINO backend: `--device openvino:CPU|GPU|NPU`.

The torch model is exported to the same ONNX graphs as the ONNX Runtime backend (vision forward;
LM prefill and a one-token decode step fed the KV cache), converted with openvino.convert_model
and compiled for the OpenVINO device, so the phases are the same as on torch. Variants: fp32,
bf16 and fp16 set OpenVINO's inference precision; int8-wo compresses weights with NNCF.
On Intel SoCs the NPU and the integrated GPU sit inside the CPU package's RAPL domain: their
energy is in the CPU figure, which the method label says.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from greenbench.errors import GreenbenchError

PREFIX = "openvino"
DEVICES = ("CPU", "GPU", "NPU")
PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
VARIANTS = (*PRECISION, "int8-wo")


def parse(name: str) -> str:
    _, _, target = name.partition(":")
    if target.upper() not in DEVICES:
        raise ValueError(
            f"unknown OpenVINO device '{target}' (known: "
            f"{', '.join(f'{PREFIX}:{d}' for d in DEVICES)})"
        )
    return f"{PREFIX}:{target.upper()}"


def check_available(device: str) -> None:
    try:
        import openvino
    except ImportError:
        raise GreenbenchError(
            f"device '{device}' needs OpenVINO: pip install 'greenbench[openvino]'"
        ) from None
    target = device.partition(":")[2]
    have = openvino.Core().available_devices
    if not offers(have, target):
        raise GreenbenchError(
            f"device '{device}' is not available: OpenVINO sees {', '.join(have) or 'nothing'}; "
            f"install the {target} driver (Intel GPU or NPU driver) for this machine"
        )


def offers(available: list[str], target: str) -> bool:
    """Whether OpenVINO's device list (`GPU.0`, `NPU`, ...) has a `target` device."""
    return any(d == target or d.startswith(f"{target}.") for d in available)


def skip_reason(task: str, variant: str) -> str | None:
    if task == "training":
        return "OpenVINO runs inference workloads; train with torch devices"
    if variant not in VARIANTS:
        return f"OpenVINO runs {', '.join(VARIANTS)}, not {variant}"
    if variant == "int8-wo" and importlib.util.find_spec("nncf") is None:
        return "int8-wo on OpenVINO needs NNCF: pip install nncf"
    return None


class _Compiled:
    """An OpenVINO compiled model with ONNX Runtime's `run(None, feed)` shape."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def run(self, _outputs: Any, feed: dict[str, Any]) -> list[Any]:
        results = self.request.infer(feed)
        return [results[output] for output in self.compiled.outputs]


def session_factory(device: str, variant: str):
    import openvino

    core = openvino.Core()
    target = device.partition(":")[2]

    def make(path: Path) -> Any:
        model = openvino.convert_model(str(path))
        config = {}
        if variant in PRECISION:
            config["INFERENCE_PRECISION_HINT"] = PRECISION[variant]
        else:  # int8-wo: int8 weights, activations at the device's default precision
            import nncf

            model = nncf.compress_weights(model)
        return _Compiled(core.compile_model(model, target, config))

    return make


def method_note(device: str) -> str:
    """What the CPU figure holds for this device."""
    target = device.partition(":")[2]
    if target == "CPU":
        return ""
    return f"openvino:{target} energy is inside the CPU package (RAPL) figure on Intel SoCs"
