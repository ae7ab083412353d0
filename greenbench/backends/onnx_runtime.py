"""The ONNX Runtime backend: export the torch model to ONNX, run it with an execution provider.

Devices are `onnxruntime:PROVIDER` (CPU, CUDA, OpenVINO, QNN, VitisAI, DirectML). The workload
kind exports its graphs (tasks/: a vision forward; an LM prefill graph and a one-token
decode-step graph fed the KV cache), so the phases are those of torch. Variants: fp32, and
int8-dynamic through onnxruntime.quantization. Fidelity compares with torch fp32 eager.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from greenbench.backends import cuda
from greenbench.backends.base import DeviceInfo, Emit, Prepared, RayRequest
from greenbench.carbon.zones import Zone
from greenbench.cell import Cell
from greenbench.energy import rapl
from greenbench.energy.meter import Meter
from greenbench.errors import GreenbenchError
from greenbench.protocol import Phase
from greenbench.tasks.base import SessionFactory, WorkloadKind
from greenbench.variants import Variant
from greenbench.workloads import get_preset

PREFIX = "onnxruntime"
# what --device says -> (execution provider, the pip package that brings it)
PROVIDERS = {
    "CPU": ("CPUExecutionProvider", "onnxruntime"),
    "CUDA": ("CUDAExecutionProvider", "onnxruntime-gpu"),
    "OpenVINO": ("OpenVINOExecutionProvider", "onnxruntime-openvino"),
    "QNN": ("QNNExecutionProvider", "onnxruntime-qnn"),
    "VitisAI": ("VitisAIExecutionProvider", "onnxruntime-vitisai"),
    "DirectML": ("DmlExecutionProvider", "onnxruntime-directml"),
}


def prepare_graphs(
    kind: WorkloadKind, model: Any, params: Mapping[str, Any], session: SessionFactory
) -> tuple[list[Phase], Any]:
    """The kind's graphs exported to a fresh folder and opened with `session`: the phases, and
    the logits on the fidelity inputs to score against torch."""
    if kind.export_graphs is None:
        raise GreenbenchError(f"workload kind '{kind.name}' has no ONNX graphs")
    workdir = Path(tempfile.mkdtemp(prefix="greenbench-onnx-"))
    return kind.export_graphs(model, params, session, workdir)


class GraphRuntime:
    """What the graph runtimes share: torch exports the graphs, the runtime runs them."""

    name = "a graph runtime"
    prefix = ""  # devices are `prefix:TARGET`
    device_type = ""
    targets: tuple[str, ...] = ()  # its TARGETs, as written in normalised device names
    target_noun = "device"  # what a TARGET is called in messages
    variants: frozenset[str] | None = None  # a runtime rules on variants itself
    runs: tuple[str, ...] = ("fp32",)  # the variants it runs
    extra = ""  # the greenbench extra that installs it

    @property
    def forms(self) -> tuple[str, ...]:
        return (f"{self.prefix}:{'|'.join(self.targets)}",)

    @property
    def install_hint(self) -> str:
        return f"pip install 'greenbench[{self.extra}]'"

    def parse(self, name: str) -> str | None:
        """`onnxruntime:cpu` -> `onnxruntime:CPU`; ValueError naming the known targets."""
        prefix, _, target = name.strip().partition(":")
        if prefix.lower() != self.prefix:
            return None
        for known in self.targets:
            if target.lower() == known.lower():
                return f"{self.prefix}:{known}"
        raise ValueError(
            f"unknown {self.name} {self.target_noun} '{target}' (known: "
            f"{', '.join(f'{self.prefix}:{t}' for t in self.targets)})"
        )

    def check_available(self, device: str) -> None:
        return None

    def skip_reason(self, kind: WorkloadKind, variant: Variant) -> str | None:
        if kind.task == "training":
            return f"{self.name} runs inference workloads; train with torch devices"
        if kind.export_graphs is None:
            return f"{self.name} cannot run {kind.name} workloads (no ONNX graphs for them)"
        if variant.name not in self.runs:
            return f"{self.name} runs {self.variant_list()}, not {variant.name}"
        return None

    def variant_list(self) -> str:
        return " and ".join(self.runs)

    def device_skip_reason(self, variant: Variant, device: str) -> str | None:
        return None

    def session_factory(self, device: str, variant: str) -> SessionFactory:
        raise NotImplementedError

    def prepare(self, cell: Cell, emit: Emit) -> Prepared:
        workload, params = get_preset(cell.workload), cell.params
        kind = workload.kind
        assert kind.fidelity_logits is not None  # skip_reason let only inference kinds through
        model = workload.build_model(params)
        reference = kind.fidelity_logits(model, params, "cpu")
        emit({"type": "stage", "stage": "exporting to ONNX"})
        session = self.session_factory(cell.device, cell.variant)
        phases, logits = prepare_graphs(kind, model, params, session)
        # the runtime's variant against torch fp32 eager
        return Prepared(phases, kind.fidelity_score(reference, logits))

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        return rapl.cpu_meter(zone)

    def synchronize(self, device: str) -> None:
        return None  # a session's run() returns when the work is done

    def free_memory_bytes(self, device: str) -> int | None:
        return None

    def node_device(self, device: str) -> str:
        return device


def provider_of(device: str) -> str:
    return PROVIDERS[device.partition(":")[2]][0]


def _quantize(path: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = path.with_name(path.stem + ".int8.onnx")
    quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8)
    return out


def ort_session(device: str, variant: str) -> SessionFactory:
    def make(path: Path) -> Any:
        import onnxruntime

        model = _quantize(path) if variant == "int8-dynamic" else path
        return onnxruntime.InferenceSession(str(model), providers=[provider_of(device)])

    return make


class OnnxRuntimeBackend(GraphRuntime):
    name = "ONNX Runtime"
    prefix = device_type = PREFIX
    targets, target_noun = tuple(PROVIDERS), "provider"
    runs = ("fp32", "int8-dynamic")
    extra = "onnx"

    def check_available(self, device: str) -> None:
        provider, package = PROVIDERS[device.partition(":")[2]]
        try:
            import onnxruntime
        except ImportError:
            raise GreenbenchError(
                f"device '{device}' needs ONNX Runtime: {self.install_hint}"
            ) from None
        if provider not in onnxruntime.get_available_providers():
            raise GreenbenchError(
                f"device '{device}' is not available: this onnxruntime has no {provider}; "
                f"install {package} (and its driver) instead of onnxruntime"
            )

    def session_factory(self, device: str, variant: str) -> SessionFactory:
        return ort_session(device, variant)

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        if device == f"{PREFIX}:CUDA":
            return cuda.gpu_meter(0, zone, emit)  # the provider's default GPU
        return super().make_meter(device, zone, emit)

    def ray_request(self, device: str) -> RayRequest:
        provider = device.partition(":")[2]
        if provider == "CPU":
            return RayRequest()
        if provider == "CUDA":
            return RayRequest(gpus=1)
        return RayRequest(resources={f"{PREFIX}-{provider.lower()}": 1})

    def device_rows(self) -> list[DeviceInfo]:
        try:
            import onnxruntime
        except ImportError:
            return [DeviceInfo(f"{PREFIX}:*", False, self.name, self.install_hint)]
        have = set(onnxruntime.get_available_providers())
        rows = []
        for name, (provider, package) in PROVIDERS.items():
            present = provider in have
            method = "as the device it runs on (CPU package, or NVML for CUDA)"
            rows.append(
                DeviceInfo(
                    f"{PREFIX}:{name}",
                    present,
                    provider,
                    method if present else f"install {package}",
                )
            )
        return rows


BACKEND = OnnxRuntimeBackend()
