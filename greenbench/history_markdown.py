"""The short Markdown summary of a history, for a CI job's log or a chat message: regressions
first, then improvements, then the counts; each names the cell, node, run and date."""

from __future__ import annotations

import math

import pandas as pd

from greenbench.drift import BASELINE_RUNS, FLOOR_K, MIN_RUNS
from greenbench.formatting import fmt_joules
from greenbench.history import History


def cell_label(row: pd.Series, with_params: bool = False) -> str:
    label = f"{row['workload']} / {row['phase']} / {row['variant']} / {row['device']}"
    return f"{label} {row['params']}" if with_params and row["params"] else label


def _day(value: object) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d") if pd.notna(value) else "?"


def _signed_pct(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value * 100:+.1f} %"


def _line(row: pd.Series, with_params: bool) -> str:
    node = f" on `{row['node']}`" if row["node"] else ""
    unit = row["unit"]
    line = (
        f"- **{cell_label(row, with_params)}**{node}: {_signed_pct(row['change'])} "
        f"({fmt_joules(row['j_per_unit'], row['j_per_unit_ci95'])}/{unit} against a baseline of "
        f"{fmt_joules(row['baseline'])}/{unit}; noise floor {row['floor'] * 100:.1f} %) in run "
        f"`{row['run_id']}` of {_day(row['started_at'])}"
    )
    if row.get("recent_changes"):
        line += f"; environment changed: {row['recent_changes']}"
    return line


def history_markdown(history: History) -> str:
    """The summary as Markdown text (ends with a newline)."""
    verdicts = history.verdicts
    with_params = bool(
        not verdicts.empty
        and verdicts.groupby(["workload", "phase", "variant", "device", "node"])["params"]
        .nunique()
        .max()
        > 1
    )
    count = {s: int((verdicts["status"] == s).sum()) if not verdicts.empty else 0
             for s in ("regression", "improvement", "steady", "short")}  # fmt: skip
    title = f"# greenbench history: {count['regression']} regression(s)"
    title += f", {count['improvement']} improvement(s)"
    lines = [
        title,
        "",
        f"The newest run of each cell against the median of its previous {BASELINE_RUNS} runs "
        f"on the same node; flagged beyond {history.pct:g} % and {FLOOR_K:g} noise floors "
        "(the history's own run-to-run spread), with the 95 % CIs apart.",
    ]
    for status, heading in (("regression", "Regressions"), ("improvement", "Improvements")):
        flagged = verdicts[verdicts["status"] == status] if not verdicts.empty else verdicts
        if flagged.empty:
            continue
        lines += ["", f"## {heading}", ""]
        lines += [_line(row, with_params) for _, row in flagged.iterrows()]
    points = history.points
    nodes = points["node"].nunique() if not points.empty else 0
    span = (
        f" from {_day(points['started_at'].min())} to {_day(points['started_at'].max())}"
        if not points.empty
        else ""
    )
    lines += [
        "",
        "## Counts",
        "",
        f"{len(verdicts)} cell(s) on {nodes} node(s), {history.runs} run(s){span}: "
        f"{count['regression']} regression(s), {count['improvement']} improvement(s), "
        f"{count['steady']} steady, {count['short']} with too little history "
        f"(fewer than {MIN_RUNS} runs).",
    ]
    return "\n".join(lines) + "\n"
