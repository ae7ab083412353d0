"""Online intensity sources, each normalized to IntensityPoints.

- UK Carbon Intensity API (no key): national, or regional by outward postcode; 48 h forecast.
- Electricity Maps v3 (auth-token header): forecast.
- WattTime v3 (login to a bearer token): co2_moer forecast, lbs/MWh converted to g/kWh.
- A Carbon Aware SDK WebAPI server: /emissions/forecasts/current.

A reply that is malformed or covers nothing raises SourceError, so a chain can try the next.
Credentials are passed in (see credentials.py); they go in headers only, never in messages.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from greenbench.carbon.intensity import IntensityPoint, Signal, utc
from greenbench.carbon.sources.http import SourceError, get_json

LBS_PER_MWH_TO_G_PER_KWH = 453.59237 / 1000  # 1 lb = 453.59237 g; 1 MWh = 1000 kWh

Fetch = Callable[..., Any]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _time(raw: Any, source: str) -> dt.datetime:
    try:
        return utc(dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00")))
    except ValueError:
        raise SourceError(f"{source}: malformed reply: '{raw}' is not a time") from None


def _value(raw: Any, source: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise SourceError(f"{source}: malformed reply: intensity {raw!r} is not a number")
    return float(raw)


def _need(points: list[IntensityPoint], source: str) -> list[IntensityPoint]:
    if not points:
        raise SourceError(f"{source}: the reply holds no intensity data")
    return sorted(points, key=lambda p: p.start)


def _rows(data: Any, key: str | None, source: str) -> list[dict[str, Any]]:
    rows = data.get(key) if key is not None and isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise SourceError(f"{source}: malformed reply: expected a list of points under '{key}'")
    return rows


def _fixed_step(
    rows: Iterable[tuple[dt.datetime, float]],
    step: dt.timedelta,
    signal: Signal,
    fetched: dt.datetime,
) -> list[IntensityPoint]:
    return [IntensityPoint(t, step, v, signal, t >= fetched, fetched) for t, v in rows]


@dataclass
class UKCarbonIntensity:
    """api.carbonintensity.org.uk: national, or a region by outward postcode (e.g. `RG10`)."""

    postcode: str | None = None
    base_url: str = "https://api.carbonintensity.org.uk"
    fetch: Fetch = get_json
    name: str = "uk-carbon-intensity"

    def forecast(self, start: dt.datetime, end: dt.datetime) -> list[IntensityPoint]:
        fetched = _now()
        stamp = utc(start).strftime("%Y-%m-%dT%H:%MZ")
        if self.postcode:
            outward = urllib.parse.quote(self.postcode.split()[0].upper())
            url = f"{self.base_url}/regional/intensity/{stamp}/fw48h/postcode/{outward}"
            data = self.fetch(url)
            region = data.get("data") if isinstance(data, dict) else None
            if isinstance(region, list) and region:  # some replies wrap the region in a list
                region = region[0]
            rows = _rows(region, "data", self.name)
        else:
            rows = _rows(self.fetch(f"{self.base_url}/intensity/{stamp}/fw48h"), "data", self.name)
        points = []
        for row in rows:
            begin, finish = _time(row.get("from"), self.name), _time(row.get("to"), self.name)
            intensity = row.get("intensity") or {}
            actual, predicted = intensity.get("actual"), intensity.get("forecast")
            value = _value(actual if actual is not None else predicted, self.name)
            points.append(
                IntensityPoint(begin, finish - begin, value, "average", actual is None, fetched)
            )
        return _need(points, self.name)


@dataclass
class ElectricityMaps:
    """Electricity Maps v3 for a zone (`GB`, `DE`, `US-CAL-CISO`, ...)."""

    zone: str
    token: str = field(repr=False, default="")
    base_url: str = "https://api.electricitymap.org"
    fetch: Fetch = get_json
    name: str = "electricitymaps"

    def _get(self, path: str) -> Any:
        query = urllib.parse.urlencode({"zone": self.zone})
        return self.fetch(f"{self.base_url}/v3/{path}?{query}", {"auth-token": self.token})

    def _points(self, rows: list[dict[str, Any]], fetched: dt.datetime) -> list[IntensityPoint]:
        parsed = [
            (_time(r.get("datetime"), self.name), _value(r.get("carbonIntensity"), self.name))
            for r in rows
        ]
        return _fixed_step(parsed, dt.timedelta(hours=1), "average", fetched)

    def forecast(self, start: dt.datetime, end: dt.datetime) -> list[IntensityPoint]:
        fetched = _now()
        rows = _rows(self._get("carbon-intensity/forecast"), "forecast", self.name)
        return _need(self._points(rows, fetched), self.name)


@dataclass
class WattTime:
    """WattTime v3 marginal emissions (co2_moer) for a region (`CAISO_NORTH`, ...)."""

    region: str
    username: str = ""
    password: str = field(repr=False, default="")
    base_url: str = "https://api.watttime.org"
    fetch: Fetch = get_json
    name: str = "watttime"

    def _token(self) -> str:
        basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        reply = self.fetch(f"{self.base_url}/login", {"Authorization": f"Basic {basic}"})
        token = reply.get("token") if isinstance(reply, dict) else None
        if not isinstance(token, str) or not token:
            raise SourceError(f"{self.name}: login gave no token (check the username and password)")
        return token

    def forecast(self, start: dt.datetime, end: dt.datetime) -> list[IntensityPoint]:
        token = self._token()
        fetched = _now()
        query = urllib.parse.urlencode({"region": self.region, "signal_type": "co2_moer"})
        data = self.fetch(
            f"{self.base_url}/v3/forecast?{query}", {"Authorization": f"Bearer {token}"}
        )
        meta = data.get("meta", {}) if isinstance(data, dict) else {}
        units = str(meta.get("units", "lbs_co2_per_mwh")).lower()
        if "lbs" not in units:
            raise SourceError(f"{self.name}: unexpected units '{units}' (expected lbs_co2_per_mwh)")
        step = dt.timedelta(seconds=float(meta.get("data_point_period_seconds") or 300))
        rows = [
            (_time(r.get("point_time"), self.name), _value(r.get("value"), self.name))
            for r in _rows(data, "data", self.name)
        ]
        converted = [(t, v * LBS_PER_MWH_TO_G_PER_KWH) for t, v in rows]
        return _need(_fixed_step(converted, step, "marginal", fetched), self.name)


@dataclass
class CarbonAwareSDK:
    """A Carbon Aware SDK WebAPI server, for one of its locations (`eastus`, `uksouth`, ...)."""

    location: str
    base_url: str = "http://localhost:8080"
    signal: Signal = "marginal"  # the server's data source decides: WattTime marginal by default
    fetch: Fetch = get_json
    name: str = "carbon-aware-sdk"

    def forecast(self, start: dt.datetime, end: dt.datetime) -> list[IntensityPoint]:
        fetched = _now()
        query = urllib.parse.urlencode({"location": self.location})
        data = self.fetch(f"{self.base_url}/emissions/forecasts/current?{query}")
        forecasts = _rows(data, None, self.name)
        if not forecasts:
            raise SourceError(f"{self.name}: the reply holds no forecast")
        points = []
        for row in _rows(forecasts[0], "forecastData", self.name):
            begin = _time(row.get("timestamp"), self.name)
            minutes = _value(row.get("duration", 5), self.name)
            value = _value(row.get("value"), self.name)
            points.append(
                IntensityPoint(
                    begin, dt.timedelta(minutes=minutes), value, self.signal, True, fetched
                )
            )
        return _need(points, self.name)
