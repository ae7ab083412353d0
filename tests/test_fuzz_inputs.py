"""Hostile input, generated: random bytes and random JSON/TOML shapes for every reader of user
files. Each must end in a one-line GreenbenchError or a clean skip with a GreenbenchWarning;
never another exception, and never a partial write."""

from __future__ import annotations

import copy
import json
import math
import tempfile
import warnings
from pathlib import Path

from conftest import WINDOW_FACTS as FACTS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenbench import api
from greenbench.check import verdicts
from greenbench.compare import compare
from greenbench.errors import GreenbenchError, GreenbenchWarning
from greenbench.import_pytest_benchmark import import_pytest_benchmark
from greenbench.protocol import ProtocolSettings
from greenbench.records import COLUMNS, build_record, window_figures
from greenbench.report.page import build_report
from greenbench.results import load_results
from greenbench.store import RunStore
from greenbench.suite import SUITE_KEYS, RunOverrides, Suite, load_suite, parse_suite

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300)  # past what a float holds
    | st.floats()  # NaN and infinities included
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
PROTOCOL_KEYS = [f.name for f in __import__("dataclasses").fields(ProtocolSettings)]
suite_shapes = st.dictionaries(
    st.sampled_from([*SUITE_KEYS, "extra"]),
    st.one_of(
        json_values,
        st.lists(st.sampled_from(["slm-tiny", "resnet-tiny", "fp32", "int8-dynamic", "cpu"])),
        st.dictionaries(st.sampled_from([*PROTOCOL_KEYS, "nope"]), scalars),
        st.dictionaries(
            st.sampled_from(["slm-tiny", "resnet-tiny", "bert"]),
            st.dictionaries(st.sampled_from(["batch", "phases", "image_size", "x"]), json_values),
        ),
    ),
)


def one_line_error(error: BaseException) -> None:
    assert isinstance(error, GreenbenchError), f"{type(error).__name__}: {error}"
    assert "\n" not in str(error) and str(error)


def warned_one_line(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        assert issubclass(w.category, GreenbenchWarning), f"{w.category.__name__}: {w.message}"
        assert "\n" not in str(w.message)


def toml_value(value) -> str:
    """A JSON-like value as TOML (inline tables and arrays); None has no TOML: a string."""
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def outcome_of_suite(call) -> None:
    try:
        suite = call()
    except Exception as e:  # noqa: BLE001 - any other exception is what this test catches
        one_line_error(e)
    else:
        assert isinstance(suite, Suite)


@FUZZ
@given(st.binary(max_size=300))
def test_suite_loader_on_random_bytes(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.toml"
        path.write_bytes(content)
        outcome_of_suite(lambda: load_suite(str(path)))


@FUZZ
@given(suite_shapes)
def test_suite_loader_on_random_toml_and_json_shapes(shape):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.toml"
        path.write_text("".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in shape.items()))
        outcome_of_suite(lambda: load_suite(str(path)))
    outcome_of_suite(lambda: parse_suite(shape, "run.json"))  # a resumed run's suite


def good_row(run_id: str, variant: str, repetition: int) -> dict:
    context = {
        "run_id": run_id,
        "cell_id": f"w/{variant}/cpu",
        "attempt": 1,
        "suite": "s",
        "workload": "w",
        "task": "inference",
        "phase": "forward",
        "variant": variant,
        "device": "cpu",
        "params": "{}",
        "repetition": repetition,
    }
    return dict(build_record(context, window_figures(FACTS)))


def results_with_one_good_run(root: Path) -> RunStore:
    good = RunStore.create(root, {"status": "complete"})
    good.append([good_row(good.run_id, v, r) for v in ("fp32", "int8") for r in (1, 2)])
    return good


def loads_the_good_run(root: Path, good: RunStore, report: bool = False) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = load_results(root)
        except Exception as e:  # noqa: BLE001
            one_line_error(e)
            raise AssertionError(f"one bad run stopped the reading of all: {e}") from e
    warned_one_line(caught)
    assert len(frame[frame["run_id"] == good.run_id]) == 4
    assert list(frame.columns[: len(COLUMNS)]) == COLUMNS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy on a NaN figure: not an error
        table = compare(frame, "variant", include_invalid=True)  # short windows: invalid cells
        assert {"fp32", "int8"} <= set(table["variant"])
        verdicts(frame)
        if report:
            build_report(frame, [str(root)])


@FUZZ
@given(st.binary(max_size=400))
def test_load_results_on_random_bytes_in_records_jsonl(content):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        good = results_with_one_good_run(root)
        bad = RunStore.create(root, {"status": "complete"})
        bad.records_path.write_bytes(content)
        loads_the_good_run(root, good)


# the columns compare, check and the report group, sort and filter by
READ_COLUMNS = [
    *("run_id", "cell_id", "attempt", "workload", "phase", "variant", "device", "status"),
    *("unit", "energy_per_unit_j", "repetition", "valid", "node", "params", "window_start"),
]
mutations = st.lists(
    st.tuples(
        st.sampled_from(READ_COLUMNS) | st.sampled_from([*COLUMNS, "extra"]),
        st.one_of(st.just("<delete>"), st.none(), json_values),
    ),
    min_size=1,
    max_size=3,
)
lines = st.lists(
    st.one_of(mutations, json_values.map(lambda v: ("<whole line>", v))), min_size=1, max_size=4
)


def mutated_line(run_id: str, change) -> bytes:
    if isinstance(change, tuple):  # a whole line of any JSON
        return json.dumps(change[1]).encode()
    row = good_row(run_id, "bf16", 1)
    for column, value in change:
        if value == "<delete>":
            row.pop(column, None)
        else:
            row[column] = value
    return json.dumps(row).encode()


@settings(FUZZ, max_examples=25)  # each example builds a report
@given(lines, st.booleans())
def test_load_results_on_random_json_rows(changes, torn):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        good = results_with_one_good_run(root)
        bad = RunStore.create(root, {"status": "complete"})
        content = b"\n".join(mutated_line(bad.run_id, c) for c in changes)
        bad.records_path.write_bytes(content if torn else content + b"\n")
        loads_the_good_run(root, good, report=True)


@FUZZ
@given(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
def test_resuming_a_run_with_a_random_run_json(content):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        good = results_with_one_good_run(root)
        (good.path / "run.json").write_bytes(content)
        before = good.records_path.read_bytes()
        try:
            api._resolve(RunOverrides(), root, good.run_id)
        except Exception as e:  # noqa: BLE001
            one_line_error(e)
        loads_the_good_run(root, good)  # the records do not depend on run.json
        assert good.records_path.read_bytes() == before


WINDOW = {"calls": 10, "duration_s": 1.0, "energy_j": 5.0}
BENCHMARK = {
    "name": "test_sum",
    "fullname": "t.py::test_sum",
    "param": None,
    "params": {"n": 1},
    "extra_info": {
        "energy_methods": "cpu:rapl",
        "energy_idle_power_w": 3.0,
        "energy_carbon_intensity_g_per_kwh": 200.0,
        "energy_carbon_source": "codecarbon",
        "energy_zone": "GB",
        "energy_windows": [WINDOW, WINDOW],
    },
}
PLACES = [
    (),
    ("benchmarks",),
    ("benchmarks", 0),
    ("benchmarks", 0, "fullname"),
    ("benchmarks", 0, "param"),
    ("benchmarks", 0, "params"),
    ("benchmarks", 0, "extra_info"),
    *[("benchmarks", 0, "extra_info", key) for key in BENCHMARK["extra_info"]],
    ("benchmarks", 0, "extra_info", "energy_windows", 1),
    *[("benchmarks", 0, "extra_info", "energy_windows", 0, key) for key in WINDOW],
]


def benchmark_file(place, value) -> bytes:
    data: dict = {"datetime": "2026-12-01", "benchmarks": [copy.deepcopy(BENCHMARK)]}
    if not place:
        return json.dumps(value).encode()
    target = data
    for key in place[:-1]:
        target = target[key]
    target[place[-1]] = value
    return json.dumps(data).encode()


def imports_whole_or_nothing(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "bench.json", Path(tmp) / "results"
        source.write_bytes(content)
        try:
            store = import_pytest_benchmark(source, out)
        except Exception as e:  # noqa: BLE001
            one_line_error(e)
            assert not out.exists() or not any(out.iterdir()), "an error left a run behind"
            return
        assert store.read_meta()["status"] == "complete"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # what the import writes, the readers take
            frame = load_results(store.path)
        windows = [
            len(b["extra_info"]["energy_windows"])
            for b in json.loads(content)["benchmarks"]
            if (b.get("extra_info") or {}).get("energy_windows")
        ]
        assert len(frame) == sum(windows)


@FUZZ
@given(st.binary(max_size=300))
def test_import_on_random_bytes(content):
    imports_whole_or_nothing(content)


@FUZZ
@given(st.sampled_from(PLACES), json_values)
def test_import_on_random_json_shapes(place, value):
    imports_whole_or_nothing(benchmark_file(place, value))
