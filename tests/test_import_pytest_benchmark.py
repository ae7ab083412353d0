"""`import-pytest-benchmark` on hand-written files: the plugin's shape imports, any other shape
is a one-line error that leaves nothing behind."""

import copy
import json

import pytest

import greenbench
from greenbench.cli import main
from greenbench.errors import GreenbenchError
from greenbench.import_pytest_benchmark import import_pytest_benchmark

BENCH = {
    "name": "test_sum",
    "fullname": "tests/test_x.py::test_sum",
    "param": None,
    "params": None,
    "extra_info": {
        "energy_methods": "cpu:rapl ram:ram-estimate",
        "energy_idle_power_w": 3.0,
        "energy_carbon_intensity_g_per_kwh": 200.0,
        "energy_carbon_source": "codecarbon offline",
        "energy_zone": "GB",
        "energy_windows": [
            {"calls": 10, "duration_s": 1.0, "energy_j": 5.0},
            {"calls": 12, "duration_s": 1.2, "energy_j": 6.0},
        ],
    },
}
VALID = {"datetime": "2026-12-01T10:00:00", "benchmarks": [BENCH]}


def write(tmp_path, data, name="bench.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_a_file_of_the_plugins_shape_imports_as_a_complete_run(tmp_path):
    store = import_pytest_benchmark(write(tmp_path, VALID), tmp_path / "r")
    assert store.read_meta()["status"] == "complete"
    frame = greenbench.load_results(store.path)
    assert list(frame["calls"]) == [10, 12] and set(frame["run_id"]) == {store.run_id}
    assert frame["energy_per_unit_j"].tolist() == pytest.approx([0.2, 0.2])


def changed(path, value):
    """VALID with the value at `path` (keys and indexes into benchmarks[0]) replaced."""
    data = copy.deepcopy(VALID)
    target = data["benchmarks"][0]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


WRONG_SHAPES = [
    ({"benchmarks": [1]}, "benchmarks[0]: is int, not an object"),
    (changed(["extra_info"], [1]), "extra_info is list, not an object"),
    (changed(["extra_info", "energy_windows"], {"a": 1}), "energy_windows is dict, not a list"),
    (changed(["extra_info", "energy_windows", 1], 7), "energy_windows[1] is int, not an object"),
    (changed(["extra_info", "energy_windows", 1, "calls"], "9"), "calls is '9', not a finite"),
    (changed(["extra_info", "energy_windows", 0, "calls"], 0), "calls is 0, not >= 1"),
    (changed(["extra_info", "energy_windows", 0, "calls"], 2.5), "calls is 2.5, not a whole"),
    (changed(["extra_info", "energy_windows", 0, "duration_s"], 0), "duration_s is 0, not > 0"),
    (changed(["extra_info", "energy_windows", 0, "energy_j"], None), "energy_j is None"),
    (changed(["extra_info", "energy_methods"], "cpu"), "energy_methods is 'cpu', not 'comp"),
    (changed(["extra_info", "energy_methods"], 3), "energy_methods is 3, not a string"),
    (changed(["extra_info", "energy_idle_power_w"], "x"), "energy_idle_power_w is 'x'"),
    (changed(["extra_info", "energy_zone"], ["GB"]), "energy_zone is ['GB'], not a string"),
    (changed(["fullname"], {"a": 1}), "fullname is {'a': 1}, not a string"),
    (changed(["param"], 3), "param is 3, not a string"),
]


@pytest.mark.parametrize(("data", "why"), WRONG_SHAPES)
def test_a_wrong_shape_is_a_one_line_error_and_writes_nothing(tmp_path, data, why):
    data = {**data, "benchmarks": [*data["benchmarks"], BENCH]}  # a good one after the bad
    with pytest.raises(GreenbenchError) as info:
        import_pytest_benchmark(write(tmp_path, data), tmp_path / "r")
    assert why in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "r").exists()


def test_non_utf8_a_folder_and_a_deep_nest_are_one_line_errors(tmp_path, capsys):
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"benchmarks": [], "x": "café"}'.encode("latin-1"))
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    out = str(tmp_path / "r")
    for path in (latin1, tmp_path, deep):
        assert main(["import-pytest-benchmark", str(path), "--out", out]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("greenbench: error: ") for e in errors)
    assert "is not JSON" in errors[0] and "is a folder" in errors[1]
    assert "is not JSON" in errors[2]
    assert not (tmp_path / "r").exists()
