"""One writer per run: a second `run --resume` of a running run is refused, naming the holder."""

import json
import os
import socket
import subprocess
import sys

import pytest

import greenbench
from greenbench import api
from greenbench.errors import GreenbenchError
from greenbench.run_lock import LOCK_FILE
from greenbench.store import RunStore
from greenbench.suite import Suite


def test_a_second_writer_gets_a_one_line_error_naming_the_run_and_pid(tmp_path):
    store = RunStore.create(tmp_path, {})
    with store.lock():
        holder = json.loads((store.path / LOCK_FILE).read_text())
        assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())
        with pytest.raises(GreenbenchError) as info, RunStore(store.path).lock():
            pass
    message = str(info.value)
    assert f"run '{store.run_id}' is in use by pid {os.getpid()} on {socket.gethostname()}" in (
        message
    )
    assert "\n" not in message
    assert not (store.path / LOCK_FILE).exists()
    with store.lock():  # released: free again
        pass


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_the_lock_is_released_on_an_exception_and_on_ctrl_c(tmp_path, error):
    store = RunStore.create(tmp_path, {})
    with pytest.raises(error), store.lock():
        raise error()
    assert not (store.path / LOCK_FILE).exists()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_lock(store, **holder):
    (store.path / LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), **holder}))


def test_a_stale_lock_of_a_dead_process_is_cleared_and_taken(tmp_path):
    store = RunStore.create(tmp_path, {})
    write_lock(store, pid=dead_pid(), started=0.0, token="old")
    with store.lock():
        assert json.loads((store.path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (store.path / LOCK_FILE).exists()
    assert [p.name for p in store.path.iterdir() if "lock" in p.name] == []  # nothing left aside


def test_a_reused_pid_does_not_keep_a_stale_lock(tmp_path):
    store = RunStore.create(tmp_path, {})
    write_lock(store, pid=os.getpid(), started=1.0, token="old")  # this pid, another process
    with store.lock():
        pass


def test_a_lock_from_another_host_is_left_alone(tmp_path):
    store = RunStore.create(tmp_path, {})
    write_lock(store, host="elsewhere.example", pid=dead_pid(), started=0.0, token="old")
    with pytest.raises(GreenbenchError, match=r"in use by pid \d+ on elsewhere.example.*delete"):
        store.lock().__enter__()
    assert json.loads((store.path / LOCK_FILE).read_text())["token"] == "old"


class OneCellExecutor:
    """Fails each job's cell; `during` runs while the first cell is out."""

    def __init__(self, during=None):
        self.during = during

    def run(self, jobs, progress):
        for job in jobs:
            if self.during is not None:
                self.during()
            rows = job.unfinished("failed", "fake")  # a failed cell: rerun by --resume
            yield job.cell, rows


def test_two_resumes_of_one_run_at_once_do_not_duplicate_rows(tmp_path, monkeypatch):
    suite = Suite("s", ("resnet-tiny",), zone="GB")
    monkeypatch.setattr(api, "make_executor", lambda name, address: OneCellExecutor())
    first = greenbench.run(suite, out=tmp_path)
    (store,) = [RunStore(p) for p in tmp_path.iterdir()]
    rows_before = len(store.read_records())
    refused = []

    def second_resume():
        with pytest.raises(GreenbenchError, match=f"run '{first.run_id}' is in use by pid") as e:
            greenbench.run(resume=first.run_id, out=tmp_path)
        refused.append(str(e.value))

    monkeypatch.setattr(
        api, "make_executor", lambda name, address: OneCellExecutor(during=second_resume)
    )
    greenbench.run(resume=first.run_id, out=tmp_path)
    assert len(refused) == 1  # the second writer was turned away while the first ran
    rows = store.read_records()
    assert len(rows) == 2 * rows_before  # one rerun of the failed cell, not two
    assert {r["attempt"] for r in rows[rows_before:]} == {2}
    assert not (store.path / LOCK_FILE).exists()


def test_a_run_interrupted_with_ctrl_c_releases_its_lock(tmp_path, monkeypatch):
    def interrupt():
        raise KeyboardInterrupt

    monkeypatch.setattr(
        api, "make_executor", lambda name, address: OneCellExecutor(during=interrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        greenbench.run(Suite("s", ("resnet-tiny",), zone="GB"), out=tmp_path)
    (run_dir,) = tmp_path.iterdir()
    assert RunStore(run_dir).read_meta()["status"] == "interrupted"
    assert not (run_dir / LOCK_FILE).exists()
