"""Runs one Cell in this process and returns its records; `python -m greenbench.runner SPEC`.

The executor starts one such child per cell, so a crash, an out-of-memory kill or a hang costs
one cell, never the suite or what is already stored. The child writes JSON events, one a line,
to its standard output; anything libraries print goes to standard error (the cell's log).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from greenbench.fidelity import Fidelity, score
from greenbench.protocol import Phase, ProtocolSettings, Window
from greenbench.records import measured_records
from greenbench.suite import Cell
from greenbench.workloads import get_preset

Emit = Callable[[dict[str, Any]], None]


def cell_context(cell: Cell, run_id: str, attempt: int, suite_name: str, zone: str) -> dict:
    """The columns that identify a cell's rows, for measured and unfinished rows alike."""
    preset = get_preset(cell.workload)
    return {
        "run_id": run_id,
        "cell_id": cell.cell_id,
        "attempt": attempt,
        "suite": suite_name,
        "workload": cell.workload,
        "architecture": preset.architecture,
        "task": preset.task,
        "variant": cell.variant,
        "device": cell.device,
        "params": json.dumps(dict(cell.params), sort_keys=True),
        "zone": zone,
        "node": socket.gethostname(),
    }


def cell_spec(cell: Cell, protocol: ProtocolSettings, context: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the child needs, as plain JSON."""
    return {
        "cell": {
            "workload": cell.workload,
            "variant": cell.variant,
            "device": cell.device,
            "params": dict(cell.params),
        },
        "protocol": dataclasses.asdict(protocol),
        "context": dict(context),
    }


class CellSkipped(Exception):
    """The cell cannot run here (its variant on this device, or its memory); the message is why."""


def run_cell(spec: Mapping[str, Any], emit: Emit) -> list[dict[str, Any]]:
    """Build, measure and record one cell in this process."""
    from greenbench.backends.torch_device import synchronize
    from greenbench.carbon.zones import resolve_zone
    from greenbench.protocol import run_protocol
    from greenbench.variants import get_variant

    cell = Cell(**spec["cell"])
    protocol = ProtocolSettings(**spec["protocol"])
    context = spec["context"]
    preset = get_preset(cell.workload)
    variant = get_variant(cell.variant)
    zone = resolve_zone(context["zone"])
    reason = variant.device_skip_reason(cell.device) or memory_skip_reason(cell, preset.task)
    if reason:
        raise CellSkipped(reason)

    emit({"type": "stage", "stage": "building model"})
    phases, extra = prepare(cell, emit)
    meter = make_meter(cell.device, zone, emit)

    def on_window(window: Window) -> None:
        emit({"type": "window", "phase": window.phase, "repetition": window.repetition})

    cooldown = getattr(meter, "cooldown", None)  # GPUs measured through NVML
    if cooldown is not None:
        synchronize(cell.device)
        cooldown.calibrate()  # the model is loaded and idle: this is the GPU's resting state
    emit({"type": "stage", "stage": "measuring"})
    try:
        result = run_protocol(
            phases,
            meter,
            protocol,
            sync=lambda: synchronize(cell.device),
            on_window=on_window,
            cooldown=cooldown,
        )
    finally:
        meter.close()
    return measured_records(context, result, extra)


class SharedPackageMeter:
    """An Intel iGPU or NPU through OpenVINO: its energy is inside the CPU package figure."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def begin_window(self) -> None:
        self.base.begin_window()

    def end_window(self) -> Any:
        m = self.base.end_window()
        return dataclasses.replace(m, methods={**m.methods, "gpu": "in-cpu-package"})

    def close(self) -> None:
        self.base.close()


def make_meter(device: str, zone: Any, emit: Emit) -> Any:
    """CodeCarbon; on CUDA, with NVML measuring exactly this cell's GPU when NVML works."""
    from greenbench.backends.torch_device import device_index, device_type, gpu_indices
    from greenbench.energy.codecarbon_meter import CodeCarbonMeter

    on_gpu = device_type(device) == "cuda" or device == "onnxruntime:CUDA"
    if device in ("openvino:GPU", "openvino:NPU"):
        return SharedPackageMeter(CodeCarbonMeter(zone.iso3, [], zone.source))
    if not on_gpu:
        return CodeCarbonMeter(zone.iso3, [], zone.source)
    index = device_index(device) if device_type(device) == "cuda" else 0
    base = CodeCarbonMeter(zone.iso3, [], zone.source)
    try:
        from greenbench.energy.gpu_meter import nvml_meter_for

        return nvml_meter_for(index, base)
    except Exception as e:  # noqa: BLE001 - no NVML: CodeCarbon's own GPU reading, labelled
        base.close()
        emit({"type": "stage", "stage": f"NVML unavailable ({one_line(e)}); GPU via CodeCarbon"})
        return CodeCarbonMeter(zone.iso3, gpu_indices(device) or [index], zone.source)


def prepare(cell: Cell, emit: Emit) -> tuple[list[Phase], dict[str, Any]]:
    """The variant's model on the device, its phases, and the cell's own record columns: for
    inference its fidelity to fp32, for quantization how much of the model it quantized."""
    phases, fidelity, share = _prepare(cell, emit)
    extra = fidelity.as_record() if fidelity else {}
    if share is not None:
        extra["quantized_share"] = share
    return phases, extra


def _prepare(cell: Cell, emit: Emit) -> tuple[list[Phase], Fidelity | None, float | None]:
    from greenbench.models import build_model
    from greenbench.tasks import fidelity_logits, make_phases
    from greenbench.variants import get_variant, linear_weight_sizes, quantized_share

    preset = get_preset(cell.workload)
    variant = get_variant(cell.variant)
    if cell.device.startswith(("onnxruntime:", "openvino:")):
        from greenbench.backends import onnx_runtime, openvino_runtime

        model = build_model(preset.architecture, weights=cell.params.get("weights"))
        reference = fidelity_logits(preset.kind, model, cell.params, "cpu")
        emit({"type": "stage", "stage": "exporting to ONNX"})
        session = None
        if cell.device.startswith("openvino:"):
            session = openvino_runtime.session_factory(cell.device, cell.variant)
        phases, logits = onnx_runtime.prepare(
            preset.kind, model, cell.params, cell.device, cell.variant, session
        )
        return phases, score(reference, logits), None  # the runtime against torch fp32 eager
    model = build_model(preset.architecture, weights=cell.params.get("weights")).to(cell.device)
    if preset.task == "training":
        model = variant.prepare_for_training(model)
        autocast = variant.autocast_dtype()
        return make_phases(preset.kind, model, cell.params, cell.device, autocast), None, None

    reference = None
    if not variant.is_baseline:
        reference = fidelity_logits(preset.kind, model, cell.params, cell.device).cpu()
    sizes = linear_weight_sizes(model) if variant.quantizes else None
    model = variant.prepare_for_inference(model, cell.device)
    share = quantized_share(model, sizes) if sizes else None
    fidelity = None
    if reference is not None:
        emit({"type": "stage", "stage": "scoring fidelity"})
        fidelity = score(reference, fidelity_logits(preset.kind, model, cell.params, cell.device))
    return make_phases(preset.kind, model, cell.params, cell.device), fidelity, share


def memory_skip_reason(cell: Cell, task: str) -> str | None:
    """A reason to skip when the model's weights (and for training, gradients and optimizer
    state) clearly cannot fit in the device's free memory; activations are not counted."""
    from greenbench.backends.torch_device import free_memory_bytes
    from greenbench.models import parameter_count

    preset = get_preset(cell.workload)
    copies = 1 if task == "inference" else (4 if preset.kind == "lm-training" else 3)
    needed = parameter_count(preset.architecture) * 4 * copies  # fp32 bytes
    free = free_memory_bytes(cell.device)
    if free is None or needed <= free:
        return None
    what = "weights" if task == "inference" else "weights, gradients and optimizer state"
    return (
        f"needs about {needed / 2**30:.1f} GiB for fp32 {what}; {cell.device} has "
        f"{free / 2**30:.1f} GiB free: use a device with more memory or a smaller preset"
    )


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text}"[:500]


def main(argv: list[str]) -> int:
    from greenbench.quiet import quiet_library_logs

    quiet_library_logs()
    with open(argv[0]) as f:
        spec = json.load(f)
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries go to the log, not into the event stream

    def emit(event: dict[str, Any]) -> None:
        events.write(json.dumps(event) + "\n")
        events.flush()

    try:
        records = run_cell(spec, emit)
    except CellSkipped as e:
        emit({"type": "skipped", "reason": str(e)})
        return 0
    except BaseException as e:  # noqa: BLE001 - any failure becomes a failed cell, with its reason
        traceback.print_exc()
        emit({"type": "error", "error": one_line(e)})
        return 1
    emit({"type": "records", "records": records})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
