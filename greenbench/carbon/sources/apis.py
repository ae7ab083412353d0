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
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from greenbench.carbon.intensity import (
    IntensityPoint,
    Signal,
    checked_intensity,
    checked_slot,
    parse_time,
    shown,
    utc,
)
from greenbench.carbon.sources.http import SourceError, get_json

LBS_PER_MWH_TO_G_PER_KWH = 453.59237 / 1000  # 1 lb = 453.59237 g; 1 MWh = 1000 kWh

Fetch = Callable[..., Any]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _malformed(source: str, why: object) -> SourceError:
    return SourceError(f"{source}: malformed reply: {why}")


def _time(raw: Any, source: str) -> dt.datetime:
    try:
        return parse_time(raw)
    except ValueError as e:
        raise _malformed(source, e) from None


def _number(raw: Any, source: str, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _malformed(source, f"{what} {shown(repr(raw))} is not a number")
    try:
        return float(raw)
    except OverflowError:  # an integer past float's range
        raise _malformed(source, f"{what} {shown(raw)} is out of range") from None


def _value(raw: Any, source: str, scale: float = 1.0) -> float:
    """An intensity in gCO2/kWh: `raw` times `scale` (a unit conversion), within bounds."""
    try:
        return checked_intensity(_number(raw, source, "intensity") * scale)
    except ValueError as e:
        raise _malformed(source, e) from None


def _slot(raw: Any, source: str, seconds_per_unit: float) -> dt.timedelta:
    try:
        return checked_slot(_number(raw, source, "slot length") * seconds_per_unit)
    except ValueError as e:
        raise _malformed(source, e) from None


def _need(points: list[IntensityPoint], source: str) -> list[IntensityPoint]:
    if not points:
        raise SourceError(f"{source}: the reply holds no intensity data")
    return sorted(points, key=lambda p: p.start)


def _object(data: Any, source: str, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _malformed(source, f"expected an object for {what}")
    return data


def _rows(data: Any, key: str | None, source: str) -> list[dict[str, Any]]:
    rows = data.get(key) if key is not None and isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise _malformed(source, f"expected a list of points under '{key}'")
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
            outward = urllib.parse.quote((self.postcode.split() or [""])[0].upper())
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
            intensity = _object(row.get("intensity"), self.name, "'intensity'")
            actual, predicted = intensity.get("actual"), intensity.get("forecast")
            value = _value(actual if actual is not None else predicted, self.name)
            if finish <= begin:
                raise _malformed(self.name, f"slot {shown(row.get('from'))} ends before it starts")
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
        meta = data.get("meta") if isinstance(data, dict) else None
        meta = _object(meta if meta is not None else {}, self.name, "'meta'")
        units = shown(meta.get("units", "lbs_co2_per_mwh")).lower()
        if "lbs" not in units:
            raise SourceError(f"{self.name}: unexpected units '{units}' (expected lbs_co2_per_mwh)")
        step = _slot(meta.get("data_point_period_seconds") or 300, self.name, 1.0)
        rows = [
            (
                _time(r.get("point_time"), self.name),
                _value(r.get("value"), self.name, LBS_PER_MWH_TO_G_PER_KWH),
            )
            for r in _rows(data, "data", self.name)
        ]
        return _need(_fixed_step(rows, step, "marginal", fetched), self.name)


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
            length = _slot(row.get("duration", 5), self.name, 60.0)  # minutes
            value = _value(row.get("value"), self.name)
            points.append(IntensityPoint(begin, length, value, self.signal, True, fetched))
        return _need(points, self.name)
