"""Nightly carbon-aware runs with APScheduler 3, persisted in SQLite under results/.

A schedule NAME is a cron job `plan:NAME` (cron read in the user's time zone, so "0 22 * * *"
stays 22:00 across DST). When it fires it plans the cleanest start within `within` and adds the
one-shot job `run:NAME`, which runs the suite. Jobs have explicit ids and replace_existing, so a
restart never duplicates them; coalesce plus a misfire grace time make a run missed while
`schedule serve` was down run once when it comes back, neither zero times nor many. The
scheduler works in UTC; times are shown in UTC and local time.

`schedule add` and `remove` write the SQLite file from another process, and APScheduler 3 only
looks at its store when it wakes (for its own next job, or an add_job in its own process); so
`serve` wakes at least every POLL_S seconds to read the store again (`PollingScheduler`).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy.exc
import tzlocal
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

import greenbench
from greenbench.carbon.green import estimate_duration, plan_green
from greenbench.carbon.sources.chain import NoUsableSource, build_source, credentials
from greenbench.errors import GreenbenchError, one_line

DB_NAME = "schedule.sqlite"
MISFIRE_GRACE_S = 6 * 3600  # a run missed by less than this still runs, once
POLL_S = 5.0  # serve reads the store at least this often: jobs other processes add fire on time
CRON_HORIZON = dt.timedelta(days=400 * 366)  # every date and weekday recurs within 400 years
# the scheduler `serve` runs, so a planner job can add its one-shot run
_ACTIVE: BaseScheduler | None = None

log = logging.getLogger("greenbench.schedule")


class OfflineScheduler(BaseScheduler):
    """Reads and writes the job store, and never runs a job: it has no loop to wake.

    A paused BackgroundScheduler is not safe for this: on shutdown its loop processes due
    jobs once more, advancing a missed run that `schedule serve` should still catch up.
    """

    def wakeup(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)


class PollingScheduler:
    """Mixed into a running scheduler: never sleeps longer than `poll_s` before reading the store.

    APScheduler 3 sleeps until the next run time it knows of, or forever when it knows of none,
    so without this a job that another process adds, moves earlier or replaces is seen only
    after a restart. Each wake costs two small queries on the SQLite file.
    """

    poll_s: float = POLL_S

    def _process_jobs(self) -> float | None:
        try:
            wait: float | None = super()._process_jobs()  # type: ignore[misc]
        except Exception as e:  # e.g. a job another process removed mid-pass: next wake retries
            log.warning(
                "schedule: job store pass failed (%s); retrying in %s s", one_line(e), self.poll_s
            )
            return self.poll_s
        if self.state == STATE_PAUSED:  # type: ignore[attr-defined]
            return wait
        return self.poll_s if wait is None else min(wait, self.poll_s)


class PollingBlockingScheduler(PollingScheduler, BlockingScheduler):
    """`schedule serve` in the foreground."""


class PollingBackgroundScheduler(PollingScheduler, BackgroundScheduler):
    """`schedule serve` in a thread (tests, and callers of `serve(blocking=False)`)."""


def store_path(out: str | Path) -> Path:
    return Path(out).resolve() / DB_NAME


def make_scheduler(
    out: str | Path, kind: str = "background", poll_s: float = POLL_S
) -> BaseScheduler:
    """A scheduler on the SQLite store: "background", "blocking" or "offline" (store only).

    The running kinds re-read the store every `poll_s` seconds (see PollingScheduler).
    """
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GreenbenchError(
            f"--out {out}: cannot hold the schedule ({e.strerror or e}); give a folder"
        ) from None
    classes: dict[str, type[BaseScheduler]] = {
        "background": PollingBackgroundScheduler,
        "blocking": PollingBlockingScheduler,
        "offline": OfflineScheduler,
    }
    scheduler = classes[kind](
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{store_path(out)}")},
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={
            "coalesce": True,
            "misfire_grace_time": MISFIRE_GRACE_S,
            "max_instances": 1,
        },
        timezone=dt.UTC,
    )
    if isinstance(scheduler, PollingScheduler):
        scheduler.poll_s = poll_s
    return scheduler


@contextlib.contextmanager
def readable_store(out: str | Path) -> Iterator[None]:
    """Turns a corrupt, unreadable or unwritable schedule.sqlite into a one-line error."""
    try:
        yield
    except sqlalchemy.exc.SQLAlchemyError as e:
        reason = " ".join(str(getattr(e, "orig", None) or e).split())
        fix = (
            "another process is writing it; try again"
            if "locked" in reason
            else "move it aside and add the schedules again, or use another --out"
        )
        raise GreenbenchError(
            f"{store_path(out)}: not a usable schedule store ({reason}); {fix}"
        ) from None


def time_zone(tz: str) -> zoneinfo.ZoneInfo:
    """The IANA zone `tz` names; GreenbenchError naming --tz."""
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise GreenbenchError(
            f"--tz: unknown time zone '{tz}'; give an IANA name such as Europe/London or UTC"
        ) from None


def cron_trigger(cron: str, tz: str | None = None, now: dt.datetime | None = None) -> CronTrigger:
    """A CronTrigger from a 5-field crontab line, read in `tz` (default: this machine's zone).

    A line that never fires (the 30th of February) is refused, not stored as a paused job.
    """
    zone = time_zone(tz) if tz else local_zone_name()
    try:
        trigger = CronTrigger.from_crontab(cron_weekdays_as_names(cron), timezone=zone)
    except (ValueError, LookupError) as e:
        raise GreenbenchError(
            f"--cron: '{cron}' is not a crontab line ({e}); write e.g. \"0 22 * * *\""
        ) from None
    now = now or dt.datetime.now(dt.UTC)
    probe = copy.copy(trigger)
    probe.end_date = now + CRON_HORIZON  # bounds the search: unbounded, it walks to year 9999
    if probe.get_next_fire_time(None, now) is None:
        raise GreenbenchError(
            f"--cron: '{cron}' never fires (no such date); check the day and month fields"
        )
    return trigger


WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab's 0-6 (7 is Sunday too)


def cron_weekdays_as_names(cron: str) -> str:
    """The crontab line with its day-of-week field as day names.

    APScheduler 3 numbers weekdays from Monday (0 = mon), crontab from Sunday (0 and 7 = sun):
    given as written, "* * * * 1-5" would fire Tuesday to Saturday. Names mean the same to
    both, and `schedule list` shows them. A field that is not crontab syntax is left for
    from_crontab to refuse."""
    fields = cron.split()
    if len(fields) != 5 or not any(c.isdigit() for c in fields[4]):
        return cron  # "*" and day names mean the same to both, and stay as the user wrote them
    try:
        days = sorted({day for part in fields[4].lower().split(",") for day in _weekdays(part)})
    except ValueError:
        return cron
    return " ".join([*fields[:4], ",".join(WEEKDAYS[day] for day in days)])


def _weekdays(part: str) -> set[int]:
    """The days (0 = Sunday) one comma-separated part of a crontab day-of-week field names;
    ValueError if it is not crontab syntax."""
    span, _, step_text = part.partition("/")
    step = int(step_text) if step_text else 1
    if span == "*":
        first, last = 0, 6
    else:
        start, dash, end = span.partition("-")
        first = _weekday(start)
        last = _weekday(end) if dash else (6 if step_text else first)
    if step < 1 or first > last:
        raise ValueError(part)
    return {day % 7 for day in range(first, last + 1, step)}


def _weekday(text: str) -> int:
    if text in WEEKDAYS:
        return WEEKDAYS.index(text)
    day = int(text)
    if not 0 <= day <= 7:
        raise ValueError(text)
    return day


def local_zone_name() -> str:
    return tzlocal.get_localzone_name() or "UTC"


CRONTAB_FIELDS = ("minute", "hour", "day", "month", "day_of_week")  # a crontab line's order


@dataclass(frozen=True)
class ScheduledJob:
    id: str
    next_run_utc: dt.datetime | None
    trigger: str
    kwargs: dict[str, Any]
    cron: str | None = None  # the crontab line of a schedule (`plan:NAME`); None: a planned run
    tz: str | None = None  # the time zone the cron line is read in

    @property
    def name(self) -> str:
        return str(self.kwargs.get("name", self.id))

    @property
    def planned_run(self) -> bool:
        """A one-shot run a schedule planned at the cleanest start, not a schedule itself."""
        return self.id.startswith("run:")

    @property
    def within(self) -> str:
        """How long after the cron time the run may start, as `schedule add --within` takes."""
        seconds = self.kwargs.get("within_s")
        return fmt_span(float(seconds)) if seconds is not None else "-"

    def next_run(self, local_zone: dt.tzinfo | None = None) -> tuple[str, str]:
        """(UTC, local) times of the next run, or ("paused", "")."""
        if not self.next_run_utc:
            return "paused", ""
        local = self.next_run_utc.astimezone(local_zone)
        return f"{self.next_run_utc:%Y-%m-%d %H:%M} UTC", f"{local:%Y-%m-%d %H:%M %Z}"

    def describe(self) -> str:
        utc, local = self.next_run()
        when = f"next {utc} ({local})" if local else utc
        suite = self.kwargs.get("suite", "?")
        zone = self.kwargs.get("zone", "?")
        if self.planned_run:
            return f"{self.name}: planned run of suite {suite}, zone {zone}; {when}"
        return (
            f'{self.name}: cron "{self.cron}" ({self.tz}), suite {suite}, zone {zone}, '
            f"start within {self.within}; {when}"
        )


def fmt_span(seconds: float) -> str:
    """8h, 90m, 1h30m, 45s: a duration as the --within and --duration flags take it."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts) or "0s"


def crontab_line(trigger: CronTrigger) -> str:
    """The 5-field line a CronTrigger was made from (CronTrigger.from_crontab keeps each
    field's expression as written)."""
    fields = {f.name: str(f) for f in trigger.fields}
    return " ".join(fields[name] for name in CRONTAB_FIELDS)


class ScheduleStore:
    """add / list / remove against the SQLite store, without running anything."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)

    @contextlib.contextmanager
    def _open(self) -> Iterator[BaseScheduler]:
        scheduler = make_scheduler(self.out, "offline")
        with readable_store(self.out):
            scheduler.start()  # reads and writes the store; runs nothing
            try:
                yield scheduler
            finally:
                scheduler.shutdown(wait=False)

    def add(
        self,
        name: str,
        suite: str,
        cron: str,
        within_s: float,
        zone: str,
        sources: list[str] | None = None,
        duration_s: float | None = None,
        tz: str | None = None,
        replace: bool = False,
    ) -> tuple[ScheduledJob, bool]:
        """Store the schedule; the job and whether it replaced one of the same name.

        An existing name is refused unless `replace`: a typo in NAME must not silently
        overwrite another schedule.
        """
        if not name or "/" in name or ":" in name:
            raise GreenbenchError("schedule NAME must be non-empty, without '/' or ':'")
        trigger = cron_trigger(cron, tz)
        check_sources(sources or [], zone)
        with self._open() as scheduler:
            job_id = f"plan:{name}"
            exists = scheduler.get_job(job_id) is not None
            if exists and not replace:
                raise GreenbenchError(
                    f"schedule '{name}' exists; add --replace to replace it, or pick another "
                    "NAME (see `greenbench schedule list`)"
                )
            job = scheduler.add_job(
                "greenbench.schedule:plan_job",
                trigger=trigger,
                id=job_id,
                name=name,
                replace_existing=True,
                kwargs={
                    "name": name,
                    "suite": suite,
                    "within_s": within_s,
                    "zone": zone,
                    "out": str(self.out),
                    "sources": sources or [],
                    "duration_s": duration_s,
                },
            )
            next_run = trigger.get_next_fire_time(None, dt.datetime.now(dt.UTC))
            return _describe(job, next_run), exists

    def list(self) -> list[ScheduledJob]:
        with self._open() as scheduler:
            return [_describe(job) for job in scheduler.get_jobs()]

    def remove(self, name: str) -> int:
        """Remove the schedule and any run it has planned; how many jobs went."""
        with self._open() as scheduler:
            ids = [
                job.id
                for job in scheduler.get_jobs()
                if job.id == f"plan:{name}" or job.id.startswith(f"run:{name}:")
            ]
            if not ids:
                raise GreenbenchError(f"no schedule '{name}'; see `greenbench schedule list`")
            for job_id in ids:
                scheduler.remove_job(job_id)
            return len(ids)


def check_sources(sources: list[str], zone: str) -> None:
    """Each --source must name a known source with its credentials now, not fail at 22:00."""
    if sources:
        settings = credentials()
        for text in sources:
            build_source(text, zone, settings)


def _describe(job: Job, next_run: dt.datetime | None = None) -> ScheduledJob:
    when = getattr(job, "next_run_time", None) or next_run
    trigger = job.trigger
    cron = crontab_line(trigger) if isinstance(trigger, CronTrigger) else None
    tz = str(trigger.timezone) if isinstance(trigger, CronTrigger) else None
    return ScheduledJob(
        job.id,
        when.astimezone(dt.UTC) if when else None,
        str(trigger),
        dict(job.kwargs),
        cron,
        tz,
    )


def plan_job(
    name: str,
    suite: str,
    within_s: float,
    zone: str,
    out: str,
    sources: list[str],
    duration_s: float | None,
) -> str:
    """Fired by the cron trigger: choose the cleanest start and add the one-shot run there."""
    now = dt.datetime.now(dt.UTC)
    duration = dt.timedelta(seconds=duration_s) if duration_s else None
    duration = duration or estimate_duration(out, Path(suite).stem) or dt.timedelta(minutes=30)
    try:
        green = plan_green(zone, duration, dt.timedelta(seconds=within_s), sources, out, now)
        start, why = green.plan.start, green.describe()
    except (NoUsableSource, GreenbenchError) as e:
        start, why = now, f"{e}: running at the planned time"
    log.warning("schedule %s: %s", name, why)
    run_id = f"run:{name}:{start:%Y%m%dT%H%M}"
    if _ACTIVE is not None:
        _ACTIVE.add_job(
            "greenbench.schedule:run_job",
            trigger=DateTrigger(run_date=start, timezone=dt.UTC),
            id=run_id,
            replace_existing=True,
            kwargs={"name": name, "suite": suite, "out": out, "zone": zone},
        )
    return run_id


def run_job(name: str, suite: str, out: str, zone: str) -> str:
    """The one-shot run a planner job added."""
    result = greenbench.run(suite, out=out, zone=zone)
    log.warning("schedule %s: run %s finished, ok=%s", name, result.run_id, result.ok)
    return result.run_id


def serve(out: str | Path, blocking: bool = True, poll_s: float = POLL_S) -> BaseScheduler:
    """Run the scheduler: until interrupted, or in the background (returned, for tests).

    It re-reads the store every `poll_s` seconds, so schedules that `schedule add` or `remove`
    write meanwhile take effect without a restart.
    """
    global _ACTIVE
    scheduler = make_scheduler(out, "blocking" if blocking else "background", poll_s)
    _ACTIVE = scheduler
    if not blocking:
        with readable_store(out):
            scheduler.start()
        return scheduler
    try:
        with readable_store(out):
            scheduler.start()
    finally:
        _ACTIVE = None
    return scheduler
