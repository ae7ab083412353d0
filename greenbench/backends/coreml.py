"""The Core ML backend: `--device coreml:ANE|GPU|CPU` (the compute units Core ML may use).

coremltools converts torch programs, not ONNX files, so the graph is traced from the same
module the ONNX export takes (the vision kind's pixel_values -> logits), at the phase's batch
shape (the Neural Engine runs fixed shapes only), and converted to an ML program. Variants:
fp32 and fp16 (Core ML's compute precision); the Neural Engine computes in fp16 only, so fp32
on `coreml:ANE` is skipped rather than quietly run on the GPU or CPU. Energy: IOReport or
powermetrics (energy/apple.py), the Neural Engine in the `gpu` component.
"""

from __future__ import annotations

import platform
from typing import Any

from greenbench.backends.base import DeviceInfo, Emit, Prepared, RayRequest
from greenbench.backends.onnx_runtime import GraphRuntime
from greenbench.carbon.zones import Zone
from greenbench.cell import Cell
from greenbench.energy import apple
from greenbench.energy.meter import Meter
from greenbench.errors import GreenbenchError
from greenbench.protocol import Phase
from greenbench.tasks import vision_inference
from greenbench.tasks.base import Params, WorkloadKind
from greenbench.variants import Variant
from greenbench.workloads import get_preset

PREFIX = "coreml"
UNITS = {"ANE": "CPU_AND_NE", "GPU": "CPU_AND_GPU", "CPU": "CPU_ONLY"}  # ct.ComputeUnit
PRECISION = {"fp32": "FLOAT32", "fp16": "FLOAT16"}  # ct.precision
KINDS = ("vision-inference",)  # kinds whose graph is traced for Core ML


def convert_vision(
    model: Any, params: Params, device: str, variant: str
) -> tuple[list[Phase], Any]:
    """The forward phase on Core ML, and its logits on the fidelity images."""
    import coremltools as ct
    import numpy as np
    import torch

    batch = params["batch"]
    images = vision_inference.phase_images(model, params, "cpu")
    module = vision_inference.graph_module(model).eval()
    with torch.inference_mode():
        traced = torch.jit.trace(module, (images,))
    unit = UNITS[device.partition(":")[2]]
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name="pixel_values", shape=tuple(images.shape))],
        convert_to="mlprogram",
        compute_units=getattr(ct.ComputeUnit, unit),
        compute_precision=getattr(ct.precision, PRECISION[variant]),
    )

    def run(pixels: Any) -> Any:
        return next(iter(mlmodel.predict({"pixel_values": pixels}).values()))

    feed = images.numpy()

    def forward() -> Any:
        return run(feed)

    logits = []
    for chunk in vision_inference.fidelity_images(model, params, "cpu").split(batch):
        padded = torch.zeros_like(images)  # the converted graph's fixed batch shape
        padded[: len(chunk)] = chunk
        logits.append(np.asarray(run(padded.numpy()))[: len(chunk)])
    return [Phase("forward", "image", batch, forward)], torch.from_numpy(np.concatenate(logits))


class CoreMlBackend(GraphRuntime):
    name = "Core ML"
    prefix = device_type = PREFIX
    targets, target_noun = tuple(UNITS), "compute unit"
    runs = tuple(PRECISION)
    extra = "apple"

    def check_available(self, device: str) -> None:
        if platform.system() != "Darwin":
            raise GreenbenchError(
                f"device '{device}' is not available: Core ML runs on macOS only "
                f"(this is {platform.system()})"
            )
        try:
            import coremltools  # noqa: F401
        except ImportError:
            raise GreenbenchError(
                f"device '{device}' needs coremltools: {self.install_hint}"
            ) from None

    def skip_reason(self, kind: WorkloadKind, variant: Variant) -> str | None:
        reason = super().skip_reason(kind, variant)
        if reason is None and kind.name not in KINDS:
            return f"{self.name} runs {', '.join(KINDS)} workloads, not {kind.name}"
        return reason

    def device_skip_reason(self, variant: Variant, device: str) -> str | None:
        if device == f"{PREFIX}:ANE" and variant.name != "fp16":
            return (
                f"the Neural Engine computes in fp16 only: {variant.name} would run on the GPU "
                "or CPU instead; use fp16"
            )
        return None

    def prepare(self, cell: Cell, emit: Emit) -> Prepared:
        workload, params = get_preset(cell.workload), cell.params
        kind = workload.kind
        assert kind.fidelity_logits is not None  # skip_reason let only vision inference through
        model = workload.build_model(params)
        reference = kind.fidelity_logits(model, params, "cpu")
        emit({"type": "stage", "stage": "converting to Core ML"})
        phases, logits = convert_vision(model, params, cell.device, cell.variant)
        return Prepared(phases, kind.fidelity_score(reference, logits))

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        return apple.apple_meter(zone)

    def ray_request(self, device: str) -> RayRequest:
        return RayRequest(resources={"apple-silicon": 1})

    def device_rows(self) -> list[DeviceInfo]:
        try:
            self.check_available(f"{PREFIX}:ANE")
        except GreenbenchError as e:
            reason = str(e).split(": ", 1)[-1]
            if self.install_hint not in reason:
                reason += f"; there: {self.install_hint}"
            return [DeviceInfo(f"{PREFIX}:*", False, self.name, reason)]
        method = apple.apple_method()
        return [
            DeviceInfo(f"{PREFIX}:{target}", True, f"Core ML {unit}", method)
            for target, unit in UNITS.items()
        ]


BACKEND = CoreMlBackend()
