"""Executors with fakes: the registry, the shared job planning, and turning cells that returned
no records into unfinished rows, locally and through a fake Ray."""

from pathlib import Path

import pytest

from greenbench.errors import GreenbenchError
from greenbench.executors import EXECUTORS, make_executor, ray_executor
from greenbench.executors import local as local_module
from greenbench.executors.base import CellFailed, log_path, plan_jobs
from greenbench.executors.local import LocalExecutor
from greenbench.executors.ray_executor import RayExecutor
from greenbench.runner import CellSkipped
from greenbench.suite import Suite


class Progress:
    def __init__(self):
        self.calls = []

    def cell_started(self, cell):
        self.calls.append(("started", cell.cell_id))

    def cell_event(self, cell, event):
        self.calls.append(("event", cell.cell_id, event["type"]))


SUITE = Suite("s", ("resnet-tiny", "slm-tiny"), zone="GB")


def jobs(tmp_path, attempts=None, skip=lambda cell: None):
    return plan_jobs(SUITE.cells(), SUITE, "run1", tmp_path / "logs", attempts or {}, skip)


def test_registry_names_are_the_executors_and_an_unknown_one_is_refused():
    assert set(EXECUTORS) == {"local", "ray"}
    assert isinstance(make_executor("local"), LocalExecutor)
    with pytest.raises(GreenbenchError, match="--executor: unknown 'slurm'; use local or ray"):
        make_executor("slurm")


def test_plan_numbers_attempts_after_the_latest_and_names_logs_by_cell_and_attempt(tmp_path):
    planned = jobs(tmp_path, attempts={"slm-tiny/fp32/cpu": 2})
    assert [j.context["attempt"] for j in planned] == [1, 3]
    assert planned[1].log_path == tmp_path / "logs" / "slm-tiny_fp32_cpu.3.log"
    assert log_path(Path("L"), "a/b/c", 4) == Path("L/a_b_c.4.log")
    assert {j.context["run_id"] for j in planned} == {"run1"}
    assert planned[0].spec()["context"] == planned[0].context
    assert planned[0].timeout_s == SUITE.protocol.cell_timeout_s


def test_local_skips_before_starting_and_turns_errors_into_unfinished_rows(tmp_path, monkeypatch):
    raised = iter([CellFailed("boom"), OSError("disk full")])

    def fake_child(spec, log, timeout_s, on_event):
        on_event({"type": "stage", "stage": "build"})
        raise next(raised)

    monkeypatch.setattr(local_module, "run_in_child", fake_child)
    progress = Progress()
    skip = {"resnet-tiny/fp32/cpu": "no such thing"}.get
    planned = jobs(tmp_path, skip=lambda cell: skip(cell.cell_id))
    planned.append(jobs(tmp_path, attempts={"slm-tiny/fp32/cpu": 1})[1])
    outcomes = list(LocalExecutor().run(planned, progress))
    statuses = [(cell.cell_id, {r["status"] for r in rows}) for cell, rows in outcomes]
    assert statuses == [
        ("resnet-tiny/fp32/cpu", {"skipped"}),
        ("slm-tiny/fp32/cpu", {"failed"}),
        ("slm-tiny/fp32/cpu", {"failed"}),
    ]
    assert outcomes[0][1][0]["error"] == "no such thing"
    assert outcomes[1][1][0]["error"] == "boom"
    assert outcomes[2][1][0]["error"] == "OSError: disk full"
    assert [r["phase"] for r in outcomes[1][1]] == ["prefill", "decode"]
    assert progress.calls[:3] == [
        ("started", "resnet-tiny/fp32/cpu"),
        ("started", "slm-tiny/fp32/cpu"),
        ("event", "slm-tiny/fp32/cpu", "stage"),
    ]


def test_a_child_that_finds_the_cell_cannot_run_gives_skipped_rows(tmp_path, monkeypatch):
    def fake_child(spec, log, timeout_s, on_event):
        raise CellSkipped("too little memory")

    monkeypatch.setattr(local_module, "run_in_child", fake_child)
    ((_, rows), _) = LocalExecutor().run(jobs(tmp_path), Progress())
    assert {(r["status"], r["error"]) for r in rows} == {("skipped", "too little memory")}


class FakeRef:
    def __init__(self, job_args):
        self.spec, self.log_path = job_args[0], job_args[1]


class FakeRay:
    """Runs each task at once on .remote(); get() returns its outcome or raises."""

    def __init__(self, outcomes):
        self.outcomes = outcomes  # cell id -> outcome dict, or an exception to raise
        self.options = []

    def remote(self, function):
        ray = self

        class Remote:
            def options(self, **options):
                ray.options.append(options)
                return self

            def remote(self, *args):
                return FakeRef(args)

        return Remote()

    def wait(self, refs, num_returns):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        outcome = self.outcomes[ref.spec["context"]["cell_id"]]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_ray_outcomes_become_records_or_unfinished_rows_with_the_nodes_context(
    tmp_path, monkeypatch
):
    window = {"phase": "forward", "repetition": 0, "status": "ok"}
    fake = FakeRay(
        {
            "resnet-tiny/fp32/cpu": {"records": [window], "context": {"node": "n1"}},
            "slm-tiny/fp32/cpu": RuntimeError("worker died"),
        }
    )
    monkeypatch.setattr(ray_executor, "import_ray", lambda: fake)
    monkeypatch.setattr(ray_executor, "connect", lambda address: fake)
    progress = Progress()
    outcomes = dict(
        (cell.cell_id, rows) for cell, rows in RayExecutor("auto").run(jobs(tmp_path), progress)
    )
    assert outcomes["resnet-tiny/fp32/cpu"] == [window]
    lost = outcomes["slm-tiny/fp32/cpu"]
    assert {r["status"] for r in lost} == {"failed"}
    assert lost[0]["error"] == "the Ray task was lost (RuntimeError): worker died"
    assert ("event", "resnet-tiny/fp32/cpu", "window") in progress.calls
    assert fake.options[0] == ray_executor.task_options("cpu")

    fake.outcomes = {
        "resnet-tiny/fp32/cpu": {"skipped": "no npu", "context": {"node": "n2"}},
        "slm-tiny/fp32/cpu": {"failed": "timed out", "context": {"node": "n3"}},
    }
    rows = {cell.cell_id: r for cell, r in RayExecutor().run(jobs(tmp_path), progress)}
    assert {(r["status"], r["error"], r["node"]) for r in rows["resnet-tiny/fp32/cpu"]} == {
        ("skipped", "no npu", "n2")
    }
    assert {(r["status"], r["node"]) for r in rows["slm-tiny/fp32/cpu"]} == {("failed", "n3")}


def test_ray_yields_cells_skipped_before_start_without_submitting_them(tmp_path, monkeypatch):
    fake = FakeRay({"slm-tiny/fp32/cpu": {"records": [], "context": {}}})
    monkeypatch.setattr(ray_executor, "import_ray", lambda: fake)
    monkeypatch.setattr(ray_executor, "connect", lambda address: fake)
    planned = jobs(tmp_path, skip=lambda cell: "no" if cell.workload == "resnet-tiny" else None)
    progress = Progress()
    first, second = RayExecutor().run(planned, progress)
    assert first[0].workload == "resnet-tiny" and first[1][0]["status"] == "skipped"
    assert second[0].workload == "slm-tiny" and len(fake.options) == 1
    assert ("started", "resnet-tiny/fp32/cpu") not in progress.calls


def test_the_ray_executor_says_how_to_install_ray_when_it_is_missing(monkeypatch):
    def missing():
        raise GreenbenchError(ray_executor.INSTALL_HINT)

    monkeypatch.setattr(ray_executor, "import_ray", missing)
    with pytest.raises(GreenbenchError, match=r"pip install 'greenbench\[ray\]'"):
        make_executor("ray", "auto")
