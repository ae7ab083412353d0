"""Each intensity source against a local HTTP server answering in the real formats."""

import contextlib
import datetime as dt
import functools
import http.server
import json
import threading
import time

import pytest

from greenbench.carbon.green import wait_until
from greenbench.carbon.sources.apis import (
    LBS_PER_MWH_TO_G_PER_KWH,
    CarbonAwareSDK,
    ElectricityMaps,
    UKCarbonIntensity,
    WattTime,
)
from greenbench.carbon.sources.chain import (
    NoUsableSource,
    Store,
    build_source,
    credentials,
    fetch_forecast,
)
from greenbench.carbon.sources.file import load_series
from greenbench.carbon.sources.http import SourceError, get_json
from greenbench.cli import main
from greenbench.errors import GreenbenchError

NOW = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
TOKEN = "secret-token-123"


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%MZ")


UK_NATIONAL = {
    "data": [
        {
            "from": iso(NOW + i * dt.timedelta(minutes=30)),
            "to": iso(NOW + (i + 1) * dt.timedelta(minutes=30)),
            "intensity": {"forecast": 200 - 10 * i, "actual": None, "index": "moderate"},
        }
        for i in range(4)
    ]
}
UK_REGIONAL = {
    "data": [
        {
            "regionid": 12,
            "shortname": "South England",
            "postcode": "RG10",
            "data": [
                {
                    "from": iso(NOW),
                    "to": iso(NOW + dt.timedelta(minutes=30)),
                    "intensity": {"forecast": 123, "index": "moderate"},
                    "generationmix": [],
                }
            ],
        }
    ]
}
EMAPS_FORECAST = {
    "zone": "DE",
    "forecast": [
        {"carbonIntensity": 300 + i, "datetime": (NOW + dt.timedelta(hours=i)).isoformat()}
        for i in range(3)
    ],
    "updatedAt": NOW.isoformat(),
}
WATTTIME_FORECAST = {
    "data": [
        {"point_time": (NOW + dt.timedelta(minutes=5 * i)).isoformat(), "value": 1000.0}
        for i in range(3)
    ],
    "meta": {
        "data_point_period_seconds": 300,
        "units": "lbs_co2_per_mwh",
        "signal_type": "co2_moer",
    },
}
SDK_FORECAST = [
    {
        "location": "eastus",
        "forecastData": [
            {
                "location": "eastus",
                "timestamp": (NOW + dt.timedelta(minutes=5 * i)).isoformat(),
                "duration": 5,
                "value": 400.0 - i,
            }
            for i in range(3)
        ],
    }
]


class Server:
    """Replies by path prefix: a list of (status, body[, headers]) used in turn, the last one
    repeated. Status "sleep" waits `body` seconds; "truncate" sends half the body it promises;
    "trickle" sends the body one byte every 50 ms; "trickle-headers" does so with a header."""

    def __init__(self):
        self.routes = {}
        self.seen = []
        handler = functools.partial(_Handler, self)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def reply(self, prefix, *answers):
        self.routes[prefix] = list(answers)


class _Handler(http.server.BaseHTTPRequestHandler):
    def __init__(self, server_state, *args, **kwargs):
        self.state = server_state
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self.state.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        for prefix, answers in self.state.routes.items():
            if self.path.startswith(prefix):
                status, body, *headers = answers.pop(0) if len(answers) > 1 else answers[0]
                if status == "sleep":
                    time.sleep(body)
                    status, body = 200, {}
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                with contextlib.suppress(OSError):  # the client gave up
                    self._answer(status, raw, headers[0] if headers else {})
                return
        self.send_response(404)
        self.end_headers()

    def _answer(self, status, raw, headers):
        if status == "trickle-headers":
            self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
            self._trickle(b"x" * 60 + b"\r\n")
            self.wfile.write(b"Content-Length: %d\r\n\r\n" % len(raw) + raw)
            return
        self.send_response(200 if status in ("truncate", "trickle") else status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if status == "truncate":
            self.wfile.write(raw[: len(raw) // 2])
        elif status == "trickle":
            self._trickle(raw)
        else:
            self.wfile.write(raw)

    def _trickle(self, raw):
        for i in range(len(raw)):
            self.wfile.write(raw[i : i + 1])
            self.wfile.flush()
            time.sleep(0.05)

    def log_message(self, *args):
        pass


@pytest.fixture
def servers():
    started = []

    def start():
        started.append(Server())
        return started[-1]

    yield start
    for s in started:
        s.httpd.shutdown()
        s.httpd.server_close()


@pytest.fixture
def server(servers):
    return servers()


FAST = functools.partial(get_json, timeout_s=0.5, retries=2, backoff_s=0.01)
WINDOW = (NOW, NOW + dt.timedelta(hours=8))


def test_uk_national_and_regional(server):
    server.reply("/intensity/", (200, UK_NATIONAL))
    server.reply("/regional/intensity/", (200, UK_REGIONAL))
    points = UKCarbonIntensity(None, server.url, FAST).forecast(*WINDOW)
    assert [p.g_per_kwh for p in points] == [200, 190, 180, 170]
    assert points[0].duration == dt.timedelta(minutes=30) and points[0].is_forecast
    (point,) = UKCarbonIntensity("RG10 1AA", server.url, FAST).forecast(*WINDOW)
    assert point.g_per_kwh == 123
    assert server.seen[-1][0].endswith("/fw48h/postcode/RG10")


def test_electricity_maps_sends_the_token_in_a_header_only(server):
    server.reply("/v3/carbon-intensity/forecast", (200, EMAPS_FORECAST))
    source = ElectricityMaps("DE", TOKEN, server.url, FAST)
    points = source.forecast(*WINDOW)
    assert [p.g_per_kwh for p in points] == [300, 301, 302]
    path, headers = server.seen[-1]
    assert headers["auth-token"] == TOKEN and TOKEN not in path and "zone=DE" in path
    assert TOKEN not in repr(source)


def test_watttime_logs_in_and_converts_lbs_per_mwh(server):
    server.reply("/login", (200, {"token": "bearer-abc"}))
    server.reply("/v3/forecast", (200, WATTTIME_FORECAST))
    points = WattTime("CAISO_NORTH", "me", "pw", server.url, FAST).forecast(*WINDOW)
    assert points[0].g_per_kwh == pytest.approx(1000 * LBS_PER_MWH_TO_G_PER_KWH)  # 453.6
    assert points[0].signal == "marginal" and points[0].duration == dt.timedelta(minutes=5)
    assert server.seen[-1][1]["authorization"] == "Bearer bearer-abc"


def test_carbon_aware_sdk_webapi(server):
    server.reply("/emissions/forecasts/current", (200, SDK_FORECAST))
    points = CarbonAwareSDK("eastus", server.url, fetch=FAST).forecast(*WINDOW)
    assert [p.g_per_kwh for p in points] == [400, 399, 398]


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([(401, {"error": "bad token"})], r"HTTP 401 \(check the token\)"),
        ([(500, {})], "HTTP 500"),
        ([(200, b"{not json")], "malformed JSON"),
        ([(200, {"forecast": []})], "holds no intensity data"),
        (
            [(200, {"forecast": [{"datetime": "soon", "carbonIntensity": 1}]})],
            "not an ISO 8601 time",
        ),
        (
            [(200, {"forecast": [{"datetime": NOW.isoformat(), "carbonIntensity": "x"}]})],
            "not a number",
        ),
        ([("sleep", 1.0)], "could not be reached"),
    ],
)
def test_bad_replies_are_one_line_errors_without_the_token(server, answers, message):
    server.reply("/v3/", *answers)
    with pytest.raises(SourceError, match=message) as caught:
        ElectricityMaps("DE", TOKEN, server.url, FAST).forecast(*WINDOW)
    assert TOKEN not in str(caught.value) and "\n" not in str(caught.value)


def test_429_and_5xx_are_retried_with_backoff(server):
    server.reply("/v3/", (429, {}), (503, {}), (200, EMAPS_FORECAST))
    sleeps = []
    fetch = functools.partial(
        get_json, timeout_s=0.5, retries=3, backoff_s=0.5, sleep=sleeps.append
    )
    points = ElectricityMaps("DE", TOKEN, server.url, fetch).forecast(*WINDOW)
    assert len(points) == 3 and sleeps == [0.5, 1.0]  # exponential backoff


def test_the_chain_falls_through_caches_and_archives(server, tmp_path):
    server.reply("/intensity/", (500, {}))
    server.reply("/v3/", (200, EMAPS_FORECAST))
    store = Store(tmp_path / "carbon")
    chain = [
        UKCarbonIntensity(None, server.url, FAST),
        ElectricityMaps("DE", TOKEN, server.url, FAST),
    ]
    first = fetch_forecast(chain, *WINDOW, store=store)
    assert first.source == "electricitymaps" and not first.from_cache
    assert "HTTP 500" in first.failures[0]
    calls = len(server.seen)
    server.reply("/intensity/", (200, {"data": []}))
    second = fetch_forecast(chain, *WINDOW, store=store)
    assert second.from_cache and len(server.seen) == calls + 1  # UK asked again, EM cached
    (archived,) = (tmp_path / "carbon" / "archive" / "electricitymaps").glob("*.json")
    saved = json.loads(archived.read_text())
    assert saved["source"] == "electricitymaps" and len(saved["points"]) == 3
    assert TOKEN not in archived.read_text()


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_answer(server, tmp_path, caplog):
    server.reply("/v3/", (200, EMAPS_FORECAST))
    (tmp_path / "carbon").write_text("a file where the cache folder should be")
    store = Store(tmp_path / "carbon")
    result = fetch_forecast([ElectricityMaps("DE", TOKEN, server.url, FAST)], *WINDOW, store=store)
    assert result.source == "electricitymaps" and len(result.series.points) == 3
    assert "intensity cache not written" in caplog.text


def test_a_reply_that_misses_the_window_is_skipped_and_no_source_says_why(server):
    old = dict(
        EMAPS_FORECAST, forecast=[{"carbonIntensity": 1, "datetime": "2001-01-01T00:00:00+00:00"}]
    )
    server.reply("/v3/", (200, old))
    with pytest.raises(NoUsableSource, match="misses the window asked for"):
        fetch_forecast([ElectricityMaps("DE", TOKEN, server.url, FAST)], *WINDOW)


def test_credentials_come_from_the_environment_or_the_config_file(tmp_path):
    config = tmp_path / "sources.toml"
    config.write_text('[electricitymaps]\ntoken = "from-file"\n[watttime]\nusername = "u"\n')
    env = {"GREENBENCH_CONFIG": str(config), "GREENBENCH_WATTTIME_PASSWORD": "p"}
    settings = credentials(env)
    assert settings["electricitymaps"]["token"] == "from-file"
    assert settings["watttime"] == {"username": "u", "password": "p"}
    with pytest.raises(GreenbenchError, match="GREENBENCH_ELECTRICITYMAPS_TOKEN"):
        build_source("electricitymaps", "DE", {})
    with pytest.raises(GreenbenchError, match="unknown source"):
        build_source("psychic", "DE", {})


def test_wait_until_counts_down_to_the_moment():
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    ticks = []

    def sleep(seconds):
        now[0] += dt.timedelta(seconds=seconds)

    wait_until(now[0] + dt.timedelta(seconds=2.5), ticks.append, sleep, lambda: now[0])
    assert [t.total_seconds() for t in ticks] == [2.5, 1.5, 0.5]


def trace_around_now(path, cheapest_index):
    rows = ["Time,Carbon Intensity"]
    for i in range(-2, 20):
        t = NOW + dt.timedelta(minutes=30 * i)
        rows.append(f"{t:%Y-%m-%d %H:%M:%S},{100 if i == cheapest_index else 300}")
    path.write_text("\n".join(rows) + "\n")


def test_forecast_command_plans_from_a_file_source(tmp_path, capsys):
    trace = tmp_path / "trace.csv"
    trace_around_now(trace, cheapest_index=6)
    args = ["forecast", "--duration", "30m", "--within", "8h", "--out", str(tmp_path)]
    assert main([*args, "--source", f"file:{trace}", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["starts"] == [(NOW + dt.timedelta(hours=3)).isoformat()]
    assert plan["chosen_g_per_kwh"] == 100 and plan["source"] == "file"
    assert main([*args, "--source", f"file:{tmp_path / 'none.csv'}"]) == 2
    assert "no usable intensity source (no such trace file" in capsys.readouterr().err


@pytest.mark.slow
def test_run_when_green_without_a_usable_source_runs_now_and_says_why(tmp_path, capsys):
    suite = tmp_path / "s.toml"
    suite.write_text(
        'workloads = ["resnet-tiny"]\n[protocol]\nrepetitions = 1\nmin_window_s = 0.2\n'
        "idle_s = 0.2\nmin_calls = 1\n"
    )
    out = tmp_path / "r"
    base = ["run", "--suite", str(suite), "--out", str(out), "--when-green", "--within", "1h"]
    assert main([*base, "--source", "file:missing.csv", "--duration", "5m"]) == 0
    assert "running now, as planned" in capsys.readouterr().out
    from greenbench.carbon.green import estimate_duration

    assert dt.timedelta(0) < estimate_duration(out, "s") < dt.timedelta(minutes=5)
    assert estimate_duration(out, "other") is None


def test_run_when_green_waits_for_the_planned_start(tmp_path, capsys, monkeypatch):
    import greenbench.cli_carbon as cli_carbon

    trace = tmp_path / "trace.csv"
    trace_around_now(trace, cheapest_index=6)
    waited = []
    monkeypatch.setattr(cli_carbon, "wait_until", lambda moment, tick, sleep: waited.append(moment))
    monkeypatch.setattr("greenbench.run", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    args = ["run", "--suite", "tiny", "--out", str(tmp_path / "r"), "--when-green"]
    code = main([*args, "--duration", "30m", "--source", f"file:{trace}"])
    assert waited == [NOW + dt.timedelta(hours=3)]
    assert code == 130  # the run itself was stubbed to be interrupted
    assert "cleanest start" in capsys.readouterr().out


def test_run_when_green_needs_a_duration_it_can_estimate(tmp_path, capsys):
    out = tmp_path / "empty"
    code = main(["run", "--suite", "tiny", "--out", str(out), "--when-green", "--source", "uk"])
    assert code == 2
    assert "give --duration" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_a_run_with_a_source_charges_each_window_at_its_own_intensity(tmp_path, capsys):
    trace = tmp_path / "trace.csv"
    trace_around_now(trace, cheapest_index=-99)  # a flat 300 gCO2/kWh around now
    suite = tmp_path / "s.toml"
    suite.write_text(
        'workloads = ["resnet-tiny"]\n[protocol]\nrepetitions = 2\nmin_window_s = 0.2\n'
        "idle_s = 0.2\nmin_calls = 1\n"
    )
    out = tmp_path / "r"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--source", f"file:{trace}"]) == 0
    assert "at the grid's intensity over their own time (file)" in capsys.readouterr().out
    import greenbench
    from greenbench.energy.meter import KWH_TO_J

    frame = greenbench.load_results(out)
    assert (frame["carbon_intensity_series_g_per_kwh"] == 300).all()
    expected = frame["energy_j"] / KWH_TO_J * 300
    assert (frame["emissions_series_g"] - expected).abs().max() < 1e-12
    assert set(frame["carbon_series_source"]) == {"file"}
    assert frame["emissions_g"].notna().all()  # CodeCarbon's static figure stays beside it


def test_electricity_maps_forecast_points_are_hourly_slots_sorted_by_start(server):
    hour = dt.timedelta(hours=1)
    rows = [
        {"carbonIntensity": 250, "datetime": (NOW + 2 * hour).isoformat(), "zone": "DE"},
        {"carbonIntensity": 240.5, "datetime": (NOW - hour).strftime("%Y-%m-%dT%H:%M:%SZ")},
    ]
    server.reply("/v3/carbon-intensity/forecast", (200, {"zone": "DE", "forecast": rows}))
    past, future = ElectricityMaps("DE", TOKEN, server.url, FAST).forecast(*WINDOW)
    assert (past.start, past.g_per_kwh, past.is_forecast) == (NOW - hour, 240.5, False)
    assert (future.start, future.g_per_kwh, future.is_forecast) == (NOW + 2 * hour, 250, True)
    assert past.duration == future.duration == hour and past.signal == "average"
    assert past.fetched_at is not None and past.fetched_at >= NOW
    assert server.seen[-1][0].startswith("/v3/carbon-intensity/forecast?")


def test_run_when_green_runs_now_when_the_forecast_is_too_short(tmp_path, capsys, monkeypatch):
    trace = tmp_path / "short.csv"
    trace.write_text(f"Time,Carbon Intensity\n{NOW:%Y-%m-%d %H:%M:%S},100\n")  # one slot
    ran = []
    monkeypatch.setattr(
        "greenbench.run", lambda *a, **k: ran.append(1) or (_ for _ in ()).throw(KeyboardInterrupt)
    )
    args = ["run", "--suite", "tiny", "--out", str(tmp_path / "r"), "--when-green"]
    assert main([*args, "--duration", "3h", "--source", f"file:{trace}"]) == 130
    assert ran == [1]  # it went on to run
    assert "running now, as planned" in capsys.readouterr().out


# --- issue 20: credentials and redirects, Retry-After, deadlines, broken replies, runs


def test_credentials_never_follow_a_redirect_to_another_origin(servers):
    home, other = servers(), servers()  # the same host on another port is another origin
    other.reply("/", (200, {"landed": "other"}))
    home.reply("/elsewhere", (302, b"", {"Location": f"{other.url}/landed"}))
    home.reply("/moved", (302, b"", {"Location": "/here"}))
    home.reply("/here", (200, {"landed": "home"}))
    credentials = {"auth-token": TOKEN, "Authorization": "Basic c2VjcmV0"}
    assert get_json(f"{home.url}/elsewhere", credentials, retries=0) == {"landed": "other"}
    ((path, headers),) = other.seen
    assert "auth-token" not in headers and "authorization" not in headers
    assert get_json(f"{home.url}/moved", credentials, retries=0) == {"landed": "home"}
    path, headers = home.seen[-1]  # a redirect within the origin keeps them
    assert path == "/here" and headers["auth-token"] == TOKEN
    assert headers["authorization"] == "Basic c2VjcmV0"


def test_the_sources_keep_their_tokens_home_when_redirected(servers):
    home, other = servers(), servers()
    other.reply("/v3/", (200, EMAPS_FORECAST))
    other.reply("/login", (401, {}))
    home.reply("/v3/", (302, b"", {"Location": f"{other.url}/v3/carbon-intensity/forecast"}))
    home.reply("/login", (301, b"", {"Location": f"{other.url}/login"}))
    assert len(ElectricityMaps("DE", TOKEN, home.url, FAST).forecast(*WINDOW)) == 3
    with pytest.raises(SourceError, match="HTTP 401"):
        WattTime("CAISO_NORTH", "me", "pw", home.url, FAST).forecast(*WINDOW)
    for _, headers in other.seen:
        assert "auth-token" not in headers and "authorization" not in headers
    assert home.seen[0][1]["auth-token"] == TOKEN


@pytest.mark.parametrize(
    ("header", "slept"),
    [
        ("soon-ish", 0.5),  # neither seconds nor a date: the usual backoff
        ("-3", 0.5),
        ("2", 2.0),
        ("99999999999999999999", 5.0),  # capped at max_wait_s
        ("Fri, 31 Dec 9999 23:59:59 GMT", 5.0),
        ("Mon, 01 Jan 2001 00:00:00 GMT", 0.0),  # already past
    ],
)
def test_retry_after_is_obeyed_capped_or_ignored(server, header, slept):
    server.reply("/v3/", (429, {}, {"Retry-After": header}), (200, EMAPS_FORECAST))
    sleeps = []
    fetch = functools.partial(
        get_json, retries=1, backoff_s=0.5, max_wait_s=5.0, sleep=sleeps.append
    )
    assert len(ElectricityMaps("DE", TOKEN, server.url, fetch).forecast(*WINDOW)) == 3
    assert sleeps == [slept]


def test_a_retry_after_past_the_deadline_gives_up_at_once(server):
    server.reply("/v3/", (503, {}, {"Retry-After": "120"}))
    sleeps = []
    with pytest.raises(SourceError, match="HTTP 503"):
        get_json(f"{server.url}/v3/x", max_wait_s=300, deadline_s=10, sleep=sleeps.append)
    assert sleeps == [] and len(server.seen) == 1


@pytest.mark.parametrize("how", ["trickle", "trickle-headers"])
def test_a_trickling_server_is_given_up_at_the_deadline(server, how):
    body = b'{"forecast": []' + b" " * 25 + b"}"  # 2 s at a byte per 50 ms; each read is quick
    server.reply("/v3/", (how, body))
    with pytest.raises(SourceError, match=r"gave no complete answer within 0\.3 s"):
        get_json(f"{server.url}/v3/x", timeout_s=5, deadline_s=0.3, sleep=lambda s: None)
    # the deadline covers the retries too (on a loaded machine it may pass before the server
    # has even logged the first request)
    assert len(server.seen) <= 1


def test_a_cut_off_body_is_a_one_line_failure(server):
    server.reply("/v3/", ("truncate", EMAPS_FORECAST))
    with pytest.raises(SourceError, match=r"sent a broken reply \(IncompleteRead") as caught:
        ElectricityMaps("DE", TOKEN, server.url, FAST).forecast(*WINDOW)
    assert TOKEN not in str(caught.value) and "\n" not in str(caught.value)
    assert len(server.seen) == 3  # retried as any failed fetch


@pytest.mark.parametrize(
    ("value", "message"),
    [(-5, "not between 0 and 10000"), (1e308, "not between 0 and 10000"), (10**400, "range")],
)
def test_an_api_intensity_out_of_bounds_is_rejected_like_a_file_one(value, message):
    reply = {"forecast": [{"datetime": NOW.isoformat(), "carbonIntensity": value}]}
    with pytest.raises(SourceError, match=message):
        ElectricityMaps("DE", TOKEN, "http://unused", lambda *a: reply).forecast(*WINDOW)


def test_an_unexpected_exception_of_a_source_is_a_reason_and_the_chain_moves_on(server):
    class Broken:
        name = "broken"

        def forecast(self, start, end):
            raise RuntimeError("boom")

    server.reply("/v3/", (200, EMAPS_FORECAST))
    result = fetch_forecast([Broken(), ElectricityMaps("DE", TOKEN, server.url, FAST)], *WINDOW)
    assert result.source == "electricitymaps" and result.position == 1
    assert result.failures == ["broken: RuntimeError: boom"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("trace.csv", b"Time,Carbon Intensity\n2026-01-01 00:00,\xff\xfe\n", "not UTF-8"),
        ("trace.json", b'[{"Time": "2026-01-01T00:00Z", "Rating": 1}]\xff', "not UTF-8"),
        ("trace.csv", b"Time,Carbon Intensity\n2026-01-01 00:00,1e308\n", "not between 0"),
        ("trace.json", b'[{"Time": "2026-01-01T00:00Z", "Rating": 1e308}]', "not between 0"),
        ("trace.json", b'[{"Time": "2026-01-01T00:00Z", "Rating": 1, "Duration": 1e300}]', "hh"),
        ("trace.csv", b"Time,Carbon Intensity\n9999-12-31 23:30,100\n", "not between 1970"),
        ("folder", None, "is a folder; give the trace file in it"),
    ],
)
def test_a_bad_trace_file_is_a_one_line_error(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(GreenbenchError, match=message):
        load_series(path)
    assert main(["forecast", "--source", f"file:{path}", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_forecast_rejects_an_absurd_duration_and_an_unknown_zone(tmp_path, capsys, monkeypatch):
    trace = tmp_path / "trace.csv"
    trace_around_now(trace, cheapest_index=6)
    args = ["forecast", "--source", f"file:{trace}", "--out", str(tmp_path / "r")]
    assert main([*args, "--duration", "99999999999d"]) == 2
    assert "--duration: '99999999999d' is longer than 365 days" in capsys.readouterr().err
    assert main([*args, "--zone", "XX"]) == 2
    assert "--zone: unknown zone 'XX'" in capsys.readouterr().err
    monkeypatch.setenv("GREENBENCH_ZONE", "XX")
    assert main(args) == 2
    assert "$GREENBENCH_ZONE: unknown zone 'XX'" in capsys.readouterr().err
    assert main([*args, "--zone", "de"]) == 0  # a valid zone still plans


def test_grid_zones_may_be_electricity_maps_sub_zones_of_a_known_country():
    from greenbench.cli_carbon import grid_zone

    assert grid_zone("us-cal-ciso") == "US-CAL-CISO" and grid_zone("GB") == "GB"
    with pytest.raises(GreenbenchError, match="unknown zone 'XX'"):
        grid_zone("XX-NORTH")


@pytest.fixture
def sdk_at(monkeypatch, tmp_path):
    """Point the carbon-aware-sdk source at a fake server; no backoff waits, no user config."""

    def point(server):
        monkeypatch.setenv("GREENBENCH_CONFIG", str(tmp_path / "no-config.toml"))
        monkeypatch.setenv("GREENBENCH_CARBON_AWARE_SDK_URL", server.url)
        monkeypatch.setattr(time, "sleep", lambda seconds: None)

    return point


def test_an_unreadable_retry_after_still_runs_now_when_green(
    server, sdk_at, tmp_path, capsys, monkeypatch
):
    sdk_at(server)
    server.reply("/emissions/", (429, {}, {"Retry-After": "soon-ish"}))
    out = str(tmp_path / "r")
    assert main(["forecast", "--source", "carbon-aware-sdk:eastus", "--out", out]) == 2
    assert "HTTP 429" in capsys.readouterr().err
    ran = []
    monkeypatch.setattr(
        "greenbench.run", lambda **k: ran.append(1) or (_ for _ in ()).throw(KeyboardInterrupt)
    )
    args = ["run", "--suite", "tiny", "--out", out, "--when-green", "--duration", "30m"]
    assert main([*args, "--source", "carbon-aware-sdk:eastus"]) == 130
    assert ran == [1] and "running now, as planned" in capsys.readouterr().out


class InstantExecutor:
    """Cells 'measured' at once: an ok row per phase and repetition, timed now."""

    def __init__(self):
        self.rows = 0

    def run(self, jobs, progress):
        from greenbench.records import build_record

        for job in jobs:
            start = dt.datetime.now(dt.UTC).isoformat()
            where = {"window_start": start, "duration_s": 1.0, "energy_j": 3600.0}
            records = [
                build_record(job.context, where, {"phase": phase, "repetition": rep})
                for phase in job.cell.phases
                for rep in range(job.protocol.repetitions)
            ]
            self.rows += len(records)
            yield job.cell, records


@pytest.fixture
def instant(monkeypatch):
    executor = InstantExecutor()
    monkeypatch.setattr("greenbench.api.make_executor", lambda name, address: executor)
    return executor


def _run_meta(out):
    (run,) = out.glob("*/run.json")
    return json.loads(run.read_text()), run.parent / "records.jsonl"


def test_a_failing_source_costs_no_record_and_is_asked_once_per_run(
    server, sdk_at, instant, tmp_path, capsys
):
    sdk_at(server)
    server.reply("/emissions/", ("truncate", SDK_FORECAST))
    out = tmp_path / "r"
    code = main(["run", "--suite", "tiny", "--out", str(out), "--source", "carbon-aware-sdk:x"])
    assert code == 0
    meta, records = _run_meta(out)
    assert len(records.read_text().splitlines()) == instant.rows > 0
    assert meta["status"] == "complete"
    assert "sent a broken reply" in meta["carbon_series_error"]
    assert len(server.seen) == 4  # one fetch and its 3 retries, for the first of 2 cells
    printed = capsys.readouterr().out
    assert "not charged at the grid's intensity: no usable intensity source" in printed


def test_a_run_drops_a_failed_source_and_charges_from_the_next(server, sdk_at, instant, tmp_path):
    sdk_at(server)
    server.reply("/emissions/", (500, {}))
    trace = tmp_path / "trace.csv"
    trace_around_now(trace, cheapest_index=-99)  # a flat 300 gCO2/kWh
    out = tmp_path / "r"
    sources = ["--source", "carbon-aware-sdk:x", "--source", f"file:{trace}"]
    assert main(["run", "--suite", "tiny", "--out", str(out), *sources]) == 0
    meta, records = _run_meta(out)
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert {r["carbon_series_source"] for r in rows} == {"file"}
    assert {r["carbon_intensity_series_g_per_kwh"] for r in rows} == {300}
    assert "carbon_series_error" not in meta and len(server.seen) == 4
    # the dropped source's reason is kept, once
    (dropped,) = meta["carbon_series_dropped"]
    assert "/emissions/" in dropped and "HTTP 500" in dropped


def test_a_run_with_an_unknown_source_fails_before_writing_anything(instant, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--suite", "tiny", "--out", str(out), "--source", "bogus"]) == 2
    assert "unknown source 'bogus'" in capsys.readouterr().err
    assert not out.exists() and instant.rows == 0


def test_the_duration_estimate_skips_run_folders_whose_meta_is_not_a_run(tmp_path):
    from greenbench.carbon.green import estimate_duration

    good = {"status": "complete", "suite": {"name": "s"}}
    good |= {"started_at": "2026-12-01T10:00:00+00:00", "ended_at": "2026-12-01T10:02:00+00:00"}
    for name, meta in [("a", good), ("b", [1, 2]), ("c", "text"), ("d", {"suite": []})]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps(meta))
    assert estimate_duration(tmp_path, "s") == dt.timedelta(minutes=2)
