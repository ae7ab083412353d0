"""The carbon-aware commands: forecast, backtest, schedule, and run --when-green's wait."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import time

from rich.console import Console
from rich.table import Table

from greenbench import cli_exports
from greenbench.carbon.backtest import backtest, parse_forecast
from greenbench.carbon.green import estimate_duration, plan_green, wait_until
from greenbench.carbon.sources.chain import NoUsableSource
from greenbench.carbon.sources.file import load_series
from greenbench.carbon.timeparse import parse_clock, parse_duration
from greenbench.carbon.zones import ZONE_ENV, default_zone, resolve_zone
from greenbench.errors import GreenbenchError
from greenbench.exit_codes import EXIT_OK
from greenbench.suite import RunOverrides, load_suite, resolve_suite


def wait_for_green(args: argparse.Namespace, console: Console) -> None:
    """Check the suite, plan the cleanest start, count down to it; run now if no source answers."""

    if args.resume:
        raise GreenbenchError("--when-green plans new runs; resume without it")
    suite = resolve_suite(RunOverrides.from_args(args))  # a bad suite fails now, not after the wait
    within = parse_duration(args.within, "--within")
    duration = (
        parse_duration(args.duration, "--duration")
        if args.duration
        else estimate_duration(args.out, suite.name)
    )
    if duration is None:
        raise GreenbenchError(
            f"--when-green: no earlier complete run of suite '{suite.name}' in {args.out}/ "
            "to estimate its length; give --duration (e.g. --duration 20m)"
        )
    try:
        green = plan_green(args.zone or default_zone(), duration, within, args.source, args.out)
    except NoUsableSource as e:
        console.print(f"{e}: running now, as planned", style="yellow")
        return
    except GreenbenchError as e:  # e.g. the forecast covers less than the run needs
        console.print(f"no plan ({e}): running now, as planned", style="yellow")
        return
    console.print(green.describe())
    with console.status("") as status:
        wait_until(
            green.plan.start,
            lambda left: status.update(
                f"waiting for the cleanest window: {str(left).split('.')[0]}"
            ),
            time.sleep,
        )


def cmd_schedule_add(args: argparse.Namespace, console: Console) -> int:
    from greenbench.schedule import ScheduleStore  # APScheduler: schedule actions only

    store = ScheduleStore(args.out)
    load_suite(args.suite)  # a bad suite fails now, not at 22:00
    try:
        zone = resolve_zone(args.zone or default_zone()).code
    except ValueError as e:
        raise GreenbenchError(f"--zone: {e}") from None
    duration = parse_duration(args.duration, "--duration") if args.duration else None
    job, replaced = store.add(
        args.name,
        args.suite,
        args.cron,
        parse_duration(args.within, "--within").total_seconds(),
        zone,
        args.source,
        duration.total_seconds() if duration else None,
        args.tz,
        replace=args.replace,
    )
    done = "replaced" if replaced else "added"
    console.print(f"{done} schedule {job.describe()}")
    console.print(f"it runs while `greenbench schedule serve --out {shlex.quote(args.out)}` runs")
    return EXIT_OK


def cmd_schedule_list(args: argparse.Namespace, console: Console) -> int:
    from greenbench.schedule import ScheduleStore  # APScheduler: schedule actions only

    jobs = ScheduleStore(args.out).list()
    if not jobs:
        console.print("no schedules; add one with `greenbench schedule add`")
        return EXIT_OK
    table = Table(title=f"schedules in {args.out}/", title_justify="left")
    for header in ("name", "cron", "time zone", "suite", "zone", "start within", "next run (UTC)",
                   "next run (local)"):  # fmt: skip
        table.add_column(header, no_wrap=True)
    for job in jobs:
        utc, local = job.next_run()
        table.add_row(
            job.name,
            job.cron or "planned run",
            job.tz or "-",
            str(job.kwargs.get("suite", "-")),
            str(job.kwargs.get("zone", "-")),
            job.within,
            utc,
            local,
        )
    console.print(table)
    console.print(f"they run while `greenbench schedule serve --out {shlex.quote(args.out)}` runs")
    return EXIT_OK


def cmd_schedule_remove(args: argparse.Namespace, console: Console) -> int:
    from greenbench.schedule import ScheduleStore  # APScheduler: schedule actions only

    removed = ScheduleStore(args.out).remove(args.name)
    console.print(f"removed {removed} job(s) of '{args.name}'")
    return EXIT_OK


def cmd_schedule_serve(args: argparse.Namespace, console: Console) -> int:
    from greenbench.schedule import serve  # APScheduler: schedule actions only

    metrics = cli_exports.start_metrics(args, console)  # a busy port fails before serving
    console.print(f"serving the schedules in {args.out}/ (Ctrl-C stops)")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            serve(args.out)
    finally:
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()
    return EXIT_OK


def grid_zone(flag_value: str | None) -> str:
    """--zone, else $GREENBENCH_ZONE, else GB: upper-cased, its country a known ISO code (an
    Electricity Maps sub-zone such as US-CAL-CISO passes by its country); GreenbenchError."""
    code = (flag_value or default_zone()).strip().upper()
    try:
        resolve_zone(code.split("-")[0])
    except ValueError as e:
        where = "--zone" if flag_value else f"${ZONE_ENV}"
        raise GreenbenchError(f"{where}: {e}") from None
    return code


# what to do when the default chain has nothing to ask (every zone but GB without a token)
SOURCE_HINT = (
    "for a forecast, set GREENBENCH_ELECTRICITYMAPS_TOKEN (any zone), or "
    "GREENBENCH_WATTTIME_USERNAME and GREENBENCH_WATTTIME_PASSWORD with --source watttime:REGION, "
    "or GREENBENCH_CARBON_AWARE_SDK_URL with --source carbon-aware-sdk:LOCATION; "
    "or read your own: --source file:PATH (a CSV of times and gCO2/kWh, or JSON)"
)


def cmd_forecast(args: argparse.Namespace, console: Console) -> int:

    zone = grid_zone(args.zone)
    try:
        green = plan_green(
            zone,
            parse_duration(args.duration, "--duration"),
            parse_duration(args.within, "--within"),
            args.source,
            args.out,
        )
    except NoUsableSource as e:
        if args.source:  # the user chose the sources: their failures are the message
            raise
        raise NoUsableSource(f"{e}; {SOURCE_HINT}") from None
    if args.json:
        print(json.dumps(green.as_dict(), indent=2))
    else:
        console.print(green.describe())
        for failure in green.forecast.failures:
            console.print(f"  tried first: {failure}", style="dim", markup=False)
    return EXIT_OK


def cmd_backtest(args: argparse.Namespace, console: Console) -> int:
    import datetime as dt

    def day(text: str | None, flag: str) -> dt.date | None:
        try:
            return dt.date.fromisoformat(text) if text else None
        except ValueError:
            raise GreenbenchError(f"{flag}: '{text}' is not a date; write YYYY-MM-DD") from None

    result = backtest(
        load_series(args.trace),
        parse_duration(args.duration, "--duration"),
        parse_clock(args.at, "--at"),
        parse_duration(args.flex, "--flex"),
        parse_forecast(args.forecast, args.seed),
        args.interruptible,
        day(args.first_day, "--from"),
        day(args.last_day, "--to"),
    )
    if args.json:
        print(json.dumps({"trace": args.trace, **result.as_dict()}, indent=2))
        return EXIT_OK
    how = "split into the cleanest slots" if result.interruptible else "one contiguous run"
    console.print(
        f"{result.days} days ({result.first_day} to {result.last_day}), a {args.duration} job "
        f"at {result.at} UTC, ±{args.flex}, {how}, forecast {result.forecast}:"
    )
    console.print(
        f"  usual start {result.usual_g_per_kwh:.1f} gCO2/kWh, planned "
        f"{result.planned_g_per_kwh:.1f} (saving {result.saving_pct:.2f} %), oracle "
        f"{result.oracle_g_per_kwh:.1f} (saving {result.oracle_saving_pct:.2f} %)"
    )
    return EXIT_OK
