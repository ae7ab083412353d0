"""Runs one Cell in this process and returns its records; `python -m greenbench.runner SPEC`.

The executor starts one such child per cell, so a crash, an out-of-memory kill or a hang costs
one cell, never the suite or what is already stored. The child writes JSON events, one a line,
to its standard output; anything libraries print goes to standard error (the cell's log).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from greenbench.protocol import ProtocolSettings, Window
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


def run_cell(spec: Mapping[str, Any], emit: Emit) -> list[dict[str, Any]]:
    """Build, measure and record one cell in this process."""
    from greenbench.backends.torch_device import gpu_indices, synchronize
    from greenbench.carbon.zones import resolve_zone
    from greenbench.energy.codecarbon_meter import CodeCarbonMeter
    from greenbench.models import build_model
    from greenbench.protocol import run_protocol
    from greenbench.tasks import make_phases
    from greenbench.variants import get_variant

    cell = Cell(**spec["cell"])
    protocol = ProtocolSettings(**spec["protocol"])
    context = spec["context"]
    preset = get_preset(cell.workload)
    zone = resolve_zone(context["zone"])

    emit({"type": "stage", "stage": "building model"})
    model = get_variant(cell.variant).apply(build_model(preset.architecture)).to(cell.device)
    phases = make_phases(preset.kind, model, cell.params, cell.device)
    meter = CodeCarbonMeter(zone.iso3, gpu_indices(cell.device), zone.source)

    def on_window(window: Window) -> None:
        emit({"type": "window", "phase": window.phase, "repetition": window.repetition})

    emit({"type": "stage", "stage": "measuring"})
    try:
        result = run_protocol(
            phases, meter, protocol, sync=lambda: synchronize(cell.device), on_window=on_window
        )
    finally:
        meter.close()
    return measured_records(context, result, protocol.reliable)


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text}"[:500]


def main(argv: list[str]) -> int:
    with open(argv[0]) as f:
        spec = json.load(f)
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries go to the log, not into the event stream

    def emit(event: dict[str, Any]) -> None:
        events.write(json.dumps(event) + "\n")
        events.flush()

    try:
        records = run_cell(spec, emit)
    except BaseException as e:  # noqa: BLE001 - any failure becomes a failed cell, with its reason
        traceback.print_exc()
        emit({"type": "error", "error": one_line(e)})
        return 1
    emit({"type": "records", "records": records})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
