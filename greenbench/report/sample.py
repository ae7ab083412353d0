"""Synthetic records in the real schema, for the report's tests and its scale benchmark."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from collections.abc import Mapping, Sequence

import pandas as pd

from greenbench.records import COLUMNS, Record, WindowFacts, build_record, window_figures
from greenbench.tasks import phase_units

UNITS = phase_units()  # phase -> unit, as the workload kinds declare them
START = dt.datetime(2026, 11, 1, 22, 0, tzinfo=dt.UTC)


def _row(
    run_id: str, workload: str, phase: str, variant: str, v_index: int, device: str,
    repetition: int, per_unit: float, at: dt.datetime,
) -> Record:  # fmt: skip
    units, calls, duration, idle_w = 100, 10, 5.0, 20.0
    net = per_unit * units
    facts = WindowFacts(
        unit=UNITS[phase],
        unit_count=units,
        calls=calls,
        duration_s=duration,
        energy_j=net + idle_w * duration,
        idle_power_w=idle_w,
        methods={"cpu": "rapl", "gpu": "none", "ram": "ram-estimate"},
        carbon_intensity_g_per_kwh=200.0,
        carbon_source="synthetic",
        energy_by_component_j={"cpu": net + 5 * duration, "gpu": 0.0, "ram": 15 * duration},
        idle_power_by_component_w={"cpu": 5.0, "gpu": 0.0, "ram": 15.0},
    )
    scored = variant != "fp32" and phase != "train"
    context = {
        "run_id": run_id,
        "cell_id": f"{workload}/{variant}/{device}",
        "attempt": 1,
        "suite": "synthetic",
        "workload": workload,
        "architecture": workload,
        "task": "training" if phase == "train" else "inference",
        "phase": phase,
        "variant": variant,
        "device": device,
        "repetition": repetition,
        "params": json.dumps({"batch": 1}),
        "zone": "GB",
        "window_start": at.isoformat(timespec="milliseconds"),
    }
    extra = {
        "fidelity_top1": 0.99 - 0.1 * v_index if scored else None,
        "fidelity_kl": 0.001 * v_index if scored else None,
        "fidelity_n": 128 if scored else None,
        "quantized_share": 1.0 if scored and variant.startswith(("int", "fp8")) else None,
    }
    return build_record(
        context, window_figures(facts), extra, recorded_at=at.isoformat(timespec="seconds")
    )


def synthetic_frame(
    workloads: Mapping[str, Sequence[str]],
    variants: Sequence[str],
    devices: Sequence[str] = ("cpu",),
    runs: int = 1,
    repetitions: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """Records for every workload (-> its phases) x variant x device x run x repetition.

    The i-th workload's fp32 costs about i+1 J per unit, each later variant 20 % less, with 3 %
    noise; variants other than fp32 score a top-1 agreement of 0.99, 0.89, ... on inference.
    """
    rng = random.Random(seed)
    rows = []
    at = START
    for run in range(runs):
        run_id = f"{(START + dt.timedelta(days=run)):%Y%m%d}-220000-{run:04x}"
        cells = itertools.product(enumerate(workloads.items()), enumerate(variants), devices)
        for (w_index, (workload, phases)), (v_index, variant), device in cells:
            cost = (w_index + 1) * (1.0 - 0.2 * v_index)
            for repetition, phase in itertools.product(range(1, repetitions + 1), phases):
                per_unit = cost * rng.uniform(0.97, 1.03)
                rows.append(
                    _row(
                        run_id, workload, phase, variant, v_index, device, repetition, per_unit, at
                    )
                )
                at += dt.timedelta(seconds=6)
        at = START + dt.timedelta(days=run + 1)
    return pd.DataFrame(rows, columns=COLUMNS)
