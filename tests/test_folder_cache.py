"""A results folder's own cache: every finished run in one Parquet file, the same frame as the
JSONL, kept fresh run by run. FOLDER_MIN is lowered so that three runs make a folder worth it."""

import json
import warnings

import pandas as pd
import pytest
from test_cache import results

from greenbench import cache, folder_cache
from greenbench.errors import GreenbenchWarning
from greenbench.results import load_results
from greenbench.store import RunStore


@pytest.fixture(autouse=True)
def small_folders(monkeypatch):
    monkeypatch.setattr(folder_cache, "FOLDER_MIN", 2)


def held(tmp_path):
    """The runs the folder's cache holds, by run folder name (None: no cache)."""
    found = folder_cache._read(tmp_path / folder_cache.FOLDER_CACHE)
    return None if found is None else sorted(e.name.split("/")[0] for e in found.entries)


def own_reads(monkeypatch) -> list:
    """Records files read through their own caches or JSONL from now on."""
    read: list = []
    real = folder_cache.run_part
    monkeypatch.setattr(folder_cache, "run_part", lambda f: read.append(f) or real(f))
    return read


def test_the_folder_cache_gives_the_jsonl_frame_and_a_second_load_reads_it_alone(
    tmp_path, monkeypatch
):
    stores = results(tmp_path)  # the first run lacks later columns; a bool column varies
    plain = load_results(tmp_path, use_cache=False)
    pd.testing.assert_frame_equal(load_results(tmp_path), plain, check_dtype=True)
    assert held(tmp_path) == sorted(s.run_id for s in stores)
    read = own_reads(monkeypatch)
    pd.testing.assert_frame_equal(load_results(tmp_path), plain, check_dtype=True)
    assert read == []  # one file read for the three runs


def test_a_new_run_joins_the_cache_and_only_it_is_read_on_its_own(tmp_path, monkeypatch):
    first, _ = results(tmp_path, runs=2)
    load_results(tmp_path)
    new = RunStore.create(tmp_path, {"status": "finished"})
    new.append([{**r, "run_id": new.run_id} for r in first.read_records()])
    read = own_reads(monkeypatch)
    pd.testing.assert_frame_equal(load_results(tmp_path), load_results(tmp_path, use_cache=False))
    assert [f.parent.name for f in read] == [new.run_id]
    assert new.run_id in held(tmp_path)


def test_a_changed_run_is_reread_and_a_removed_one_leaves_the_cache(tmp_path):
    first, second, third = results(tmp_path)
    load_results(tmp_path)
    RunStore(first.path).append([{**first.read_records()[0], "repetition": 9}])
    for path in third.path.iterdir():
        path.unlink()
    third.path.rmdir()
    frame = load_results(tmp_path)
    assert 9 in frame[frame["run_id"] == first.run_id]["repetition"].tolist()
    pd.testing.assert_frame_equal(frame, load_results(tmp_path, use_cache=False))
    assert held(tmp_path) == sorted([first.run_id, second.run_id])


def test_a_subset_of_the_runs_is_as_its_own_rows_give_it_though_another_run_widened_a_column(
    tmp_path,
):
    """Runs 0 and 1 hold whole numbers in `count`, run 2 a fraction: the folder's cache holds
    doubles, but runs 0 and 1 alone are ints to pandas, and a column only run 2 has is absent."""
    stores = results(tmp_path)
    for i, store in enumerate(stores):
        rows = store.read_records()
        for r in rows:
            r["count"] = 3 if i < 2 else 2.5
            if i == 2:
                r["only_in_two"] = "x"
        store.records_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    load_results(tmp_path)  # all three: the folder's cache
    assert held(tmp_path) == sorted(s.run_id for s in stores)
    subset = [stores[0].path, stores[1].path]
    frame = load_results(subset)
    pd.testing.assert_frame_equal(frame, load_results(subset, use_cache=False), check_dtype=True)
    assert frame["count"].dtype == "int64" and "only_in_two" not in frame


def test_a_running_run_stays_out_of_the_cache_until_it_finishes(tmp_path, monkeypatch):
    first, _ = results(tmp_path, runs=2)
    running = RunStore.create(tmp_path, {"status": "running"})
    running.append([{**r, "run_id": running.run_id} for r in first.read_records()])
    load_results(tmp_path)
    assert running.run_id not in held(tmp_path)
    running.update_meta(status="finished")
    pd.testing.assert_frame_equal(load_results(tmp_path), load_results(tmp_path, use_cache=False))
    assert running.run_id in held(tmp_path)


def test_skipped_lines_are_warned_about_on_every_load_from_the_folder_cache(tmp_path):
    first, *_ = results(tmp_path)
    with open(first.records_path, "ab") as f:
        f.write(b"garbage\n")
    for _ in range(2):  # built, then read from the folder's cache
        with pytest.warns(GreenbenchWarning, match="skipped line 13"):
            assert len(load_results(tmp_path)) == 36
    assert held(tmp_path) is not None


def test_a_corrupt_folder_cache_is_rebuilt_and_a_read_only_folder_loads_without_one(
    tmp_path, monkeypatch
):
    results(tmp_path)
    load_results(tmp_path)
    path = tmp_path / folder_cache.FOLDER_CACHE
    path.write_bytes(b"not parquet")
    pd.testing.assert_frame_equal(load_results(tmp_path), load_results(tmp_path, use_cache=False))
    assert path.read_bytes()[:6] == b"ARROW1"
    path.unlink()

    def refuse(*args):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(folder_cache.os, "replace", refuse)
    monkeypatch.setattr(cache.os, "replace", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_results(tmp_path)) == 36
    assert not path.exists() and not list(tmp_path.glob("*.tmp"))


def test_a_few_runs_of_a_large_folder_are_read_from_their_own_caches(tmp_path, monkeypatch):
    stores = results(tmp_path, runs=9)
    load_results(tmp_path)
    read = own_reads(monkeypatch)
    frame = load_results([stores[0].path, stores[1].path])  # 2 of 9: under a quarter
    assert len(read) == 2 and set(frame["run_id"]) == {stores[0].run_id, stores[1].run_id}
