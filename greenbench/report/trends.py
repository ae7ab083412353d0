"""The report's Trends view: each cell's J/unit over runs, per machine (greenbench.history).

One figure per workload x phase (its unit), one line per variant x device (its nodes stretches
of it) with the runs' 95% CIs (past report.trend_bins' budget, the older runs binned by day,
week, ...); dashed
vertical lines where a node's environment changed (the triangle's hover says what), the newest
run ringed where drift.judge flags it, and a figure of the carbon of each run below.
Inputs come from escaped records (report.data.escaped); run.json's values are escaped here.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pandas as pd
import plotly.graph_objects as go

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
BAR_RUNS = 60  # the most runs of a node the carbon plot draws as bars


def _panels(points: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(workload, phase, unit) of every panel: by workload, phases in the kinds' order."""
    firsts = points.drop_duplicates(["workload", "phase", "unit"])
    keys = zip(firsts["workload"], firsts["phase"], firsts["unit"], strict=True)
    return sorted(keys, key=lambda k: (k[0], phase_order(k[1]), k[2]))


def _line_names(points: pd.DataFrame) -> pd.Series:
    """Each point's line (legend) name: its variant, and its device, params and power limit
    where those tell lines apart. A line holds every node's series, each node a stretch of its
    own (the hover names it): ten machines are ten stretches of one colour, not ten more
    colours, and a panel stays a few traces (plotly.js draws each trace at a cost)."""
    names = points["variant"].astype(str)
    for key, unit in (("device", ""), ("params", ""), ("power_limit_w", " W")):
        if points[key].nunique() > 1:
            values = points[key].astype(str)
            names = names + values.where(values == "", " · " + values + unit)
    return names


def trends_figures(history: History, shown: TrendPoints | None = None) -> list[RawFigure] | Missing:
    """The view of `history`, drawing `shown` (default: its points within POINT_BUDGET): a
    figure per panel and the carbon per run last, every panel over the same dates. Each is its
    own plot, so the page draws each as it is reached (a year of ten machines' history, 1,500
    lines in one figure, took 7 s to draw at once)."""
    if history.runs < 2:
        return Missing("the records hold one run: the trends need several")
    shown = shown if shown is not None else within_budget(history.points)
    points = shown.points.assign(line=_line_names(shown.points))
    colors = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(dict.fromkeys(points["line"]))}
    span = _dates(points, history.carbon)
    flagged = history.verdicts[history.verdicts["status"].isin(list(FLAG_COLORS))]
    drawn = _drawn(points)  # every point's figures as lists, computed once
    panels = points.groupby(["workload", "phase", "unit"], sort=False).indices
    figures = []
    for workload, phase, unit in _panels(points):
        part = points.iloc[panels[(workload, phase, unit)]]
        fig = RawFigure(layout=_layout(f"{workload} · {phase}: J per {unit}, net of idle",
                                       f"J / {unit}", span, PANEL_HEIGHT))  # fmt: skip
        legend: set[str] = set()
        for line, rows in part.groupby("line", sort=False):
            # each node's points (positions in `points`, whose index is a range), in turn
            stretches = [n.index for _, n in rows.groupby("node", sort=True)]
            first = points.iloc[stretches[0][0]]
            fig.data.append(
                _line_trace(drawn, stretches, first, str(line), colors[str(line)], legend)
            )
        mine = flagged.merge(part.drop_duplicates(SERIES_KEYS)[[*SERIES_KEYS, "line"]])
        for status, rings in mine.groupby("status", sort=True):
            fig.data.append(_flag_trace(rings, str(status), str(unit), legend))
        _add_changes(fig, history.changes, part, legend)
        figures.append(fig)
    figures.append(_carbon_figure(history.carbon, span))
    return figures


@cache
def _template() -> dict[str, Any]:
    """plotly's default template as JSON: the look of the page's other figures."""
    return json.loads(go.Figure().to_json())["layout"]["template"]


def _layout(title: str, y_title: str, span: list[str], height: int) -> dict[str, Any]:
    return {
        "template": _template(),
        "title": {"text": title},
        "xaxis": {"type": "date", "range": span, "title": {"text": "run start (UTC)"}},
        "yaxis": {"title": {"text": y_title}, "tickformat": "~s"},
        "legend": {"title": {"text": "line"}},
        "hovermode": "closest",
        "height": height,
        "margin": {"t": 60, "b": 50},
    }


def _dates(points: pd.DataFrame, carbon: pd.DataFrame) -> list[str]:
    """The x range every panel shares (UTC), a little wider than the runs' first to last, so
    the panels line up one under the other as one figure's would."""
    times = pd.concat([points["first"], points["last"], carbon["started_at"]])
    first, last = times.min(), times.max()
    margin = max((last - first) * 0.02, pd.Timedelta(hours=12))
    return [f"{t.tz_convert('UTC'):%Y-%m-%d %H:%M:%S}" for t in (first - margin, last + margin)]


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
    dates and range (one line: the page carries every point's); then its node."""
    texts = []
    for r in points.itertuples(index=False):
        if r.runs == 1:
            texts.append(f"± {fmt_joules(r.up)} · run {r.run_id} · {r.n} window(s)")
        else:
            texts.append(
                f"median of {r.runs} runs {r.first:%Y-%m-%d}..{r.last:%m-%d}, "
                f"{fmt_joules(r.y - r.down)} to {fmt_joules(r.y + r.up)}"
            )
    return [t + n for t, n in zip(texts, _node_lines(points["node"]), strict=True)]


def _node_lines(nodes: pd.Series) -> list[str]:
    """Each node as a hover's last line ("" where unknown); node is no escaped label column:
    escaped here, each distinct one once."""
    return nodes.map({n: f"<br>node {escape(n)}" if n else "" for n in nodes.unique()}).tolist()


def _line_trace(
    drawn: dict[str, list[Any]],
    stretches: list[Any],
    first: pd.Series,
    name: str,
    color: str,
    legend: set[str],
) -> dict[str, Any]:
    """One line: the points at each of `stretches` (positions in `drawn`), a gap between one
    and the next. The page's filters show or hide it whole (meta.filter)."""
    x, y, up, down, text = (_joined(drawn[k], stretches) for k in ("x", "y", "up", "down", "text"))
    return {
        "type": "scatter",
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
        "hovertemplate": f"%{{x|%Y-%m-%d %H:%M}}<br>%{{y:.3s}}J %{{text}}<extra>{name}</extra>",
    }


def _joined(values: list[Any], stretches: list[Any]) -> list[Any]:
    """`values` at each stretch's positions in turn, a null between stretches (a gap in the
    line: plotly.js does not join across it)."""
    out: list[Any] = []
    for number, at in enumerate(stretches):
        if number:
            out.append(None)
        out.extend(values[i] for i in at)
    return out


def _flag_trace(rings: pd.DataFrame, status: str, unit: str, legend: set[str]) -> dict[str, Any]:
    """The newest runs of one panel that drift.judge flags `status`, ringed."""
    hover = [
        f"<b>{status.upper()}</b> {v.change * 100:+.1f} % against the median of the previous "
        f"runs ({v.baseline:.3g} J/{unit}); noise floor {v.floor * 100:.1f} %{node}"
        for v, node in zip(rings.itertuples(index=False), _node_lines(rings["node"]), strict=True)
    ]
    keys = rings[FILTER_KEYS].astype(str).values.tolist()
    name = f"newest run: {status}"
    return {
        "type": "scatter",
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
    fig: RawFigure, changes: pd.DataFrame, part: pd.DataFrame, legend: set[str]
) -> None:
    """Dashed lines at the panel's nodes' environment changes, a triangle on top to hover."""
    mine = changes[changes["node"].isin(set(part["node"]))] if not changes.empty else changes
    if mine.empty:
        return
    when = epoch_ms(mine["started_at"])
    fig.layout.setdefault("shapes", []).extend(
        {"type": "line", "xref": "x", "yref": "y domain", "x0": t,
         "x1": t, "y0": 0, "y1": 1, "line": {"color": CHANGE_COLOR, "dash": "dash", "width": 1}}
        for t in dict.fromkeys(when)
    )  # fmt: skip
    top = float((part["y"] + part["up"]).max())
    name = "environment change"
    fig.data.append(
        {
            "type": "scatter",
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


def _carbon_figure(carbon: pd.DataFrame, span: list[str]) -> RawFigure:
    """The carbon of each run, per node: a bar per run, or past BAR_RUNS runs of a node a
    line through its runs (bars a few pixels apart, side by side for ten machines, vanish)."""
    title = "carbon per run (gross, measured windows)"
    fig = RawFigure(layout=_layout(title, "gCO2e", span, CARBON_HEIGHT))
    several = carbon["node"].nunique() > 1
    bars = int(carbon["node"].value_counts().max()) <= BAR_RUNS
    for i, (node, part) in enumerate(carbon.groupby("node", sort=True)):
        color = PALETTE[-1 - i % len(PALETTE)]
        shape: dict[str, Any] = (
            {"type": "bar", "marker": {"color": color}, "textposition": "none"}
            if bars
            else {"type": "scatter", "mode": "lines+markers", "marker": {"size": 4, "color": color},
                  "line": {"color": color, "width": 1}}
        )  # fmt: skip
        fig.data.append(
            {
                **shape,
                "x": epoch_ms(part["started_at"]),
                "y": rounded(part["emissions_g"]),
                "name": f"carbon · {escape(node)}" if several else "carbon per run",
                "text": part["run_id"].astype(str).tolist(),
                "hovertemplate": "%{x|%Y-%m-%d %H:%M}<br>run %{text}<br>%{y:.3s} gCO2e"
                f"<extra>{escape(node) or 'carbon'}</extra>",
            }
        )
    fig.layout["yaxis"]["rangemode"] = "tozero"
    fig.layout["legend"] = {"title": {"text": "node"}} if several else {}
    if several and bars:
        fig.layout["barmode"] = "group"
    return fig


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
        "Net J per unit of each run (error bars: the run's 95% CI), a plot per workload and "
        "phase, one line per variant and device: each machine a stretch of it, of its colour "
        f"(the hover names the machine).{binned} Dashed lines: the machine's environment "
        "changed (greenbench, torch, driver, CUDA, hardware or zone; hover the triangle). A "
        "ringed point: the "
        f"newest run moved beyond {history.pct:g} % and {FLOOR_K:g} noise floors from the "
        "median of the runs before it, CIs apart (greenbench history)." + flagged
    )
