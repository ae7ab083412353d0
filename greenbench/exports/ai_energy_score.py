"""The AI Energy Score's figure for text-generation and image-classification cells: energy in
Wh per 1,000 queries at batch 1, to place a model beside the public leaderboard.

Their methodology (https://huggingface.github.io/AIEnergyScore/#methodology): 1,000 queries
per task from their own datasets, batch size 1, GPU energy only (CodeCarbon reading NVML on an
NVIDIA H100 80GB), preprocess + prefill + decode summed, the mean of 10 runs. No idle baseline
is subtracted in what they describe, so the comparable figure here is the gross one; the net
one is greenbench's usual figure, given beside it. `DIFFERENCES` says what else differs.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from greenbench.exports.run_data import RunData, cell_figures, finite, kind_of, params_of

METHODOLOGY = "https://huggingface.github.io/AIEnergyScore/#methodology"
# greenbench's workload kind -> the AI Energy Score task it is placed beside
TASKS = {"lm-inference": "text_generation", "vision-inference": "image_classification"}
J_PER_WH = 3600.0
DIFFERENCES = [
    "Weights: greenbench presets are architectures with random weights, built from a config; "
    "the leaderboard runs published checkpoints. An hf: workload names its checkpoint "
    "(`weights`), and only then is it the same model.",
    "Queries: theirs are 1,000 samples of their datasets (text generation: WikiText, OSCAR, "
    "UltraChat, about 369 input tokens a query on average; image classification: ImageNet, "
    "Food-101, Beans); ours are the cell's synthetic inputs: `prompt_tokens` in and "
    "`new_tokens` out per query for text generation, one image of the preset's size per query.",
    "Energy counted: theirs is the GPU's alone, from CodeCarbon's NVML reading on an H100. "
    "Ours on a GPU is the GPU component likewise (energy_gpu_j); on a CPU there is no GPU "
    "counter, and the figure is the CPU and RAM energy (RAPL, or CodeCarbon's estimate where "
    "`method` is estimated): not comparable with the leaderboard's.",
    "Gross against net: they subtract no idle baseline, so `wh_per_1k_queries` is gross "
    "(idle draw included), as theirs; `wh_per_1k_queries_net` subtracts the idle baseline of "
    "the same components (the GPU's alone on a GPU), as greenbench's J/unit figures do.",
    "Phases: theirs sum preprocess, prefill and decode; ours sum prefill and decode "
    "(tokenisation and image preprocessing are not measured).",
    "Precision and runs: they use FP16 for text generation and FP32 otherwise, the mean of 10 "
    "runs; ours is the cell's variant, the mean of its measured windows (`windows`).",
]


def score(run: RunData) -> dict[str, Any]:
    cells = cell_figures(run.records)
    scored, left_out = [], []
    if not cells.empty:
        keys = ["workload", "variant", "device", "node", "params"]
        for _, cell in cells.groupby(keys, sort=True):
            first = cell.iloc[0]
            name = {k: str(first[k]) for k in ("workload", "variant", "device", "node")}
            task = TASKS.get(kind_of(str(first["workload"]), set(cell["phase"])) or "")
            if task is None:
                continue  # not a task the leaderboard scores in this export
            batch = params_of(first["params"]).get("batch")
            if batch != 1:
                left_out.append({**name, "reason": f"batch {batch}: the score is at batch 1"})
                continue
            figure = _figure(cell, task)
            if isinstance(figure, str):
                left_out.append({**name, "reason": figure})
                continue
            scored.append({**name, **figure})
    return {
        "metric": "energy per 1,000 queries at batch 1, Wh (the AI Energy Score's GPU energy)",
        "methodology": METHODOLOGY,
        "run_id": run.run_id,
        "cells": scored,
        "left_out": left_out,
        "differences": DIFFERENCES,
    }


def _figure(cell: pd.DataFrame, task: str) -> dict[str, Any] | str:
    """The cell's figure, or why it has none."""
    phases = ("prefill", "decode") if task == "text_generation" else ("forward",)
    by_phase = {str(row["phase"]): row for _, row in cell.iterrows()}
    missing = [p for p in phases if p not in by_phase]
    if missing:
        return f"no {' or '.join(missing)} phase measured: a query needs {' and '.join(phases)}"
    rows = [by_phase[p] for p in phases]
    on_gpu = all(finite(r["energy_gpu_j"]) for r in rows)
    gross = sum(_per_call(r, "energy_gpu_j" if on_gpu else "energy_j") for r in rows)
    net = sum(_per_call(r, "net_energy_gpu_j" if on_gpu else "net_energy_j") for r in rows)
    if not (gross == gross and net == net):  # NaN: no valid window
        return "no valid window: greenbench check says why"
    first = rows[0]
    params = params_of(first["params"])
    figure: dict[str, Any] = {
        "task": task,
        "weights": str(first["checkpoint"]) if isinstance(first["checkpoint"], str) else "random",
        "energy_counted": "gpu" if on_gpu else "cpu+ram (no GPU counter: not comparable)",
        "method": "estimated" if any(bool(r["estimated"]) for r in rows) else "measured",
        "wh_per_1k_queries": gross * 1000 / J_PER_WH,
        "wh_per_1k_queries_net": net * 1000 / J_PER_WH,
        "windows": int(min(r["n"] for r in rows)),
    }
    if task == "text_generation":
        figure["prompt_tokens"] = params.get("prompt_tokens")
        figure["new_tokens"] = params.get("new_tokens")
    return figure


def _per_call(row: pd.Series, column: str) -> float:
    """Energy of one call: one query at batch 1."""
    value, calls = finite(row.get(column)), finite(row.get("calls"))
    if value is None or not calls:
        return float("nan")
    return value / calls


def text_table(result: dict[str, Any]) -> str:
    lines = [f"AI Energy Score figure, run {result['run_id']} ({result['methodology']})"]
    lines.append(
        f"{'task':<22}{'workload':<22}{'variant':<14}{'device':<8}{'Wh/1k gross':>12}"
        f"{'Wh/1k net':>11}  counted"
    )
    for c in result["cells"]:
        lines.append(
            f"{c['task']:<22}{c['workload']:<22}{c['variant']:<14}{c['device']:<8}"
            f"{c['wh_per_1k_queries']:>12.4g}{c['wh_per_1k_queries_net']:>11.4g}  "
            f"{c['energy_counted']}, {c['method']}"
        )
    for c in result["left_out"]:
        lines.append(f"left out: {c['workload']} {c['variant']} {c['device']}: {c['reason']}")
    lines += ["differences from the leaderboard's method:"]
    lines += [f"- {d}" for d in result["differences"]]
    return "\n".join(lines) + "\n"


def export(run: RunData) -> bytes:
    return (json.dumps(score(run), indent=2) + "\n").encode()
