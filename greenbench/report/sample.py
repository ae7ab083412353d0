"""Synthetic records in the real schema, for the report's tests and its scale benchmark."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from greenbench.records import COLUMNS, Record, WindowFacts, build_record, window_figures
from greenbench.store import RunStore
from greenbench.tasks import phase_units

UNITS = phase_units()  # phase -> unit, as the workload kinds declare them
START = dt.datetime(2026, 11, 1, 22, 0, tzinfo=dt.UTC)
SWEPT = ("batch",)  # parameters a sweep varies: a sweep's cells are told apart by them


def _row(
    run_id: str, workload: str, phase: str, variant: str, v_index: int, device: str,
    repetition: int, per_unit: float, at: dt.datetime, params: Mapping[str, object] | None = None,
    units: int = 100, calls: int = 10, call_s: float = 0.5, node: str | None = None,
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
        "node": node,
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


def nightly_levels(
    nights: int,
    seed: int,
    noise: float = 0.03,
    wander: float = 0.03,
    step: float = 0.0,
    step_at: int | None = None,
    base: float = 1.0,
) -> list[float]:
    """A cell's J/unit night by night: `base`, a slow wander of at most +-`wander` (two slow
    waves of random phase), between-run noise of standard deviation `noise` (relative), and
    from night `step_at` on (default: the last night) a step of `step` (0.10: 10 % more)."""
    rng = random.Random(seed)
    periods = (rng.uniform(40, 90), rng.uniform(120, 240))
    phases = (rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi))
    at = nights - 1 if step_at is None else step_at
    levels = []
    for night in range(nights):
        slow = sum(
            math.sin(2 * math.pi * night / p + f) for p, f in zip(periods, phases, strict=True)
        )
        level = base * (1 + wander * slow / 2) * (1 + rng.gauss(0, noise))
        levels.append(level * (1 + step) if night >= at else level)
    return levels


def sample_environment(**changes: Any) -> dict[str, Any]:
    """A run.json environment in collect_environment's shape; `changes` set its top-level
    fields, and greenbench=/torch= its package versions."""
    versions = {"greenbench": "0.1.0", "torch": "2.5.1", "transformers": "4.50.0"}
    for package in ("greenbench", "torch"):
        if package in changes:
            versions[package] = changes.pop(package)
    return {
        "hostname": "nightly-a",
        "os": "Linux-6.8-x86_64",
        "python": "3.11.9",
        "cpu_model": "Intel(R) Xeon(R) Platinum 8480+",
        "cpu_count": 16,
        "ram_gb": 128.0,
        "gpus": [],
        "gpu_driver": None,
        "cuda": None,
        "versions": versions,
        **changes,
    }


def write_nightly_runs(
    root: Path,
    levels: Mapping[tuple[str, str, str], Sequence[float]],
    node: str = "nightly-a",
    environments: Sequence[Mapping[str, Any]] | None = None,
    repetitions: int = 3,
    seed: int = 0,
    start: dt.datetime = START,
) -> list[Path]:
    """One run folder per night under `root` (run.json + records.jsonl, as the store writes
    them): every (workload, phase, variant) of `levels` on the cpu of `node`, night i at
    levels[cell][i] J/unit, its repetitions within 1 % of it; environments[i] is night i's
    run.json environment (default sample_environment())."""
    rng = random.Random(seed)
    nights = len(next(iter(levels.values())))
    folders = []
    for night in range(nights):
        at = start + dt.timedelta(days=night)
        run_id = f"{at:%Y%m%d-%H%M%S}-{zlib.crc32(f'{node}/{night}'.encode()) & 0xFFFF:04x}"
        store = RunStore(root / run_id)
        store.path.mkdir(parents=True)
        environment = environments[night] if environments else sample_environment()
        store.write_meta(
            {
                "run_id": run_id,
                "status": "complete",
                "started_at": at.isoformat(timespec="seconds"),
                "environment": {**environment, "hostname": node},
            }
        )
        rows = []
        for v_index, (workload, phase, variant) in enumerate(levels):
            for repetition in range(1, repetitions + 1):
                per_unit = levels[workload, phase, variant][night] * rng.uniform(0.99, 1.01)
                rows.append(
                    _row(run_id, workload, phase, variant, v_index, "cpu", repetition,
                         per_unit, at, node=node)
                )  # fmt: skip
                at += dt.timedelta(seconds=6)
        store.append(rows)
        folders.append(store.path)
    return folders


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
