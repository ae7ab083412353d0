"""report.data.escaped (each distinct label escaped once) against the value-by-value map it
replaced: the same values, missing values and column dtypes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from greenbench.report.data import LABEL_COLUMNS, escape, escaped
from greenbench.report.sample import synthetic_frame


def reference_escaped(frame: pd.DataFrame) -> pd.DataFrame:
    def one(value):
        missing = (
            value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
        )
        return None if missing else escape(value)

    out = frame.copy()
    for column in LABEL_COLUMNS:
        if column in out:
            out[column] = out[column].map(one)
    return out


def assert_same(frame: pd.DataFrame) -> pd.DataFrame:
    out = escaped(frame)
    pd.testing.assert_frame_equal(out, reference_escaped(frame))
    for column in frame.columns.intersection(LABEL_COLUMNS):  # None stays None, NaN stays NaN
        assert [type(v) for v in out[column]] == [type(v) for v in reference_escaped(frame)[column]]
    return out


def test_text_with_html_and_every_kind_of_missing_value_escapes_as_before():
    texts = ["a<b>", 'say "hi"', "x & y", "a<b>", "plain", "it's"]
    n = 12
    frame = pd.DataFrame(
        {
            "workload": pd.Series((texts * 2)[:n], dtype=object),
            "variant": pd.Series(["<i>", None, math.nan, pd.NA, "<i>", "q"] * 2, dtype=object),
            "device": pd.Series(["cpu", None] * 6, dtype="str"),  # pandas' text dtype, NaN
            "zone": [None] * n,  # nothing but missing
            "error": [math.nan] * n,
            "unit": pd.Series([np.str_("<t>"), "<t>"] * 6, dtype=object),
            "energy_per_unit_j": np.linspace(0.5, 1.5, n),  # not a label: left alone
        }
    ).set_axis(np.arange(n) * 3 + 7)  # an index that is not 0..n-1
    out = assert_same(frame)
    assert (
        out["workload"].iloc[0] == "a&lt;b&gt;" and out["workload"].iloc[1] == "say &quot;hi&quot;"
    )
    assert pd.isna(out["variant"].iloc[3]) and out["zone"].iloc[0] is None


def test_columns_of_numbers_and_other_values_escape_value_by_value_as_before():
    n = 8
    frame = pd.DataFrame(
        {
            "run_id": [1, 2, 1, 3, 4, 5, 6, 7],  # integers: "1"
            "cell_id": pd.Series([1, 1.0, True, "1", None, 1, 1.0, "<1>"], dtype=object),
            "phase": [0.0, -0.0, math.nan, 1.5, 0.0, -0.0, 2.0, math.nan],
            "suite": pd.Series(["s", pd.NaT, None, "s", "s", pd.NaT, "t", "<s>"], dtype=object),
            "params": pd.array([1, None, 3, 1, None, 2, 2, 1], dtype="Int64"),
            "validity": pd.Series([np.float32("nan"), "x", "x"] + ["y"] * (n - 3), dtype=object),
        }
    )
    assert_same(frame)


def test_records_and_empty_frames_escape_as_before():
    frame = synthetic_frame({"tiny-lm": ["decode"], "cnn": ["forward"]}, ["fp32", "int8"], runs=2)
    frame.loc[::3, "error"] = "<b>boom</b> & more"
    frame.loc[::4, "validity"] = "idle <moved>"
    assert_same(frame)
    assert_same(frame.iloc[:0])
    assert_same(frame.iloc[:0].astype(object))


def test_escaping_judging_and_the_whole_report_leave_the_callers_frame_as_it_was():
    """escaped and with_verdicts copy shallowly (a year of history is 5 GB): the frame given
    to them, or to build_report, is not changed."""
    from greenbench.check import with_verdicts
    from greenbench.report.page import build_report

    frame = synthetic_frame({"slm": ["decode"]}, ["fp32", "bf16"], runs=2)
    frame.loc[0, "variant"] = "<fp32>"
    before = frame.copy()
    judged = with_verdicts(escaped(frame))
    judged.loc[0, "workload"] = "changed"
    build_report(frame, ["synthetic"])
    pd.testing.assert_frame_equal(frame, before)
    assert judged.loc[0, "variant"] == "&lt;fp32&gt;" and "cell_valid" not in frame
