"""The OpenVINO backend: `--device openvino:CPU|GPU|NPU`.

The torch model is exported to the same ONNX graphs as for ONNX Runtime (the workload kind's
graphs), converted with openvino.convert_model and compiled for the OpenVINO device, so the
phases are the same as on torch. Variants: fp32, bf16 and fp16 set OpenVINO's inference
precision; int8-wo compresses weights with NNCF. On Intel SoCs the NPU and the integrated GPU
sit inside the CPU package's RAPL domain: their energy is in the CPU figure, which the method
label says.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from greenbench.backends.base import DeviceInfo, Emit, RayRequest
from greenbench.backends.onnx_runtime import GraphRuntime
from greenbench.carbon.zones import Zone
from greenbench.energy import rapl
from greenbench.energy.meter import Meter, SharedPackageMeter
from greenbench.errors import GreenbenchError
from greenbench.tasks.base import SessionFactory, WorkloadKind
from greenbench.variants import Variant

PREFIX = "openvino"
DEVICES = ("CPU", "GPU", "NPU")
PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def offers(available: list[str], target: str) -> bool:
    """Whether OpenVINO's device list (`GPU.0`, `NPU`, ...) has a `target` device."""
    return any(d == target or d.startswith(f"{target}.") for d in available)


class _Compiled:
    """An OpenVINO compiled model with ONNX Runtime's `run(None, feed)` shape."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def run(self, _outputs: Any, feed: dict[str, Any]) -> list[Any]:
        results = self.request.infer(feed)
        return [results[output] for output in self.compiled.outputs]


def session_factory(device: str, variant: str) -> SessionFactory:
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


class OpenVinoBackend(GraphRuntime):
    name = "OpenVINO"
    prefix = device_type = PREFIX
    targets = DEVICES
    runs = (*PRECISION, "int8-wo")
    extra = "openvino"

    def variant_list(self) -> str:
        return ", ".join(self.runs)

    def check_available(self, device: str) -> None:
        try:
            import openvino
        except ImportError:
            raise GreenbenchError(
                f"device '{device}' needs OpenVINO: {self.install_hint}"
            ) from None
        target = device.partition(":")[2]
        have = openvino.Core().available_devices
        if not offers(have, target):
            raise GreenbenchError(
                f"device '{device}' is not available: OpenVINO sees "
                f"{', '.join(have) or 'nothing'}; install the {target} driver (Intel GPU or NPU "
                "driver) for this machine"
            )

    def skip_reason(self, kind: WorkloadKind, variant: Variant) -> str | None:
        reason = super().skip_reason(kind, variant)
        if reason is None and variant.name == "int8-wo" and not importlib.util.find_spec("nncf"):
            return "int8-wo on OpenVINO needs NNCF: pip install nncf"
        return reason

    def session_factory(self, device: str, variant: str) -> SessionFactory:
        return session_factory(device, variant)

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        meter = rapl.cpu_meter(zone)
        return meter if device == f"{PREFIX}:CPU" else SharedPackageMeter(meter)

    def ray_request(self, device: str) -> RayRequest:
        target = device.partition(":")[2]
        return (
            RayRequest()
            if target == "CPU"
            else RayRequest(resources={f"intel-{target.lower()}": 1})
        )

    def device_rows(self) -> list[DeviceInfo]:
        try:
            import openvino
        except ImportError:
            return [DeviceInfo(f"{PREFIX}:*", False, self.name, self.install_hint)]
        have = openvino.Core().available_devices
        rows = []
        for target in DEVICES:
            present = offers(have, target)
            method = (
                "CPU package via CodeCarbon" if target == "CPU" else "in-cpu-package (Intel SoC)"
            )
            rows.append(
                DeviceInfo(
                    f"{PREFIX}:{target}",
                    present,
                    f"OpenVINO {target}",
                    method if present else f"no {target} driver for OpenVINO here",
                )
            )
        return rows


BACKEND = OpenVinoBackend()
