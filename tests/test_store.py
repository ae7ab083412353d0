import json

import pytest

from greenbench.errors import GreenbenchError
from greenbench.records import COLUMNS
from greenbench.results import load_results
from greenbench.store import RunStore


def row(cell="a/fp32/cpu", attempt=1, status="ok", rep=1, run="r1"):
    return {
        "run_id": run,
        "cell_id": cell,
        "attempt": attempt,
        "status": status,
        "repetition": rep,
        "energy_per_unit_j": 1.0,
    }


def test_created_run_has_meta_and_empty_records(tmp_path):
    store = RunStore.create(tmp_path, {"status": "running"})
    assert store.read_meta()["run_id"] == store.run_id
    assert store.read_records() == []
    assert RunStore.open(tmp_path, store.run_id).path == store.path
    assert RunStore.open(tmp_path, str(store.path)).path == store.path


def test_open_unknown_run_names_the_fix(tmp_path):
    with pytest.raises(GreenbenchError, match="no run 'nope'.*run id"):
        RunStore.open(tmp_path, "nope")


def test_torn_last_line_is_ignored_then_cut_before_next_append(tmp_path):
    store = RunStore.create(tmp_path, {})
    store.append([row(rep=1), row(rep=2)])
    with open(store.records_path, "ab") as f:  # a writer killed mid-line
        f.write(b'{"run_id": "r1", "cell_id": "b/fp32/c')
    assert [r["repetition"] for r in store.read_records()] == [1, 2]
    assert len(load_results(store.path)) == 2

    RunStore(store.path).append([row(cell="b/fp32/cpu")])
    lines = store.records_path.read_bytes().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)


def test_load_results_has_schema_columns_and_keeps_latest_attempt(tmp_path):
    store = RunStore.create(tmp_path, {})
    store.append([row(status="failed", attempt=1), row(cell="b/fp32/cpu")])
    store.append([row(attempt=2, rep=1), row(attempt=2, rep=2)])
    frame = load_results(tmp_path)  # a folder of runs
    assert list(frame.columns[: len(COLUMNS)]) == COLUMNS
    a = frame[frame["cell_id"] == "a/fp32/cpu"]
    assert set(a["attempt"]) == {2} and set(a["status"]) == {"ok"}
    assert len(load_results(store.records_path, all_attempts=True)) == 4


def test_load_results_of_nothing_is_an_empty_frame_with_columns(tmp_path):
    frame = load_results(tmp_path)
    assert frame.empty and list(frame.columns) == COLUMNS


def test_load_results_of_missing_path_names_the_fix(tmp_path):
    with pytest.raises(GreenbenchError, match="no results at"):
        load_results(tmp_path / "missing")
