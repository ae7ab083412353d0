"""`greenbench import-pytest-benchmark FILE.json`: energy_benchmark results as greenbench records.

Each benchmark that carries `energy_*` fields in its extra_info becomes one cell (workload = the
test's full name, phase `call`, unit `call`) with one record per measured window, in a new run
folder, so `greenbench compare` and the report read them like any other run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from greenbench.errors import GreenbenchError
from greenbench.records import Record, WindowFacts, build_record, window_figures
from greenbench.store import RunStore

SUITE = "pytest-benchmark"
DEVICE = "host"  # the meter measured the whole machine: CPU, RAM and any GPUs it was given


def read_benchmarks(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise GreenbenchError(f"no such file '{path}'; give a --benchmark-json output") from None
    except json.JSONDecodeError as e:
        raise GreenbenchError(
            f"'{path}' is not JSON ({e}); give a --benchmark-json output"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise GreenbenchError(
            f"'{path}' has no 'benchmarks' list: not a pytest-benchmark JSON file"
        )
    return data


def benchmark_records(bench: dict[str, Any], run_id: str, recorded_at: str) -> list[Record]:
    """One record per energy window of one benchmark; [] when it has no energy fields."""
    info = bench.get("extra_info") or {}
    windows = info.get("energy_windows")
    if not windows:
        return []
    methods = dict(part.split(":", 1) for part in str(info.get("energy_methods", "")).split())
    name = bench.get("fullname") or bench.get("name", "benchmark")
    variant = bench.get("param") or "default"
    context = {
        "run_id": run_id,
        "cell_id": f"{name}/{variant}/{DEVICE}",
        "attempt": 1,
        "suite": SUITE,
        "workload": name,
        "architecture": None,
        "task": "benchmark",
        "phase": "call",
        "variant": variant,
        "device": DEVICE,
        "params": json.dumps(bench.get("params") or {}, sort_keys=True, default=str),
        "zone": info.get("energy_zone"),
    }
    rows = []
    for repetition, w in enumerate(windows, start=1):
        calls = int(w["calls"])
        facts = WindowFacts(
            unit="call",
            unit_count=calls,
            calls=calls,
            duration_s=float(w["duration_s"]),
            energy_j=float(w["energy_j"]),
            idle_power_w=float(info.get("energy_idle_power_w", 0.0)),
            methods=methods,  # the measured components only
            carbon_intensity_g_per_kwh=float(
                info.get("energy_carbon_intensity_g_per_kwh", float("nan"))
            ),
            carbon_source=info.get("energy_carbon_source"),
        )
        rows.append(
            build_record(
                context,
                {"repetition": repetition},
                window_figures(facts),
                recorded_at=recorded_at,
            )
        )
    return rows


def import_pytest_benchmark(path: str | os.PathLike, out: str | os.PathLike) -> RunStore:
    """Write the energy benchmarks of a --benchmark-json file as a new run under `out`."""
    source = Path(path)
    data = read_benchmarks(source)
    if not any((b.get("extra_info") or {}).get("energy_windows") for b in data["benchmarks"]):
        raise GreenbenchError(
            f"'{source}' has no energy figures: its benchmarks did not use the energy_benchmark "
            "fixture"
        )
    recorded_at = str(data.get("datetime") or "")
    store = RunStore.create(
        out,
        {
            "status": "complete",
            "source": SUITE,
            "imported_from": str(source.resolve()),
            "started_at": recorded_at,
            "environment": {
                "machine_info": data.get("machine_info"),
                "commit_info": data.get("commit_info"),
            },
        },
    )
    rows = [r for b in data["benchmarks"] for r in benchmark_records(b, store.run_id, recorded_at)]
    store.append(rows)
    return store
