import json
from pathlib import Path

import pytest
from conftest import WINDOW_FACTS as FACTS

from greenbench.errors import GreenbenchError, GreenbenchWarning
from greenbench.records import COLUMNS, build_record, window_figures
from greenbench.results import load_results
from greenbench.store import RunStore


def row(cell="a/fp32/cpu", attempt=1, status="ok", rep=1, run="r1"):
    workload, variant, device = cell.split("/")
    return build_record(
        {
            "run_id": run,
            "cell_id": cell,
            "attempt": attempt,
            "suite": "s",
            "workload": workload,
            "task": "t",
            "phase": "forward",
            "variant": variant,
            "device": device,
            "params": "{}",
            "repetition": rep,
        },
        window_figures(FACTS) if status == "ok" else {},
        status=status,
    )


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
    with pytest.warns(GreenbenchWarning, match=rf"{store.records_path}: skipped line 3 \(torn"):
        assert [r["repetition"] for r in store.read_records()] == [1, 2]
    with pytest.warns(GreenbenchWarning):
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


BAD_ROWS = [
    ({"attempt": "2"}, "attempt is '2', not float or int"),
    ({"energy_per_unit_j": "abc"}, "energy_per_unit_j is 'abc'"),
    ({"workload": ["a", "b"]}, "workload is ['a', 'b'], not str"),
    ({"phase": None}, "phase is None"),
    ({"status": "great"}, "status is 'great', not one of failed, ok, skipped"),
    ({"attempt": float("nan")}, "attempt is nan, not a finite number"),
    ({"reliable": 1}, "reliable is 1, not bool or null"),
]


@pytest.mark.parametrize(("change", "why"), BAD_ROWS)
def test_a_row_of_the_wrong_type_is_skipped_with_a_warning_naming_file_and_line(
    tmp_path, change, why
):
    store = RunStore.create(tmp_path, {})
    store.append([row(rep=1), {**row(rep=2), **change}, row(rep=3)])
    with pytest.warns(GreenbenchWarning) as caught:
        frame = load_results(tmp_path)
    assert sorted(frame["repetition"]) == [1, 3]
    (warning,) = [str(w.message) for w in caught]
    assert warning.startswith(f"{store.records_path}: skipped line 2 (")
    assert why in warning and "\n" not in warning


def test_garbage_and_missing_columns_are_skipped_and_counted_in_one_warning(tmp_path):
    store = RunStore.create(tmp_path, {})
    store.append([row(rep=1)])
    no_phase = {k: v for k, v in row(rep=2).items() if k != "phase"}
    with open(store.records_path, "ab") as f:
        f.write(b"not json at all\n" + json.dumps(no_phase).encode() + b"\n[1, 2]\n\xff\xfe\n")
    store.append([row(rep=3)])
    with pytest.warns(GreenbenchWarning) as caught:
        assert [r["repetition"] for r in store.read_records()] == [1, 3]
    (warning,) = [str(w.message) for w in caught]
    assert warning == (
        f"{store.records_path}: skipped line 2 (not JSON), and 3 more bad line(s): 3, 4, 5"
    )


def test_rows_read_back_from_a_frame_with_nan_for_missing_values_are_kept(tmp_path):
    store = RunStore.create(tmp_path, {})
    frame = load_results_of(store, [row(rep=1), row(status="failed", rep=None)])
    rewritten = RunStore.create(tmp_path / "again", {})
    rewritten.append(frame.to_dict("records"))  # pandas writes NaN where a value is missing
    assert len(load_results(rewritten.path)) == 2


def load_results_of(store, rows):
    store.append(rows)
    return load_results(store.path)


def test_one_bad_run_leaves_compare_report_and_cli_working_with_the_good_ones(tmp_path, capsys):
    from greenbench.cli import main
    from greenbench.compare import compare
    from greenbench.report.build import write_report

    good = RunStore.create(tmp_path, {})
    good.append([row(cell="a/fp32/cpu", rep=r) for r in (1, 2)])
    good.append([row(cell="a/int8/cpu", rep=r) for r in (1, 2)])
    directory = RunStore.create(tmp_path, {})
    directory.records_path.unlink()
    directory.records_path.mkdir()  # records.jsonl as a directory
    bad = RunStore.create(tmp_path, {})
    bad.append([{**row(), "attempt": "1"}, {**row(), "workload": [1]}])

    with pytest.warns(GreenbenchWarning) as caught:
        frame = load_results(tmp_path)
    assert set(frame["run_id"]) == {"r1"} and len(frame) == 4
    messages = [str(w.message) for w in caught]
    assert any(f"{directory.records_path}: not a file" in m for m in messages)
    assert any(f"{bad.records_path}: skipped line 1" in m for m in messages)
    assert not compare(frame, "variant", include_invalid=True).empty
    with pytest.warns(GreenbenchWarning):
        _, count = write_report([str(tmp_path)], tmp_path / "report.html")
    assert count == 4

    assert main(["compare", str(tmp_path), "--include-invalid"]) == 0
    out, err = capsys.readouterr()
    assert "int8" in out
    warnings_printed = err.strip().splitlines()
    assert len(warnings_printed) == 2
    assert all(line.startswith("greenbench: warning: ") for line in warnings_printed)
    assert main(["compare", str(directory.path)]) == 0  # the run folder itself, named
    assert "not a file" in capsys.readouterr().err


def test_a_damaged_run_json_is_a_one_line_error(tmp_path):
    store = RunStore.create(tmp_path, {})
    for content in (b"", b"[1]", b"\xff{", b"{"):
        (store.path / "run.json").write_bytes(content)
        with pytest.raises(GreenbenchError, match="run.json is not a run's JSON object"):
            store.read_meta()


def test_out_that_is_a_file_or_cannot_be_written_is_a_one_line_error(tmp_path, monkeypatch):
    file = tmp_path / "passwd"
    file.write_text("root:x:0:0")
    with pytest.raises(GreenbenchError, match=rf"^--out: '{file}' is a file; give a folder$"):
        RunStore.create(file, {})
    with pytest.raises(GreenbenchError, match="inside a file"):
        RunStore.create(file / "sub", {})

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(GreenbenchError, match=r"cannot create a run folder in .*Permission denied"):
        RunStore.create(tmp_path / "locked", {})
    assert file.read_text() == "root:x:0:0"


def test_an_ok_row_without_its_unit_is_skipped(tmp_path):
    store = RunStore.create(tmp_path, {})
    store.append([row(rep=1), {**row(rep=2), "unit": None}])
    with pytest.warns(GreenbenchWarning, match=r"line 2 \(unit is None in an ok row"):
        assert len(load_results(store.path)) == 1
