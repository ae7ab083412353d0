"""The record schema: one row per (cell, phase, repetition), built from a protocol result.

Totals (energy_j, emissions_g) are gross: what the machine drew. Per-unit figures are net of the
idle baseline: what the work itself cost.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from greenbench.energy.meter import COMPONENTS, KWH_TO_J
from greenbench.energy.methods import is_estimate
from greenbench.protocol import ProtocolResult, Window

# Identity of a cell and its row; filled by the runner for every record, failed ones included.
CONTEXT_COLUMNS = [
    "run_id",
    "cell_id",
    "attempt",
    "suite",
    "workload",
    "architecture",
    "task",
    "phase",
    "variant",
    "device",
    "repetition",
    "params",
    "zone",
    "node",  # the machine the cell ran on
]

MEASURE_COLUMNS = [
    "window_start",  # UTC, ISO 8601
    "unit",
    "unit_count",
    "calls",
    "duration_s",
    "cooldown_s",
    "energy_j",
    "energy_cpu_j",
    "energy_gpu_j",
    "energy_ram_j",
    "idle_power_w",
    "idle_power_cpu_w",
    "idle_power_gpu_w",
    "idle_power_ram_w",
    "net_energy_j",
    "energy_per_unit_j",
    "gross_energy_per_unit_j",
    "energy_per_call_j",
    "throughput",
    "power_w",
    "emissions_g",
    "emissions_per_1k_units_g",
    "carbon_intensity_g_per_kwh",
    "carbon_source",
    # with an intensity source: gross emissions from the time-weighted intensity of the window
    "emissions_series_g",
    "carbon_intensity_series_g_per_kwh",
    "carbon_series_source",
    "method_cpu",
    "method_gpu",
    "method_ram",
    "estimated",
    "reliable",
    # inference variants other than fp32: agreement with the fp32 model (see fidelity.py)
    "fidelity_top1",
    "fidelity_kl",
    "fidelity_n",
    # quantization variants: the share of Linear weight elements actually quantized (torchao
    # leaves layers its kernels cannot take in the model's precision)
    "quantized_share",
    # CUDA cells measured through NVML: the window's power trace (JSON rows of seconds from the
    # window's start, NVML index, W, utilization %, °C, SM MHz) and other processes on the GPU
    "gpu_trace",
    "gpu_foreign_pids",
]

STATUS_COLUMNS = ["status", "error", "recorded_at"]

COLUMNS = CONTEXT_COLUMNS + MEASURE_COLUMNS + STATUS_COLUMNS

STATUSES = ("ok", "failed", "skipped")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def window_record(
    context: Mapping[str, Any],
    result: ProtocolResult,
    window: Window,
    reliable: bool,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One measured row; `extra` holds per-cell values such as fidelity."""
    m = window.measurement
    idle_w = result.idle.power_w()
    gross = m.total_j
    net = gross - idle_w * window.duration_s
    units = window.unit_count
    intensity = m.carbon_intensity_g_per_kwh
    net_per_unit = net / units
    record: dict[str, Any] = {
        **context,
        "phase": window.phase,
        "repetition": window.repetition,
        "window_start": dt.datetime.fromtimestamp(window.started_at, dt.UTC).isoformat(
            timespec="milliseconds"
        ),
        "unit": window.unit,
        "unit_count": units,
        "calls": window.calls,
        "duration_s": window.duration_s,
        "cooldown_s": window.cooldown_s,
        "energy_j": gross,
        "idle_power_w": idle_w,
        "net_energy_j": net,
        "energy_per_unit_j": net_per_unit,
        "gross_energy_per_unit_j": gross / units,
        "energy_per_call_j": net / window.calls,
        "throughput": units / window.duration_s,
        "power_w": gross / window.duration_s,
        "emissions_g": m.emissions_g,
        "emissions_per_1k_units_g": (
            net_per_unit * 1000 / KWH_TO_J * intensity if math.isfinite(intensity) else None
        ),
        "carbon_intensity_g_per_kwh": intensity,
        "carbon_source": m.carbon_source,
        "estimated": any(is_estimate(m.methods[c]) for c in COMPONENTS if m.energy_j[c] > 0),
        "reliable": reliable,
        "status": "ok",
        "error": None,
        "recorded_at": _now(),
        "gpu_trace": json.dumps(m.gpu_trace) if m.gpu_trace else None,
        "gpu_foreign_pids": json.dumps(m.gpu_foreign_pids) if m.gpu_foreign_pids else None,
        **(extra or {}),
    }
    for c in COMPONENTS:
        record[f"energy_{c}_j"] = m.energy_j[c]
        record[f"idle_power_{c}_w"] = result.idle.power_w(c)
        record[f"method_{c}"] = m.methods[c]
    return {col: record.get(col) for col in COLUMNS}


def measured_records(
    context: Mapping[str, Any],
    result: ProtocolResult,
    reliable: bool,
    extra: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    return [window_record(context, result, w, reliable, extra) for w in result.windows]


def unfinished_records(
    context: Mapping[str, Any], phases: Iterable[str], status: str, error: str
) -> list[dict[str, Any]]:
    """One row per phase for a cell that failed or was skipped, carrying the reason."""
    assert status in ("failed", "skipped")
    rows = []
    for phase in phases:
        record = {
            **context,
            "phase": phase,
            "status": status,
            "error": error,
            "recorded_at": _now(),
        }
        rows.append({col: record.get(col) for col in COLUMNS})
    return rows
