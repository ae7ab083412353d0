"""What the terminal shows: a progress bar while cells run, then tables of results."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from greenbench.check import with_group_verdicts
from greenbench.conclusion import DEFAULT_BASELINE, conclusions
from greenbench.energy.codecarbon_meter import ignored_settings
from greenbench.eta import RunEta, fmt_eta
from greenbench.formatting import (
    ESTIMATE_MARK,
    MASS_SCALES,
    WIDE_MARK,
    ci_wider_than_mean,
    column_scale,
    energy_scale,
    energy_text,
    fidelity_cells,
    fmt,
    fmt_cosine,
    fmt_ms,
    fmt_pct,
    quality_text,
    window_count,
)
from greenbench.latency_view import RESPONSE_LATENCY, latency_header, phase_latency_columns
from greenbench.protocol import RELIABLE_WINDOW_S
from greenbench.records import Record
from greenbench.response_energy import RESPONSE, with_responses
from greenbench.stats import (
    SUMMARY_KEYS,
    in_catalogue_order,
    param_columns,
    phase_order,
    summarize_frame,
)
from greenbench.suite import Cell
from greenbench.sweep import sweeps_text
from greenbench.variants import variant_order

if TYPE_CHECKING:
    from greenbench.api import RunPlan


def energy_cell(mean: float, ci95: float, estimated: bool, factor: float = 1.0) -> Text:
    """A table cell for a mean and its CI, yellow when estimated."""
    return Text(energy_text(mean, ci95, estimated, factor), style="yellow" if estimated else "")


def marked_invalid(cell: Text, valid: bool) -> Text:
    """An energy cell, with INVALID beneath the figure when greenbench check judges the cell
    invalid (a line of its own: the table grows no wider); its reasons go under the table."""
    if not valid:
        cell.append("\nINVALID", style="bold red")
    return cell


def caption_invalid(table: Table, invalid: list[tuple[str, tuple[str, ...]]]) -> None:
    """Under the table, one red line per invalid cell (name, reasons): its first reason."""
    lines = []
    for name, reasons in invalid:
        more = f" (+{len(reasons) - 1} more: greenbench check)" if len(reasons) > 1 else ""
        lines.append(f"INVALID {name}: {reasons[0] if reasons else 'see greenbench check'}{more}")
    if not lines:
        return
    caption = Text(f"{table.caption}\n" if table.caption else "")
    caption.append("\n".join(lines), style="red")
    table.caption = caption


def print_left_out(count: int, console: Console) -> None:
    """The one line that says invalid cells were left out, and how to keep them."""
    if count:
        _note(
            console,
            f"{count} invalid cell(s) left out (see greenbench check); "
            "--include-invalid keeps them",
            "red",
        )


def param_text(value: Any) -> str:
    """A swept parameter's value in a table: 4, 0.5; `-` for a row without it."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return str(value)


def cell_name(row: pd.Series, swept: Sequence[str]) -> str:
    """`slm-135m/fp32/cpu batch=4`: a summary row's cell, with its swept values."""
    values = " ".join(f"{k}={param_text(row[k])}" for k in swept if param_text(row[k]) != "-")
    return f"{row['workload']}/{row['variant']}/{row['device']} {values}".strip()


def results_tables(frame: pd.DataFrame) -> list[Table]:
    """One table per phase, rows per workload x variant x device (and swept parameter value,
    a column each); invalid cells (greenbench check's verdict) in red, marked INVALID, their
    first reasons under the table."""
    summary = with_responses(with_group_verdicts(summarize_frame(frame), frame), SUMMARY_KEYS)
    if summary.empty:
        return []
    summary, swept = param_columns(summary)
    tables = []
    for phase in sorted(summary["phase"].unique(), key=phase_order):
        part = in_catalogue_order(
            summary[summary["phase"] == phase],
            ["workload", *swept, "variant", "device"],
            numeric=swept,
        )
        unit = part["unit"].iloc[0]
        factor, scale = energy_scale(part["j_per_unit"])
        derived = " (derived: prefill + decode, per sequence)" if phase == RESPONSE else ""
        table, same_methods = methods_table(
            f"{phase}: energy per {unit}{derived}, net of idle", part["methods"]
        )
        for header in ("workload", *swept, "variant", "device", "n"):
            table.add_column(header, justify="right" if header in swept else "left")
        table.add_column(f"{scale}/{unit} ± CI95", justify="right")
        table.add_column("CV", justify="right")
        table.add_column(f"{unit}s/s", justify="right")
        table.add_column("W", justify="right")
        grams, mass = column_scale(part["g_per_1k_units"], MASS_SCALES)
        table.add_column(f"{mass}CO2e/1k {unit}s", justify="right")
        latency = (
            [c for c in RESPONSE_LATENCY if part[c].notna().any()]
            if phase == RESPONSE
            else phase_latency_columns(part)
        )
        for column in latency:
            table.add_column(latency_header(column), justify="right")
        per_step = phase == "train"
        if per_step:
            table.add_column("J/step", justify="right")
        per_token = unit != "token" and part["j_per_token"].notna().any()
        if per_token:
            table.add_column("J/token", justify="right")
        scored = part["fidelity_top1"].notna().any()
        if scored:
            table.add_column("top-1 vs fp32", justify="right")
            table.add_column("KL", justify="right")
        with_quality = part["quality"].notna().any()
        if with_quality:
            table.add_column("quality", justify="right")
        cosine = part["fidelity_cosine"].notna().any()
        if cosine:
            table.add_column("cos vs fp32", justify="right")
        if not same_methods:
            table.add_column("methods")
        for _, row in part.iterrows():
            mark = ESTIMATE_MARK if row["estimated"] else ""
            cells = [
                row["workload"],
                *(param_text(row[k]) for k in swept),
                row["variant"],
                row["device"],
                window_count(row["n"], row.get("invalid", 0)),
                marked_invalid(
                    energy_cell(
                        row["j_per_unit"], row["j_per_unit_ci95"], row["estimated"], factor
                    ),
                    row["cell_valid"],
                ),
                fmt_pct(row["j_per_unit_cv"]),
                fmt(row["throughput"]),
                f"{mark}{fmt(row['power_w'])}",
                f"{mark}{fmt(row['g_per_1k_units'] / grams)}",
                *(fmt_ms(row[c]) for c in latency),
            ]
            if per_step:
                cells.append(f"{mark}{fmt(row['j_per_call'])}")
            if per_token:
                cells.append(f"{mark}{fmt(row['j_per_token'])}")
            if scored:
                cells += fidelity_cells(row)
            if with_quality:
                cells.append(quality_text(row["quality_metric"], row["quality"]))
            if cosine:
                cells.append(fmt_cosine(row["fidelity_cosine"]))
            if not same_methods:
                cells.append(row["methods"])
            table.add_row(*cells, style="" if row["cell_valid"] else "red")
        caption_invalid(
            table,
            [
                (cell_name(r, swept), r["cell_reasons"])
                for _, r in part[~part["cell_valid"]].iterrows()
            ],
        )
        tables.append(table)
    return tables


def methods_table(title: str, methods: pd.Series) -> tuple[Table, bool]:
    """A result table; when every row was measured the same way, the methods go in its caption
    (and the second value is True: no methods column is needed)."""
    same = methods.nunique() == 1
    caption = f"methods: {methods.iloc[0]}" if same else None
    return Table(title=title, title_justify="left", caption=caption, caption_justify="left"), same


def print_results(frame: pd.DataFrame, console: Console) -> None:
    for table in results_tables(frame):
        console.print(table)
    ok = frame[frame["status"] == "ok"]
    print_wide_intervals(ok, console)
    if not ok.empty and ok["estimated"].astype(bool).any():
        console.print(
            f"{ESTIMATE_MARK} estimate: a component that varies with the work was modelled, not "
            "read from an energy counter (see the method labels; a constant-power model such as "
            "ram-estimate cancels out of net figures)",
            style="yellow",
        )
    if not ok.empty and not ok["reliable"].astype(bool).all():
        console.print(
            f"windows shorter than {RELIABLE_WINDOW_S:g} s (--min-window): "
            "these numbers are less reliable",
            style="yellow",
        )
    print_series_emissions(ok, console)
    print_footprint(ok, console)
    print_partial_quantization(ok, console)
    print_foreign_processes(ok, console)
    print_method_notes(ok, console)
    print_invalid_windows(ok, console)
    print_unfinished(frame, console)


def _nothing_to_compare(ran: list[str]) -> str:
    """Why a run that measured something concludes nothing, and the flag that would."""
    if DEFAULT_BASELINE not in ran:
        return (
            f"{', '.join(ran)} ran without {DEFAULT_BASELINE}, the baseline: nothing to compare "
            f"with; add it, e.g. --variant {DEFAULT_BASELINE},{ran[0]}"
        )
    return (
        f"only {DEFAULT_BASELINE} ran: nothing to compare it with; add variants, e.g. "
        f"--variant {DEFAULT_BASELINE},int8-dynamic"
    )


def print_conclusion(frame: pd.DataFrame, console: Console) -> None:
    """The run's conclusion: each variant's energy per unit against the baseline's, in words."""
    found = conclusions(frame)
    ran = sorted(set(frame.loc[frame["status"] == "ok", "variant"]), key=variant_order)
    if not found:
        if ran:
            _note(console, f"conclusion: {_nothing_to_compare(ran)}", "")
        return
    console.print(
        Text(
            f"conclusion (energy per unit net of idle, ratio to {DEFAULT_BASELINE} [95% CI]):",
            style="bold",
        )
    )
    for found_one in found:
        _note(console, f"  {found_one.heading}", "")
        for sentence in found_one.phases:
            _note(console, f"    {sentence}", "red" if "INVALID" in sentence else "")


def print_wide_intervals(ok: pd.DataFrame, console: Console) -> None:
    """Explain the mark on an energy figure whose 95 % CI is wider than the figure."""
    if ok.empty:
        return
    summary = summarize_frame(ok)
    if any(map(ci_wider_than_mean, summary["j_per_unit"], summary["j_per_unit_ci95"])):
        _note(
            console,
            f"{WIDE_MARK} the 95 % CI is wider than the figure: its size, even its sign, is not "
            "known; give more --repetitions or a longer --min-window",
        )


def print_foreign_processes(ok: pd.DataFrame, console: Console) -> None:
    """Warn about cells whose GPU other processes were using while it was measured."""
    if "gpu_foreign_pids" not in ok:
        return
    shared = ok[ok["gpu_foreign_pids"].notna()]
    for cell_id, part in shared.groupby("cell_id"):
        console.print(
            f"warning: {cell_id}: other processes computed on its GPU during "
            f"{len(part)} window(s) (pids {', '.join(sorted(set(part['gpu_foreign_pids'])))}); "
            "its GPU energy includes their work",
            style="yellow",
            markup=False,
        )


def _note(console: Console, text: str, style: str = "yellow") -> None:
    """One line under the results, printed as written (labels may hold [brackets])."""
    console.print(text, style=style, markup=False)


def print_ignored_settings(console: Console) -> None:
    """Name the CodeCarbon settings a user set that greenbench overrode (so they are not
    mistaken for part of the figures)."""
    ignored = ignored_settings()
    if ignored:
        listed = ", ".join(f"{key}={value}" for key, value in ignored.items())
        _note(
            console,
            "note: CodeCarbon settings ignored, greenbench pins them so a figure means the same "
            f"everywhere: {listed}",
        )


def print_invalid_windows(ok: pd.DataFrame, console: Console) -> None:
    """Name every window whose figures cannot be right; the tables above leave them out."""
    if "valid" not in ok:
        return
    invalid = ok[ok["valid"].eq(False)]
    for _, row in invalid.iterrows():
        where = f"{row['cell_id']} {row['phase']} repetition {int(row['repetition'])}"
        _note(console, f"invalid, left out of the tables: {where}: {row['validity']}", "red")


def print_method_notes(ok: pd.DataFrame, console: Console) -> None:
    """Say which cells were measured another way than designed (a fallback), and why."""
    if "method_note" not in ok:
        return
    noted = ok[ok["method_note"].notna()]
    for cell_id, note in noted.groupby("cell_id")["method_note"].first().items():
        _note(console, f"note: {cell_id}: {note}")


def print_partial_quantization(ok: pd.DataFrame, console: Console) -> None:
    """Say which quantized cells left part of their Linear weights unquantized."""
    if "quantized_share" not in ok:
        return
    shares = pd.to_numeric(ok["quantized_share"], errors="coerce")
    for cell_id, share in shares[shares < 0.995].groupby(ok["cell_id"]).first().items():
        _note(
            console,
            f"note: {cell_id}: {share:.1%} of its Linear weights were quantized; the rest kept "
            "the model's precision (layers the quantization kernels cannot take)",
        )


def print_series_emissions(ok: pd.DataFrame, console: Console) -> None:
    """Total gross emissions by the grid's time-weighted intensity, beside the static figure."""
    charged = ok[ok["emissions_series_g"].notna()] if "emissions_series_g" in ok else ok.iloc[0:0]
    if charged.empty:
        return
    sources = ", ".join(sorted(charged["carbon_series_source"].dropna().unique()))
    console.print(
        f"emissions of {len(charged)} window(s) at the grid's intensity over their own time "
        f"({sources}): {fmt(charged['emissions_series_g'].sum())} gCO2e, against "
        f"{fmt(charged['emissions_g'].sum())} gCO2e at CodeCarbon's annual average",
        markup=False,
    )


def footprint_line(ok: pd.DataFrame) -> str | None:
    """Embodied emissions and water per unit of each cell (mean of its valid windows), with
    their sources: estimates beside the measured figures, never part of them."""
    if "water_per_unit_l" not in ok:
        return None
    rows = ok[ok["water_per_unit_l"].notna() & ok["valid"].ne(False)]
    if rows.empty:
        return None
    cells = []
    for cell_id, part in rows.groupby("cell_id", sort=False):
        embodied = pd.to_numeric(part["embodied_per_unit_g"], errors="coerce").mean()
        water = pd.to_numeric(part["water_per_unit_l"], errors="coerce").mean()
        unit = part["unit"].iloc[0]
        cells.append(f"{cell_id} {fmt(embodied)} gCO2e embodied, {fmt(water)} L water per {unit}")
    pues = ", ".join(fmt(p) for p in rows["pue"].dropna().unique())
    sources = "; ".join(
        dict.fromkeys(
            rows["embodied_source"].dropna().tolist() + rows["water_source"].dropna().tolist()
        )
    )
    listed = "; ".join(cells)
    return (
        f"footprint (estimate, PUE {pues}, not in the energy figures): {listed}. Sources: {sources}"
    )


def print_footprint(ok: pd.DataFrame, console: Console) -> None:
    line = footprint_line(ok)
    if line:
        _note(console, line, "dim")


def print_unfinished(frame: pd.DataFrame, console: Console) -> None:
    bad = frame[frame["status"].isin(["failed", "skipped"])]
    for (cell_id, status), part in bad.groupby(["cell_id", "status"], sort=False):
        style = "red" if status == "failed" else "dim"
        console.print(
            f"{status}: {cell_id}: {part['error'].iloc[0]}",
            style=style,
            markup=False,
            soft_wrap=True,
        )


class EtaColumn(ProgressColumn):
    """The run's time left (eta.RunEta), recomputed at every refresh so it counts down."""

    def __init__(self, eta: RunEta | None = None) -> None:
        super().__init__()
        self.eta = eta

    def render(self, task: Task) -> Text:
        if self.eta is None or task.finished:
            return Text("")
        return Text(fmt_eta(self.eta.remaining_s()), style="progress.remaining")


def window_order(cell: Cell, repetitions: int) -> list[tuple[str, int]]:
    """The windows of a cell in the order the protocol measures them: repetitions interleaved
    across phases (prefill 1, decode 1, prefill 2, ...)."""
    return [(phase, rep) for rep in range(1, repetitions + 1) for phase in cell.phases]


def group_window_order(cells: Sequence[Cell], repetitions: int) -> list[tuple[str, str, int]]:
    """(cell id, phase, repetition) of cells run in one child (a sweep), in the order the
    protocol measures them: each repetition across every cell's phases in turn."""
    return [
        (cell.cell_id, phase, rep)
        for rep in range(1, repetitions + 1)
        for cell in cells
        for phase in cell.phases
    ]


class RichReporter:
    """Progress bar over measured windows: the window being measured, windows done of the
    total, and the time left; one line per finished cell."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.clock = clock
        self.eta_column = EtaColumn()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("windows"),
            TimeElapsedColumn(),
            self.eta_column,
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.run_id: str | None = None  # known once the run's folder exists: for --resume
        self.repetitions = 1
        # cells run in one child (a sweep) -> their windows in order; each cell's group
        self.orders: dict[str, list[tuple[str, str, int]]] = {}
        self.group_of: dict[str, str] = {}

    def run_started(
        self, run_id: str, path: Path, cells: list[Cell], windows: int, plan: RunPlan
    ) -> None:
        self.run_id = run_id
        self.repetitions = plan.protocol.repetitions
        groups = plan.groups or tuple((cell,) for cell in plan.measured)
        for group in groups:
            key = group[0].cell_id
            self.orders[key] = group_window_order(group, self.repetitions)
            self.group_of.update((cell.cell_id, key) for cell in group)
        eta = RunEta(plan.protocol, self.clock)
        eta.plan_groups({group[0].cell_id: [len(c.phases) for c in group] for group in groups})
        self.eta_column.eta = eta
        sweeps = sweeps_text(cells)
        self.console.print(
            f"run {run_id}: {len(cells)} cell(s), {windows} measured window(s), results in {path}"
            + (f"; sweeps: {sweeps}" if sweeps else ""),
            markup=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("starting", total=max(windows, 1))

    @property
    def description(self) -> str:
        return str(self.progress.tasks[0].description) if self.progress.tasks else ""

    def _order(self, cell: Cell) -> list[tuple[str, str, int]]:
        """The windows of the child `cell` runs in (its sweep's, or its own), in order."""
        key = self.group_of.get(cell.cell_id)
        return self.orders[key] if key else group_window_order([cell], self.repetitions)

    def cell_started(self, cell: Cell) -> None:
        key = self.group_of.get(cell.cell_id, cell.cell_id)
        if self.eta_column.eta is not None:
            self.eta_column.eta.started(key)
        if key == cell.cell_id:  # a sweep's line names its first cell
            self.progress.update(self.task, description=f"{cell.cell_id}: starting")

    def cell_event(self, cell: Cell, event: dict[str, Any]) -> None:
        if event.get("type") == "stage" and event["stage"] == "measuring":
            first, phase, rep = self._order(cell)[0]
            now = f"idle baseline and warmup, then {phase} {rep}/{self.repetitions}"
            self.progress.update(self.task, description=f"{first}: {now}")
        elif event.get("type") == "stage":
            self.progress.update(self.task, description=f"{cell.cell_id}: {event['stage']}")
        elif event.get("type") == "window":  # one finished: name the one measured now
            order = self._order(cell)
            done = (cell.cell_id, event["phase"], event["repetition"])
            following = order.index(done) + 1 if done in order else len(order)
            if following < len(order):
                following_cell, phase, rep = order[following]
                now = f"{following_cell}: measuring {phase} {rep}/{self.repetitions}"
            else:
                now = f"{cell.cell_id}: idle after the windows"
            self.progress.update(self.task, advance=1, description=now)

    def cell_finished(self, cell: Cell, records: list[Record]) -> None:
        status = records[0]["status"] if records else "failed"
        if self.eta_column.eta is not None:
            key = self.group_of.get(cell.cell_id, cell.cell_id)
            self.eta_column.eta.finished(key, measured=status == "ok")
        style = {"ok": "green", "failed": "red", "skipped": "dim"}.get(status, "")
        self.console.print(f"{status:>7} {cell.cell_id}", style=style, markup=False)

    def close(self) -> None:
        self.progress.stop()
