"""A run as BoAmps reports: Boavizta's JSON format for sharing AI energy measurements.

One report per cell (workload x phase x variant x device x params), one measure per window,
in a JSON array. Only what greenbench knows is filled in: the measured energy (gross, in kWh,
with the idle baseline over the same window as the calibration measure), the meters, the
machine's CPU, GPUs and RAM, the grid zone's country and intensity. Nothing is guessed: no
accuracy (fidelity against fp32 is not one), no cloud provider, no publisher.
Schema: https://github.com/Boavizta/BoAmps/tree/main/model (a copy is in tests/data/boamps/).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pandas as pd

from greenbench.energy.meter import KWH_TO_J
from greenbench.exports.run_data import RunData, finite, kind_of, params_of
from greenbench.stats import SUMMARY_KEYS

FORMAT_URI = "https://github.com/Boavizta/BoAmps/tree/main/model"
# the unit a phase counts -> BoAmps' dataType and inputDataType
DATA_TYPES = {
    "token": ("text", "token"),
    "sequence": ("text", "token"),
    "image": ("image", "image"),
    "audio-second": ("audio", "audio"),
}


def reports(run: RunData, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    stamp = _datetime(now or dt.datetime.now(dt.UTC))
    ok = run.records[run.records["status"] == "ok"].copy()
    ok[SUMMARY_KEYS] = ok[SUMMARY_KEYS].astype(object).fillna("")
    out = []
    for key, windows in ok.groupby(SUMMARY_KEYS, sort=True):
        out.append(_report(run, dict(zip(SUMMARY_KEYS, key, strict=True)), windows, stamp))
    return out


def _report(
    run: RunData, cell: dict[str, Any], windows: pd.DataFrame, stamp: str
) -> dict[str, Any]:
    first = windows.iloc[0]
    name = "/".join(str(cell[k]) for k in SUMMARY_KEYS)
    report: dict[str, Any] = {
        "header": {
            "formatVersionSpecificationUri": FORMAT_URI,
            "reportId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"greenbench:{run.run_id}:{name}")),
            "reportDatetime": stamp,
            "reportStatus": "draft",
        },
        "task": _task(run, cell, first),
        "measures": [_measure(run, w) for _, w in windows.iterrows()],
        "infrastructure": _infrastructure(run),
    }
    env = run.environment()
    if env.get("os"):
        report["system"] = {"os": str(env["os"]).split("-")[0].lower()}
    if env.get("python"):
        report["software"] = {"language": "python", "version": str(env["python"])}
    environment = _environment(windows)
    if environment:
        report["environment"] = environment
    return report


def _task(run: RunData, cell: dict[str, Any], first: pd.Series) -> dict[str, Any]:
    training = cell["phase"] == "train"
    algorithm: dict[str, Any] = {
        "algorithmName": str(first.get("architecture") or cell["workload"]),
        "framework": "pytorch",
        "quantization": str(cell["variant"]),
    }
    checkpoint = first.get("checkpoint")
    if isinstance(checkpoint, str) and checkpoint:
        algorithm["foundationModelName"] = checkpoint
    torch_version = run.environment().get("versions", {}).get("torch")
    if torch_version:
        algorithm["frameworkVersion"] = str(torch_version)
    parameters = finite(first.get("parameters"))
    if parameters:
        algorithm["parametersNumber"] = parameters / 1e9
    data_type, input_type = DATA_TYPES.get(str(first.get("unit")), ("other", "other"))
    dataset: dict[str, Any] = {"dataType": data_type, "inputDataType": input_type}
    units = finite(first.get("unit_count"))
    if units is not None:
        dataset["nbInput"] = units
    task: dict[str, Any] = {
        "taskStage": "training" if training else "inference",
        # the workload kind (lm-inference, vision-training, ...), else the task column
        "taskFamily": kind_of(str(cell["workload"]), {str(cell["phase"])})
        or str(first.get("task") or cell["workload"]),
        "algorithms": [algorithm],
        "dataset": [dataset],
        "taskDescription": (
            f"greenbench cell {cell['workload']} {cell['phase']} {cell['variant']} on "
            f"{cell['device']}, params {cell['params'] or '{}'}; inputs are synthetic. Each "
            "measure is one window: powerConsumption is its gross energy; the calibration "
            "measure is the idle baseline's power over the same duration."
        ),
    }
    calls = finite(first.get("calls"))
    batch = params_of(first.get("params")).get("batch")
    if not training and calls and isinstance(batch, int):
        task["nbRequest"] = calls * batch  # sequences or images per window
    return task


def _measure(run: RunData, w: pd.Series) -> dict[str, Any]:
    measure: dict[str, Any] = {
        "measurementMethod": "greenbench",
        "unit": "kWh",
        "powerConsumption": float(w["energy_j"]) / KWH_TO_J,
    }
    version = run.environment().get("versions", {}).get("greenbench")
    if version:
        measure["version"] = str(version)
    for field, column in (("cpuTrackingMode", "method_cpu"), ("gpuTrackingMode", "method_gpu")):
        if isinstance(w.get(column), str) and w[column] != "none":
            measure[field] = w[column]
    duration = finite(w.get("duration_s"))
    idle = finite(w.get("idle_power_w"))
    if duration is not None:
        measure["measurementDuration"] = duration
        if idle is not None:
            measure["powerCalibrationMeasurement"] = idle * duration / KWH_TO_J
            measure["durationCalibrationMeasurement"] = duration
    start = w.get("window_start")
    if isinstance(start, str) and start:
        measure["measurementDateTime"] = _datetime(dt.datetime.fromisoformat(start))
    return measure


def _infrastructure(run: RunData) -> dict[str, Any]:
    env = run.environment()
    components: list[dict[str, Any]] = []
    if env.get("cpu_model"):
        components.append(
            {"componentName": str(env["cpu_model"]), "componentType": "cpu", "nbComponent": 1}
        )
    for gpu in env.get("gpus", []):
        entry: dict[str, Any] = {"componentType": "gpu", "nbComponent": 1}
        if gpu.get("name"):
            entry["componentName"] = str(gpu["name"])
        if isinstance(gpu.get("memory_gb"), int | float):
            entry["memorySize"] = int(gpu["memory_gb"])
        components.append(entry)
    ram: dict[str, Any] = {"componentType": "ram", "nbComponent": 1}
    if isinstance(env.get("ram_gb"), int | float):
        ram["memorySize"] = int(env["ram_gb"])
    components.append(ram)
    # where the machine stands (cloud, on premises) is not recorded
    return {"infraType": "other", "components": components}


def _environment(windows: pd.DataFrame) -> dict[str, Any]:
    zone = windows["zone"].dropna()
    if zone.empty or not str(zone.iloc[0]):
        return {}
    environment: dict[str, Any] = {"country": str(zone.iloc[0]).split("-")[0]}
    intensity = finite(pd.to_numeric(windows["carbon_intensity_g_per_kwh"]).mean())
    if intensity is not None:
        environment["powerSourceCarbonIntensity"] = intensity
    return environment


def _datetime(moment: dt.datetime) -> str:
    """BoAmps' YYYY-MM-DD HH:MM:SS, in UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def export(run: RunData) -> bytes:
    return (json.dumps(reports(run), indent=2) + "\n").encode()
