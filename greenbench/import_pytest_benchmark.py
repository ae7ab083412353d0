"""`greenbench import-pytest-benchmark FILE.json`: energy_benchmark results as greenbench records.

Each benchmark that carries `energy_*` fields in its extra_info becomes one cell (workload = the
test's full name, phase `call`, unit `call`) with one record per measured window, in a new run
folder, so `greenbench compare` and the report read them like any other run.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from greenbench.errors import GreenbenchError, one_line
from greenbench.records import Record, WindowFacts, build_record, window_figures
from greenbench.store import RunStore

SUITE = "pytest-benchmark"
PENDING_RUN_ID = ""  # rows are built before their run exists; the id is set on writing
DEVICE = "host"  # the meter measured the whole machine: CPU, RAM and any GPUs it was given


def read_benchmarks(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise GreenbenchError(f"no such file '{path}'; give a --benchmark-json output") from None
    except IsADirectoryError:
        raise GreenbenchError(f"'{path}' is a folder; give a --benchmark-json output") from None
    except OSError as e:
        raise GreenbenchError(f"cannot read '{path}' ({e.strerror})") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are both
        raise GreenbenchError(
            f"'{path}' is not JSON ({one_line(e)}); give a --benchmark-json output"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise GreenbenchError(
            f"'{path}' has no 'benchmarks' list: not a pytest-benchmark JSON file"
        )
    return data


class BadBenchmark(ValueError):
    """A field of one benchmark that a pytest-benchmark file written by the plugin never has."""


def _number(value: Any, what: str, low: float = -math.inf, above: bool = False) -> float:
    """A finite JSON number >= low (> low with `above`)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadBenchmark(f"{what} is {value!r}, not a finite number")
    if isinstance(value, int) and abs(value) > 2**63:
        raise BadBenchmark(f"{what} is a {len(str(abs(value)))}-digit number, not a sensible one")
    if not math.isfinite(value):
        raise BadBenchmark(f"{what} is {value!r}, not a finite number")
    if value < low or (above and value == low):
        raise BadBenchmark(f"{what} is {value!r}, not {'>' if above else '>='} {low:g}")
    return float(value)


def _text(value: Any, what: str, default: str | None) -> str | None:
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadBenchmark(f"{what} is {value!r}, not a string")
    return value


def _methods(value: Any) -> dict[str, str]:
    """'cpu:rapl ram:ram-estimate' -> {'cpu': 'rapl', 'ram': 'ram-estimate'}."""
    text = _text(value, "extra_info.energy_methods", "") or ""
    parts = [part.split(":", 1) for part in text.split()]
    if any(len(part) != 2 for part in parts):
        raise BadBenchmark(f"extra_info.energy_methods is {text!r}, not 'component:method ...'")
    return dict((c, m) for c, m in parts)


def _window(w: Any, where: str, info: dict[str, Any], methods: dict[str, str]) -> WindowFacts:
    if not isinstance(w, dict):
        raise BadBenchmark(f"{where} is {type(w).__name__}, not an object")
    calls = _number(w.get("calls"), f"{where}.calls", low=1)
    if calls != int(calls):
        raise BadBenchmark(f"{where}.calls is {calls:g}, not a whole number")
    intensity = info.get("energy_carbon_intensity_g_per_kwh")
    return WindowFacts(
        unit="call",
        unit_count=int(calls),
        calls=int(calls),
        duration_s=_number(w.get("duration_s"), f"{where}.duration_s", low=0, above=True),
        energy_j=_number(w.get("energy_j"), f"{where}.energy_j"),
        idle_power_w=_number(
            info.get("energy_idle_power_w", 0.0), "extra_info.energy_idle_power_w", low=0
        ),
        methods=methods,  # the measured components only
        carbon_intensity_g_per_kwh=(
            math.nan
            if intensity is None or (type(intensity) is float and math.isnan(intensity))
            else _number(intensity, "extra_info.energy_carbon_intensity_g_per_kwh", low=0)
        ),
        carbon_source=_text(
            info.get("energy_carbon_source"), "extra_info.energy_carbon_source", None
        ),
    )


def benchmark_records(bench: Any, run_id: str, recorded_at: str) -> list[Record]:
    """One record per energy window of one benchmark; [] when it has no energy fields.

    Raises BadBenchmark naming the field when the benchmark's shape is not the plugin's.
    """
    if not isinstance(bench, dict):
        raise BadBenchmark(f"is {type(bench).__name__}, not an object")
    info = bench.get("extra_info") or {}
    if not isinstance(info, dict):
        raise BadBenchmark(f"extra_info is {type(info).__name__}, not an object")
    windows = info.get("energy_windows")
    if not windows:
        return []
    if not isinstance(windows, list):
        raise BadBenchmark(f"extra_info.energy_windows is {type(windows).__name__}, not a list")
    methods = _methods(info.get("energy_methods"))
    name = _text(bench.get("fullname"), "fullname", None) or _text(
        bench.get("name"), "name", "benchmark"
    )
    variant = _text(bench.get("param"), "param", None) or "default"
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
        "zone": _text(info.get("energy_zone"), "extra_info.energy_zone", None),
    }
    facts = [
        _window(w, f"extra_info.energy_windows[{i}]", info, methods) for i, w in enumerate(windows)
    ]
    return [
        build_record(
            context, {"repetition": repetition}, window_figures(f), recorded_at=recorded_at
        )
        for repetition, f in enumerate(facts, start=1)
    ]


def import_pytest_benchmark(path: str | os.PathLike, out: str | os.PathLike) -> RunStore:
    """Write the energy benchmarks of a --benchmark-json file as a new run under `out`.

    The whole file is checked before anything is written: a bad benchmark leaves no run behind.
    """
    source = Path(path)
    data = read_benchmarks(source)
    recorded_at = str(data.get("datetime") or "")
    rows: list[Record] = []
    for index, bench in enumerate(data["benchmarks"]):
        try:
            rows += benchmark_records(bench, PENDING_RUN_ID, recorded_at)
        except BadBenchmark as e:
            raise GreenbenchError(
                f"'{source}': benchmarks[{index}]: {e}; not a file the energy_benchmark "
                "fixture wrote"
            ) from None
    if not rows:
        raise GreenbenchError(
            f"'{source}' has no energy figures: its benchmarks did not use the energy_benchmark "
            "fixture"
        )
    store = RunStore.create(
        out,
        {
            "status": "running",  # "complete" once every record is written
            "source": SUITE,
            "imported_from": str(source.resolve()),
            "started_at": recorded_at,
            "environment": {
                "machine_info": data.get("machine_info"),
                "commit_info": data.get("commit_info"),
            },
        },
    )
    store.append([{**row, "run_id": store.run_id} for row in rows])
    store.update_meta(status="complete")
    return store
