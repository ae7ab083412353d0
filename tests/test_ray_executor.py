"""The same suite through a local Ray cluster: record shape, streaming, a killed worker."""

import os
import signal
import threading
import time

import pytest

import greenbench

ray = pytest.importorskip("ray")
# under pytest-xdist one worker runs this whole module: its tests share one local cluster
pytestmark = pytest.mark.xdist_group("ray")

FAST = """
name = "fast"
workloads = [{workloads}]
[protocol]
repetitions = 2
min_window_s = {window}
min_calls = 1
warmup_calls = 1
idle_s = 0.3
settle_max_s = 0.5  # a busy test machine's idle never settles: do not wait for it
warmup_max_s = 0.5
cell_timeout_s = 300
[params.slm-tiny]
prompt_tokens = 8
new_tokens = 4
"""


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    yield
    if ray.is_initialized():
        ray.shutdown()


def suite_file(tmp_path, workloads, window=0.3):
    path = tmp_path / "fast.toml"
    path.write_text(FAST.format(workloads=workloads, window=window))
    return str(path)


@pytest.mark.cluster
def test_ray_records_have_the_local_executors_shape(tmp_path):
    suite = suite_file(tmp_path, '"slm-tiny", "resnet-tiny"')
    local = greenbench.run(suite, out=tmp_path / "local")
    remote = greenbench.run(suite, out=tmp_path / "ray", executor="ray")
    assert local.ok and remote.ok
    a, b = local.to_frame(), remote.to_frame()
    assert list(a.columns) == list(b.columns)
    key = ["cell_id", "phase", "repetition", "status"]
    assert sorted(map(tuple, a[key].values)) == sorted(map(tuple, b[key].values))
    assert b["node"].notna().all() and (b["energy_j"] > 0).all()
    assert set(b["method_cpu"]) == set(a["method_cpu"])


@pytest.mark.cluster
def test_a_killed_worker_fails_only_its_cell_and_the_run_resumes(tmp_path):
    suite = suite_file(tmp_path, '"resnet-tiny", "slm-tiny"', window=2.0)
    out = tmp_path / "results"
    results = {}
    thread = threading.Thread(
        target=lambda: results.update(run=greenbench.run(suite, out=out, executor="ray"))
    )
    thread.start()
    deadline = time.monotonic() + 120
    pid_files = []
    while time.monotonic() < deadline and not pid_files:
        pid_files = list(out.glob("*/logs/slm-tiny_fp32_cpu.1.worker.pid"))
        time.sleep(0.1)
    assert pid_files, "the slm-tiny cell never started on a Ray worker"
    time.sleep(1.5)  # let it get into its measured windows
    os.kill(int(pid_files[0].read_text()), signal.SIGKILL)
    thread.join(timeout=180)
    run = results["run"]
    by_cell = {r["cell_id"]: r for r in run.records}
    assert by_cell["resnet-tiny/fp32/cpu"]["status"] == "ok"
    lost = by_cell["slm-tiny/fp32/cpu"]
    assert lost["status"] == "failed" and "Ray task was lost" in lost["error"]

    resumed = greenbench.run(resume=run.run_id, out=out, executor="ray")
    assert resumed.ok
    frame = greenbench.load_results(out)
    assert set(frame["status"]) == {"ok"}
    assert set(frame[frame["workload"] == "slm-tiny"]["attempt"]) == {2}
    assert set(frame[frame["workload"] == "resnet-tiny"]["attempt"]) == {1}


def test_without_ray_or_with_an_unknown_executor_the_error_names_the_fix(monkeypatch, tmp_path):
    from greenbench.errors import GreenbenchError
    from greenbench.executors import ray_executor

    monkeypatch.setattr(
        ray_executor,
        "import_ray",
        lambda: (_ for _ in ()).throw(GreenbenchError(ray_executor.INSTALL_HINT)),
    )
    with pytest.raises(GreenbenchError, match=r"pip install 'greenbench\[ray\]'"):
        greenbench.run("tiny", executor="ray", out=tmp_path)
    with pytest.raises(GreenbenchError, match="--executor: unknown 'slurm'"):
        greenbench.run("tiny", executor="slurm", out=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written
