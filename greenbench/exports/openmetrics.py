"""A run's per-cell figures as Prometheus text (node-exporter's textfile collector reads it),
and the collector `schedule serve --metrics-port` exposes at /metrics.

Each gauge carries the labels workload, phase, variant, device, node, params, unit, run_id and
method: `measured` where every component was metered, `estimated` where the net figure rests
on a modelled component (energy.methods). Per-unit figures are net of the idle baseline, as in
every greenbench table; energy and emissions per window are gross.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from greenbench.exports.run_data import RunData, cell_figures, finite

LABELS = ("workload", "phase", "variant", "device", "node", "params", "unit", "run_id", "method")
METHOD_NOTE = (
    " method=measured: every component metered; method=estimated: the figure rests on a "
    "modelled component (CPU or RAM estimate)."
)
# name -> (cell_figures column, HELP)
GAUGES: dict[str, tuple[str, str]] = {
    "greenbench_energy_per_unit_joules": (
        "j_per_unit",
        "Mean energy per unit (token, image, ...) net of the idle baseline, J.",
    ),
    "greenbench_energy_per_unit_ci95_low_joules": (
        "ci_low",
        "Lower bound of the 95% confidence interval of the net energy per unit, J.",
    ),
    "greenbench_energy_per_unit_ci95_high_joules": (
        "ci_high",
        "Upper bound of the 95% confidence interval of the net energy per unit, J.",
    ),
    "greenbench_window_net_energy_joules": (
        "net_energy_j",
        "Mean energy of a measured window net of the idle baseline, J.",
    ),
    "greenbench_window_emissions_grams": (
        "emissions_g",
        "Mean gross emissions of a measured window, g CO2e (the window's energy at the grid's "
        "carbon intensity).",
    ),
    "greenbench_throughput_units_per_second": ("throughput", "Mean units per second."),
    "greenbench_call_p90_seconds": (
        "call_p90_s",
        "Mean over windows of the 90th percentile of call durations, s.",
    ),
}


def cell_rows(run: RunData) -> pd.DataFrame:
    cells = cell_figures(run.records)
    if cells.empty:
        return cells
    cells["ci_low"] = cells["j_per_unit"] - cells["j_per_unit_ci95"]
    cells["ci_high"] = cells["j_per_unit"] + cells["j_per_unit_ci95"]
    return cells


def metric_families(run: RunData | None) -> Iterator[Any]:
    """One GaugeMetricFamily per figure, one sample per cell (NaN figures left out)."""
    from prometheus_client.core import GaugeMetricFamily

    cells = cell_rows(run) if run is not None else pd.DataFrame()
    for name, (column, help_text) in GAUGES.items():
        family = GaugeMetricFamily(name, help_text + METHOD_NOTE, labels=list(LABELS))
        for _, cell in cells.iterrows():
            value = finite(cell.get(column))
            if value is not None:
                family.add_metric(_labels(cell, run), value)
        yield family


def _labels(cell: pd.Series, run: RunData | None) -> list[str]:
    values = {k: str(cell.get(k) or "") for k in LABELS}
    values["run_id"] = run.run_id if run is not None else ""
    values["method"] = "estimated" if cell.get("estimated") else "measured"
    return [values[k] for k in LABELS]


class RunCollector:
    """A prometheus-client collector of one run's figures (or of `latest()`'s, per scrape)."""

    def __init__(self, run: RunData | None = None, latest: Any = None) -> None:
        self.run, self.latest = run, latest

    def collect(self) -> Iterator[Any]:
        yield from metric_families(self.latest() if self.latest is not None else self.run)


def registry_of(collector: RunCollector) -> Any:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def export(run: RunData) -> bytes:
    from prometheus_client import generate_latest

    return bytes(generate_latest(registry_of(RunCollector(run))))
