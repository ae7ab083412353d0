"""Schedules in a real SQLite job store: restarts, missed windows, planning, DST, live changes."""

import datetime as dt
import subprocess
import sys
import textwrap
import time

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.triggers.date import DateTrigger

from greenbench import schedule
from greenbench.cli import main
from greenbench.errors import GreenbenchError
from greenbench.schedule import ScheduleStore, cron_trigger, make_scheduler

UTC = dt.UTC
FAST_POLL_S = 0.1  # serve's poll in tests: a job another process adds is seen within this


@pytest.fixture
def jobfuncs(tmp_path, monkeypatch):
    """An importable module whose job appends a line to a file, as a stand-in for a run."""
    (tmp_path / "jobfuncs.py").write_text(
        textwrap.dedent(
            """
            def record(path, label="ran"):
                with open(path, "a") as f:
                    f.write(label + "\\n")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / "ran.txt"


def runs(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


def labels(path):
    return path.read_text().splitlines() if path.exists() else []


def wait_for(condition, timeout_s=15.0):
    """Poll until `condition()` holds; the timeout is only reached when a test fails."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


@pytest.fixture
def serving(tmp_path):
    """`schedule serve` in a thread, re-reading the store every FAST_POLL_S; stopped after."""
    started = []

    def start():
        started.append(schedule.serve(tmp_path, blocking=False, poll_s=FAST_POLL_S))
        return started[-1]

    yield start
    for scheduler in started:
        if scheduler.running:
            scheduler.shutdown(wait=True)
    schedule._ACTIVE = None


def another_process(out):
    """What `schedule add` in another process opens: its own store on the same SQLite file."""
    other = make_scheduler(out, "offline")
    other.start()
    return other


def test_a_schedule_survives_a_restart_of_another_process(tmp_path):
    store = ScheduleStore(tmp_path)
    store.add("nightly", "tiny", "0 22 * * *", 8 * 3600, "GB", tz="Europe/London")
    _, replaced = store.add(
        "nightly", "tiny", "30 21 * * *", 8 * 3600, "GB", tz="Europe/London", replace=True
    )
    assert replaced
    listing = subprocess.run(
        [sys.executable, "-m", "greenbench", "schedule", "--out", str(tmp_path), "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert listing.count("│ nightly ") == 1 and "│ 30 21 * * * │ Europe/London │" in listing
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
        # the restart has dealt with the missed run once the store shows the next day's run
        assert wait_for(lambda: restarted.get_job("plan:nightly").next_run_time > missed)
    finally:
        restarted.shutdown(wait=True)  # waits for any run it started, so all are counted
    assert runs(jobfuncs) == expected_runs


def test_serve_fires_jobs_another_process_adds_or_moves_while_it_runs(tmp_path, jobfuncs, serving):
    other = another_process(tmp_path)
    tomorrow = dt.datetime.now(UTC) + dt.timedelta(days=1)
    other.add_job(
        "jobfuncs:record",
        DateTrigger(tomorrow),
        id="moved",
        kwargs={"path": str(jobfuncs), "label": "moved"},
    )
    other.shutdown(wait=False)
    serving()  # it knows of one job, due tomorrow: without polling it sleeps until then

    other = another_process(tmp_path)  # `schedule add` in a second process, while serve runs
    soon = dt.datetime.now(UTC) + dt.timedelta(seconds=0.5)
    other.add_job(
        "jobfuncs:record",
        DateTrigger(soon),
        id="added",
        kwargs={"path": str(jobfuncs), "label": "added"},
    )
    other.reschedule_job("moved", trigger=DateTrigger(soon + dt.timedelta(seconds=0.3)))
    other.shutdown(wait=False)

    assert wait_for(lambda: len(labels(jobfuncs)) == 2), "serve did not see the new rows"
    assert sorted(labels(jobfuncs)) == ["added", "moved"]
    assert wait_for(lambda: ScheduleStore(tmp_path).list() == [])  # one-shot: done, gone


def test_serve_keeps_running_after_a_failed_pass_over_the_store(
    tmp_path, jobfuncs, serving, monkeypatch
):
    real = SQLAlchemyJobStore.get_next_run_time
    failures = []

    def fails_once(store):  # e.g. a row another process changed under this pass
        if not failures:
            failures.append(1)
            raise RuntimeError("row changed under the pass")
        return real(store)

    monkeypatch.setattr(SQLAlchemyJobStore, "get_next_run_time", fails_once)
    scheduler = serving()
    assert wait_for(lambda: failures)
    other = another_process(tmp_path)
    other.add_job(
        "jobfuncs:record",
        DateTrigger(dt.datetime.now(UTC)),
        id="after",
        kwargs={"path": str(jobfuncs)},
    )
    other.shutdown(wait=False)
    assert wait_for(lambda: runs(jobfuncs) == 1)
    assert scheduler.running


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
    cron = ["--cron", "0 22 * * *"]
    assert main([*base, "--cron", "99 * * *"]) == 2
    assert main([*base, *cron, "--suite", "nope"]) == 2
    assert main([*base, *cron, "--zone", "XX"]) == 2
    assert main(["schedule", "--out", str(tmp_path), "remove", "ghost"]) == 2
    assert main([*base, *cron, "--source", "bogus"]) == 2
    assert main([*base, *cron, "--tz", "Mars/Olympus"]) == 2
    assert main([*base, "--cron", "0 0 30 2 *"]) == 2  # the 30th of February never comes
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 7 and all(e.startswith("greenbench: error: ") for e in errors)
    assert "unknown source 'bogus'" in errors[4]
    assert errors[5].startswith("greenbench: error: --tz: unknown time zone 'Mars/Olympus'")
    assert "never fires" in errors[6]
    assert ScheduleStore(tmp_path).list() == []
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert main(["schedule", "--out", str(not_a_folder), "list"]) == 2
    assert capsys.readouterr().err.startswith(f"greenbench: error: --out {not_a_folder}: cannot")
    with pytest.raises(GreenbenchError, match="NAME"):
        ScheduleStore(tmp_path).add("a:b", "tiny", "0 22 * * *", 60, "GB")


def test_a_taken_name_is_refused_unless_replace_is_asked_for(tmp_path, capsys):
    base = ["schedule", "--out", str(tmp_path), "add", "nightly", "--suite", "tiny"]
    assert main([*base, "--cron", "0 22 * * *", "--tz", "UTC"]) == 0
    assert capsys.readouterr().out.startswith('added schedule nightly: cron "0 22 * * *" (UTC)')
    assert main([*base, "--cron", "30 21 * * *", "--tz", "UTC"]) == 2
    error = capsys.readouterr().err
    assert "schedule 'nightly' exists; add --replace" in error and len(error.splitlines()) == 1
    (job,) = ScheduleStore(tmp_path).list()
    assert "hour='22'" in job.trigger  # untouched
    assert main([*base, "--cron", "30 21 * * *", "--tz", "UTC", "--replace"]) == 0
    assert capsys.readouterr().out.startswith('replaced schedule nightly: cron "30 21 * * *" (UTC)')
    (job,) = ScheduleStore(tmp_path).list()
    assert "hour='21', minute='30'" in job.trigger


@pytest.mark.parametrize("damage", ["garbage", "folder"])
@pytest.mark.parametrize(
    "action",
    [
        ["list"],
        ["remove", "nightly"],
        ["serve"],
        ["add", "nightly", "--suite", "tiny", "--cron", "0 22 * * *"],
    ],
)
def test_a_damaged_schedule_store_is_one_line_and_left_as_it_was(tmp_path, capsys, damage, action):
    db = tmp_path / schedule.DB_NAME
    if damage == "garbage":
        db.write_bytes(b"\x00not a database\xff" * 64)
    else:
        db.mkdir()
    before = db.read_bytes() if db.is_file() else None
    assert main(["schedule", "--out", str(tmp_path), *action]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"greenbench: error: {db}: ") and len(error.splitlines()) == 1
    assert "move it aside" in error
    assert (db.read_bytes() if db.is_file() else None) == before


@pytest.mark.parametrize(
    ("weekdays", "fires_on"),
    [
        ("0", {"Sunday"}),
        ("7", {"Sunday"}),
        ("1-5", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}),
        ("*/2", {"Sunday", "Tuesday", "Thursday", "Saturday"}),
        ("5-7", {"Friday", "Saturday", "Sunday"}),
        ("1,3", {"Monday", "Wednesday"}),
        ("1/2", {"Monday", "Wednesday", "Friday"}),
        ("sat,sun", {"Saturday", "Sunday"}),
    ],
)
def test_cron_weekdays_are_crontabs_not_apschedulers(weekdays, fires_on):
    """crontab counts weekdays from Sunday = 0; APScheduler 3 from Monday = 0."""
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)  # a Tuesday
    trigger = cron_trigger(f"0 22 * * {weekdays}", "UTC", now=start)
    days, now = set(), start
    for _ in range(14):  # two weeks of firings at most
        fire = trigger.get_next_fire_time(None, now)
        days.add(fire.strftime("%A"))
        now = fire + dt.timedelta(minutes=1)
    assert days == fires_on


def test_a_weekday_outside_crontabs_range_is_still_refused():
    with pytest.raises(GreenbenchError, match="is not a crontab line"):
        cron_trigger("0 22 * * 9", "UTC")
