"""Intensity series, the window planner and the backtest, on traces the tests make themselves."""

import datetime as dt
import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenbench.carbon.backtest import Forecast, backtest, noisy_forecast, parse_forecast
from greenbench.carbon.intensity import IntensityPoint, IntensitySeries
from greenbench.carbon.planner import plan_interruptible, plan_window
from greenbench.carbon.sources.file import load_series
from greenbench.carbon.timeparse import parse_duration
from greenbench.cli import main
from greenbench.errors import GreenbenchError

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
HALF_HOUR = dt.timedelta(minutes=30)


def series(values, step=HALF_HOUR, start=T0):
    return IntensitySeries(
        IntensityPoint(start + i * step, step, float(v)) for i, v in enumerate(values)
    )


def minutes(n):
    return dt.timedelta(minutes=n)


def test_mean_cuts_slots_at_the_edges():
    s = series([100, 200, 400])
    assert s.mean(T0 + minutes(15), T0 + minutes(45)) == pytest.approx(150)
    assert s.mean(T0, T0 + minutes(90)) == pytest.approx(700 / 3)
    assert s.mean(T0 + minutes(50), T0 + minutes(70)) == pytest.approx((200 * 10 + 400 * 10) / 20)


def test_gaps_and_overlaps_are_refused():
    gap = IntensitySeries(
        [IntensityPoint(T0, HALF_HOUR, 1.0), IntensityPoint(T0 + minutes(60), HALF_HOUR, 1.0)]
    )
    with pytest.raises(ValueError, match="not known"):
        gap.mean(T0, T0 + minutes(90))
    with pytest.raises(ValueError, match="overlap"):
        IntensitySeries(
            [IntensityPoint(T0, HALF_HOUR, 1), IntensityPoint(T0 + minutes(10), HALF_HOUR, 1)]
        )


def test_plan_finds_the_cleanest_window_and_what_it_saves():
    s = series([300, 300, 100, 100, 300, 300])
    plan = plan_window(s, minutes(60), T0, T0 + minutes(180))
    assert plan.starts == [T0 + minutes(60)]
    assert plan.chosen_g_per_kwh == pytest.approx(100)
    assert plan.now_g_per_kwh == pytest.approx(300)
    assert plan.saving == pytest.approx(2 / 3)


def test_plan_returns_every_tied_optimum():
    s = series([100, 300, 100, 300, 100])
    plan = plan_window(s, HALF_HOUR, T0, T0 + minutes(150))
    assert plan.starts == [T0, T0 + minutes(60), T0 + minutes(120)]


def test_plan_may_start_between_slot_boundaries():
    # a 20-minute job fits in the clean slot starting anywhere from :30 to :40; the planner
    # checks the breaks of both window ends and returns both ends of that range
    s = series([500, 100, 500])
    plan = plan_window(s, minutes(20), T0 + minutes(5), T0 + minutes(85))
    assert plan.chosen_g_per_kwh == pytest.approx(100)
    assert all(T0 + minutes(30) <= start <= T0 + minutes(40) for start in plan.starts)


def test_plan_errors_name_the_fix():
    s = series([1, 2])
    with pytest.raises(GreenbenchError, match="shorter than the job"):
        plan_window(s, minutes(90), T0, T0 + minutes(60))
    with pytest.raises(GreenbenchError, match="fetch a forecast that covers it"):
        plan_window(s, minutes(30), T0 + minutes(600), T0 + minutes(700))


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.floats(0, 1000), min_size=2, max_size=24),
    duration_steps=st.integers(1, 12),
    first=st.integers(0, 30),
    span=st.integers(1, 60),
)
def test_the_chosen_window_is_no_worse_than_any_feasible_window(
    values, duration_steps, first, span
):
    s = series(values)
    step = minutes(5)
    duration = duration_steps * step
    earliest = T0 + first * step
    latest = min(earliest + duration + span * step, s.end)
    if latest - earliest < duration or earliest >= s.end:
        return
    plan = plan_window(s, duration, earliest, latest)
    for start in plan.starts:
        assert earliest <= start and start + duration <= latest
        assert s.mean(start, start + duration) == pytest.approx(plan.chosen_g_per_kwh, abs=1e-6)
    start = earliest
    while start + duration <= latest:  # every feasible 5-minute-aligned window
        assert plan.chosen_g_per_kwh <= s.mean(start, start + duration) + 1e-6
        start += step


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(0, 1000), min_size=2, max_size=24), steps=st.integers(1, 12))
def test_an_interruptible_plan_is_no_worse_than_a_contiguous_one(values, steps):
    s = series(values)
    duration = steps * minutes(5)
    if duration > s.end - s.start:
        return
    split = plan_interruptible(s, duration, s.start, s.end)
    whole = plan_window(s, duration, s.start, s.end)
    assert sum((b - a for a, b in split.pieces), dt.timedelta()) == duration
    assert all(s.start <= a < b <= s.end for a, b in split.pieces)
    assert split.chosen_g_per_kwh <= whole.chosen_g_per_kwh + 1e-6


def daily_trace(days=30, step=HALF_HOUR, low_hour=4.0):
    """Intensity 200 ± 100 on a daily cosine, lowest at `low_hour` UTC."""
    count = int(days * dt.timedelta(days=1) / step)
    values = []
    for i in range(count):
        hour = (i * step).total_seconds() / 3600 % 24
        values.append(200 - 100 * math.cos(2 * math.pi * (hour - low_hour) / 24))
    return series(values, step, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def test_backtest_with_perfect_foresight_moves_to_the_daily_low():
    trace = daily_trace()
    result = backtest(trace, HALF_HOUR, dt.time(1, 0), dt.timedelta(hours=4))
    usual = trace.mean(
        dt.datetime(2026, 1, 2, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, 1, 30, tzinfo=dt.UTC)
    )
    best = trace.mean(
        dt.datetime(2026, 1, 2, 4, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, 4, 30, tzinfo=dt.UTC)
    )
    assert result.usual_g_per_kwh == pytest.approx(usual)
    assert best == pytest.approx(100) and result.oracle_g_per_kwh == pytest.approx(best)
    assert result.saving_pct == result.oracle_saving_pct == pytest.approx(100 * (1 - best / usual))
    assert result.days == 29  # the first day's window starts before the trace


def test_noisy_forecasts_save_less_than_the_oracle_and_are_reproducible():
    trace = daily_trace(days=60)
    noisy = Forecast(error_pct=30, seed=7)
    a = backtest(trace, HALF_HOUR, dt.time(1, 0), dt.timedelta(hours=8), noisy)
    b = backtest(trace, HALF_HOUR, dt.time(1, 0), dt.timedelta(hours=8), noisy)
    assert a == b
    assert a.saving_pct < a.oracle_saving_pct
    assert a.saving_pct > 0  # still better than not planning on this strongly daily trace


def test_forecast_errors_are_autocorrelated():
    flat = series([100.0] * 2000, step=minutes(15))
    forecast = noisy_forecast(flat, flat.start, flat.end, Forecast(error_pct=10), random.Random(1))
    errors = [p.g_per_kwh / 100 - 1 for p in forecast.points]
    mean = sum(errors) / len(errors)
    var = sum((e - mean) ** 2 for e in errors) / len(errors)
    lag1 = (
        sum((a - mean) * (b - mean) for a, b in zip(errors, errors[1:], strict=False))
        / len(errors)
        / var
    )
    assert lag1 > 0.8  # 15-minute slots, 3-hour correlation time: exp(-1/12) ≈ 0.92
    assert 0.05 < math.sqrt(var) < 0.15
    assert all(p.is_forecast for p in forecast.points)


def test_forecast_and_duration_parsing():
    assert parse_forecast("perfect").error_pct == 0
    assert parse_forecast("noisy:12.5").error_pct == 12.5
    for bad in ("noisy", "noisy:0", "noisy:abc", "psychic"):
        with pytest.raises(GreenbenchError, match="--forecast"):
            parse_forecast(bad)
    assert parse_duration("1h30m", "--duration") == minutes(90)
    with pytest.raises(GreenbenchError, match="e.g. 30m"):
        parse_duration("half an hour", "--duration")


def test_csv_and_carbon_aware_sdk_json_files(tmp_path):
    csv_file = tmp_path / "trace.csv"
    csv_file.write_text("Time,Carbon Intensity\n2026-01-01 00:00:00,100\n2026-01-01 00:30:00,50\n")
    s = load_series(csv_file)
    assert [p.g_per_kwh for p in s.points] == [100, 50] and s.start.tzinfo == dt.UTC
    assert s.end == dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC)
    sdk = tmp_path / "emissions.json"
    sdk.write_text(
        json.dumps(
            {
                "Emissions": [
                    {
                        "Location": "uk",
                        "Time": "2026-01-01T00:00:00+00:00",
                        "Rating": 80,
                        "Duration": "00:05:00",
                    },
                    {
                        "Location": "uk",
                        "Time": "2026-01-01T00:05:00+00:00",
                        "Rating": 90,
                        "Duration": "00:05:00",
                    },
                ]
            }
        )
    )
    s = load_series(sdk)
    assert s.mean(s.start, s.end) == pytest.approx(85) and s.end - s.start == minutes(10)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "when,what\n2026-01-01,1\n", "no time column"),
        (
            "b.csv",
            "Time,Carbon Intensity\n2026-01-01 00:00,lots\n",
            "line 2: 'lots' is not a number",
        ),
        ("c.csv", "Time,Carbon Intensity\nyesterday,1\n", "not an ISO 8601 time"),
        ("d.json", "{", "not valid JSON"),
        ("e.json", '{"Emissions": [{"Rating": 1}]}', "needs a time"),
        ("f.csv", "Time,Carbon Intensity\n", "no intensity rows"),
    ],
)
def test_malformed_trace_files_get_one_clear_error(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(GreenbenchError, match=message):
        load_series(path)


def test_backtest_command_prints_json_with_the_savings(tmp_path, capsys):
    trace = tmp_path / "trace.csv"
    rows = ["Time,Carbon Intensity"]
    for p in daily_trace(days=10).points:
        rows.append(f"{p.start:%Y-%m-%d %H:%M:%S},{p.g_per_kwh}")
    trace.write_text("\n".join(rows) + "\n")
    args = ["backtest", "--trace", str(trace), "--duration", "30m", "--at", "01:00"]
    assert main([*args, "--flex", "4h", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["saving_pct"] == pytest.approx(out["oracle_saving_pct"]) and out["saving_pct"] > 10
    assert main([*args, "--flex", "4h", "--forecast", "noisy:20", "--interruptible"]) == 0
    assert "forecast noisy:20" in capsys.readouterr().out
    assert main([*args, "--flex", "forever"]) == 2
