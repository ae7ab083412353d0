"""A run as the exports read it: its records, its run.json, and per-cell figures."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from greenbench.errors import GreenbenchError
from greenbench.results import load_results
from greenbench.stats import SUMMARY_KEYS, summarize_frame
from greenbench.store import RunStore
from greenbench.workloads import PRESETS

# the run.json environment fields an export may carry; anything else stays on this machine
PUBLIC_ENVIRONMENT = ("os", "python", "cpu_model", "cpu_count", "ram_gb", "gpus", "gpu_driver")
PUBLIC_GPU_FIELDS = ("index", "name", "memory_gb", "compute_capability")
PUBLIC_VERSIONS = ("greenbench", "torch", "transformers", "torchao", "codecarbon", "pandas")


@dataclass(frozen=True)
class RunData:
    run_id: str
    path: Path
    records: pd.DataFrame  # load_results of the run: each cell's latest attempt
    meta: dict[str, Any]  # run.json

    def environment(self) -> dict[str, Any]:
        return public_environment(self.meta)


def load_run(out: str | Path, run: str) -> RunData:
    """A run by id (under `out`) or by folder path; GreenbenchError naming the fix."""
    store = RunStore.open(out, run)
    records = load_results(store.path)
    if records.empty:
        raise GreenbenchError(f"run '{run}' has no records yet; export a run that measured cells")
    return RunData(store.run_id, store.path, records, store.read_meta())


def public_environment(meta: dict[str, Any]) -> dict[str, Any]:
    """The machine's description, without anything but the fields named above (no host name,
    no settings, no environment variables: nothing that could hold a token)."""
    env = meta.get("environment")
    if not isinstance(env, dict):
        return {}
    public = {k: env[k] for k in PUBLIC_ENVIRONMENT if k in env and k != "gpus"}
    gpus = env.get("gpus")
    if isinstance(gpus, list):
        public["gpus"] = [
            {k: g[k] for k in PUBLIC_GPU_FIELDS if k in g} for g in gpus if isinstance(g, dict)
        ]
    versions = env.get("versions")
    if isinstance(versions, dict):
        public["versions"] = {k: versions[k] for k in PUBLIC_VERSIONS if k in versions}
    return public


def cell_figures(records: pd.DataFrame) -> pd.DataFrame:
    """One row per workload x phase x variant x device x node x params of `ok` records:
    greenbench's J/unit summary (stats.summarize_frame) with the window means the exports add."""
    summary = summarize_frame(records)
    if summary.empty:
        return summary
    ok = records[records["status"] == "ok"].copy()
    ok[SUMMARY_KEYS] = ok[SUMMARY_KEYS].astype(object).fillna("")
    valid = ok[ok["valid"].ne(False)].copy()
    gpu_idle_j = pd.to_numeric(valid["idle_power_gpu_w"]) * pd.to_numeric(valid["duration_s"])
    valid["net_energy_gpu_j"] = pd.to_numeric(valid["energy_gpu_j"]) - gpu_idle_j
    means = valid.groupby(SUMMARY_KEYS, sort=True)[
        ["net_energy_j", "energy_j", "emissions_g", "call_p90_s", "energy_gpu_j"]
        + ["net_energy_gpu_j", "calls"]
    ].mean()
    firsts = ok.groupby(SUMMARY_KEYS, sort=True)[["task", "checkpoint", "architecture"]].first()
    merged = summary.merge(means.reset_index(), on=SUMMARY_KEYS, how="left")
    return merged.merge(firsts.reset_index(), on=SUMMARY_KEYS, how="left")


def params_of(text: Any) -> dict[str, Any]:
    """A record's params column (JSON) as a dict; {} where it is not one."""
    try:
        value = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def finite(value: Any) -> float | None:
    """A number for JSON, or None for NaN, None and the rest."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def kind_of(workload: str, phases: set[str]) -> str | None:
    """The workload kind of a cell: its preset's, else lm-inference for a cell measuring
    prefill or decode (no other kind does); None where records do not say (an hf: image
    checkpoint may classify or detect)."""
    preset = PRESETS.get(workload)
    if preset is not None:
        return preset.kind.name
    return "lm-inference" if phases & {"prefill", "decode"} else None
