"""Runs one Cell in this process and returns its records; `python -m greenbench.runner SPEC`.

The executor starts one such child per cell, so a crash, an out-of-memory kill or a hang costs
one cell, never the suite or what is already stored. The cells of one sweep (`{"group": [SPEC,
...]}`, executors.base.JobGroup) run in one child instead, their windows interleaved under one
idle baseline (run_group). The child writes JSON events, one a line, to its standard output;
anything libraries print goes to standard error (the cell's log).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from greenbench.backends import backend_for
from greenbench.backends.base import Backend
from greenbench.carbon.zones import resolve_zone
from greenbench.energy.cpu_load import cpu_times
from greenbench.environment import cpu_model
from greenbench.errors import one_line
from greenbench.footprint import Footprint, FootprintSettings, embodied_share
from greenbench.protocol import Phase, ProtocolResult, ProtocolSettings, Window, run_protocol
from greenbench.quiet import quiet_library_logs
from greenbench.records import Record, measured_records
from greenbench.suite import Cell
from greenbench.variants import get_variant
from greenbench.workloads import get_preset

Emit = Callable[[dict[str, Any]], None]


def cell_context(
    cell: Cell,
    run_id: str,
    attempt: int,
    suite_name: str,
    zone: str,
    footprint: FootprintSettings | None = None,
) -> dict[str, Any]:
    """The columns that identify a cell's rows, for measured and unfinished rows alike, and
    the suite's footprint settings (under "footprint": not a column, build_record drops it)."""
    footprint = footprint or FootprintSettings()
    preset = get_preset(cell.workload)
    return {
        "run_id": run_id,
        "cell_id": cell.cell_id,
        "attempt": attempt,
        "suite": suite_name,
        "workload": cell.workload,
        "architecture": preset.architecture,
        **preset.checkpoint_columns(),
        "task": preset.task,
        "variant": cell.variant,
        "device": cell.device,
        "params": json.dumps(dict(cell.params), sort_keys=True),
        "tokens_per_unit": preset.kind.tokens_per_unit(cell.params),
        "zone": zone,
        "node": socket.gethostname(),
        "power_limit_w": cell.power_limit_w,  # the one set: measured rows carry the one read back
        "pue": footprint.pue,
        "footprint": footprint.to_dict(),
    }


def cell_spec(cell: Cell, protocol: ProtocolSettings, context: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the child needs, as plain JSON."""
    return {
        "cell": {
            "workload": cell.workload,
            "variant": cell.variant,
            "device": cell.device,
            "params": dict(cell.params),
            "swept": list(cell.swept),
            "power_limit_w": cell.power_limit_w,
        },
        "protocol": dataclasses.asdict(protocol),
        "context": dict(context),
    }


class CellSkipped(Exception):
    """The cell cannot run here (its variant on this device, or its memory); the message is why."""


def run_cell(spec: Mapping[str, Any], emit: Emit) -> list[Record]:
    """Build, measure and record one cell in this process."""
    return run_group([spec], emit)


# a group's phases are named `INDEX|PHASE` inside the protocol, which keys warmups by name
GROUP_PHASE_SEP = "|"


def group_phase_name(index: int, phase: str) -> str:
    return f"{index}{GROUP_PHASE_SEP}{phase}"


def run_group(specs: Sequence[Mapping[str, Any]], emit: Emit) -> list[Record]:
    """Build every cell of a sweep group (one workload, variant and device), then measure
    them in one protocol: repetitions interleaved across all their phases (batch=1 prefill,
    batch=1 decode, batch=4 prefill, ...) under one idle baseline; each cell's records carry
    its own context. One cell is the plain case."""
    cells = [Cell(**spec["cell"]) for spec in specs]
    contexts = [spec["context"] for spec in specs]
    protocol = ProtocolSettings(**specs[0]["protocol"])
    first = cells[0]
    variant = get_variant(first.variant)
    backend = backend_for(first.device)
    zone = resolve_zone(contexts[0]["zone"])
    parameters = get_preset(first.workload).parameter_count()
    reason = backend.device_skip_reason(variant, first.device) or memory_skip_reason(
        first, backend, parameters, models=len(cells)
    )
    if reason:
        raise CellSkipped(reason)

    prepared = []
    for cell in cells:
        stage = "building model" if len(cells) == 1 else f"building model ({cell.label})"
        emit({"type": "stage", "stage": stage})
        prepared.append(backend.prepare(cell, emit))
    meter = backend.make_meter(first.device, zone, emit)
    phases = _group_phases([p.phases for p in prepared])

    def on_window(window: Window) -> None:
        index, phase = _member_phase(window.phase, len(cells))
        event = {"type": "window", "phase": phase, "repetition": window.repetition}
        if len(cells) > 1:
            event["cell_id"] = cells[index].cell_id
        emit(event)

    def sync() -> None:
        backend.synchronize(first.device)

    cooldown = getattr(meter, "cooldown", None)  # GPUs measured through NVML
    emit({"type": "stage", "stage": "measuring"})
    try:
        result = run_protocol(
            phases,
            meter,
            protocol,
            sync=sync,
            on_window=on_window,
            cooldown=cooldown,
            cpu_probe=cpu_times,
        )
    finally:
        meter.close()
    records: list[Record] = []
    for index, (context, ready) in enumerate(zip(contexts, prepared, strict=True)):
        columns = {"parameters": parameters, **ready.record_columns()}
        member = _member_result(result, index, len(cells))
        footprint = cell_footprint(context, cells[index].device)
        records += measured_records(context, member, columns, footprint)
    return records


def cell_footprint(context: Mapping[str, Any], device: str) -> Footprint:
    """The cell's footprint settings and its hardware's embodied emissions per hour."""
    settings = FootprintSettings.from_dict(context.get("footprint"))
    embodied = embodied_share(settings, device, cpu_model(), gpu_name(device), os.cpu_count() or 1)
    return Footprint(settings, embodied)


def gpu_name(device: str) -> str | None:
    """The accelerator's name as the driver reports it (torch, already loaded by the cell)."""
    if not device.startswith("cuda"):
        return None
    import torch

    index = int(device.partition(":")[2] or 0)
    return str(torch.cuda.get_device_name(index))


def _group_phases(members: Sequence[Sequence[Phase]]) -> list[Phase]:
    """Every member's phases in member order; named apart when there are several members."""
    if len(members) == 1:
        return list(members[0])
    return [
        dataclasses.replace(phase, name=group_phase_name(index, phase.name))
        for index, phases in enumerate(members)
        for phase in phases
    ]


def _member_phase(name: str, members: int) -> tuple[int, str]:
    """(member index, phase) from a protocol phase name (_group_phases)."""
    if members == 1:
        return 0, name
    index, _, phase = name.partition(GROUP_PHASE_SEP)
    return int(index), phase


def _member_result(result: ProtocolResult, index: int, members: int) -> ProtocolResult:
    """One member's windows, under their own phase names, with the shared idle baseline."""
    windows = []
    for window in result.windows:
        member, phase = _member_phase(window.phase, members)
        if member == index:
            windows.append(dataclasses.replace(window, phase=phase))
    return ProtocolResult(idle=result.idle, windows=windows)


def memory_skip_reason(
    cell: Cell, backend: Backend, parameters: int | None = None, models: int = 1
) -> str | None:
    """A reason to skip when the model's weights (and for training, gradients and optimizer
    state) clearly cannot fit in the device's free memory; activations are not counted.
    `parameters`: the model's parameter count, if known; `models`: how many copies a sweep
    group holds at once (one per value)."""
    preset = get_preset(cell.workload)
    if parameters is None:
        parameters = preset.parameter_count()
    needed = parameters * 4 * preset.kind.weight_copies * models  # fp32 bytes
    free = backend.free_memory_bytes(cell.device)
    if free is None or needed <= free:
        return None
    what = "weights" if preset.task == "inference" else "weights, gradients and optimizer state"
    if models > 1:
        return (
            f"the sweep's {models} models need about {needed / 2**30:.1f} GiB for fp32 {what} "
            f"at once; {cell.device} has {free / 2**30:.1f} GiB free: set [protocol] "
            "interleave_sweeps = false to run one value at a time"
        )
    return (
        f"needs about {needed / 2**30:.1f} GiB for fp32 {what}; {cell.device} has "
        f"{free / 2**30:.1f} GiB free: use a device with more memory or a smaller preset"
    )


def main(argv: list[str]) -> int:
    quiet_library_logs()
    with open(argv[0]) as f:
        spec = json.load(f)
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries go to the log, not into the event stream

    def emit(event: dict[str, Any]) -> None:
        events.write(json.dumps(event) + "\n")
        events.flush()

    try:
        records = run_group(spec["group"], emit) if "group" in spec else run_cell(spec, emit)
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
