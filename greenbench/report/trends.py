"""The report's Trends view: each cell's J/unit over runs, per machine (greenbench.history).

One panel per workload x phase (its unit), one line per variant x device x node with the runs'
95% CIs (past report.trend_bins' budget, the older runs binned by day, week, ...); dashed
vertical lines where a node's environment changed (the triangle's hover says what), the newest
run ringed where drift.judge flags it, and the carbon of each run below.
Inputs come from escaped records (report.data.escaped); run.json's values are escaped here.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from plotly.subplots import make_subplots

from greenbench.drift import FLOOR_K
from greenbench.formatting import fmt_joules
from greenbench.history import SERIES_KEYS, History
from greenbench.report.data import escape
from greenbench.report.figures import FILTER_KEYS, PALETTE, Missing
from greenbench.report.raw_figure import RawFigure, epoch_ms, rounded
from greenbench.report.trend_bins import TrendPoints, within_budget
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


def trends_figure(history: History, shown: TrendPoints | None = None) -> RawFigure | Missing:
    """The view of `history`, drawing `shown` (default: its points within POINT_BUDGET)."""
    if history.runs < 2:
        return Missing("the records hold one run: the trends need several")
    shown = shown if shown is not None else within_budget(history.points)
    points = shown.points.assign(line=_line_names(shown.points))
    colors = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(dict.fromkeys(points["line"]))}
    names = _panels(points)
    titles = [f"{w} · {p}: J per {u}, net of idle" for w, p, u in names]
    rows = len(names) + 1
    heights = [PANEL_HEIGHT] * len(names) + [CARBON_HEIGHT]
    grid = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        subplot_titles=[*titles, "carbon per run (gross, measured windows)"],
        row_heights=heights,
        vertical_spacing=min(0.08, 0.3 / rows),
    )
    fig = RawFigure(layout=json.loads(grid.to_json())["layout"])
    flagged = history.verdicts[history.verdicts["status"].isin(list(FLAG_COLORS))]
    panel_of = {key: row for row, key in enumerate(names, start=1)}
    legend: set[str] = set()
    drawn = _drawn(points)  # every point's figures as lists, computed once
    for (workload, phase, unit), part in points.groupby(["workload", "phase", "unit"], sort=False):
        row = panel_of[(workload, phase, unit)]
        for line, at in part.groupby("line", sort=False).indices.items():
            first = part.iloc[at[0]]
            at = part.index[at]  # positions in `points` (its index is a range)
            fig.data.append(
                _line_trace(drawn, at, first, str(line), colors[str(line)], row, legend)
            )
        mine = flagged.merge(part.drop_duplicates(SERIES_KEYS)[[*SERIES_KEYS, "line"]])
        for status, rings in mine.groupby("status", sort=True):
            fig.data.append(_flag_trace(rings, str(status), str(unit), row, legend))
        _add_changes(fig, history.changes, part, row, legend)
        fig.layout[_axis("yaxis", row)].update(title={"text": f"J / {unit}"}, tickformat="~s")
    _add_carbon(fig, history.carbon, rows)
    for key in [k for k in fig.layout if k.startswith("xaxis")]:  # every panel dated
        fig.layout[key].update(type="date", showticklabels=True)
    fig.layout[_axis("xaxis", rows)]["title"] = {"text": "run start (UTC)"}
    fig.layout.update(height=sum(heights) + 140, legend={"title": {"text": "line"}},
                      hovermode="closest")  # fmt: skip
    return fig


def _axis(kind: str, row: int) -> str:
    """The layout key of a panel's axis: "xaxis" for the first, "xaxis3" for the third."""
    return kind if row == 1 else f"{kind}{row}"


def _refs(row: int) -> dict[str, str]:
    suffix = "" if row == 1 else str(row)
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


def _first_in_legend(name: str, legend: set[str]) -> bool:
    """Whether `name` is new to the legend (and from now on known to it)."""
    new = name not in legend
    legend.add(name)
    return new


def _drawn(points: pd.DataFrame) -> dict[str, list[Any]]:
    """x (epoch ms), y, the bars' up and down, and the hover text of every point."""
    return {
        "x": epoch_ms(points["x"]),
        "y": rounded(points["y"]),
        "up": rounded(points["up"], 3),  # a bar's length: the hover gives the figures
        "down": rounded(points["down"], 3),
        "text": _point_text(points),
    }


def _point_text(points: pd.DataFrame) -> list[str]:
    """Each point's hover after its J/unit: a run's CI, id and windows, or a bin's runs,
    dates and range (one line: the page carries every point's)."""
    texts = []
    for r in points.itertuples(index=False):
        if r.runs == 1:
            texts.append(f"± {fmt_joules(r.up)} · run {r.run_id} · {r.n} window(s)")
        else:
            texts.append(
                f"median of {r.runs} runs {r.first:%Y-%m-%d}..{r.last:%m-%d}, "
                f"{fmt_joules(r.y - r.down)} to {fmt_joules(r.y + r.up)}"
            )
    return texts


def _line_trace(
    drawn: dict[str, list[Any]],
    at: Any,
    first: pd.Series,
    name: str,
    color: str,
    row: int,
    legend: set[str],
) -> dict[str, Any]:
    """One line's points (positions `at` of `drawn`); the page's filters show or hide it
    whole (meta.filter)."""
    x, y, up, down, text = ([drawn[k][i] for i in at] for k in ("x", "y", "up", "down", "text"))
    node = escape(first["node"])
    bars: dict[str, Any] = {"type": "data", "array": up, "thickness": 1}
    if up != down:  # a bin's range about its median
        bars.update(symmetric=False, arrayminus=down)
    return {
        "type": "scatter",
        **_refs(row),
        "x": x,
        "y": y,
        "error_y": {
            "type": "data",
            "symmetric": False,
            "array": up,
            "arrayminus": down,
            "thickness": 1,
        },  # fmt: skip
        "mode": "lines+markers",
        "marker": {"size": 5, "color": color},
        "line": {"color": color, "width": 1.5},
        "name": name,
        "legendgroup": name,
        "showlegend": _first_in_legend(name, legend),
        "text": text,
        "meta": {"filter": [str(first[k]) for k in FILTER_KEYS]},
        "hovertemplate": "%{x|%Y-%m-%d %H:%M}<br>%{y:.3s}J %{text}"
        + (f"<br>node {node}" if node else "")
        + f"<extra>{name}</extra>",
    }


def _flag_trace(
    rings: pd.DataFrame, status: str, unit: str, row: int, legend: set[str]
) -> dict[str, Any]:
    """The newest runs of one panel that drift.judge flags `status`, ringed."""
    hover = [
        f"<b>{status.upper()}</b> {v.change * 100:+.1f} % against the median of the previous "
        f"runs ({v.baseline:.3g} J/{unit}); noise floor {v.floor * 100:.1f} %"
        for v in rings.itertuples(index=False)
    ]
    keys = rings[FILTER_KEYS].astype(str).values.tolist()
    name = f"newest run: {status}"
    return {
        "type": "scatter",
        **_refs(row),
        "x": epoch_ms(rings["started_at"]),
        "y": rounded(rings["j_per_unit"]),
        "mode": "markers",
        "marker": {
            "size": 18,
            "symbol": "circle-open",
            "color": FLAG_COLORS[status],
            "line": {"width": 3},
        },  # fmt: skip
        "name": name,
        "legendgroup": status,
        "showlegend": _first_in_legend(name, legend),
        "customdata": [[*k, h] for k, h in zip(keys, hover, strict=True)],  # filtered per point
        "text": rings["line"].tolist(),
        "hovertemplate": "%{customdata[3]}<extra>%{text}</extra>",
    }


def _add_changes(
    fig: RawFigure, changes: pd.DataFrame, part: pd.DataFrame, row: int, legend: set[str]
) -> None:
    """Dashed lines at the panel's nodes' environment changes, a triangle on top to hover."""
    mine = changes[changes["node"].isin(set(part["node"]))] if not changes.empty else changes
    if mine.empty:
        return
    refs = _refs(row)
    when = epoch_ms(mine["started_at"])
    fig.layout.setdefault("shapes", []).extend(
        {"type": "line", "xref": refs["xaxis"], "yref": f"{refs['yaxis']} domain", "x0": t,
         "x1": t, "y0": 0, "y1": 1, "line": {"color": CHANGE_COLOR, "dash": "dash", "width": 1}}
        for t in dict.fromkeys(when)
    )  # fmt: skip
    top = float((part["y"] + part["up"]).max())
    name = "environment change"
    fig.data.append(
        {
            "type": "scatter",
            **refs,
            "x": when,
            "y": [top] * len(mine),
            "mode": "markers",
            "marker": {"symbol": "triangle-down", "size": 11, "color": CHANGE_COLOR},
            "name": name,
            "legendgroup": name,
            "showlegend": _first_in_legend(name, legend),
            "text": [f"{escape(c.node) or 'node'}: {escape(c.what)}" for c in mine.itertuples()],
            "hovertemplate": "%{x|%Y-%m-%d}<br>%{text}<extra>environment changed</extra>",
        }
    )


def _add_carbon(fig: RawFigure, carbon: pd.DataFrame, row: int) -> None:
    several = carbon["node"].nunique() > 1
    for i, (node, part) in enumerate(carbon.groupby("node", sort=True)):
        fig.data.append(
            {
                "type": "bar",
                **_refs(row),
                "x": epoch_ms(part["started_at"]),
                "y": rounded(part["emissions_g"]),
                "name": f"carbon · {node}" if several else "carbon per run",
                "marker": {"color": PALETTE[-1 - i % len(PALETTE)]},
                "text": part["run_id"].astype(str).tolist(),
                "textposition": "none",
                "hovertemplate": "%{x|%Y-%m-%d %H:%M}<br>run %{text}<br>%{y:.3s} gCO2e"
                f"<extra>{escape(node) or 'carbon'}</extra>",
            }
        )
    fig.layout[_axis("yaxis", row)].update(
        title={"text": "gCO2e"}, tickformat="~s", rangemode="tozero"
    )
    if several:
        fig.layout["barmode"] = "group"


def trends_explanation(history: History, shown: TrendPoints | None = None) -> str:
    """What the view shows, how its points were binned, and the flag rule in one sentence."""
    counts: dict[str, Any] = history.verdicts["status"].value_counts().to_dict()
    flagged = (
        f" Newest runs flagged: {counts.get('regression', 0)} regression(s), "
        f"{counts.get('improvement', 0)} improvement(s)."
        if history.runs >= 2
        else ""
    )
    binned = (
        f" Too many runs to draw each: the runs before each line's newest are binned by "
        f"{shown.period} (UTC); a binned point is the median of that {shown.period}'s runs, its "
        "bar their range (the hover says how many). The newest run is its own point."
        if shown is not None and shown.binned
        else ""
    )
    return (
        "Net J per unit of each run (error bars: the run's 95% CI), one line per variant, "
        f"device and machine.{binned} Dashed lines: the machine's environment changed (greenbench, "
        "torch, driver, CUDA, hardware or zone; hover the triangle). A ringed point: the "
        f"newest run moved beyond {history.pct:g} % and {FLOOR_K:g} noise floors from the "
        "median of the runs before it, CIs apart (greenbench history)." + flagged
    )
