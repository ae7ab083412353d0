"""The sweep views: energy per unit against a swept parameter (batch, ...), and against latency.

Both read the cell summary (report.data.cell_summary, with its `sweep` and call latency
columns). Cells greenbench check judges invalid, and cells without the figure a view plots, are
left out of these views and named in the panel, unless `include_invalid` keeps the invalid ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from greenbench.formatting import fmt, fmt_joules
from greenbench.report.data import escape, sweep_text
from greenbench.report.figures import (
    SYMBOLS,
    Missing,
    _cluster_labels,
    _customdata,
    _error_above_zero,
    _note_in_panel,
    variant_color,
)
from greenbench.report.latency import LATENCY_COLUMNS, LatencyTarget
from greenbench.stats import phase_order

LOG_SPAN = 8  # an axis goes log where its values span this many times (batch 1..64)
NAMED = 3  # left-out cells a panel names before it counts the rest
PANEL_COLUMNS = 2

NO_SWEEP = (
    "no swept parameter: every workload x phase x device ran with one set of parameters "
    "(sweep one with --param batch=1,4,16, or batch = [1, 4, 16] in a suite)"
)


@dataclass(frozen=True)
class Panel:
    """One chart of a view: the cells it draws and the cells it leaves out, with why."""

    title: str
    unit: str
    rows: pd.DataFrame
    left_out: list[str]  # "label: why"
    key: str = ""  # the swept parameter (sweep view)


def _drawable(
    part: pd.DataFrame, figure: str, needed: list[str], include_invalid: bool
) -> tuple[pd.DataFrame, list[str]]:
    """The rows with every `needed` column finite (and valid, unless `include_invalid`), and
    the others named with the reason."""
    left_out: list[str] = []
    keep = pd.Series(True, index=part.index)
    if not include_invalid and "cell_valid" in part:
        invalid = ~part["cell_valid"].astype(bool)
        left_out += [f"{label}: invalid (greenbench check)" for label in part["label"][invalid]]
        keep &= ~invalid
    known = pd.Series(True, index=part.index)
    for column in needed:
        known &= pd.to_numeric(part[column], errors="coerce").map(_finite)
    left_out += [f"{label}: no {figure}" for label in part["label"][keep & ~known]]
    return part[keep & known], left_out


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _groups(summary: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(workload, phase, rows) in the summary's order, phases in catalogue order."""
    keyed = summary.drop_duplicates(["workload", "phase"])
    order = sorted(
        zip(keyed["workload"], keyed["phase"], strict=True),
        key=lambda wp: (list(keyed["workload"]).index(wp[0]), phase_order(wp[1])),
    )
    for workload, phase in order:
        rows = summary[(summary["workload"] == workload) & (summary["phase"] == phase)]
        yield workload, phase, rows


def sweep_panels(summary: pd.DataFrame, include_invalid: bool = False) -> list[Panel]:
    """A panel per workload x phase x swept parameter, with the cells that sweep it."""
    if summary.empty or "sweep" not in summary:
        return []
    panels = []
    for workload, phase, rows in _groups(summary):
        keys = sorted({k for values in rows["sweep"] for k in values})
        for key in keys:
            part = rows[rows["sweep"].map(lambda values, k=key: k in values)]
            drawn, left_out = _drawable(part, "net figure", ["j_per_unit"], include_invalid)
            unit = str(part["unit"].iloc[0])
            title = f"{workload} {phase}: J per {unit} by {escape(key)}"
            panels.append(Panel(title, unit, drawn, left_out, key))
    return panels


def latency_panels(
    summary: pd.DataFrame, metric: str = "p90", include_invalid: bool = False
) -> list[Panel]:
    """A panel per workload x phase with the cells that have a net figure and a latency."""
    if summary.empty:
        return []
    column = LATENCY_COLUMNS[metric]
    if column not in summary:
        summary = summary.assign(**{column: math.nan})
    panels = []
    for workload, phase, rows in _groups(summary):
        drawn, left_out = _drawable(
            rows, f"net figure or {metric} latency", ["j_per_unit", column], include_invalid
        )
        unit = str(rows["unit"].iloc[0])
        panels.append(Panel(f"{workload} {phase}: J per {unit}", unit, drawn, left_out))
    return panels


def latency_front(points: pd.DataFrame, column: str = "call_p90_s") -> pd.DataFrame:
    """The points no other beats: each has less energy per unit than every point at the same or
    a lower latency. In order of latency, so a step line through them is the lowest energy
    reachable within a latency."""
    ordered = points.sort_values([column, "j_per_unit"], kind="stable")
    keep, lowest = [], math.inf
    for i, energy in ordered["j_per_unit"].items():
        if energy < lowest:
            keep.append(i)
            lowest = energy
    return ordered.loc[keep]


def _grid(panels: list[Panel], columns: int = PANEL_COLUMNS) -> go.Figure:
    columns = min(columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    return make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[p.title for p in panels],
        horizontal_spacing=0.1,
        vertical_spacing=min(0.3 / rows, 0.12) if rows > 1 else 0.1,
    )


def _place(index: int, columns: int = PANEL_COLUMNS) -> tuple[int, int]:
    return index // columns + 1, index % columns + 1


def _left_out_note(left_out: list[str]) -> str:
    if not left_out:
        return ""
    named = "; ".join(left_out[:NAMED])
    more = f"; and {len(left_out) - NAMED} more" if len(left_out) > NAMED else ""
    return f"left out: {named}{more}"


def _numbers(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _spans(values: list[float]) -> bool:
    """Whether positive values span LOG_SPAN times or more: a log axis reads them better."""
    known = [v for v in values if _finite(v)]
    return bool(known) and min(known) > 0 and max(known) / min(known) >= LOG_SPAN


def _hover_data(rows: pd.DataFrame, metric: str = "p90") -> list[list[str]]:
    """Per point: the filters' keys and validity, then [label, CI, latency, throughput]."""
    column = LATENCY_COLUMNS[metric]
    latency = rows[column].tolist() if column in rows else [math.nan] * len(rows)
    figures = zip(
        _customdata(rows),
        rows["label"].tolist(),
        rows["j_per_unit"].tolist(),
        rows["j_per_unit_ci95"].tolist(),
        latency,
        rows["throughput"].tolist(),
        rows["unit"].tolist(),
        strict=True,
    )
    return [
        [*keys, str(label), fmt_joules(j, ci), f"{fmt(s * 1e3)} ms", f"{fmt(speed)} {unit}s/s"]
        for keys, label, j, ci, s, speed, unit in figures
    ]


HOVER = (
    "%{customdata[4]}<br>%{customdata[5]} per unit<br>{metric} latency %{customdata[6]}"
    "<br>%{customdata[7]}%{customdata[3]}<extra>%{fullData.name}</extra>"
)


def _line_name(row: pd.Series, key: str, devices: int) -> str:
    """A sweep line: the variant, the device where there are several, the other swept values."""
    others = {k: v for k, v in row["sweep"].items() if k != key}
    parts = [str(row["variant"]), *([str(row["device"])] if devices > 1 else [])]
    return " · ".join([*parts, *([sweep_text(others)] if others else [])])


def sweep_view(summary: pd.DataFrame, include_invalid: bool = False) -> go.Figure | Missing:
    """Net J per unit against each swept parameter, a line per variant, CI95 error bars."""
    panels = sweep_panels(summary, include_invalid)
    if not panels:
        return Missing(NO_SWEEP if not summary.empty else "no successful measurements")
    if all(p.rows.empty for p in panels):
        return Missing("every cell of the sweeps is left out: " + _left_out_note(
            [n for p in panels for n in p.left_out]).removeprefix("left out: "))  # fmt: skip
    fig = _grid(panels)
    devices = summary["device"].nunique()
    shown: set[str] = set()
    for index, panel in enumerate(panels):
        row, col = _place(index)
        _note_in_panel(fig, _left_out_note(panel.left_out), row, col)
        if panel.rows.empty:
            continue
        rows = panel.rows.assign(x=panel.rows["sweep"].map(lambda v, k=panel.key: v[k]))
        values = list(rows["x"])
        numeric = _numbers(values)
        if numeric:
            rows = rows.sort_values("x", kind="stable")
        names = rows.apply(lambda r, k=panel.key: _line_name(r, k, devices), axis=1)
        for name, line in rows.groupby(names, sort=False):
            variant = str(line["variant"].iloc[0])
            fig.add_trace(
                go.Scatter(
                    x=line["x"] if numeric else line["x"].map(escape),
                    y=line["j_per_unit"],
                    error_y=_error_above_zero(line["j_per_unit"], line["j_per_unit_ci95"]),
                    mode="lines+markers",
                    marker={"size": 9, "color": variant_color(variant)},
                    line={"color": variant_color(variant)},
                    name=str(name),
                    legendgroup=str(name),
                    showlegend=name not in shown,
                    customdata=_hover_data(line),
                    hovertemplate=HOVER.replace("{metric}", "p90"),
                ),
                row=row,
                col=col,
            )
            shown.add(str(name))
        _sweep_axes(fig, panel, values if numeric else None, row, col)
    height = 380 * math.ceil(len(panels) / PANEL_COLUMNS) + 80
    fig.update_layout(height=height, legend_title="variant", hovermode="closest")
    return fig


def _sweep_axes(
    fig: go.Figure, panel: Panel, numbers: list[Any] | None, row: int, col: int
) -> None:
    """x: the parameter's values as ticks (log where they span 8x or more); y: from zero."""
    x: dict[str, Any] = {"title_text": escape(panel.key)}
    if numbers is None:
        x["type"] = "category"
    else:
        ticks = sorted(set(numbers))
        x["type"] = "log" if _spans(ticks) else "linear"
        if len(ticks) <= 12:
            x.update(tickmode="array", tickvals=ticks, ticktext=[fmt(t) for t in ticks])
    fig.update_xaxes(**x, row=row, col=col)
    below_zero = bool((panel.rows["j_per_unit"] < 0).any())
    fig.update_yaxes(
        title_text=f"J / {panel.unit}",
        tickformat="~s",
        rangemode="normal" if below_zero else "tozero",
        row=row,
        col=col,
    )


def latency_frontier(
    summary: pd.DataFrame,
    include_invalid: bool = False,
    target: LatencyTarget | None = None,
) -> go.Figure | Missing:
    """J per unit against call latency (the target's percentile, else p90), one point per cell,
    the lowest energy for a latency as a step line; the target, where given, as a line."""
    metric = target.name if target is not None else "p90"
    column = LATENCY_COLUMNS[metric]
    panels = latency_panels(summary, metric, include_invalid)
    if not panels:
        return Missing("no successful measurements")
    if all(p.rows.empty for p in panels):
        return Missing(
            f"no cell has both a net figure and a valid {metric} latency (records from before "
            "latencies were kept have none)"
        )
    fig = _grid(panels, columns=1)  # the full width: room for the points' labels
    devices = sorted(summary["device"].unique())
    shown: set[str] = set()
    for index, panel in enumerate(panels):
        row, col = _place(index, columns=1)
        points = panel.rows.assign(ms=pd.to_numeric(panel.rows[column]) * 1e3)
        log_x = _spans(list(points["ms"]))
        labels = _point_labels(points, len(devices))
        spread_x = points["ms"].map(math.log10) if log_x else points["ms"]
        drawn = _cluster_labels(spread_x, points["j_per_unit"], labels) if len(points) else {}
        for (variant, device), group in points.groupby(["variant", "device"], sort=False):
            name = variant if len(devices) == 1 else f"{variant} · {device}"
            fig.add_trace(
                go.Scatter(
                    x=group["ms"],
                    y=group["j_per_unit"],
                    error_y=_error_above_zero(group["j_per_unit"], group["j_per_unit_ci95"]),
                    mode="markers+text",
                    marker={
                        "size": 11,
                        "color": variant_color(str(variant)),
                        "symbol": SYMBOLS[devices.index(device) % len(SYMBOLS)],
                    },
                    text=[drawn.get(i, "") for i in group.index],
                    textposition=_label_sides(spread_x, group.index, not log_x),
                    textfont={"size": 11},
                    name=str(name),
                    legendgroup=str(name),
                    showlegend=name not in shown,
                    customdata=_hover_data(group, metric),
                    hovertemplate=HOVER.replace("{metric}", metric),
                ),
                row=row,
                col=col,
            )
            shown.add(str(name))
        _draw_front(fig, points, column, row, col, "frontier" not in shown)
        shown.add("frontier")
        if target is not None:
            _draw_target(fig, target, row, col, log_x)
        x_axis: dict[str, Any] = {"type": "log"} if log_x else {"rangemode": "tozero"}
        if log_x:
            target_ms = [target.limit_s * 1e3] if target is not None else []
            ticks = _log_ticks([*points["ms"], *target_ms])
            x_axis.update(tickmode="array", tickvals=ticks, ticktext=[fmt(t) for t in ticks])
        fig.update_xaxes(title_text=f"{metric} latency (ms)", **x_axis, row=row, col=col)
        fig.update_yaxes(title_text=f"J / {panel.unit}", tickformat="~s", row=row, col=col)
        note = "one cell: nothing to trade off" if len(points) == 1 else ""
        note = "; ".join(n for n in (note, _left_out_note(panel.left_out)) if n)
        _note_in_panel(fig, note, row, col)
    height = 440 * len(panels) + 80
    fig.update_layout(height=height, legend_title="variant", hovermode="closest")
    return fig


def _label_sides(x: pd.Series, index: pd.Index, from_zero: bool) -> list[str]:
    """Labels to the right of a point, but to the left in the right fifth of the panel, where
    they would run past its edge (the panel starts at zero where `from_zero`)."""
    low, high = (min(0.0, float(x.min())) if from_zero else float(x.min())), float(x.max())
    cut = low + 0.8 * (high - low)
    return ["top left" if high > low and x[i] >= cut else "top right" for i in index]


def _log_ticks(values: list[float]) -> list[float]:
    """1-2-5 ticks across the values: a log axis' own minor ticks crowd into each other."""
    low, high = min(values), max(values)
    ticks = [
        m * 10.0**e
        for e in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
        for m in (1, 2, 5)
    ]
    return [t for t in ticks if low / 1.5 <= t <= high * 1.5]


def _point_labels(points: pd.DataFrame, devices: int) -> pd.Series:
    """A point's label: its variant (and device, where there are several) and swept values."""
    labels = [
        " ".join([str(variant), *([str(device)] if devices > 1 else []), sweep_text(sweep)]).strip()
        for variant, device, sweep in zip(
            points["variant"].tolist(), points["device"].tolist(), points["sweep"], strict=True
        )
    ]
    return pd.Series(labels, index=points.index, dtype=object)


def _draw_front(
    fig: go.Figure, points: pd.DataFrame, column: str, row: int, col: int, legend: bool
) -> None:
    front = latency_front(points, column)
    if front.empty:
        return
    fig.add_trace(
        go.Scatter(
            x=front["ms"],
            y=front["j_per_unit"],
            mode="lines+markers",
            line={"shape": "hv", "dash": "dot", "color": "#555"},
            marker={"symbol": "circle-open", "size": 17, "color": "#555"},
            name="lowest energy within a latency (Pareto frontier)",
            legendgroup="frontier",
            legendrank=2000,  # after the variants, whichever panel shows them first
            showlegend=legend,
            customdata=_customdata(front),
            hoverinfo="skip",
        ),
        row=row,
        col=col,
    )


def _draw_target(fig: go.Figure, target: LatencyTarget, row: int, col: int, log_x: bool) -> None:
    """The target as a vertical dashed line across the panel, named at its top. On a log axis
    a shape's place is its value but an annotation's is the log of it."""
    ms = target.limit_s * 1e3
    fig.add_vline(x=ms, line={"color": "#d62728", "dash": "dash", "width": 1.5}, row=row, col=col)
    axis = fig.get_subplot(row, col)
    fig.add_annotation(
        text=f"target {target}",
        x=math.log10(ms) if log_x else ms,
        xref=axis.xaxis.plotly_name.replace("axis", ""),
        yref=f"{axis.yaxis.plotly_name.replace('axis', '')} domain",
        y=1.0,
        xanchor="right",
        yanchor="top",
        showarrow=False,
        font={"color": "#d62728", "size": 11},
    )
