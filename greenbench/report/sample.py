"""Synthetic records in the real schema, for the report's tests and its scale benchmark."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
from collections.abc import Mapping, Sequence

import pandas as pd

from greenbench.records import COLUMNS, Record, WindowFacts, build_record, window_figures
from greenbench.tasks import phase_units

UNITS = phase_units()  # phase -> unit, as the workload kinds declare them
START = dt.datetime(2026, 11, 1, 22, 0, tzinfo=dt.UTC)
SWEPT = ("batch",)  # parameters a sweep varies: a sweep's cells are told apart by them


def _row(
    run_id: str, workload: str, phase: str, variant: str, v_index: int, device: str,
    repetition: int, per_unit: float, at: dt.datetime, params: Mapping[str, object] | None = None,
    units: int = 100, calls: int = 10, call_s: float = 0.5,
) -> Record:  # fmt: skip
    duration, idle_w = calls * call_s, 20.0
    net = per_unit * units
    params = {"batch": 1} if params is None else params
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
        # calls a little apart, so the percentiles differ: p50 = call_s, p90 = 1.1 call_s
        call_times_s=tuple(call_s * (0.95 + 0.05 * (i % 5) / 2) for i in range(calls)),
    )
    scored = variant != "fp32" and phase != "train"
    swept = [(k, v) for k, v in sorted(params.items()) if k in SWEPT]
    context = {
        "run_id": run_id,
        "cell_id": f"{workload}/{variant}/{device}" + "".join(f"/{k}={v}" for k, v in swept),
        "attempt": 1,
        "suite": "synthetic",
        "workload": workload,
        "architecture": workload,
        "task": "training" if phase == "train" else "inference",
        "phase": phase,
        "variant": variant,
        "device": device,
        "repetition": repetition,
        "params": json.dumps(dict(params), sort_keys=True),
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


def sweep_frame(
    workloads: Mapping[str, Sequence[str]],
    variants: Sequence[str],
    batches: Sequence[int] = (1, 4, 16, 64),
    repetitions: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """Records of one run sweeping the batch size: a cell per workload x variant x batch.

    Larger batches cost less energy per unit (the fixed cost is shared: about 0.4 + 0.6 / sqrt
    of the batch, times synthetic_frame's cost) and take longer per call (20 ms times the batch
    to the power 0.7, 10 % less per later variant), so throughput rises too: the trade-off a
    sweep shows.
    """
    rng = random.Random(seed)
    rows = []
    at = START
    run_id = f"{START:%Y%m%d}-220000-5eed"
    cells = itertools.product(enumerate(workloads.items()), enumerate(variants), batches)
    for (w_index, (workload, phases)), (v_index, variant), batch in cells:
        cost = (w_index + 1) * (1.0 - 0.2 * v_index) * (0.4 + 0.6 / batch**0.5)
        call_s = 0.02 * batch**0.7 * (1.0 - 0.1 * v_index)
        calls = max(10, math.ceil(6.0 / call_s))  # windows of 6 s or more
        params = {"batch": batch, "new_tokens": 32, "prompt_tokens": 128}
        for repetition, phase in itertools.product(range(1, repetitions + 1), phases):
            per_unit = cost * rng.uniform(0.97, 1.03)
            rows.append(
                _row(
                    run_id,
                    workload,
                    phase,
                    variant,
                    v_index,
                    "cpu",
                    repetition,
                    per_unit,
                    at,
                    params,
                    units=calls * batch * 8,
                    calls=calls,
                    call_s=call_s,
                )  # fmt: skip
            )
            at += dt.timedelta(seconds=calls * call_s + 1)
    return pd.DataFrame(rows, columns=COLUMNS)
