"""Nightly carbon-aware runs with APScheduler 3, persisted in SQLite under results/.

A schedule NAME is a cron job `plan:NAME` (cron read in the user's time zone, so "0 22 * * *"
stays 22:00 across DST). When it fires it plans the cleanest start within `within` and adds the
one-shot job `run:NAME`, which runs the suite. Jobs have explicit ids and replace_existing, so a
restart never duplicates them; coalesce plus a misfire grace time make a run missed while
`schedule serve` was down run once when it comes back, neither zero times nor many. The
scheduler works in UTC; times are shown in UTC and local time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tzlocal
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

import greenbench
from greenbench.carbon.green import estimate_duration, plan_green
from greenbench.carbon.sources.chain import NoUsableSource
from greenbench.errors import GreenbenchError

DB_NAME = "schedule.sqlite"
MISFIRE_GRACE_S = 6 * 3600  # a run missed by less than this still runs, once
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


def make_scheduler(out: str | Path, kind: str = "background") -> BaseScheduler:
    """A scheduler on the SQLite store: "background", "blocking" or "offline" (store only)."""
    Path(out).mkdir(parents=True, exist_ok=True)
    classes: dict[str, type[BaseScheduler]] = {
        "background": BackgroundScheduler,
        "blocking": BlockingScheduler,
        "offline": OfflineScheduler,
    }
    return classes[kind](
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{Path(out).resolve() / DB_NAME}")},
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={
            "coalesce": True,
            "misfire_grace_time": MISFIRE_GRACE_S,
            "max_instances": 1,
        },
        timezone=dt.UTC,
    )


def cron_trigger(cron: str, tz: str | None = None) -> CronTrigger:
    """A CronTrigger from a 5-field crontab line, read in `tz` (default: this machine's zone)."""
    zone = tz or local_zone_name()
    try:
        return CronTrigger.from_crontab(cron, timezone=zone)
    except (ValueError, LookupError) as e:
        raise GreenbenchError(
            f"--cron: '{cron}' is not a crontab line ({e}); write e.g. \"0 22 * * *\""
        ) from None


def local_zone_name() -> str:
    return tzlocal.get_localzone_name() or "UTC"


@dataclass(frozen=True)
class ScheduledJob:
    id: str
    next_run_utc: dt.datetime | None
    trigger: str
    kwargs: dict[str, Any]

    def describe(self) -> str:
        when = "paused"
        if self.next_run_utc:
            local = self.next_run_utc.astimezone()
            when = f"next {self.next_run_utc:%Y-%m-%d %H:%M} UTC ({local:%Y-%m-%d %H:%M} local)"
        return f"{self.id}: {self.trigger}; {when}"


class ScheduleStore:
    """add / list / remove against the SQLite store, without running anything."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)

    def _open(self) -> BaseScheduler:
        scheduler = make_scheduler(self.out, "offline")
        scheduler.start()  # reads and writes the store; runs nothing
        return scheduler

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
    ) -> ScheduledJob:
        if not name or "/" in name or ":" in name:
            raise GreenbenchError("schedule NAME must be non-empty, without '/' or ':'")
        trigger = cron_trigger(cron, tz)
        scheduler = self._open()
        try:
            job = scheduler.add_job(
                "greenbench.schedule:plan_job",
                trigger=trigger,
                id=f"plan:{name}",
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
            return _describe(job, trigger.get_next_fire_time(None, dt.datetime.now(dt.UTC)))
        finally:
            scheduler.shutdown(wait=False)

    def list(self) -> list[ScheduledJob]:
        scheduler = self._open()
        try:
            return [_describe(job) for job in scheduler.get_jobs()]
        finally:
            scheduler.shutdown(wait=False)

    def remove(self, name: str) -> int:
        """Remove the schedule and any run it has planned; how many jobs went."""
        scheduler = self._open()
        try:
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
        finally:
            scheduler.shutdown(wait=False)


def _describe(job: Job, next_run: dt.datetime | None = None) -> ScheduledJob:
    when = getattr(job, "next_run_time", None) or next_run
    return ScheduledJob(
        job.id, when.astimezone(dt.UTC) if when else None, str(job.trigger), dict(job.kwargs)
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


def serve(out: str | Path, blocking: bool = True) -> BaseScheduler:
    """Run the scheduler: until interrupted, or in the background (returned, for tests)."""
    global _ACTIVE
    scheduler = make_scheduler(out, "blocking" if blocking else "background")
    _ACTIVE = scheduler
    if not blocking:
        scheduler.start()
        return scheduler
    try:
        scheduler.start()
    finally:
        _ACTIVE = None
    return scheduler
