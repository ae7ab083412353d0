"""The report's Trends view: each cell's J/unit over runs, per machine (greenbench.history).

One panel per workload x phase (its unit), one line per variant x device x node with the runs'
95% CIs; dashed vertical lines where a node's environment changed (the triangle's hover says
what), the newest run ringed where drift.judge flags it, and the carbon of each run below.
Inputs come from escaped records (report.data.escaped); run.json's values are escaped here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from greenbench.drift import FLOOR_K
from greenbench.history import History
from greenbench.report.data import escape
from greenbench.report.figures import FILTER_KEYS, PALETTE, Missing
from greenbench.stats import phase_order

FLAG_COLORS = {"regression": "#d62728", "improvement": "#2ca02c"}
CHANGE_COLOR = "#7f7f7f"
PANEL_HEIGHT = 300
CARBON_HEIGHT = 240


def _panels(points: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(workload, phase, unit) of every panel: by workload, phases in the kinds' order."""
    firsts = points.drop_duplicates(["workload", "phase", "unit"])
    keys = zip(firsts["workload"], firsts["phase"], firsts["unit"], strict=True)
    return sorted(keys, key=lambda k: (k[0], phase_order(k[1]), k[2]))


def _line_names(points: pd.DataFrame) -> pd.Series:
    """Each point's legend name: its variant, and its device, node and params where those
    tell lines apart."""
    parts = [points["variant"]]
    for key in ("device", "node", "params"):
        if points[key].nunique() > 1:  # node is no escaped label column: escaped here
            parts.append(points[key].map(escape) if key == "node" else points[key].astype(str))
    names = parts[0].astype(str)
    for part in parts[1:]:
        names = names + " · " + part
    return names


def trends_figure(history: History) -> go.Figure | Missing:
    points = history.points
    if history.runs < 2:
        return Missing("the records hold one run: the trends need several")
    points = points.assign(line=_line_names(points))
    colors = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(dict.fromkeys(points["line"]))}
    names = _panels(points)
    titles = [f"{w} · {p}: J per {u}, net of idle" for w, p, u in names]
    rows = len(names) + 1
    heights = [PANEL_HEIGHT] * len(names) + [CARBON_HEIGHT]
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        subplot_titles=[*titles, "carbon per run (gross, measured windows)"],
        row_heights=heights,
        vertical_spacing=min(0.08, 0.3 / rows),
    )
    flagged = history.verdicts[history.verdicts["status"].isin(list(FLAG_COLORS))]
    shown: set[str] = set()
    for row, (workload, phase, unit) in enumerate(names, start=1):
        part = points[
            (points["workload"] == workload) & (points["phase"] == phase) & (points["unit"] == unit)
        ]
        for line, series in part.groupby("line", sort=False):
            fig.add_trace(_line_trace(series, str(line), colors[str(line)], line not in shown),
                          row=row, col=1)  # fmt: skip
            shown.add(str(line))
        for _, verdict in flagged.merge(part[["workload", "phase", "variant", "device", "node",
                                              "params", "run_id", "line"]]).iterrows():  # fmt: skip
            fig.add_trace(_flag_trace(verdict, unit, verdict["status"] not in shown),
                          row=row, col=1)  # fmt: skip
            shown.add(verdict["status"])
        _add_changes(fig, history.changes, part, row, "environment change" not in shown)
        if not history.changes.empty and part["node"].isin(history.changes["node"]).any():
            shown.add("environment change")
        fig.update_yaxes(title_text=f"J / {unit}", tickformat="~s", row=row, col=1)
    _add_carbon(fig, history.carbon, rows)
    fig.update_layout(
        height=sum(heights) + 140,
        legend_title="line",
        hovermode="closest",
    )
    fig.update_xaxes(showticklabels=True)  # every panel dated, not only the bottom one
    fig.update_xaxes(title_text="run start (UTC)", row=rows, col=1)
    return fig


def _customdata(rows: pd.DataFrame, hover: list[str]) -> list[list[str]]:
    """Per point: the page filters' [workload, variant, device], then the hover's text."""
    keys = rows[FILTER_KEYS].astype(str).values.tolist()
    return [[*k, h] for k, h in zip(keys, hover, strict=True)]


def _line_trace(series: pd.DataFrame, name: str, color: str, legend: bool) -> go.Scatter:
    hover = [
        f"run {r['run_id']}<br>n {r['n']} window(s)<br>node {escape(r['node']) or '-'}"
        for _, r in series.iterrows()
    ]
    return go.Scatter(
        x=series["started_at"],
        y=series["j_per_unit"],
        error_y={"type": "data", "array": series["j_per_unit_ci95"].fillna(0), "thickness": 1},
        mode="lines+markers",
        marker={"size": 5, "color": color},
        line={"color": color, "width": 1.5},
        name=name,
        legendgroup=name,
        showlegend=legend,
        customdata=_customdata(series, hover),
        hovertemplate="%{x|%Y-%m-%d %H:%M}<br>%{y:.3s}J ± %{error_y.array:.2s}J<br>"
        f"%{{customdata[3]}}<extra>{name}</extra>",
    )


def _flag_trace(verdict: pd.Series, unit: str, legend: bool) -> go.Scatter:
    status = str(verdict["status"])
    hover = (
        f"<b>{status.upper()}</b> {verdict['change'] * 100:+.1f} % against the median of the "
        f"previous runs ({verdict['baseline']:.3g} J/{unit}); noise floor "
        f"{verdict['floor'] * 100:.1f} %"
    )
    return go.Scatter(
        x=[verdict["started_at"]],
        y=[verdict["j_per_unit"]],
        mode="markers",
        marker={
            "size": 18,
            "symbol": "circle-open",
            "color": FLAG_COLORS[status],
            "line": {"width": 3},
        },  # fmt: skip
        name=f"newest run: {status}",
        legendgroup=status,
        showlegend=legend,
        customdata=_customdata(pd.DataFrame([verdict]), [hover]),
        hovertemplate=f"%{{customdata[3]}}<extra>{verdict['line']}</extra>",
    )


def _add_changes(
    fig: go.Figure, changes: pd.DataFrame, part: pd.DataFrame, row: int, legend: bool
) -> None:
    """Dashed lines at the panel's nodes' environment changes, a triangle on top to hover."""
    mine = changes[changes["node"].isin(set(part["node"]))] if not changes.empty else changes
    if mine.empty:
        return
    axis = "" if row == 1 else str(row)  # one layout update: add_vline is slow per line
    lines = [
        {"type": "line", "xref": f"x{axis}", "yref": f"y{axis} domain", "x0": when, "x1": when,
         "y0": 0, "y1": 1, "line": {"color": CHANGE_COLOR, "dash": "dash", "width": 1}}
        for when in mine["started_at"].unique()
    ]  # fmt: skip
    fig.update_layout(shapes=[*fig.layout.shapes, *lines])
    top = float((part["j_per_unit"] + part["j_per_unit_ci95"].fillna(0)).max())
    hover = [f"{escape(c['node']) or 'node'}: {escape(c['what'])}" for _, c in mine.iterrows()]
    fig.add_trace(
        go.Scatter(
            x=mine["started_at"],
            y=[top] * len(mine),
            mode="markers",
            marker={"symbol": "triangle-down", "size": 11, "color": CHANGE_COLOR},
            name="environment change",
            legendgroup="environment change",
            showlegend=legend,
            text=hover,
            hovertemplate="%{x|%Y-%m-%d}<br>%{text}<extra>environment changed</extra>",
        ),
        row=row,
        col=1,
    )


def _add_carbon(fig: go.Figure, carbon: pd.DataFrame, row: int) -> None:
    several = carbon["node"].nunique() > 1
    for i, (node, part) in enumerate(carbon.groupby("node", sort=True)):
        name = f"carbon · {node}" if several else "carbon per run"
        fig.add_trace(
            go.Bar(
                x=part["started_at"],
                y=part["emissions_g"],
                name=name,
                marker_color=PALETTE[-1 - i % len(PALETTE)],
                text=part["run_id"],
                hovertemplate="%{x|%Y-%m-%d %H:%M}<br>run %{text}<br>%{y:.3s} gCO2e"
                f"<extra>{escape(node) or 'carbon'}</extra>",
                textposition="none",
            ),
            row=row,
            col=1,
        )
    fig.update_yaxes(title_text="gCO2e", tickformat="~s", rangemode="tozero", row=row, col=1)
    if several:
        fig.update_layout(barmode="group")


def trends_explanation(history: History) -> str:
    """What the view shows, and the flag rule in one sentence."""
    counts: dict[str, Any] = history.verdicts["status"].value_counts().to_dict()
    flagged = (
        f" Newest runs flagged: {counts.get('regression', 0)} regression(s), "
        f"{counts.get('improvement', 0)} improvement(s)."
        if history.runs >= 2
        else ""
    )
    return (
        "Net J per unit of each run (error bars: the run's 95% CI), one line per variant, "
        "device and machine. Dashed lines: the machine's environment changed (greenbench, "
        "torch, driver, CUDA, hardware or zone; hover the triangle). A ringed point: the "
        f"newest run moved beyond {history.pct:g} % and {FLOOR_K:g} noise floors from the "
        "median of the runs before it, CIs apart (greenbench history)." + flagged
    )
