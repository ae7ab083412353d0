"""torch devices: what every torch device type shares (eager models prepared by variants), and
the accelerators that CodeCarbon measures only through the CPU package: npu.

CPU, CUDA, XPU and MPS have modules of their own (cpu.py, cuda.py, xpu.py, mps.py): their meters
differ.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from greenbench.backends.base import DeviceInfo, Emit, Prepared, RayRequest
from greenbench.carbon.zones import Zone
from greenbench.cell import Cell
from greenbench.energy import rapl
from greenbench.energy.meter import Meter
from greenbench.errors import GreenbenchError
from greenbench.tasks.base import WorkloadKind
from greenbench.variants import Variant, get_variant, linear_weight_sizes, quantized_share
from greenbench.workloads import get_preset

PRECISIONS = frozenset({"fp32", "bf16", "fp16"})


class TorchBackend:
    """A torch device type; subclasses say how to check, measure and synchronise it."""

    name = "torch"
    device_type = "cpu"
    indexed = True  # takes `type:N`
    forms: tuple[str, ...] = ()  # set per device type below
    variants: frozenset[str] | None = PRECISIONS

    def parse(self, name: str) -> str | None:
        text = name.strip().lower()
        match = re.fullmatch(rf"{self.device_type}(?::(?P<index>\d+))?", text)
        if not match:
            return None
        if match["index"] is not None and not self.indexed:
            raise ValueError(
                f"unknown device '{name}': {self.name} takes no index, use '{self.device_type}'"
            )
        return text

    def check_available(self, device: str) -> None:
        return None

    def skip_reason(self, kind: WorkloadKind, variant: Variant) -> str | None:
        return None  # the variant rules and `variants` say it all for eager torch

    def device_skip_reason(self, variant: Variant, device: str) -> str | None:
        return None

    def prepare(self, cell: Cell, emit: Emit) -> Prepared:
        """The variant's model on the device and its phases; for inference its fidelity to
        fp32 and its task quality on labelled real inputs, for quantization how much of the
        model it quantized."""
        workload, variant = get_preset(cell.workload), get_variant(cell.variant)
        kind, device, params = workload.kind, cell.device, cell.params
        model = workload.build_model(params).to(device)
        if kind.task == "training":
            model = variant.prepare_for_training(model)
            return Prepared(kind.make_phases(model, params, device, variant.autocast_dtype()))
        logits = kind.fidelity_logits
        reference = None
        if logits is not None and not variant.is_baseline:
            reference = logits(model, params, device).cpu()
        sizes = linear_weight_sizes(model) if variant.quantizes else None
        model = variant.prepare_for_inference(model, device)
        share = quantized_share(model, sizes) if sizes else None
        fidelity = None
        if logits is not None and reference is not None:
            emit({"type": "stage", "stage": "scoring fidelity"})
            fidelity = kind.fidelity_score(reference, logits(model, params, device))
        quality = None
        if kind.quality is not None:
            emit({"type": "stage", "stage": "scoring quality"})
            quality = kind.quality(model, params, device)
        phases = kind.make_phases(model, params, device, None)
        return Prepared(phases, fidelity, share, quality)

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        return rapl.cpu_meter(zone)

    def synchronize(self, device: str) -> None:
        return None

    def free_memory_bytes(self, device: str) -> int | None:
        return None

    def ray_request(self, device: str) -> RayRequest:
        return RayRequest(resources={self.device_type: 1})  # nodes that say they have one

    def node_device(self, device: str) -> str:
        return device


class TorchAccelerator(TorchBackend):
    """An accelerator torch drives, measured by CodeCarbon as the CPU package and RAM."""

    def __init__(
        self,
        device_type: str,
        name: str,
        available: Callable[[str], None],
        synchronize: Callable[[str], None],
    ) -> None:
        self.device_type, self.name, self.forms = device_type, name, (device_type,)
        self._available, self._synchronize = available, synchronize

    def check_available(self, device: str) -> None:
        self._available(device)

    def synchronize(self, device: str) -> None:
        self._synchronize(device)

    def device_rows(self) -> list[DeviceInfo]:
        try:
            self.check_available(self.device_type)
        except GreenbenchError as e:
            return [DeviceInfo(self.device_type, False, self.name, str(e).split(": ", 1)[-1])]
        method = "CPU package energy and RAM via CodeCarbon"
        return [DeviceInfo(self.device_type, True, self.name, method)]


def _npu_available(device: str) -> None:
    import torch

    try:
        import torch_npu  # noqa: F401
    except ImportError:
        raise GreenbenchError(
            f"device '{device}' is not available: Ascend NPUs need the torch_npu package "
            "and the CANN toolkit"
        ) from None
    if not torch.npu.is_available():  # type: ignore[attr-defined]
        raise GreenbenchError(f"device '{device}' is not available: torch_npu sees no NPU")


def _npu_synchronize(device: str) -> None:
    import torch

    torch.npu.synchronize(device)  # type: ignore[attr-defined]


NPU = TorchAccelerator("npu", "Ascend NPU", _npu_available, _npu_synchronize)
