"""The `greenbench` command: parse, call one API function, print."""

from __future__ import annotations

import argparse
import contextlib
import math
import shlex
import sys
import textwrap
import warnings
import webbrowser
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

import greenbench
from greenbench import cli_carbon, cli_exports
from greenbench.backends import list_devices, variant_devices
from greenbench.cli_history import add_history_parser
from greenbench.energy.power_limit import restore_left_limits
from greenbench.errors import GreenbenchError, GreenbenchWarning
from greenbench.executors import DEFAULT_EXECUTOR, EXECUTORS
from greenbench.exit_codes import EXIT_FAILED_CELLS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from greenbench.formatting import (
    ESTIMATE_MARK,
    energy_scale,
    energy_text,
    fidelity_cells,
    fmt,
    fmt_cosine,
    fmt_pct,
    quality_cells,
    window_count,
)
from greenbench.import_pytest_benchmark import import_pytest_benchmark
from greenbench.latency_target import parse_latency_targets
from greenbench.quiet import quiet_library_logs
from greenbench.records import COMPARE_AXES as AXES
from greenbench.suite import RunOverrides, builtin_suites, load_suite, workload_parameters
from greenbench.sweep import sweeps_text
from greenbench.variants import COMPILE_SUFFIX, known_variants
from greenbench.workloads import PRESETS

__all__ = ["EXIT_FAILED_CELLS", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


INCLUDE_INVALID_HELP = (
    "keep cells that `greenbench check` judges invalid in the ratios (left out by default; "
    "marked INVALID either way)"
)


COMPARE_EPILOG = """\
axes (--by):
  variant   fp32 against bf16, int8-dynamic, ... of the same workload, phase and device
  device    cpu against cuda, ... of the same workload, phase and variant
  workload  one workload against another, phase by phase
  run       one run against another of the same cells (a change of code, machine or
            settings): greenbench compare results/RUN_A results/RUN_B --by run
            --baseline RUN_A
  PARAM     a workload parameter a sweep varied (batch, prompt_tokens, ...): each value
            against the baseline value of the same workload, phase, variant and device:
            greenbench compare --by batch --baseline 1
  power_limit_w  one GPU power limit (W, run --power-limit) against another of the same cells
--baseline: the value of --by the ratios are taken against (default: fp32 for variant, the
smallest value for a parameter; for power_limit_w the cells without a set limit, else the
highest limit; else the first in sorted order).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greenbench",
        description="Energy benchmarks for ML workloads, with idle baseline and 95% CIs.",
    )
    parser.add_argument(
        "--version", action="version", version=f"greenbench {greenbench.__version__}"
    )
    # --out: before the command or after it (`greenbench schedule serve --out results`)
    parser.add_argument("--out", default="results", help=f"{OUT_HELP} (default results/)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run a suite and record its energy",
        epilog=parameters_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.set_defaults(func=cmd_run)
    add_run_overrides(run)
    add_out(run)
    run.add_argument("--resume", metavar="RUN", help="finish the cells a run did not finish")
    others = [name for name in EXECUTORS if name != DEFAULT_EXECUTOR]
    run.add_argument(
        "--executor",
        default=DEFAULT_EXECUTOR,
        choices=EXECUTORS,
        metavar="EXECUTOR",
        help=f"{DEFAULT_EXECUTOR} (default) or {' or '.join(others)}",
    )
    run.add_argument("--address", help="with --executor ray: auto or ray://HOST:PORT")
    run.add_argument(
        "--when-green", action="store_true", help="wait for the cleanest window, then run"
    )
    run.add_argument("--within", default="8h", help="with --when-green: start within (8h)")
    run.add_argument(
        "--duration", help="with --when-green: how long the run takes (default: earlier runs)"
    )
    run.add_argument(
        "--source",
        action="append",
        help="intensity source(s) (see forecast): plan --when-green, and charge each window at "
        "the grid's time-weighted intensity beside CodeCarbon's static figure",
    )

    forecast = sub.add_parser("forecast", help="the cleanest time to start a job of a duration")
    forecast.set_defaults(func=cli_carbon.cmd_forecast)
    forecast.add_argument("--zone", help="grid zone (default GB or $GREENBENCH_ZONE)")
    forecast.add_argument("--duration", default="1h", help="job length (default 1h)")
    forecast.add_argument("--within", default="8h", help="start within this long (default 8h)")
    forecast.add_argument(
        "--source",
        action="append",
        help="uk[:POSTCODE], electricitymaps[:ZONE], watttime:REGION, carbon-aware-sdk:LOCATION, "
        "file:PATH; repeat for a chain (default: uk for GB, then electricitymaps if configured)",
    )
    add_out(forecast, "results folder: the forecast cache and archive go under it")
    forecast.add_argument("--json", action="store_true", help="print JSON")

    listing = sub.add_parser("list", help="list workloads, variants and suites")
    listing.set_defaults(func=cmd_list)
    add_out(listing)
    devices = sub.add_parser(
        "devices", help="devices on this machine and how their energy is measured"
    )
    devices.set_defaults(func=cmd_devices)
    add_out(devices)

    axes = list(AXES)
    by_axis = sub.add_parser(
        "compare",
        help="compare results along one axis",
        description="Compare results along one axis, with J/unit ratios and their 95% CIs. "
        "Cells that `greenbench check` judges invalid are left out unless --include-invalid.",
        epilog=COMPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    by_axis.set_defaults(func=cmd_compare)
    by_axis.add_argument("paths", nargs="*", help="results folders or runs (default: --out)")
    by_axis.add_argument(
        "--by",
        default="variant",
        metavar="BY",
        help=f"{', '.join(axes)} or a swept workload parameter (default variant; see below)",
    )
    by_axis.add_argument("--baseline", help="the value of --by that ratios are taken against")
    by_axis.add_argument("--include-invalid", action="store_true", help=INCLUDE_INVALID_HELP)
    by_axis.add_argument(
        "--latency",
        action="append",
        metavar="TARGET",
        help="keep configurations meeting a latency target, quoted ('p90<=50ms', 'p99<1s', "
        "'ttft_p90<=200ms', 'tpot_p50<=30ms'; repeat: all must hold), ranked by energy per unit",
    )
    by_axis.add_argument(
        "--target-tokens",
        type=int,
        metavar="N",
        help="LMs: J for N generated tokens (prompts included), a derived figure that puts "
        "batch sizes on the same work",
    )

    check = sub.add_parser(
        "check", help="a validity verdict per measured cell; exit code 1 if any is invalid"
    )
    check.set_defaults(func=cmd_check)
    check.add_argument("paths", nargs="*", help="results folders or runs (default: --out)")

    report = sub.add_parser("report", help="write an HTML dashboard of results (Plotly)")
    report.set_defaults(func=cmd_report)
    report.add_argument("paths", nargs="*", help="results folders or runs (default: --out)")
    report.add_argument("-o", "--output", default="report.html", help="(default report.html)")
    report.add_argument("--baseline", help="a run id or results path to compare against")
    report.add_argument("--include-invalid", action="store_true", help=INCLUDE_INVALID_HELP)
    report.add_argument(
        "--latency",
        metavar="TARGET",
        help="keep only cells meeting a call-latency target, e.g. p90<=50ms (p50, p90, p99)",
    )
    report.add_argument("--open", action="store_true", help="open the page in a browser")
    report.add_argument("--serve", action="store_true", help="serve the page until Ctrl-C")
    report.add_argument("--host", default="127.0.0.1", help="address to serve on (127.0.0.1)")
    report.add_argument("--port", type=int, default=8000, help="port to serve on (8000)")

    backtest = sub.add_parser(
        "backtest", help="replay a carbon-intensity trace: what carbon-aware starts would save"
    )
    backtest.set_defaults(func=cli_carbon.cmd_backtest)
    backtest.add_argument("--trace", required=True, help="CSV or JSON intensity file")
    backtest.add_argument("--duration", default="30m", help="job length (default 30m)")
    backtest.add_argument("--at", default="01:00", help="usual daily start, UTC (default 01:00)")
    backtest.add_argument("--flex", default="8h", help="how far the start may move (default 8h)")
    backtest.add_argument("--forecast", default="perfect", help="perfect or noisy:PCT")
    backtest.add_argument("--seed", type=int, default=0, help="seed of the noisy forecast")
    backtest.add_argument("--interruptible", action="store_true", help="may split the job")
    backtest.add_argument("--from", dest="first_day", help="first day replayed (YYYY-MM-DD)")
    backtest.add_argument("--to", dest="last_day", help="last day replayed (YYYY-MM-DD)")
    backtest.add_argument("--json", action="store_true", help="print JSON")

    schedule = sub.add_parser("schedule", help="nightly carbon-aware runs (APScheduler)")
    add_out(schedule, "results folder holding the schedule")
    actions = schedule.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a schedule (or replace one, with --replace)")
    add_out(add, "results folder holding the schedule")
    add.set_defaults(func=cli_carbon.cmd_schedule_add)
    add.add_argument("name")
    add.add_argument("--suite", default="quick", help="suite name or .toml path (default quick)")
    add.add_argument("--cron", required=True, help='crontab line, e.g. "0 22 * * *"')
    add.add_argument("--tz", help="time zone the cron line is read in (default: this machine's)")
    add.add_argument("--within", default="8h", help="start the run within this long (8h)")
    add.add_argument("--zone", help="grid zone (default GB or $GREENBENCH_ZONE)")
    add.add_argument("--duration", help="the run's length (default: earlier runs of the suite)")
    add.add_argument("--source", action="append", help="intensity source(s), as for forecast")
    add.add_argument(
        "--replace", action="store_true", help="replace the schedule of this NAME if there is one"
    )
    listed = actions.add_parser("list", help="list schedules and planned runs")
    listed.set_defaults(func=cli_carbon.cmd_schedule_list)
    add_out(listed, "results folder holding the schedule")
    remove = actions.add_parser("remove", help="remove a schedule and its planned run")
    remove.set_defaults(func=cli_carbon.cmd_schedule_remove)
    remove.add_argument("name")
    add_out(remove, "results folder holding the schedule")
    serve = actions.add_parser("serve", help="run the scheduler until Ctrl-C")
    serve.set_defaults(func=cli_carbon.cmd_schedule_serve)
    add_out(serve, "results folder holding the schedule")
    cli_exports.add_metrics_options(serve)

    history = add_history_parser(sub)
    export = cli_exports.add_export_parser(sub)
    imports = sub.add_parser(
        "import-pytest-benchmark",
        help="turn a --benchmark-json file of energy_benchmark tests into greenbench records",
    )
    imports.set_defaults(func=cmd_import_pytest_benchmark)
    imports.add_argument("file", help="the JSON file pytest --benchmark-json wrote")
    add_out(imports)
    add_out(export, "results folder holding RUN")
    for command in (by_axis, check, report, history):
        add_out(command, "results folder read when no paths are given")
    add_out(backtest, "accepted as by every command; backtest writes nothing")
    return parser


OUT_HELP = "results folder"


def add_out(parser: argparse.ArgumentParser, help: str = OUT_HELP) -> None:
    """`--out` after a command too, so every printed hint runs as written. SUPPRESS as the
    default: a subcommand that is not given --out keeps the value given before it."""
    parser.add_argument("--out", default=argparse.SUPPRESS, help=f"{help} (default results/)")


def parameters_epilog() -> str:
    """`run --help`'s list of each workload's parameters, and how to set them."""
    lines = [
        "workload parameters (set with --param KEY=VALUE for every named workload that has KEY,",
        'or --param WORKLOAD.KEY=VALUE for one; VALUE is a TOML value: 4, true, "text",',
        '["decode"]; in a suite file: [params.WORKLOAD] KEY = VALUE; a numeric parameter given',
        "several values sweeps, a cell per value: --param batch=1,4,16 or batch = [1, 4, 16],",
        "several swept keys of a workload forming their product):",
    ]
    by_keys: dict[tuple[str, ...], list[str]] = {}
    for workload, parameters in workload_parameters().items():
        by_keys.setdefault(tuple(parameters), []).append(workload)
    for keys, names in by_keys.items():
        entry = f"{', '.join(names)}: {', '.join(keys)}"
        lines += textwrap.wrap(entry, 88, initial_indent="  ", subsequent_indent="    ")
    lines.append(
        "example: greenbench run --workload resnet50 --param batch=8 "
        '--param weights="/path/to/model"'
    )
    return "\n".join(lines)


def add_run_overrides(parser: argparse.ArgumentParser) -> None:
    """One flag per RunOverrides field; its destination is the field's name."""
    for name, option in RunOverrides.options().items():
        parser.add_argument(
            option.flag,
            dest=name,
            metavar=option.metavar,
            type=option.type,
            action="append" if option.repeatable else "store",
            help=option.help,
        )


def main(argv: Sequence[str] | None = None) -> int:

    quiet_library_logs()
    args = build_parser().parse_args(argv)
    if getattr(args, "paths", None) == []:  # compare, check, report, history: read --out
        args.paths = [args.out]
    # markup off: labels, paths and hints such as "greenbench[onnx]" are printed as they are
    console = Console(markup=False)
    if not console.is_terminal:
        console = Console(width=140, markup=False)  # logs and pipes: wide rows, not wrapped
    errors = Console(stderr=True, markup=False)
    with warnings.catch_warnings():  # restores the warning filters and printer on return
        warnings.simplefilter("always", GreenbenchWarning)
        warnings.showwarning = _one_line_warnings(errors, warnings.showwarning)
        try:
            return args.func(args, console)
        except GreenbenchError as e:
            errors.print(f"greenbench: error: {e}", markup=False, highlight=False, soft_wrap=True)
            return EXIT_USAGE


def _one_line_warnings(errors: Console, others: Callable[..., None]) -> Callable[..., None]:
    """A warnings printer: greenbench's own as `greenbench: warning: ...`, others as before."""

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, GreenbenchWarning):
            text = " ".join(str(message).split())
            errors.print(f"greenbench: warning: {text}", highlight=False, soft_wrap=True)
        else:
            others(message, category, *args, **kwargs)

    return show


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from greenbench.terminal import (
        RichReporter,
        print_conclusion,
        print_ignored_settings,
        print_results,
    )

    if args.when_green:
        try:
            cli_carbon.wait_for_green(args, console)
        except KeyboardInterrupt:
            console.print("interrupted while waiting: nothing was run", style="yellow")
            return EXIT_INTERRUPTED
    reporter = RichReporter(console)
    try:
        result = greenbench.run(
            **RunOverrides.from_args(args).as_kwargs(),
            out=args.out,
            resume=args.resume,
            reporter=reporter,
            carbon_sources=args.source,
            executor=args.executor,
            address=args.address,
        )
    except KeyboardInterrupt:
        console.print(interrupted_hint(reporter.run_id, args.out), style="yellow", markup=False)
        return EXIT_INTERRUPTED
    finally:
        reporter.close()
    frame = result.to_frame()
    print_results(frame, console)
    print_ignored_settings(console)
    if result.carbon_series_error:
        console.print(
            f"not charged at the grid's intensity: {result.carbon_series_error}",
            style="yellow",
            markup=False,
        )
    print_conclusion(frame, console)
    console.print(f"records: {result.path}  (compare: greenbench compare {result.path})")
    if not result.ok:
        console.print(
            f"{len({r['cell_id'] for r in result.failed})} cell(s) failed; rerun them with "
            f"greenbench run --resume {result.run_id} --out {shlex.quote(args.out)}",
            style="red",
        )
        return EXIT_FAILED_CELLS
    return EXIT_OK


def interrupted_hint(run_id: str | None, out: str) -> str:
    """What Ctrl-C left, and the command that finishes it, exactly as it runs."""
    if run_id is None:
        return "interrupted before the run started: nothing was recorded"
    return (
        "interrupted: what finished is saved; finish the rest with "
        f"greenbench run --resume {run_id} --out {shlex.quote(out)}"
    )


def cmd_devices(args: argparse.Namespace, console: Console) -> int:
    restore_left_limits()  # GPU power limits a killed run left set: each said as a warning
    table = Table(title="devices", title_justify="left")
    for header in ("--device", "present", "what", "energy measured by"):
        table.add_column(header)
    for info in list_devices():
        table.add_row(
            info.device,
            "yes" if info.present else "no",
            info.what,
            info.method,
            style="" if info.present else "dim",
        )
    console.print(table)
    return EXIT_OK


def cmd_list(args: argparse.Namespace, console: Console) -> int:

    table = Table(title="workloads", title_justify="left")
    for header in ("name", "task", "phases", "parameters", "defaults", "description"):
        table.add_column(header)
    for preset in PRESETS.values():
        params = {k: v for k, v in preset.defaults.items() if k != "phases"}
        table.add_row(
            preset.name,
            preset.task,
            ", ".join(preset.phases(preset.defaults)),
            f"{preset.parameter_count() / 1e6:.2f} M",
            " ".join(f"{k}={v}" for k, v in params.items()),
            preset.description,
        )
    console.print(table)
    variants = Table(title="variants", title_justify="left")
    for header in ("name", "training", "devices", "what it does"):
        variants.add_column(header)
    for variant in known_variants():
        base = variant.base
        variants.add_row(
            base.name,
            "yes" if base.training else "no",
            ", ".join(variant_devices(variant)),
            base.description,
        )
    console.print(variants)
    console.print(f"add {COMPILE_SUFFIX} to any variant for torch.compile: bf16{COMPILE_SUFFIX}")
    console.print(suites_table())
    return EXIT_OK


def suites_table() -> Table:
    """The built-in suites: what each runs, its cells (skipped ones known before running) and
    how long it takes where it was timed (the suite's `expected_duration`)."""
    from greenbench.api import skip_reason  # pandas: not for `greenbench --help`

    table = Table(title="suites (greenbench run --suite NAME)", title_justify="left")
    for header in ("name", "cells", "expected duration", "description"):
        table.add_column(header)
    for name, path in builtin_suites().items():
        try:
            suite = load_suite(str(path))
        except GreenbenchError as e:  # one broken file must not hide the others
            table.add_row(name, "-", "-", f"cannot load: {e}", style="red")
            continue
        cells = suite.cells()
        skipped = sum(skip_reason(cell) is not None for cell in cells)
        count = f"{len(cells)} ({skipped} skipped)" if skipped else str(len(cells))
        sweeps = sweeps_text(cells)
        description = f"{suite.description} (sweeps: {sweeps})" if sweeps else suite.description
        table.add_row(name, count, suite.expected_duration or "not timed", description.strip())
    return table


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    # pandas: only the commands reading results
    from greenbench.compare import AXIS_COLUMN, LEFT_OUT, compare
    from greenbench.results import load_results
    from greenbench.stats import param_columns
    from greenbench.terminal import (
        caption_invalid,
        energy_cell,
        marked_invalid,
        methods_table,
        print_left_out,
    )

    targets = parse_latency_targets(args.latency)  # bad text fails before results are read
    frame = load_results(args.paths)
    table_data = compare(
        frame,
        args.by,
        args.baseline,
        include_invalid=args.include_invalid,
        target_tokens=args.target_tokens,
    )
    left_out = table_data.attrs.get(LEFT_OUT, 0)
    if targets and not table_data.empty:
        return print_latency_view(table_data, args, targets, console)
    if table_data.empty:
        what = "valid cells" if left_out else "successful records"
        console.print(f"no {what} under {', '.join(args.paths)}")
        print_left_out(left_out, console)
        return EXIT_OK
    column = table_data.attrs[AXIS_COLUMN]
    # one value on the axis: every ratio would be 1; the figures, without ratios, and why
    comparable = table_data[column].nunique() > 1
    identity = [k for k in ("workload", "phase", "variant", "device", "run_id") if k in table_data]
    if column not in identity:  # a parameter's values: beside the workload
        identity.insert(1, column)
    # machines are columns only where they tell rows apart; parameters by the values that do
    apart = [
        k
        for k in ("node", "power_limit_w")
        if k in table_data and table_data.groupby(identity)[k].nunique().max() > 1
    ]
    table_data, swept = param_columns(table_data)
    keys = [*identity, *apart, *swept]
    # a column with one value for every row goes into the title instead
    constant = [k for k in keys if k not in (column, "phase") and table_data[k].nunique() == 1]
    keys = [k for k in keys if k not in constant]
    scope = "".join(f", {k} {table_data[k].iloc[0]}" for k in constant)
    factor, scale = energy_scale(table_data["j_per_unit"])
    baseline = table_data["baseline"].iloc[0]
    ratios = f", ratios to {baseline}" if comparable else ""
    table, same_methods = methods_table(
        f"by {args.by}{scope}: energy per unit net of idle{ratios}", table_data["methods"]
    )
    for key in keys:
        table.add_column(key, style="bold" if key == column else "", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column(f"{scale}/unit ± CI95", justify="right", no_wrap=True)
    table.add_column("CV", justify="right")
    if comparable:
        table.add_column("ratio [95% CI]", justify="right", no_wrap=True)
    for header in ("units/s", "top-1", "KL"):  # W and gCO2e: in the run's own tables
        table.add_column(header, justify="right")
    # text kinds (J per sequence) state their tokens; embeddings score a cosine, not top-1
    extras = [
        (header, key, show)
        for header, key, show in (
            ("J/token", "j_per_token", fmt),
            ("cos", "fidelity_cosine", fmt_cosine),
            ("gCO2e emb./unit ~", "embodied_g_per_unit", fmt),  # estimates: footprint.py
            ("L water/unit ~", "water_l_per_unit", fmt),
        )
        if key in table_data and table_data[key].notna().any()
    ]
    for header, _, _ in extras:
        table.add_column(header, justify="right")
    derived = "j_for_target" in table_data
    if derived:
        table.add_column(f"J/{args.target_tokens} tokens (derived)", justify="right")
    with_quality = table_data["quality"].notna().any()
    if with_quality:
        table.add_column("quality", justify="right")
        table.add_column(f"vs {baseline}", justify="right")
    if not same_methods:
        table.add_column("methods")
    invalid: list[tuple[str, tuple[str, ...]]] = []
    shown = {k: "-" for k in swept}  # a row without the parameter
    parameters = {*swept, *([column] if column not in AXES.values() else [])}
    for _, row in table_data.iterrows():
        ratio_text = fmt(row["ratio"])
        if math.isfinite(row["ratio_low"]):
            ratio_text += f" [{fmt(row['ratio_low'])}, {fmt(row['ratio_high'])}]"
        if row["significant"]:
            ratio_text += " *"
        names = {k: str(row[k]) if row[k] is not None else shown[k] for k in keys}
        names["phase"] = f"{row['phase']} ({row['unit']})"
        table.add_row(
            *names.values(),
            window_count(row["n"], row.get("invalid", 0)),
            marked_invalid(
                energy_cell(row["j_per_unit"], row["j_per_unit_ci95"], row["estimated"], factor),
                row["cell_valid"],
            ),
            fmt_pct(row["j_per_unit_cv"]),
            *([ratio_text] if comparable else []),
            fmt(row["throughput"]),
            *fidelity_cells(row),
            *(show(row[key]) for _, key, show in extras),
            *([target_cell(row)] if derived else []),
            *(quality_cells(row) if with_quality else []),
            *([] if same_methods else [row["methods"]]),
            style="" if row["cell_valid"] else "red",
        )
        if not row["cell_valid"]:
            named = [f"{k}={v}" if k in parameters else v for k, v in names.items()]
            invalid.append((" ".join(named), row["cell_reasons"]))
    caption_invalid(table, invalid)
    console.print(table)
    if comparable:
        console.print("* the 95% CI of the ratio excludes 1: a difference beyond the noise")
    else:
        console.print(nothing_to_compare(args.by, str(table_data[column].iloc[0])), markup=False)
    if invalid:
        console.print(
            "INVALID: greenbench check judges the cell invalid (its first reason under the "
            "table): its ratios are never marked *",
            style="red",
            markup=False,
        )
    if table_data["estimated"].any():
        console.print(f"{ESTIMATE_MARK} estimate: modelled, not read from a counter")
    if any(key in ("embodied_g_per_unit", "water_l_per_unit") for _, key, _ in extras):
        console.print(
            "~ footprint estimates, not measured: embodied from Boavizta's data, water from a "
            "WUE factor (sources in the records' embodied_source and water_source)",
            markup=False,
        )
    print_left_out(left_out, console)
    return EXIT_OK


def target_cell(row: Any) -> str:
    """J for --target-tokens generated tokens on a response row; `-` on other rows."""
    return energy_text(row["j_for_target"], row["j_for_target_ci95"], bool(row["estimated"]))


def print_latency_view(
    table_data: Any, args: argparse.Namespace, targets: list[Any], console: Console
) -> int:
    """`compare --latency`: configurations meeting the targets, ranked (latency_rank.py)."""
    from greenbench.compare import LEFT_OUT
    from greenbench.latency_rank import rank_by_latency
    from greenbench.latency_view import print_latency_ranking
    from greenbench.stats import SUMMARY_KEYS
    from greenbench.terminal import print_left_out

    keys = [k for k in (*SUMMARY_KEYS, "run_id") if k in table_data]
    print_latency_ranking(rank_by_latency(table_data, keys, targets), console)
    print_left_out(table_data.attrs.get(LEFT_OUT, 0), console)
    return EXIT_OK


def nothing_to_compare(by: str, value: str) -> str:
    """Why a compare table has no ratios: its axis has one value."""
    others = ", ".join(axis for axis in AXES if axis != by)
    return (
        f"nothing to compare by {by}: every result has the same {by} ({value}); compare by "
        f"another axis ({others}), or add results of another {by}"
    )


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    from greenbench.check import verdicts  # pandas: only the commands that read results
    from greenbench.results import load_results

    found = verdicts(load_results(args.paths))
    if not found:
        console.print(f"no measured cells under {', '.join(args.paths)}")
        return EXIT_OK
    table = Table(title="validity (rules: greenbench/check.py)", title_justify="left")
    for header in ("run", "cell", "phase", "verdict", "reasons"):
        table.add_column(header, no_wrap=header != "reasons")
    for v in found:
        verdict = "valid" if v.valid else "INVALID"
        table.add_row(v.run_id, v.cell_id, v.phase, verdict, "; ".join(v.reasons) or "-",
                      style="" if v.valid else "red")  # fmt: skip
    console.print(table)
    invalid = sum(not v.valid for v in found)
    console.print(f"{len(found) - invalid} valid, {invalid} invalid")
    return EXIT_FAILED_CELLS if invalid else EXIT_OK


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from greenbench.report.build import report_path, write_report
    from greenbench.report.serve import make_server

    # a busy port or a bad --host fails before the report is built, not after
    server = make_server(report_path(args.output), args.host, args.port) if args.serve else None
    try:
        path, count = write_report(
            args.paths,
            args.output,
            args.baseline,
            include_invalid=args.include_invalid,
            latency=args.latency,
        )
        console.print(f"report: {path} ({count} records, {path.stat().st_size / 1e6:.1f} MB)")
        if args.open:
            webbrowser.open(path.resolve().as_uri())
        if server is not None:
            host = f"[{args.host}]" if ":" in args.host else args.host
            console.print(f"serving on http://{host}:{server.port}/ (Ctrl-C stops)")
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
    finally:
        if server is not None:
            server.server_close()
    return EXIT_OK


def cmd_import_pytest_benchmark(args: argparse.Namespace, console: Console) -> int:

    store = import_pytest_benchmark(args.file, args.out)
    count = sum(1 for _ in store.records_path.open())
    console.print(f"imported {count} record(s) into {store.path}")
    console.print(f"compare: greenbench compare {store.path} --by workload")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
