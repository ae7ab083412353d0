"""Random bytes and random JSON shapes against every reader of intensity data (issue 20).

Each reader either returns plausible data or raises a one-line GreenbenchError (SourceError is
one); any other exception is a bug. Shapes are built from the keys the real formats use, so the
examples reach past the first type check.
"""

import datetime as dt
import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenbench.carbon.intensity import MAX_G_PER_KWH, IntensityPoint
from greenbench.carbon.sources.apis import (
    CarbonAwareSDK,
    ElectricityMaps,
    UKCarbonIntensity,
    WattTime,
)
from greenbench.carbon.sources.chain import FileSource, NoUsableSource, Store, fetch_forecast
from greenbench.carbon.sources.file import load_series
from greenbench.carbon.sources.http import decode_json, retry_after
from greenbench.errors import GreenbenchError

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
WINDOW = (NOW - dt.timedelta(hours=48), NOW + dt.timedelta(hours=48))
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = [
    # the formats' own keys: UK, Electricity Maps, WattTime, Carbon Aware SDK, files
    *("data", "from", "to", "intensity", "actual", "forecast", "regionid"),
    *("carbonIntensity", "datetime", "zone", "point_time", "value", "meta", "units"),
    *("data_point_period_seconds", "token", "location", "forecastData", "timestamp"),
    *("duration", "Emissions", "Time", "Rating", "Duration", "points", "g_per_kwh"),
]
times = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)
).map(dt.datetime.isoformat)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | times
    | st.sampled_from(["lbs_co2_per_mwh", "kg", "01:00:00", "9999999.00:00:00", "soon"])
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=25,
)
rows = st.lists(st.dictionaries(st.sampled_from(KEYS), leaves | json_values, max_size=6))
shaped = st.one_of(
    json_values,
    st.fixed_dictionaries({"data": rows}),
    st.fixed_dictionaries({"forecast": rows}),
    st.fixed_dictionaries({"data": st.lists(st.fixed_dictionaries({"data": rows}), max_size=2)}),
    st.fixed_dictionaries(
        {"data": rows, "meta": json_values | st.dictionaries(st.sampled_from(KEYS), leaves)}
    ),
    st.lists(st.fixed_dictionaries({"forecastData": rows}), max_size=2),
    st.fixed_dictionaries({"Emissions": rows}),
)


def _one_line(error: GreenbenchError) -> None:
    text = str(error)
    assert text and "\n" not in text and len(text) < 1000


def _plausible(points: list[IntensityPoint]) -> None:
    for p in points:
        assert 0 <= p.g_per_kwh <= MAX_G_PER_KWH and math.isfinite(p.g_per_kwh)
        assert p.duration > dt.timedelta(0)
        p.end  # noqa: B018 - the end of every slot is a representable time


def _api_sources(reply):
    def fetch(url, headers=None):
        return {"token": "t"} if url.endswith("/login") else reply

    return [
        UKCarbonIntensity(None, "http://x", fetch),
        UKCarbonIntensity("RG10", "http://x", fetch),
        ElectricityMaps("DE", "tok", "http://x", fetch),
        WattTime("CAISO_NORTH", "u", "p", "http://x", fetch),
        CarbonAwareSDK("eastus", "http://x", fetch=fetch),
    ]


def _check_sources(reply) -> None:
    for source in _api_sources(reply):
        try:
            _plausible(source.forecast(*WINDOW))
        except GreenbenchError as e:
            _one_line(e)
        try:  # the chain: an answer, or a clean skip saying why
            fetch_forecast([source], *WINDOW)
        except NoUsableSource as e:
            _one_line(e)


@FUZZ
@given(shaped)
def test_each_api_parser_takes_any_json_shape(reply):
    _check_sources(reply)


@FUZZ
@given(st.binary(max_size=200) | st.builds(lambda v: json.dumps(v).encode(), shaped))
def test_each_api_parser_takes_any_reply_body(body):
    try:
        reply = decode_json(body, "http://x/v3")
    except GreenbenchError as e:
        _one_line(e)
        return
    _check_sources(reply)


def _csv(draw_rows):
    header = ["Time", "Carbon Intensity"]
    return "\n".join([",".join(header), *(",".join(map(str, r)) for r in draw_rows)])


csv_texts = st.lists(st.tuples(leaves, leaves), max_size=6).map(_csv)
file_bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda v: json.dumps(v).encode(), shaped),
    csv_texts.map(str.encode),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@FUZZ
@given(st.sampled_from(["trace.csv", "trace.json"]), file_bodies)
def test_the_trace_and_forecast_file_readers_take_any_bytes(name, body):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(body)
        try:
            series = load_series(path)  # backtest --trace
            _plausible(series.points)
        except GreenbenchError as e:
            _one_line(e)
        try:  # --source file:PATH, for forecast and run
            fetch_forecast([FileSource(str(path))], *WINDOW)
        except NoUsableSource as e:
            _one_line(e)


@FUZZ
@given(file_bodies)
def test_a_damaged_cache_entry_is_asked_for_again(body):
    source = ElectricityMaps("DE", "tok", "http://x", lambda *a: None)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(folder)
        path = Path(folder) / "cache" / f"{store._key(source)}.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(body)
        hit = store.cached(source, dt.timedelta(days=365 * 300))
        if hit is not None:
            _plausible(hit[0])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.sampled_from(["120", "Fri, 31 Dec 9999 23:59:59 GMT"]))
def test_retry_after_is_a_wait_or_nothing(header):
    wait = retry_after(header, 1e9)
    assert wait is None or wait >= 0  # inf is capped by get_json


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"forecast": [{"carbonIntensity": 1' + b"0" * 5000 + b"}]}"],
)
def test_deep_or_huge_json_is_malformed_not_a_crash(body):
    with pytest.raises(GreenbenchError, match="malformed JSON"):
        decode_json(body, "http://x")
