"""One function per view of the report, each from a pandas frame to a Plotly figure.

A view with nothing to show returns Missing with the reason, which the page prints instead of a
chart. Every point carries customdata [workload, variant, device], which the page's filters use.
Inputs are escaped frames (report.data.escaped): labels here are already safe to render.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from greenbench.energy.methods import METHODS, is_estimate
from greenbench.report.data import panels, pareto_front
from greenbench.stats import PHASE_ORDER
from greenbench.variants import BASES, variant_order

FILTER_KEYS = ["workload", "variant", "device"]
# phase shading, in the kinds' phase order (prefill, decode, forward, train, ...)
PHASE_PALETTE = ("#a6cee3", "#b2df8a", "#fdbf6f", "#cab2d6", "#fb9a99", "#ffff99", "#b15928")
PHASE_COLORS = dict(zip(PHASE_ORDER, itertools.cycle(PHASE_PALETTE), strict=False))
COMPONENT_COLORS = {"total": "#222222", "cpu": "#1f77b4", "gpu": "#2ca02c", "ram": "#ff7f0e"}


@dataclass(frozen=True)
class Missing:
    """A view that cannot be drawn from these records, and why."""

    reason: str


INVALID_OPACITY = 0.3
INVALID_LINE = "#d62728"
INVALID_NOTE = "INVALID (greenbench check):"


def _customdata(part: pd.DataFrame) -> list[list[str]]:
    """Per point: the filters' [workload, variant, device], then its validity reasons (markup,
    "" when valid) for the hover; the filter script reads the first three."""
    keys = zip(*(_as_text(part[k]) for k in FILTER_KEYS), strict=True)
    reasons = part["validity"].tolist() if "validity" in part else [""] * len(part)
    return [[*k, _invalid_hover(r)] for k, r in zip(keys, reasons, strict=True)]


def _as_text(column: pd.Series) -> list[Any]:
    """column.astype(str) as a list (missing values stay NaN), at once where it is text."""
    return (column if column.dtype == "str" else column.astype(str)).tolist()


def _invalid_hover(validity: object) -> str:
    return f"<br>{INVALID_NOTE}<br>{validity}" if isinstance(validity, str) and validity else ""


def split_valid(rows: pd.DataFrame) -> list[tuple[bool, pd.DataFrame]]:
    """(valid, rows) for the valid and the invalid rows that are there; rows without a
    verdict count as valid."""
    valid = rows["cell_valid"].astype(bool) if "cell_valid" in rows else pd.Series(True, rows.index)
    return [(flag, rows[valid == flag]) for flag in (True, False) if (valid == flag).any()]


def _series_name(variant: str, device: str, devices: int) -> str:
    return variant if devices == 1 else f"{variant} · {device}"


@dataclass(frozen=True)
class Series:
    """One variant x device of a panel: its rows, legend name and marker index."""

    variant: str
    device_index: int
    rows: pd.DataFrame
    name: str
    first: bool  # the first panel showing it: it gets the legend entry

    def trace_keys(self, rows: pd.DataFrame | None = None, valid: bool = True) -> dict[str, Any]:
        """What every trace of a series carries: its legend entry and the filters' data.

        A series' invalid cells are a trace of their own (`rows`, `valid` False) under the
        same legend entry, drawn faded with a red outline."""
        rows = self.rows if rows is None else rows
        return {
            "name": self.name if valid else f"{self.name} (INVALID)",
            "legendgroup": self.name,
            "showlegend": self.first and valid,
            "customdata": _customdata(rows),
        }


def _panels(
    summary: pd.DataFrame, names: list[str]
) -> Iterator[tuple[int, pd.DataFrame, list[Series]]]:
    """(1-based position, rows, series) of each panel; a series' legend entry appears once."""
    shown: set[str] = set()
    for position, panel in enumerate(names, start=1):
        part = summary[summary["panel"] == panel]
        yield position, part, list(_series(part, summary, shown))


def _series(part: pd.DataFrame, summary: pd.DataFrame, shown: set[str]) -> Iterator[Series]:
    """The panel's series; `shown` carries legend entries across panels."""
    devices, device_index = summary["device"].nunique(), _device_index(summary)
    for (variant, device), rows in part.groupby(["variant", "device"], sort=False):
        name = _series_name(variant, device, devices)
        yield Series(variant, device_index[device], rows, name, name not in shown)
        shown.add(name)


PALETTE = qualitative.Plotly + qualitative.D3
PATTERNS = ["", "/", ".", "x", "\\", "+"]
SYMBOLS = ["circle", "diamond", "square", "triangle-up", "cross", "star"]


def variant_color(variant: str) -> str:
    """The same colour for a variant in every figure: by its place in the catalogue."""
    base, compiled, _ = variant_order(variant)
    return PALETTE[(base + (len(BASES) if compiled else 0)) % len(PALETTE)]


def _device_index(summary: pd.DataFrame) -> dict[str, int]:
    return {d: i for i, d in enumerate(sorted(summary["device"].unique()))}


def _log_axis(values: pd.Series) -> bool:
    """Log scale only where values span more than 100x (bars on log axes mislead otherwise,
    and a short log span crowds the axis with overlapping minor ticks), and never when a value
    is zero or below: a log axis would drop it without a word."""
    known = values.dropna()
    if known.empty or (known <= 0).any():
        return False
    return bool(known.max() / known.min() > 100)


def energy_per_unit(summary: pd.DataFrame) -> go.Figure | Missing:
    """Net J per unit by workload, one panel per phase, bars per variant, CI95 error bars."""
    if summary.empty:
        return Missing("no successful measurements in these records")
    names = panels(summary)
    titles = [f"{p}, net of idle" for p in names]
    fig = make_subplots(rows=len(names), cols=1, subplot_titles=titles, vertical_spacing=0.12)
    for row, part, panel_series in _panels(summary, names):
        for series in panel_series:
            for valid, rows in split_valid(series.rows):
                fig.add_trace(
                    go.Bar(
                        x=rows["case"] if "case" in rows else rows["workload"],  # + swept values
                        y=rows["j_per_unit"],
                        error_y=_error_above_zero(rows["j_per_unit"], rows["j_per_unit_ci95"]),
                        marker_color=variant_color(series.variant),
                        marker_pattern_shape=PATTERNS[series.device_index % len(PATTERNS)],
                        marker_opacity=1.0 if valid else INVALID_OPACITY,
                        marker_line={"color": INVALID_LINE, "width": 0 if valid else 2},
                        offsetgroup=series.name,  # an invalid bar stands where its series' would
                        hovertext=[_below_zero_hover(v) for v in rows["j_per_unit"]],
                        hovertemplate="%{x}<br>%{y:.3s}J per unit ± %{error_y.array:.2s}J"
                        f"%{{hovertext}}%{{customdata[3]}}<extra>{series.name}</extra>",
                        **series.trace_keys(rows, valid),
                    ),
                    row=row,
                    col=1,
                )
        scale = "log" if _log_axis(part["j_per_unit"]) else "linear"
        fig.update_yaxes(title_text="J / unit", type=scale, tickformat="~s", row=row, col=1)
        _note_in_panel(fig, _unshown_note(part), row, 1)
    fig.update_layout(barmode="group", height=320 * len(names) + 80, legend_title="variant")
    return fig


BELOW_ZERO = "below zero net of idle: the windows drew less power than the idle baseline"


def _error_above_zero(values: pd.Series, ci95: pd.Series) -> dict[str, Any]:
    """Error bars of a quantity that cannot be negative: the lower arm stops at zero (a net
    figure below zero keeps its full arms: it is shown, and said to be, below zero)."""
    ci = ci95.fillna(0)
    below = [min(c, v) if v > 0 else c for v, c in zip(values.fillna(0), ci, strict=True)]
    return {"type": "data", "symmetric": False, "array": ci, "arrayminus": below}


def _below_zero_hover(value: float) -> str:
    return f"<br><b>{BELOW_ZERO}</b>" if pd.notna(value) and value <= 0 else ""


def _unshown_note(part: pd.DataFrame) -> str:
    """What a panel's reader must be told: cells with no figure, cells below zero."""
    notes = []
    missing = part[part["j_per_unit"].isna()]
    if not missing.empty:
        notes.append(f"no net figure for {', '.join(missing['label'])}")
    below = part[part["j_per_unit"] <= 0]
    if not below.empty:
        notes.append(f"{', '.join(below['label'])}: {BELOW_ZERO}")
    return "; ".join(notes)


def _note_in_panel(fig: go.Figure, text: str, row: int, col: int) -> None:
    """A line of text at the top of one subplot (nothing when `text` is empty)."""
    if not text:
        return
    axis = fig.get_subplot(row, col)
    x_ref = axis.xaxis.plotly_name.replace("axis", "")
    y_ref = axis.yaxis.plotly_name.replace("axis", "")
    fig.add_annotation(
        text=text,
        xref=f"{x_ref} domain",
        yref=f"{y_ref} domain",
        x=0.5,
        y=0.98,
        showarrow=False,
        font={"color": "#a15c00", "size": 12},
        bgcolor="rgba(255,255,255,0.8)",
    )


def efficiency_frontier(
    summary: pd.DataFrame, include_invalid: bool = False
) -> go.Figure | Missing:
    """Throughput against J per unit, one point per cell, each workload's Pareto frontier.

    Invalid cells are drawn faded with a red outline and, unless `include_invalid`, left out of
    the frontier."""
    if summary.empty:
        return Missing("no successful measurements in these records")
    names = panels(summary)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.06)
    shown: set[str] = set()  # the frontier's legend entry, once
    for col, part, panel_series in _panels(summary, names):
        unit = part["unit"].iloc[0]
        for series in panel_series:
            for valid, group in split_valid(series.rows):
                fig.add_trace(
                    go.Scatter(
                        x=group["throughput"],
                        y=group["j_per_unit"],
                        mode="markers",
                        marker={
                            "size": 11,
                            "color": variant_color(series.variant),
                            "symbol": SYMBOLS[series.device_index % len(SYMBOLS)],
                            "opacity": 1.0 if valid else INVALID_OPACITY,
                            "line": {"color": INVALID_LINE, "width": 0 if valid else 2},
                        },
                        text=group["label"],
                        hovertemplate="%{text}<br>%{x:.3s} "
                        + unit
                        + "s/s<br>%{y:.3s}J per "
                        + unit
                        + "%{customdata[3]}<extra></extra>",
                        **series.trace_keys(group, valid),
                    ),
                    row=1,
                    col=col,
                )
        ranked = part if include_invalid else _valid_rows(part)
        for _, same_workload in ranked.groupby("workload", sort=False):
            # a frontier per workload: across workloads the smallest model would beat all
            front = pareto_front(same_workload)
            fig.add_trace(
                go.Scatter(
                    x=front["throughput"],
                    y=front["j_per_unit"],
                    mode="lines+markers",  # a ring marks a lone frontier cell too
                    line={"dash": "dot", "color": "#555"},
                    marker={"symbol": "circle-open", "size": 17, "color": "#555"},
                    name="Pareto frontier (per workload)",
                    legendgroup="frontier",
                    showlegend=col == 1 and "frontier" not in shown,
                    customdata=_customdata(front),
                    hoverinfo="skip",
                ),
                row=1,
                col=col,
            )
            shown.add("frontier")
        x_scale = "log" if _log_axis(part["throughput"]) else "linear"
        y_scale = "log" if _log_axis(part["j_per_unit"]) else "linear"
        fig.update_xaxes(title_text=f"{unit}s / s", type=x_scale, tickformat="~s", row=1, col=col)
        fig.update_yaxes(title_text=f"J / {unit}", type=y_scale, tickformat="~s", row=1, col=col)
        _note_in_panel(fig, _frontier_note(part), 1, col)
    fig.update_layout(height=460, legend_title="variant")
    return fig


def _frontier_note(part: pd.DataFrame) -> str:
    """Why a panel has no trade-off to read: a lone cell, or cells without a figure."""
    notes = []
    if len(part) == 1:
        notes.append("one cell: nothing to trade off")
    unshown = _unshown_note(part)
    return "; ".join([*notes, unshown] if unshown else notes)


def _valid_rows(part: pd.DataFrame) -> pd.DataFrame:
    return part[part["cell_valid"].astype(bool)] if "cell_valid" in part else part


def quantization_tradeoff(tradeoffs: pd.DataFrame) -> go.Figure | Missing:
    """Energy saved against fp32 (with its CI), per variant, against the task quality change
    where the records have quality (real labelled inputs), else against top-1 agreement."""
    if tradeoffs.empty:
        return Missing(
            "no variant with a fidelity score and an fp32 baseline in the same records: run "
            "fp32 beside bf16, int8-dynamic, ... on an inference workload"
        )
    changes = tradeoffs.get("quality_change", pd.Series(math.nan, tradeoffs.index))
    with_quality = tradeoffs[changes.notna()]  # only the rows with quality, when some have it
    if with_quality.empty:
        x, part = tradeoffs["fidelity_top1"] * 100, tradeoffs
        x_title, x_hover = "top-1 agreement with fp32 (%)", "top-1 agreement %{x:.1f}%"
    else:
        x, part = with_quality["quality_change"] * 100, with_quality
        x_title, x_hover = _quality_axis(set(with_quality["quality_metric"])), "%{x:+.2f}"
    y_range, cut = _saving_range(part)
    names = part["workload"] + " " + part["phase"]
    drawn = _cluster_labels(x[part.index], part["saving"] * 100, names)
    fig = go.Figure()
    for variant, by_variant in part.groupby("variant", sort=False):
        for valid, group in split_valid(by_variant):
            fig.add_trace(
                go.Scatter(
                    x=x[group.index],
                    y=group["saving"] * 100,
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": (group["saving_high"] - group["saving"]).fillna(0) * 100,
                        "arrayminus": (group["saving"] - group["saving_low"]).fillna(0) * 100,
                    },
                    mode="markers+text",
                    marker={
                        "size": 12,
                        "color": variant_color(variant),
                        "opacity": 1.0 if valid else INVALID_OPACITY,
                        "line": {"color": INVALID_LINE, "width": 0 if valid else 2},
                    },
                    text=[drawn[i] for i in group.index],
                    textposition="top center",
                    name=variant if valid else f"{variant} (INVALID)",
                    legendgroup=variant,
                    # [workload, variant, device, validity, quantized share note]
                    customdata=[
                        [*keys, _quantized_note(share)]
                        for keys, share in zip(
                            _customdata(group), group["quantized_share"], strict=True
                        )
                    ],
                    hovertext=names[group.index],  # every point's own name, drawn or not
                    hovertemplate=f"%{{hovertext}}<br>{x_hover}<br>energy saved %{{y:.1f}}%"
                    f"%{{customdata[4]}}%{{customdata[3]}}<extra>{variant}</extra>",
                )
            )
    # room either side for the labels beside the outermost points
    x_pad = max(0.15 * float(x[part.index].max() - x[part.index].min()), 1.0)
    x_range = [float(x[part.index].min()) - x_pad, float(x[part.index].max()) + x_pad]
    fig.update_xaxes(title_text=x_title, zeroline=not with_quality.empty, range=x_range)
    fig.update_yaxes(
        title_text="energy per unit saved against fp32 (%)", zeroline=True, range=y_range
    )
    if cut:
        fig.add_annotation(
            text="an interval runs past the axis (its cell is far noisier than the rest): "
            "the hover gives it",
            xref="paper", yref="paper", x=0.5, y=1.06, showarrow=False,
            font={"color": "#a15c00", "size": 12},
        )  # fmt: skip
    fig.update_layout(height=460, legend_title="variant")
    return fig


def _saving_range(part: pd.DataFrame) -> tuple[list[float], bool]:
    """The saving axis (%): every point and its interval, except that an interval reaching
    more than the points' own span beyond them is cut (one noisy cell would otherwise squash
    the rest into a line); whether one was cut. Savings never exceed 100 %."""
    points = part["saving"] * 100
    low = (part["saving_low"] * 100).fillna(points)
    high = (part["saving_high"] * 100).fillna(points)
    reach = max(points.max() - points.min(), 10.0)
    bottom = max(low.min(), points.min() - reach)
    top = min(high.max(), points.max() + reach, 100.0)
    pad = 0.08 * (top - bottom) or 5.0
    cut = bool(low.min() < bottom or high.max() > points.max() + reach)
    return [bottom - pad, top + pad], cut


def _cluster_labels(x: pd.Series, y: pd.Series, labels: pd.Series) -> dict[Any, str]:
    """Per point (by index): the label drawn beside it. Points closer than CLUSTER_GAP (in
    fractions of the axes' spans) share one label, one line per point, on the topmost of them,
    so no two labels are drawn on top of each other; the others draw none (their hover still
    names them).

    Topmost first, a point joins the first-made cluster that holds a point near it. Only points
    in the grid squares around it (CLUSTER_GAP of the spans wide) can be near it: they are the
    only ones looked at."""
    spread_x = float(x.max() - x.min()) or 1.0
    spread_y = float(y.max() - y.min()) or 1.0
    xs = dict(zip(x.index, x.tolist(), strict=True))
    ys = dict(zip(y.index, y.tolist(), strict=True))
    order = sorted(x.index, key=lambda i: (-ys[i], xs[i]))  # topmost first
    low_x, low_y = float(x.min()), float(y.min())

    def near(i: Any, j: Any) -> bool:
        return (
            abs(xs[i] - xs[j]) / spread_x < CLUSTER_GAP
            and abs(ys[i] - ys[j]) / spread_y < CLUSTER_GAP
        )

    clusters: list[list[Any]] = []
    # grid square -> cluster -> its points there. A point off the grid (square None: a value
    # not finite) is held against every point; no point on the grid can be near one off it
    grid: dict[tuple[int, int] | None, dict[int, list[Any]]] = {}
    for i in order:
        square = _grid_square((xs[i] - low_x) / spread_x, (ys[i] - low_y) / spread_y)
        around = _squares_around(square, grid)
        candidates = sorted({c for part in around for c in part})
        joined = next(
            (c for c in candidates if any(near(i, j) for p in around for j in p.get(c, ()))), None
        )
        if joined is None:
            joined = len(clusters)
            clusters.append([])
        clusters[joined].append(i)
        grid.setdefault(square, {}).setdefault(joined, []).append(i)
    drawn = {}
    for cluster in clusters:
        drawn[cluster[0]] = "<br>".join(str(labels[i]) for i in cluster)
        drawn.update({i: "" for i in cluster[1:]})
    return drawn


GRID_REACH = 2  # squares looked at either way: 1 would do but for rounding at a square's edge


def _grid_square(u: float, v: float) -> tuple[int, int] | None:
    """The grid square of a point (u, v) spans from the lowest, None where one is not finite."""
    if not (math.isfinite(u) and math.isfinite(v)):
        return None
    return math.floor(u / CLUSTER_GAP), math.floor(v / CLUSTER_GAP)


def _squares_around(
    square: tuple[int, int] | None, grid: dict[tuple[int, int] | None, dict[int, list[Any]]]
) -> list[dict[int, list[Any]]]:
    """The filled squares whose points may be near a point in `square`."""
    if square is None:
        return list(grid.values())
    x, y = square
    reach = range(-GRID_REACH, GRID_REACH + 1)
    return [grid[s] for dx in reach for dy in reach if (s := (x + dx, y + dy)) in grid]


CLUSTER_GAP = 0.06


# what the quality axis says per metric: perplexity changes as a share, rates in points
QUALITY_AXIS = {
    "perplexity": "perplexity change vs fp32 (%, + is worse)",
    "top1_accuracy": "top-1 accuracy change vs fp32 (points, - is worse)",
    "accuracy": "accuracy change vs fp32 (points, - is worse)",
    "wer": "WER change vs fp32 (points, + is worse)",
}


def _quality_axis(metrics: set[str]) -> str:
    if len(metrics) == 1:
        (metric,) = metrics
        return QUALITY_AXIS.get(metric, f"{metric} change vs fp32")
    return "quality change vs fp32 (perplexity: %, rates: points)"


def _quantized_note(share: float) -> str:
    if pd.isna(share):
        return ""
    return f"<br>Linear weights quantized {100 * share:.1f}%"


def _segments(windows: pd.DataFrame, values: pd.Series) -> tuple[list, list, list]:
    """Step segments, one per window: x = [start, end, gap], y = [v, v, gap]."""
    starts = windows["start"].tolist()
    ends = [
        start + pd.to_timedelta(duration, unit="s")
        for start, duration in zip(starts, windows["duration_s"].tolist(), strict=True)
    ]
    keys = windows[FILTER_KEYS].to_numpy(dtype=object).tolist()
    xs: list = []
    ys: list = []
    custom: list = []
    for start, end, value, key in zip(starts, ends, values.tolist(), keys, strict=True):
        xs += [start, end, None]
        ys += [value, value, None]
        custom += [key] * 3
    return xs, ys, custom


def _gpu_samples(windows: pd.DataFrame) -> go.Scatter | None:
    """The GPU power samples (10 Hz, from NVML) of every window, as one line with gaps."""
    if "gpu_trace" not in windows or windows["gpu_trace"].isna().all():
        return None
    xs: list = []
    ys: list = []
    custom: list = []
    for _, w in windows[windows["gpu_trace"].notna()].iterrows():
        for offset, _gpu, power, *_rest in json.loads(w["gpu_trace"]):
            xs.append(w["start"] + pd.to_timedelta(offset, unit="s"))
            ys.append(power)
            custom.append([w[k] for k in FILTER_KEYS])
        xs.append(None)
        ys.append(None)
        custom.append([w[k] for k in FILTER_KEYS])
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        name="GPU power (NVML samples)",
        line={"color": COMPONENT_COLORS["gpu"], "width": 1},
        customdata=custom,
        hovertemplate="%{y:.3s}W<extra>GPU sample</extra>",
    )


def _modelled_components(windows: pd.DataFrame, components: list[str]) -> dict[str, str]:
    """component -> how its power was modelled, for components whose method (method_cpu,
    method_ram, ...) is an estimate in any of these windows."""
    modelled = {}
    for component in components:
        column = f"method_{component}"
        methods = windows[column].dropna().unique() if column in windows else []
        estimates = [str(m) for m in methods if is_estimate(str(m))]
        if estimates:
            modelled[component] = "; ".join(
                METHODS.get(m, m).removeprefix("estimate: ") for m in estimates
            )
    return modelled


def latest_windows(frame: pd.DataFrame) -> tuple[str, pd.DataFrame] | None:
    """The latest run (by window start) and its measured windows; None without any."""
    measured = (frame["status"] == "ok") & frame["window_start"].notna()
    if not measured.any():
        return None
    starts = frame.loc[measured, "window_start"]
    # ISO times: the greatest is the latest (a tie between runs goes to the later record)
    latest = (starts == starts.max()).to_numpy()
    run = frame.loc[measured, "run_id"][latest].iloc[-1]
    return run, frame[measured & (frame["run_id"] == run)]


def power_over_time(frame: pd.DataFrame) -> go.Figure | Missing:
    """Mean power of every window of the latest run, per component, phases shaded, idle drawn."""
    latest = latest_windows(frame)
    if latest is None:
        return Missing("no measured windows with start times (records from before window_start)")
    run, windows = latest
    windows = windows.copy()
    windows["start"] = pd.to_datetime(windows["window_start"], utc=True, format="ISO8601")
    windows = windows.sort_values("start")
    fig = go.Figure()
    power = {"total": windows["power_w"]}
    for component in ("cpu", "gpu", "ram"):
        component_power = windows[f"energy_{component}_j"] / windows["duration_s"]
        if (component_power.fillna(0) > 0).any():
            power[component] = component_power
    modelled = _modelled_components(windows, [c for c in power if c != "total"])
    for name, values in power.items():
        xs, ys, custom = _segments(windows, values)
        label = f"{name} power (window mean)"
        if name in modelled:
            label = f"{name} power: modelled, not read ({modelled[name]})"
        elif name == "total" and modelled:
            label = f"total power (window mean; includes modelled {', '.join(modelled)})"
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name=label,
                line={
                    "color": COMPONENT_COLORS[name],
                    "width": 3 if name == "total" else 2,
                    "dash": "dash" if name in modelled else "solid",
                },
                customdata=custom,
                hovertemplate="%{y:.3s}W<extra>" + label + "</extra>",
            )
        )
    sampled = _gpu_samples(windows)
    if sampled is not None:
        fig.add_trace(sampled)
    xs, ys, custom = _segments(windows, windows["idle_power_w"])
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            name="idle baseline (total)",
            line={"dash": "dot", "color": "#888"},  # dashes mark modelled components
            customdata=custom,
            hovertemplate="idle %{y:.3s}W<extra></extra>",
        )
    )
    ends = windows["start"] + pd.to_timedelta(windows["duration_s"], unit="s")
    bands = [  # all at once: add_vrect per window is quadratic in the number of windows
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": start,
            "x1": end,
            "y0": 0,
            "y1": 1,
            "fillcolor": PHASE_COLORS.get(phase, "#dddddd"),
            "opacity": 0.25,
            "line": {"width": 0},
            "layer": "below",
        }
        for start, end, phase in zip(windows["start"], ends, windows["phase"], strict=True)
    ]
    fig.update_layout(shapes=bands)
    for phase, color in PHASE_COLORS.items():
        if phase in set(windows["phase"]):
            fig.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="markers",
                    marker={"size": 12, "symbol": "square", "color": color},
                    name=f"phase: {phase}",
                )
            )
    fig.update_layout(
        title=f"run {run}: mean power of each measured window (gaps: model build, idle, warmup)",
        height=420,
        yaxis_title="W",
        xaxis_title="time (UTC)",
    )
    return fig


# past this many runs the Carbon view draws a bar per UTC day (its runs summed), not per run:
# a year of ten machines' nights is 3,650 bars, each under a pixel wide (and 2 s to draw)
DAILY_RUNS = 60
DAY_MS = 86_400_000


def carbon_over_time(frame: pd.DataFrame) -> go.Figure | Missing:
    """Emissions of each run (gross), with the grid intensity the run was charged at; past
    DAILY_RUNS runs, of each UTC day's runs."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return Missing("no successful measurements in these records")
    ok = ok.assign(
        start=pd.to_datetime(
            ok["window_start"].fillna(ok["recorded_at"]), utc=True, format="ISO8601"
        )
    )
    runs = (
        ok.groupby("run_id")
        .agg(
            start=("start", "min"),
            emissions_g=("emissions_g", "sum"),
            energy_j=("energy_j", "sum"),
            intensity=("carbon_intensity_g_per_kwh", "mean"),
            source=("carbon_source", "first"),
            zone=("zone", "first"),
        )
        .sort_values("start")
        .reset_index()
    )
    embodied = _embodied_by_run(ok)
    runs["embodied_g"] = runs["run_id"].map(embodied)
    runs["embodied_source"] = runs["run_id"].map(_first_by_run(ok, "embodied_source"))
    daily = len(runs) > DAILY_RUNS
    if daily:
        runs = _by_day(runs)
        when: Any = runs["start"]
    else:  # one category per run, in time order: a date axis makes a lone run's bar span it
        runs["what"] = "run " + runs["run_id"].astype(str)
        when = runs["start"].dt.strftime("%Y-%m-%d %H:%M") + "<br>" + runs["run_id"].str[-4:]
    # a day's bar 0.8 of the day (in ms on the date axis); a lone run's bar not the whole chart
    width = 0.8 * DAY_MS if daily else (0.4 if len(runs) < 3 else None)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=when,
            y=runs["emissions_g"],
            name="emissions of the measured windows (gCO2e)",
            customdata=runs[["what", "zone", "source"]].astype(str).values.tolist(),
            hovertemplate="%{customdata[0]}<br>%{y:.3s} gCO2e<br>zone %{customdata[1]}"
            "<br>%{customdata[2]}<extra></extra>",
            width=width,
            marker_color="#9ecae1",
        ),
        secondary_y=False,
    )
    has_embodied = bool(runs["embodied_g"].notna().any())
    if has_embodied:
        fig.add_trace(
            go.Bar(
                x=when,
                y=runs["embodied_g"],
                name="embodied share of the hardware (gCO2e, estimate: Boavizta)",
                customdata=runs[["what", "embodied_source"]].astype(str).values.tolist(),
                hovertemplate="%{customdata[0]}<br>%{y:.3s} gCO2e embodied (estimate)"
                "<br>%{customdata[1]}<extra></extra>",
                width=width,
                marker_color="#fdae6b",
            ),
            secondary_y=False,
        )
        fig.update_layout(barmode="stack")
    fig.add_trace(
        go.Scatter(
            x=when,
            y=runs["intensity"],
            mode="lines+markers+text" if len(runs) < 10 else "lines+markers",
            marker={"size": 5, "color": "#d62728"}
            if daily
            else {"size": 12, "color": "#d62728", "line": {"color": "#fff", "width": 1.5}},
            line={"color": "#d62728"},
            text=[f"{v:.0f} g/kWh" if pd.notna(v) else "" for v in runs["intensity"]],
            textposition="top center",
            name="grid intensity (gCO2e/kWh)" + (", the day's runs' mean" if daily else ""),
            hovertemplate="%{y:.0f} gCO2e/kWh<extra></extra>",
        ),
        secondary_y=True,
    )
    # headroom above the tallest bar and the highest intensity, so neither marker nor label
    # sits on the plot's edge
    top_g = (runs["emissions_g"] + runs["embodied_g"].fillna(0)).max()
    top_i = runs["intensity"].max()
    fig.update_yaxes(
        title_text="gCO2e",
        secondary_y=False,
        range=[0, 1.3 * top_g] if pd.notna(top_g) and top_g > 0 else None,
    )
    fig.update_yaxes(
        title_text="gCO2e/kWh",
        secondary_y=True,
        range=[0, 1.3 * top_i] if pd.notna(top_i) and top_i > 0 else None,
        rangemode="tozero",
        showgrid=False,
    )
    if daily:
        fig.update_xaxes(type="date")
        fig.update_layout(height=380, xaxis_title="day (UTC): each bar the sum of its runs")
    else:
        fig.update_xaxes(type="category")
        fig.update_layout(height=380, xaxis_title="run start (UTC) and run id")
    return fig


def _by_day(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs summed by the UTC day they started: emissions, energy and embodied summed,
    the intensity their mean, the zones and sources each day's distinct ones."""
    day = runs["start"].dt.floor("D")
    days = (
        runs.groupby(day)
        .agg(
            runs=("run_id", "size"),
            emissions_g=("emissions_g", "sum"),
            energy_j=("energy_j", "sum"),
            intensity=("intensity", "mean"),
            embodied_g=("embodied_g", lambda v: v.sum(min_count=1)),
            source=("source", _distinct),
            zone=("zone", _distinct),
            embodied_source=("embodied_source", _distinct),
        )
        .rename_axis("start")
        .reset_index()
    )
    days["what"] = days["runs"].astype(str) + " run(s) of " + days["start"].dt.strftime("%Y-%m-%d")
    return days


def _distinct(values: pd.Series) -> str:
    return ", ".join(dict.fromkeys(values.dropna().astype(str)))


def _embodied_by_run(ok: pd.DataFrame) -> pd.Series:
    """Each run's embodied emissions (sum of its windows'); NaN for a run with none."""
    if "embodied_g" not in ok:
        return pd.Series(dtype=float)
    values = pd.to_numeric(ok["embodied_g"], errors="coerce")
    return values.groupby(ok["run_id"]).sum(min_count=1)


def _first_by_run(ok: pd.DataFrame, column: str) -> pd.Series:
    if column not in ok:
        return pd.Series(dtype=object)
    return ok.groupby("run_id")[column].first()


def comparison(ratios: pd.DataFrame, baseline_name: str) -> go.Figure | Missing:
    """J/unit ratio to the baseline per cell, with CI95; beyond-the-noise changes coloured."""
    if ratios.empty:
        return Missing(f"no cell appears both here and in the baseline ({baseline_name})")
    fig = go.Figure()
    for valid, part in split_valid(ratios):
        colors = [
            "#d62728" if r else ("#2ca02c" if i else "#7f7f7f")
            for r, i in zip(part["regression"], part["improvement"], strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                y=part["label"],
                x=part["ratio"],
                mode="markers",
                marker={
                    "color": colors if valid else "#bbbbbb",
                    "size": 11,
                    "symbol": "circle" if valid else "x",
                    "line": {"color": INVALID_LINE, "width": 0 if valid else 1},
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (part["high"] - part["ratio"]).fillna(0),
                    "arrayminus": (part["ratio"] - part["low"]).fillna(0),
                },
                customdata=_customdata(part),
                hovertemplate="%{y}<br>ratio %{x:.3f}%{customdata[3]}<extra></extra>",
                name="J/unit ratio to baseline"
                if valid
                else "INVALID: neither regression nor improvement",
            )
        )
    fig.add_vline(x=1, line_dash="dash", line_color="#333")
    fig.update_layout(
        title=f"J per unit against {baseline_name}: red = regression beyond the noise, "
        "green = improvement",
        height=max(300, 28 * len(ratios) + 120),
        xaxis_title="ratio (1 = unchanged)",
    )
    return fig
