"""`greenbench check`: a verdict per cell by the stated rules, exit code 1 for any invalid."""

from __future__ import annotations

import json

from test_compare import frame, rows

from greenbench.check import verdicts
from greenbench.cli import main
from greenbench.records import build_record
from greenbench.store import RunStore


def measured(values, **changes):
    group = rows("fp32", values)
    for row in group:
        row.update({"valid": True, "reliable": True, **changes})
    return group


def reasons_of(group):
    (verdict,) = verdicts(frame(group))
    return verdict.valid, verdict.reasons


def test_steady_long_valid_windows_make_a_valid_cell():
    assert reasons_of(measured([1.0, 1.02, 0.99])) == (True, ())


def test_each_rule_that_fails_is_a_reason():
    assert "varies 43% over its windows" in reasons_of(measured([1.0, 2.0, 1.0]))[1][0]
    short = reasons_of(measured([1.0, 1.0], reliable=False))[1]
    assert short == ("2 window(s) shorter than 5 s, the meter's resolution: raise --min-window",)
    pids = reasons_of(measured([1.0, 1.0], gpu_foreign_pids=json.dumps([4242])))[1]
    assert pids == ("other processes computed on the measured GPU (pids [4242])",)
    odd = reasons_of(measured([1.0, 1.0], method_cpu="guesswork"))[1]
    assert odd == ("unknown method label 'guesswork'",)


def test_invalid_windows_and_too_few_valid_ones_are_reasons():
    group = measured([1.0, -1.0])
    group[1].update(valid=False, validity="net energy -1 J <= 0")
    valid, reasons = reasons_of(group)
    assert not valid
    assert reasons[:2] == (
        "repetition 2: net energy -1 J <= 0",
        "1 valid window(s): at least 2 give an interval",
    )


def test_a_gpu_clock_that_falls_under_load_is_throttling():
    steady = [[0.1 * i, 0, 300.0, 95.0, 70.0, 1980.0] for i in range(10)]
    throttled = steady[:5] + [[0.5 + 0.1 * i, 0, 250.0, 95.0, 87.0, 1500.0] for i in range(5)]
    assert reasons_of(measured([1.0, 1.0], gpu_trace=json.dumps(steady)))[0]
    reasons = reasons_of(measured([1.0, 1.0], gpu_trace=json.dumps(throttled)))[1]
    assert "the SM clock fell from 1980 to 1500 MHz under load" in reasons[0]


def test_a_window_records_its_busy_clock_range_and_the_rule_reads_it_not_the_trace():
    """A year of GPU history is millions of traces: check judges new records from the three
    columns window_figures writes, parsing a trace only for records from before them."""
    import dataclasses

    from conftest import WINDOW_FACTS

    from greenbench.records import window_figures

    busy = [(0.1 * i, 0, 300.0, 95.0, 70.0, 1980.0) for i in range(5)]
    idle_dip = (0.6, 0, 60.0, 5.0, 60.0, 300.0)  # the clock falls, but not under load
    throttled = (*busy, idle_dip, (0.7, 0, 250.0, 95.0, 87.0, 1500.0))
    figures = window_figures(dataclasses.replace(WINDOW_FACTS, gpu_trace=throttled))
    assert (figures["gpu_busy_samples"], figures["gpu_busy_sm_clock_low_mhz"],
            figures["gpu_busy_sm_clock_high_mhz"]) == (6, 1500.0, 1980.0)  # fmt: skip
    assert window_figures(WINDOW_FACTS)["gpu_busy_samples"] is None  # no trace, no range
    columns = {k: figures[k] for k in figures if k.startswith("gpu_busy")}
    from_columns = reasons_of(measured([1.0, 1.0], gpu_trace=None, **columns))[1]
    assert from_columns == (
        "repetition 1: the SM clock fell from 1980 to 1500 MHz under load "
        "(thermal or power throttling)",
        "repetition 2: the SM clock fell from 1980 to 1500 MHz under load "
        "(thermal or power throttling)",
    )
    steady = json.dumps(busy)  # a trace that says otherwise is not read where the columns are
    assert reasons_of(measured([1.0, 1.0], gpu_trace=steady, **columns))[1] == from_columns
    unloaded = {**columns, "gpu_busy_samples": 0, "gpu_busy_sm_clock_low_mhz": None,
                "gpu_busy_sm_clock_high_mhz": None}  # fmt: skip
    assert reasons_of(measured([1.0, 1.0], gpu_trace=json.dumps(throttled), **unloaded))[0]


def test_the_command_prints_the_verdicts_and_exits_1_on_an_invalid_cell(tmp_path, capsys):
    store = RunStore.create(tmp_path, {"status": "complete"})
    good = [build_record(r, {"run_id": store.run_id}) for r in measured([1.0, 1.01])]
    store.append(good)
    assert main(["check", str(store.path)]) == 0
    assert "1 valid, 0 invalid" in capsys.readouterr().out
    store.append([build_record(r, {"run_id": store.run_id, "cell_id": "w/x/cpu"})
                  for r in measured([1.0, 3.0])])  # fmt: skip
    assert main(["check", str(store.path)]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "1 valid, 1 invalid" in out
