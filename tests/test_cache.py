"""The columnar cache under load_results: the same frame as the JSONL, rebuilt when stale."""

import json
import os
import warnings

import pandas as pd
import pytest

from greenbench import cache
from greenbench.errors import GreenbenchWarning
from greenbench.report.sample import synthetic_frame
from greenbench.results import load_results
from greenbench.store import RunStore

# columns an older greenbench did not write yet: bool, all-None, float and text ones
LATER_COLUMNS = ["warmup_steady", "gpu_trace", "call_p90_s", "checkpoint", "idle_settled"]


def rows_of(run: int) -> list[dict]:
    frame = synthetic_frame({"m": ["prefill", "decode"]}, ["fp32", "int8-dynamic"], runs=run + 1)
    rows = frame[frame["run_id"] == frame["run_id"].unique()[run]].to_dict("records")
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows
    ]


def results(tmp_path, runs: int = 3, status: str = "finished"):
    """A results folder of `runs` runs; the first one from before LATER_COLUMNS existed."""
    stores = []
    for run in range(runs):
        store = RunStore.create(tmp_path, {"status": status})
        rows = rows_of(run)
        for r in rows:
            r["run_id"] = store.run_id
            r["valid"] = run != 1  # a bool column with no None in one run, True/False across
            r["warmup_steady"] = True  # a bool column some runs lack
            if run == 0:
                for column in LATER_COLUMNS:
                    r.pop(column)
        store.append(rows)
        stores.append(store)
    return stores


def caches(tmp_path):
    return sorted(tmp_path.glob("*/.records.jsonl.cache.parquet"))


def test_cached_frame_equals_the_jsonl_one_dtypes_included(tmp_path):
    results(tmp_path)
    plain = load_results(tmp_path, use_cache=False)
    built = load_results(tmp_path)  # builds the caches
    assert len(caches(tmp_path)) == 3
    warm = load_results(tmp_path)  # reads them
    for frame in (built, warm):
        pd.testing.assert_frame_equal(frame, plain, check_dtype=True)
    assert plain["warmup_steady"].dtype == object  # True/None, NaN where the old run lacks it
    assert len(plain) == 3 * 2 * 2 * 3


def test_an_append_rebuilds_the_cache_and_the_new_row_is_read(tmp_path):
    store, *_ = results(tmp_path, runs=1)
    load_results(tmp_path)
    extra = {**store.read_records()[0], "repetition": 9}
    RunStore(store.path).append([extra])
    assert 9 in load_results(tmp_path)["repetition"].tolist()
    pd.testing.assert_frame_equal(load_results(tmp_path), load_results(tmp_path, use_cache=False))


def test_a_new_record_column_keeps_the_caches_and_the_frame_gains_it(tmp_path, monkeypatch):
    """A greenbench that records one more column reads the caches an older one wrote (a year
    of history takes minutes to parse again); the frame has the new column, empty."""
    from greenbench import records
    from greenbench import results as results_module

    results(tmp_path, runs=2)
    load_results(tmp_path)
    written = {path: path.stat().st_mtime_ns for path in caches(tmp_path)}
    newer = [*records.COLUMNS, "a_column_from_a_later_version"]
    monkeypatch.setattr(results_module, "COLUMNS", newer)
    monkeypatch.setattr(cache, "read_records_file", lambda path: pytest.fail(f"parsed {path}"))
    frame = load_results(tmp_path)
    assert {path: path.stat().st_mtime_ns for path in caches(tmp_path)} == written
    assert list(frame.columns[: len(newer)]) == newer and frame[newer[-1]].isna().all()
    run = caches(tmp_path)[0].parent  # the key: the format and the two files, no column list
    stats = [(run / name).stat() for name in ("records.jsonl", "run.json")]
    assert cache.run_key(run / "records.jsonl") == f"{cache.FORMAT}/" + "/".join(
        f"{st.st_size}:{st.st_mtime_ns}" for st in stats
    )


def test_a_corrupt_cache_is_ignored_and_rebuilt(tmp_path):
    results(tmp_path, runs=1)
    load_results(tmp_path)
    (path,) = caches(tmp_path)
    path.write_bytes(b"not parquet")
    pd.testing.assert_frame_equal(load_results(tmp_path), load_results(tmp_path, use_cache=False))
    assert path.read_bytes()[:4] == b"PAR1"


def test_a_running_run_is_read_from_jsonl_and_not_cached(tmp_path):
    results(tmp_path, runs=1, status="running")
    assert len(load_results(tmp_path)) == 12
    assert caches(tmp_path) == []


def test_a_read_only_results_folder_loads_without_a_cache_or_an_error(tmp_path, monkeypatch):
    results(tmp_path, runs=1)

    def refuse(*args):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(cache.os, "replace", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_results(tmp_path)) == 12
    assert caches(tmp_path) == [] and not list(tmp_path.glob("*/*.tmp"))


def test_without_pyarrow_the_records_load_from_jsonl(tmp_path, monkeypatch):
    """The cache is an optimisation: a machine without pyarrow (a lent GPU box) still loads."""
    results(tmp_path, runs=2)
    expected = load_results(tmp_path, use_cache=False)
    for path in caches(tmp_path):
        path.unlink()
    real = cache.importlib.util.find_spec
    monkeypatch.setattr(
        cache.importlib.util, "find_spec", lambda name: None if name == "pyarrow" else real(name)
    )
    pd.testing.assert_frame_equal(load_results(tmp_path), expected)
    assert caches(tmp_path) == []


def test_skipped_lines_are_warned_about_on_every_load(tmp_path):
    (store,) = results(tmp_path, runs=1)
    with open(store.records_path, "ab") as f:
        f.write(b"garbage\n")
    for _ in range(2):  # built, then read from the cache
        with pytest.warns(GreenbenchWarning, match="skipped line 13"):
            assert len(load_results(tmp_path)) == 12
    assert len(caches(tmp_path)) == 1


def test_rows_arrow_cannot_hold_faithfully_fall_back_to_the_jsonl(tmp_path):
    first, second = results(tmp_path, runs=2)
    rows = [json.loads(line) for line in second.records_path.read_text().splitlines()]
    rows[0]["note"], rows[1]["note"] = 7, "seven"  # a column (not greenbench's) of mixed types
    second.records_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plain = load_results(tmp_path, use_cache=False)
    assert plain["note"].dtype == object
    pd.testing.assert_frame_equal(load_results(tmp_path), plain)
    pd.testing.assert_frame_equal(load_results(tmp_path), plain)


def test_a_changed_run_json_invalidates_the_cache(tmp_path):
    (store,) = results(tmp_path, runs=1)
    load_results(tmp_path)
    key = cache.run_key(store.records_path)
    store.update_meta(status="finished", note="x")
    os.utime(store.path / "run.json", ns=(1, 1))
    assert cache.run_key(store.records_path) != key
    assert (
        cache._read_cache(cache.cache_path(store.records_path), cache.run_key(store.records_path))
        is None
    )


def test_a_run_without_records_does_not_keep_the_others_from_their_caches(tmp_path, monkeypatch):
    results(tmp_path, runs=2)
    RunStore.create(tmp_path, {"status": "failed"})  # an empty records.jsonl
    plain = load_results(tmp_path, use_cache=False)
    load_results(tmp_path)
    joined = []
    real = cache._frame
    monkeypatch.setattr(cache, "_frame", lambda tables: joined.append(len(tables)) or real(tables))
    pd.testing.assert_frame_equal(load_results(tmp_path), plain)
    assert joined == [2]  # the two runs' caches joined in Arrow, the empty run left out
