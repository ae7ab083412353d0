"""Schedules in a real SQLite job store: restarts, missed windows, planning, DST."""

import datetime as dt
import subprocess
import sys
import textwrap
import time

import pytest

from greenbench import schedule
from greenbench.cli import main
from greenbench.errors import GreenbenchError
from greenbench.schedule import ScheduleStore, cron_trigger, make_scheduler

UTC = dt.UTC


@pytest.fixture
def jobfuncs(tmp_path, monkeypatch):
    """An importable module whose job appends a line to a file, as a stand-in for a run."""
    (tmp_path / "jobfuncs.py").write_text(
        textwrap.dedent(
            """
            def record(path):
                with open(path, "a") as f:
                    f.write("ran\\n")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / "ran.txt"


def runs(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_schedule_survives_a_restart_of_another_process(tmp_path):
    store = ScheduleStore(tmp_path)
    store.add("nightly", "tiny", "0 22 * * *", 8 * 3600, "GB", tz="Europe/London")
    store.add("nightly", "tiny", "30 21 * * *", 8 * 3600, "GB", tz="Europe/London")  # replaced
    listing = subprocess.run(
        [sys.executable, "-m", "greenbench", "schedule", "--out", str(tmp_path), "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert listing.count("plan:nightly") == 1 and "hour='21', minute='30'" in listing
    (job,) = ScheduleStore(tmp_path).list()
    assert job.kwargs["suite"] == "tiny" and job.kwargs["within_s"] == 8 * 3600
    assert ScheduleStore(tmp_path).remove("nightly") == 1
    assert ScheduleStore(tmp_path).list() == []


@pytest.mark.parametrize(
    ("missed_by", "expected_runs"),
    [(dt.timedelta(minutes=5), 1), (dt.timedelta(hours=7), 0)],  # the grace time is 6 h
)
def test_a_window_missed_while_down_runs_once_within_the_grace_time(
    tmp_path, jobfuncs, missed_by, expected_runs
):
    missed = (dt.datetime.now(UTC) - missed_by).replace(second=0, microsecond=0)
    nightly = cron_trigger(f"{missed.minute} {missed.hour} * * *", "UTC")  # daily, at that time
    down = make_scheduler(tmp_path, "offline")
    down.start()
    down.add_job(
        "jobfuncs:record",
        nightly,
        id="plan:nightly",
        kwargs={"path": str(jobfuncs)},
        next_run_time=missed,  # the scheduler was down when this run was due
        replace_existing=True,
    )
    down.shutdown(wait=False)

    restarted = make_scheduler(tmp_path)  # a new process would see the same SQLite file
    restarted.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and runs(jobfuncs) < 1:
            time.sleep(0.05)
        time.sleep(1.0)  # room for any further (wrong) catch-up runs
    finally:
        restarted.shutdown(wait=True)
    assert runs(jobfuncs) == expected_runs


def test_the_planner_job_adds_the_one_shot_run_at_the_cleanest_start(tmp_path):
    now = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    trace = tmp_path / "trace.csv"
    rows = ["Time,Carbon Intensity"]
    for i in range(-2, 20):
        t = now + dt.timedelta(minutes=30 * i)
        rows.append(f"{t:%Y-%m-%d %H:%M:%S},{100 if i == 6 else 300}")
    trace.write_text("\n".join(rows) + "\n")
    scheduler = schedule.serve(tmp_path, blocking=False)
    try:
        run_id = schedule.plan_job(
            "nightly", "tiny", 8 * 3600, "GB", str(tmp_path), [f"file:{trace}"], 1800
        )
        job = scheduler.get_job(run_id)
        assert job.next_run_time == now + dt.timedelta(hours=3)
        assert job.kwargs == {
            "name": "nightly",
            "suite": "tiny",
            "out": str(tmp_path),
            "zone": "GB",
        }
    finally:
        scheduler.shutdown(wait=False)
        schedule._ACTIVE = None
    assert [j.id for j in ScheduleStore(tmp_path).list()] == [run_id]  # persisted


def test_cron_follows_local_time_across_dst():
    trigger = cron_trigger("0 22 * * *", "Europe/London")
    before = trigger.get_next_fire_time(None, dt.datetime(2026, 3, 27, 12, tzinfo=UTC))
    after = trigger.get_next_fire_time(None, dt.datetime(2026, 3, 30, 12, tzinfo=UTC))
    assert before.astimezone(UTC).hour == 22  # GMT
    assert after.astimezone(UTC).hour == 21  # BST: still 22:00 in London
    autumn = trigger.get_next_fire_time(None, dt.datetime(2026, 10, 26, 12, tzinfo=UTC))
    assert autumn.astimezone(UTC).hour == 22


def test_bad_schedules_are_refused_before_anything_is_stored(tmp_path, capsys):
    base = ["schedule", "--out", str(tmp_path), "add", "nightly"]
    assert main([*base, "--cron", "99 * * *"]) == 2
    assert main([*base, "--cron", "0 22 * * *", "--suite", "nope"]) == 2
    assert main([*base, "--cron", "0 22 * * *", "--zone", "XX"]) == 2
    assert main(["schedule", "--out", str(tmp_path), "remove", "ghost"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 4 and all(e.startswith("greenbench: error: ") for e in errors)
    with pytest.raises(GreenbenchError, match="NAME"):
        ScheduleStore(tmp_path).add("a:b", "tiny", "0 22 * * *", 60, "GB")
