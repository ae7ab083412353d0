"""The report page: one self-contained HTML file (plotly.js inlined) that works offline."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from plotly.offline import get_plotlyjs

from greenbench.check import with_verdicts
from greenbench.formatting import fmt, fmt_joules, fmt_pct
from greenbench.history import build_history
from greenbench.report import data, figures, sweeps
from greenbench.report.data import escape
from greenbench.report.latency import LatencyCut, LatencyTarget, meeting
from greenbench.report.raw_figure import RawFigure
from greenbench.report.trend_bins import within_budget
from greenbench.report.trends import trends_explanation, trends_figures

PLOT_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    explanation: str
    figure: Any  # go.Figure, a RawFigure, a list of them (drawn one under the other) or Missing


def _plain(value: Any) -> Any:
    """Figure JSON with Plotly's base64 arrays decoded to lists and NaN as null.

    Plain lists keep the page's filter script simple: it slices arrays by point.
    """
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            if "shape" in value:
                shape = [int(n) for n in str(value["shape"]).split(",")]
                array = array.reshape(shape)
            return _plain(array.tolist())
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no `</script>`, no HTML comment openers."""
    # compact, and UTF-8 as is (the page is UTF-8): "±" is 2 bytes, not the 6 of "\\u00b1"
    text = json.dumps(
        value, allow_nan=False, default=str, ensure_ascii=False, separators=(",", ":")
    )
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# a figure that costs more than LAZY_POINTS points to draw is drawn when it is scrolled near,
# not on load: a year of ten machines' history took 18 s to draw at once. A trace costs about
# TRACE_POINTS points beyond its own (plotly.js, headless Chromium: docs/benchmarks.md)
LAZY_POINTS = 1_000
TRACE_POINTS = 20

# greenbenchLater(id): draw the plot whose spec is the JSON script "ID-spec" once its div
# comes within a screen or so of the view. Plots are drawn one at a time, the page's first
# near one first, each in its own task, so the page scrolls between them and never waits for
# several at once; the page's filters then apply to each as to the others. Printing draws
# every one still waiting.
LAZY_SCRIPT = """
var greenbenchLater = (function () {
  var waiting = [], near = {}, busy = false;
  function draw(div) {
    var spec = JSON.parse(document.getElementById(div.id + "-spec").textContent);
    return Plotly.newPlot(div, spec[0], spec[1], spec[2]).then(function () {
      if (window.greenbenchFilter) { window.greenbenchFilter(); }
    });
  }
  function next() {
    if (busy) { return; }
    var i = waiting.findIndex(function (div) { return near[div.id]; });
    if (i < 0) { return; }
    var div = waiting.splice(i, 1)[0];
    observer.unobserve(div);
    busy = true;
    var done = function () { busy = false; setTimeout(next, 0); };
    draw(div).then(done, done);
  }
  var observer = new IntersectionObserver(function (entries) {
    entries.forEach(function (e) { near[e.target.id] = e.isIntersecting; });
    next();
  }, {rootMargin: "800px 0px"});
  window.addEventListener("beforeprint", function () {
    waiting.splice(0).forEach(function (div) { observer.unobserve(div); draw(div); });
  });
  return function (id) {
    var div = document.getElementById(id);
    waiting.push(div);
    observer.observe(div);
  };
})();
"""


def _points(data: list[dict[str, Any]]) -> int:
    """What a figure costs to draw, in points: its points, and TRACE_POINTS a trace."""
    return sum((len(t["x"]) if isinstance(t.get("x"), list) else 1) + TRACE_POINTS for t in data)


def figure_html(fig: Any, div_id: str, view: str = "") -> str:
    """`fig` as a plot div (`div_id`, data-view `view`: the section's anchor); a list of
    figures one under the other, each its own plot: "DIV_ID-0", "DIV_ID-1", ..."""
    if isinstance(fig, list):
        return "".join(figure_html(one, f"{div_id}-{j}", view) for j, one in enumerate(fig))
    if isinstance(fig, figures.Missing):
        return f'<p class="missing">Not shown: {escape(fig.reason)}.</p>'
    raw = isinstance(fig, RawFigure)
    spec = _plain({"data": fig.data, "layout": fig.layout} if raw else json.loads(fig.to_json()))
    div = f'<div id="{div_id}" class="plot" data-view="{view}"'
    if _points(spec["data"]) <= LAZY_POINTS:
        return (
            f'{div}></div><script>Plotly.newPlot("{div_id}", {_script_json(spec["data"])}, '
            f"{_script_json(spec['layout'])}, {_script_json(PLOT_CONFIG)});</script>"
        )
    # drawn later: it keeps its place meanwhile (the page does not jump as plots are drawn, nor
    # bring the next ones near at once), and its spec is JSON, parsed only when it is drawn
    height = spec["layout"].get("height", 450)
    return (
        f'{div} style="min-height: {height}px"></div><script type="application/json" '
        f'id="{div_id}-spec">{_script_json([spec["data"], spec["layout"], PLOT_CONFIG])}</script>'
        f'<script>greenbenchLater("{div_id}");</script>'
    )


def _badge(row: pd.Series) -> str:
    kind = "estimated" if row["estimated"] else "measured"
    # the methods come from escaped labels (data.escaped)
    return f'<span class="badge {kind}" title="{row["methods"]}">{kind}</span>'


def _status(row: pd.Series) -> str:
    """`ok`, or INVALID with greenbench check's reasons in its tooltip and beneath it."""
    if row.get("cell_valid", True):
        return "<td>ok</td>"
    reasons = str(row.get("validity", ""))  # escaped already (data.escaped), quotes too
    title = reasons.replace("<br>", "; ")
    return f'<td class="invalid" title="{title}">INVALID<div class="why">{reasons}</div></td>'


def overview_table(summary: pd.DataFrame, unfinished: pd.DataFrame) -> str:
    """Every cell: J/unit ± CI95, units/s, W, gCO2e/1k units, fidelity, method badge, status
    (INVALID, with the reasons, for a cell greenbench check judges invalid)."""
    head = (
        "<tr><th>workload</th><th>phase</th><th>variant</th><th>device</th><th>n</th>"
        "<th>net energy per unit ± CI95</th><th>units/s</th><th>W (gross)</th>"
        "<th>gCO2e / 1k units</th><th>top-1 vs fp32</th><th>KL</th><th>method</th>"
        "<th>status</th></tr>"
    )
    rows = []
    for _, r in summary.iterrows():
        invalid = ' class="invalid"' if not r.get("cell_valid", True) else ""
        rows.append(
            f'<tr{invalid} data-workload="{r["workload"]}" data-variant="{r["variant"]}" '
            f'data-device="{r["device"]}"><td>{r["workload"]}</td><td>{r["phase"]}</td>'
            f"<td>{r['variant']}</td><td>{r['device']}</td><td>{r['n']}</td>"
            f"<td>{fmt_joules(r['j_per_unit'], r['j_per_unit_ci95'])} / {r['unit']}</td>"
            f"<td>{fmt(r['throughput'])}</td><td>{fmt(r['power_w'])}</td>"
            f"<td>{fmt(r['g_per_1k_units'])}</td><td>{fmt_pct(r['fidelity_top1'])}</td>"
            f"<td>{fmt(r['fidelity_kl'], 2)}</td><td>{_badge(r)}</td>{_status(r)}</tr>"
        )
    for _, r in unfinished.iterrows():
        workload, variant, device = (str(r["cell_id"]).split("/") + ["", "", ""])[:3]
        rows.append(
            f'<tr class="{r["status"]}" data-workload="{workload}" data-variant="{variant}" '
            f'data-device="{device}"><td>{workload}</td><td></td><td>{variant}</td>'
            f'<td>{device}</td><td colspan="8">{r["error"] or ""}</td>'
            f"<td>{r['status']}</td></tr>"
        )
    if not rows:
        return '<p class="missing">No cells in these records.</p>'
    return f'<table class="overview"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _filters(frame: pd.DataFrame) -> str:
    selects = []
    for key in figures.FILTER_KEYS:
        values = sorted({str(v) for v in frame[key].dropna().unique()})
        options = "".join(f'<option value="{v}">{v}</option>' for v in values)
        selects.append(
            f'<label>{key} <select data-filter="{key}"><option value="">all</option>'
            f"{options}</select></label>"
        )
    return f'<div class="filters">Filter: {" ".join(selects)}</div>'


FILTER_SCRIPT = """
(function () {
  var KEYS = ["workload", "variant", "device"];
  var selects = document.querySelectorAll("select[data-filter]");
  var originals = {};
  var scratch = document.createElement("textarea");
  function decode(text) {  // labels in the plots are HTML-escaped; select values are not
    scratch.innerHTML = String(text);
    return scratch.value;
  }
  function wanted() {
    var f = {};
    selects.forEach(function (s) { if (s.value) { f[s.dataset.filter] = s.value; } });
    return f;
  }
  function matches(cd, f) {
    if (!cd) { return true; }
    for (var i = 0; i < KEYS.length; i++) {
      var v = f[KEYS[i]];
      if (v !== undefined && cd[i] !== v) { return false; }
    }
    return true;
  }
  function pick(a, keep) {
    return Array.isArray(a) ? a.filter(function (_, j) { return keep[j]; }) : a;
  }
  function apply() {
    var f = wanted();
    document.querySelectorAll("tr[data-workload]").forEach(function (tr) {
      var cd = [tr.dataset.workload, tr.dataset.variant, tr.dataset.device];
      tr.style.display = matches(cd, f) ? "" : "none";
    });
    document.querySelectorAll("div.plot").forEach(function (div) {
      if (!div.data) { return; }  // not drawn yet (greenbenchLater): filtered once it is
      if (!originals[div.id]) {
        originals[div.id] = div.data.map(function (t) {
          var keys = Array.isArray(t.customdata) ? t.customdata.map(function (cd) {
            return Array.isArray(cd) ? cd.map(decode) : cd;
          }) : null;
          var whole = t.meta && t.meta.filter ? t.meta.filter.map(decode) : null;
          return {keys: keys, whole: whole, x: t.x, y: t.y, customdata: t.customdata, text: t.text,
                  ey: t.error_y && t.error_y.array, eym: t.error_y && t.error_y.arrayminus,
                  ex: t.error_x && t.error_x.array, exm: t.error_x && t.error_x.arrayminus};
        });
      }
      var whole = [], shown = [];  // traces the filters show or hide whole (meta.filter)
      originals[div.id].forEach(function (o, i) {
        if (o.whole) { whole.push(i); shown.push(matches(o.whole, f)); return; }
        if (!o.keys) { return; }
        var keep = o.keys.map(function (cd) { return matches(cd, f); });
        var update = {x: [pick(o.x, keep)], y: [pick(o.y, keep)],
                      customdata: [pick(o.customdata, keep)], text: [pick(o.text, keep)]};
        if (o.ey) { update["error_y.array"] = [pick(o.ey, keep)]; }
        if (o.eym) { update["error_y.arrayminus"] = [pick(o.eym, keep)]; }
        if (o.ex) { update["error_x.array"] = [pick(o.ex, keep)]; }
        if (o.exm) { update["error_x.arrayminus"] = [pick(o.exm, keep)]; }
        Plotly.restyle(div, update, [i]);
      });
      if (whole.length) { Plotly.restyle(div, {visible: shown}, whole); }
    });
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  window.greenbenchFilter = function () {  // a plot drawn late takes the filters set
    if (Object.keys(wanted()).length) { apply(); }
  };
})();
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.meta, .explain { color: #555; } .missing { color: #a15c00; font-style: italic; }
.filters { position: sticky; top: 0; background: #fff; padding: 0.5rem 0; z-index: 10; }
.filters label { margin-right: 1rem; }
table.overview { border-collapse: collapse; font-size: 0.85rem; width: 100%; }
.overview th, .overview td { border-bottom: 1px solid #eee; padding: 0.25rem 0.4rem; }
.overview td { text-align: right; } .overview td:nth-child(-n+4) { text-align: left; }
tr.failed td { color: #b00020; text-align: left; } tr.skipped td { color: #777; text-align: left; }
.badge { border-radius: 0.6rem; padding: 0 0.5rem; font-size: 0.75rem; }
.badge.measured { background: #d8f0d8; } .badge.estimated { background: #fff0c8; }
tr.invalid td { background: #f4f4f4; color: #777; }
tr.invalid td.invalid { color: #b00020; font-weight: bold; text-align: left; }
td.invalid .why { font-weight: normal; font-size: 0.75rem; max-width: 22rem; }
.left-out { color: #b00020; }
"""


def left_out_note(count: int, views: str) -> str:
    """The visible line saying how many invalid cells a view left out, and how to keep them."""
    if not count:
        return ""
    return (
        f' <span class="left-out">{count} invalid cell(s) (greenbench check) left out of '
        f"{views}; <code>--include-invalid</code> keeps them.</span>"
    )


def footprint_note(safe: pd.DataFrame) -> str:
    """Water per unit of each cell and the footprint's sources: estimates, labelled so, beside
    the measured figures (cell ids and units come escaped; the sources are escaped here)."""
    if "water_per_unit_l" not in safe:
        return ""
    ok = safe[(safe["status"] == "ok") & safe["water_per_unit_l"].notna()]
    if ok.empty:
        return ""
    water = pd.to_numeric(ok["water_per_unit_l"], errors="coerce").groupby(ok["cell_id"]).mean()
    units = ok.groupby("cell_id")["unit"].first()
    cells = ", ".join(f"{cell} {fmt(v)} L per {units[cell]}" for cell, v in water.items())
    listed = ok["embodied_source"].dropna().tolist() + ok["water_source"].dropna().tolist()
    sources = "; ".join(escape(str(source)) for source in dict.fromkeys(listed))
    pues = ", ".join(fmt(p) for p in ok["pue"].dropna().unique())
    return (
        f" Estimates, not part of the measured figures: water {cells} (PUE {pues}). "
        f'<span class="why">Sources: {sources}</span>'
    )


def _empty_because_left_out(figure: Any, left_out: int) -> Any:
    """An empty view names every reason it is empty, the invalid cells left out included."""
    if not isinstance(figure, figures.Missing) or not left_out:
        return figure
    return figures.Missing(
        f"{figure.reason}; {left_out} invalid cell(s) (greenbench check) were left out, and "
        "--include-invalid keeps them"
    )


def _under_target(figure: Any, cut: LatencyCut | None) -> Any:
    """An empty view under a latency target says that no cell meets it."""
    if cut is None or not cut.kept.empty:
        return figure
    return figures.Missing(cut.none_left())


def _only_meeting(cut: LatencyCut | None) -> str:
    return "" if cut is None else f" Only the cells meeting {escape(cut.target)}."


def sweep_sections(
    summary: pd.DataFrame,
    include_invalid: bool = False,
    cut: LatencyCut | None = None,
) -> list[Section]:
    """The sweep view and the energy-vs-latency frontier, from the (latency-cut) summary."""
    shown = summary if cut is None else cut.kept
    target = _only_meeting(cut)
    kept = "kept (--include-invalid)" if include_invalid else "left out"
    return [
        Section(
            "sweep",
            "Energy per unit by swept parameter",
            "Net energy per unit against each parameter a sweep varies (batch, ...), a line per "
            "variant, error bars: 95% CI. Invalid cells (greenbench check) are "
            f"{kept}, and cells without a figure left out; each panel names them." + target,
            _under_target(sweeps.sweep_view(shown, include_invalid), cut),
        ),
        Section(
            "latency",
            "Energy against latency",
            "Net energy per unit against latency (the median over the valid windows of each "
            f"window's {cut.target.name if cut else 'p90'}), one point per cell; "
            "the dotted step line is the lowest energy reachable within a latency (the Pareto "
            f"frontier). Invalid cells are {kept}." + target,
            _under_target(
                sweeps.latency_frontier(
                    shown, include_invalid, cut.target if cut is not None else None
                ),
                cut,
            ),
        ),
    ]


def sections(
    safe: pd.DataFrame,
    summary: pd.DataFrame,
    baseline: pd.DataFrame | None,
    baseline_name: str,
    include_invalid: bool = False,
    cut: LatencyCut | None = None,
    runs: pd.DataFrame | None = None,
) -> list[Section]:
    """The views, from the escaped records and their cell summary; with several runs, their
    trends too (`runs`: their run.json environments, history.run_environments).

    The ratio views (trade-off, comparison) and the frontier leave invalid cells out unless
    `include_invalid`; the others draw them faded, with the reasons in the hover. Under a
    latency target (`cut`) the energy, frontier and sweep views draw only the cells meeting
    it."""
    kept, left_out = data.valid_cells(safe, include_invalid)
    # with nothing left out the kept cells are all the cells: their summary is `summary` (the
    # per-cell summary is the report's costliest step on a year of history)
    ratio_summary = summary if include_invalid or not left_out else data.cell_summary(kept)
    shown_summary = summary if cut is None else cut.kept
    only = _only_meeting(cut)
    shown = not summary.empty and not summary["cell_valid"].all()  # invalid cells drawn faded
    faded = {
        "energy": " Faded bars with a red outline: cells greenbench check judges invalid (the "
        "hover says why)."
        if shown
        else "",
        "frontier": " Faded points: invalid cells, "
        + ("kept in the frontier (--include-invalid)." if include_invalid else "never on it.")
        if shown
        else "",
    }
    views = [
        Section(
            "energy",
            "Energy per unit",
            "Net of the idle baseline, mean of the repetitions, error bars: 95% CI."
            + faded["energy"]
            + only,
            _under_target(figures.energy_per_unit(shown_summary), cut),
        ),
        Section(
            "frontier",
            "Efficiency frontier",
            "Throughput against energy per unit, one point per cell; for each workload the "
            "ringed cells (joined by a dotted line) are those no other variant or device beats on "
            "both." + faded["frontier"] + left_out_note(left_out, "the frontier") + only,
            _under_target(figures.efficiency_frontier(shown_summary, include_invalid), cut),
        ),
        *sweep_sections(summary, include_invalid, cut),
        Section(
            "tradeoff",
            "Quantization trade-off",
            "Energy per unit saved against fp32 on the same workload and device, against the "
            "change in task quality (perplexity, top-1 accuracy) where the cells ran on labelled "
            "real inputs (prompts, texts, images), else against top-1 agreement with fp32. With "
            "random weights (the default) fidelity shows how much a variant perturbs the "
            "computation, not task accuracy." + left_out_note(left_out, "this view"),
            _empty_because_left_out(
                figures.quantization_tradeoff(data.tradeoffs(ratio_summary, include_invalid)),
                left_out,
            ),
        ),
        Section(
            "power",
            "Power over time",
            "Mean power of each measured window of the latest run, per component, with the idle "
            "baseline; shading marks the phase.",
            figures.power_over_time(safe),
        ),
        Section(
            "carbon",
            "Carbon",
            "Emissions of the measured windows of each run (operational: the measured energy at "
            "the grid intensity used), with the hardware's embodied share stacked on top where "
            f"it is known; past {figures.DAILY_RUNS} runs, of each UTC day's runs summed."
            + footprint_note(safe),
            figures.carbon_over_time(safe),
        ),
    ]
    trends = trends_section(safe, runs)
    if trends is not None:
        views.append(trends)
    if baseline is not None:
        before = with_verdicts(data.escaped(baseline))
        ratios = data.comparison(safe, before, include_invalid)
        left_before = data.valid_cells(before, include_invalid)[1]
        views.append(
            Section(
                "compare",
                f"Against {escape(baseline_name)}",
                "Ratio of J per unit to the baseline with its 95% CI; a regression is a ratio "
                "whose whole interval lies above 1. An invalid cell is never called a "
                "regression or an improvement."
                + left_out_note(
                    left_out + left_before, "this comparison (here or in the baseline)"
                ),
                _empty_because_left_out(
                    figures.comparison(ratios, escape(baseline_name)), left_out + left_before
                ),
            )
        )
    return views


def trends_section(safe: pd.DataFrame, runs: pd.DataFrame | None) -> Section | None:
    """The Trends view, where the records hold several runs (else None)."""
    if safe.empty or safe["run_id"].nunique() < 2:
        return None
    history = build_history(safe, runs if runs is not None else pd.DataFrame())
    shown = within_budget(history.points)
    return Section(
        "trends",
        "Trends across runs",
        trends_explanation(history, shown),
        trends_figures(history, shown),
    )


def _loaded(frame: pd.DataFrame, sources: list[str] | None = None) -> str:
    """ "N records from R run(s)" (from SOURCES): what the page was drawn from."""
    runs = frame["run_id"].nunique() if "run_id" in frame and not frame.empty else 0
    where = f" from {escape(', '.join(sources))}" if sources else ""
    return f"{len(frame)} record(s) of {runs} run(s){where}"


def build_report(
    frame: pd.DataFrame,
    sources: list[str],
    baseline: pd.DataFrame | None = None,
    baseline_name: str = "",
    include_invalid: bool = False,
    latency: LatencyTarget | None = None,
    runs: pd.DataFrame | None = None,
) -> str:
    """The whole page as one HTML string; `include_invalid` keeps invalid cells in the ratio
    views; `latency` keeps only the cells meeting it in the energy, frontier and sweep views;
    `runs` (history.run_environments) gives the Trends view its environment markers."""
    safe = with_verdicts(data.escaped(frame))  # judged once, here, for every view
    summary = data.cell_summary(safe)  # built once: every view draws from it
    cut = meeting(summary, latency) if latency is not None else None
    unfinished = data.unfinished_cells(safe)
    parts = []
    views = sections(safe, summary, baseline, baseline_name, include_invalid, cut, runs)
    for i, section in enumerate(views):
        parts.append(
            f'<h2 id="{section.anchor}">{section.title}</h2>'
            f'<p class="explain">{section.explanation}</p>'
            f"{figure_html(section.figure, f'plot-{i}', section.anchor)}"
        )
    loaded = _loaded(frame, sources)
    if baseline is not None:
        loaded += f"; baseline {escape(baseline_name)}: {_loaded(baseline)}"
    estimated = bool(frame.get("estimated", pd.Series(dtype=bool)).fillna(False).astype(bool).any())
    note = (
        "<p class='meta'>Some figures are <b>estimates</b> (a component that varies with the "
        "work was modelled, not read from an energy counter): see the method badges.</p>"
        if estimated
        else ""
    )
    invalid = int((~summary["cell_valid"]).sum()) if not summary.empty else 0
    if invalid:
        note += (
            f"<p class='meta left-out'>{invalid} row(s) hold cells that greenbench check judges "
            "<b>invalid</b>: marked INVALID with the reasons, drawn faded, and "
            + (
                "kept in the ratio views (--include-invalid).</p>"
                if include_invalid
                else "left out of the ratio views (--include-invalid keeps them).</p>"
            )
        )
    if cut is not None:
        note += f"<p class='meta latency-target'>{escape(cut.header())} (the overview lists "
        note += "every cell).</p>"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>greenbench report</title>
<style>{STYLE}</style>
<script>{get_plotlyjs()}</script>
<script>{LAZY_SCRIPT}</script>
</head><body>
<h1>greenbench report</h1>
<p class="meta">{loaded}; written {when}.</p>
{note}
{_filters(safe) if not frame.empty else ""}
<h2 id="overview">Overview</h2>
{overview_table(summary, unfinished) if not frame.empty else '<p class="missing">No records.</p>'}
{"".join(parts)}
<script>{FILTER_SCRIPT}</script>
</body></html>
"""
