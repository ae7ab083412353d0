"""A chain of intensity sources with an on-disk cache and an archive of every forecast fetched.

Sources are named on the command line as `uk`, `uk:RG10`, `electricitymaps[:ZONE]`,
`watttime:REGION`, `carbon-aware-sdk:LOCATION` or `file:PATH`; credentials come from the
environment or a config file (never from flags), see `credentials`. The first source that gives a
usable answer wins; each failure is kept as a one-line reason. The archive keeps what was known
when (results/carbon/archive/), so a backtest can replay real forecasts later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from greenbench.carbon.intensity import (
    IntensityPoint,
    IntensitySeries,
    checked_intensity,
    checked_slot,
    parse_time,
)
from greenbench.carbon.sources.apis import (
    CarbonAwareSDK,
    ElectricityMaps,
    UKCarbonIntensity,
    WattTime,
)
from greenbench.carbon.sources.file import load_points
from greenbench.carbon.sources.http import SourceError
from greenbench.errors import GreenbenchError, one_line

log = logging.getLogger(__name__)

CONFIG_ENV = "GREENBENCH_CONFIG"
DEFAULT_CONFIG = Path("~/.config/greenbench/sources.toml")


class Source(Protocol):
    """An intensity source: the classes in apis.py and FileSource.

    Optional attribute `cacheable` (default True): False keeps its answers out of the cache.
    """

    @property
    def name(self) -> str: ...

    def forecast(self, start: dt.datetime, end: dt.datetime) -> list[IntensityPoint]: ...


def credentials(env: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Per-source settings from the config file, overridden by environment variables.

    Environment: GREENBENCH_ELECTRICITYMAPS_TOKEN, GREENBENCH_WATTTIME_USERNAME,
    GREENBENCH_WATTTIME_PASSWORD, GREENBENCH_CARBON_AWARE_SDK_URL. File: $GREENBENCH_CONFIG or
    ~/.config/greenbench/sources.toml, with tables [electricitymaps] token = ..., [watttime]
    username/password, [carbon-aware-sdk] url, [uk] url.
    """
    env = os.environ if env is None else env
    path = Path(env.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser()
    settings: dict[str, dict[str, str]] = {}
    if path.is_file():
        try:
            loaded = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise GreenbenchError(f"{path}: not valid TOML ({e}); fix the syntax") from None
        settings = {
            k: {kk: str(vv) for kk, vv in v.items()}
            for k, v in loaded.items()
            if isinstance(v, dict)
        }
    for variable, (source, key) in {
        "GREENBENCH_ELECTRICITYMAPS_TOKEN": ("electricitymaps", "token"),
        "GREENBENCH_WATTTIME_USERNAME": ("watttime", "username"),
        "GREENBENCH_WATTTIME_PASSWORD": ("watttime", "password"),
        "GREENBENCH_CARBON_AWARE_SDK_URL": ("carbon-aware-sdk", "url"),
    }.items():
        if env.get(variable):
            settings.setdefault(source, {})[key] = env[variable]
    return settings


@dataclass(frozen=True)
class FileSource:
    path: str
    name: str = "file"
    cacheable: bool = False  # the file is the user's own: read it fresh every time

    def forecast(self, start: dt.datetime, end: dt.datetime) -> list[IntensityPoint]:
        try:
            return load_points(self.path, is_forecast=True)
        except GreenbenchError as e:
            raise SourceError(str(e)) from None


def build_source(text: str, zone: str, settings: Mapping[str, Mapping[str, str]]) -> Source:
    """A source from its command-line name; GreenbenchError naming the fix."""
    kind, _, arg = text.partition(":")
    conf = settings.get(kind, {})
    if kind == "uk":
        return UKCarbonIntensity(arg or None, conf.get("url", UKCarbonIntensity.base_url))
    if kind == "electricitymaps":
        if not conf.get("token"):
            raise GreenbenchError(
                "electricitymaps needs a token: set GREENBENCH_ELECTRICITYMAPS_TOKEN or "
                f"[electricitymaps] token in {DEFAULT_CONFIG}"
            )
        return ElectricityMaps(
            arg or zone, conf["token"], conf.get("url", ElectricityMaps.base_url)
        )
    if kind == "watttime":
        if not arg:
            raise GreenbenchError("watttime needs a region: --source watttime:CAISO_NORTH")
        if not (conf.get("username") and conf.get("password")):
            raise GreenbenchError(
                "watttime needs a login: set GREENBENCH_WATTTIME_USERNAME and "
                f"GREENBENCH_WATTTIME_PASSWORD, or [watttime] in {DEFAULT_CONFIG}"
            )
        return WattTime(arg, conf["username"], conf["password"], conf.get("url", WattTime.base_url))
    if kind == "carbon-aware-sdk":
        if not arg:
            raise GreenbenchError(
                "carbon-aware-sdk needs a location: --source carbon-aware-sdk:eastus"
            )
        return CarbonAwareSDK(arg, conf.get("url", CarbonAwareSDK.base_url))
    if kind == "file" and arg:
        return FileSource(arg)
    raise GreenbenchError(
        f"--source: unknown source '{text}'; use uk[:POSTCODE], electricitymaps[:ZONE], "
        "watttime:REGION, carbon-aware-sdk:LOCATION or file:PATH"
    )


def default_sources(zone: str, settings: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The chain used when no --source is given: the free UK API for GB, then any configured."""
    names = ["uk"] if zone == "GB" else []
    if settings.get("electricitymaps", {}).get("token"):
        names.append("electricitymaps")
    return names


@dataclass
class ForecastResult:
    series: IntensitySeries
    source: str
    fetched_at: dt.datetime
    from_cache: bool
    failures: list[str] = field(default_factory=list)  # sources tried before, and why they failed
    position: int = 0  # the answering source's place in the chain: those before it failed


class NoUsableSource(GreenbenchError):
    """Every source failed; the message lists why, source by source."""


class Store:
    """results/carbon/: `cache/` (latest answer per source, for max_age) and `archive/`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _key(self, source: Source) -> str:
        ident = json.dumps(
            {
                k: v
                for k, v in vars(source).items()
                if isinstance(v, str) and k not in ("token", "password")
            },
            sort_keys=True,
        )
        return f"{source.name}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"

    def cached(
        self, source: Source, max_age: dt.timedelta
    ) -> tuple[list[IntensityPoint], dt.datetime] | None:
        path = self.root / "cache" / f"{self._key(source)}.json"
        try:
            data = json.loads(path.read_text())
            fetched = dt.datetime.fromisoformat(data["fetched_at"])
            if dt.datetime.now(dt.UTC) - fetched > max_age:
                return None
            return [_point(p) for p in data["points"]], fetched
        except Exception:  # an unreadable or hand-edited entry
            return None  # no usable cache entry: ask the source

    def save(self, source: Source, points: Sequence[IntensityPoint], fetched: dt.datetime) -> None:
        payload = json.dumps(
            {
                "source": source.name,
                "fetched_at": fetched.isoformat(),
                "points": [_record(p) for p in points],
            }
        )
        stamp = fetched.strftime("%Y%m%dT%H%M%SZ")
        for path in (
            self.root / "cache" / f"{self._key(source)}.json",
            self.root / "archive" / source.name / f"{stamp}-{self._key(source)}.json",
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(payload)
            tmp.replace(path)


def _record(p: IntensityPoint) -> dict[str, Any]:
    return {
        "start": p.start.isoformat(),
        "duration_s": p.duration.total_seconds(),
        "g_per_kwh": p.g_per_kwh,
        "signal": p.signal,
        "is_forecast": p.is_forecast,
        "fetched_at": p.fetched_at.isoformat() if p.fetched_at else None,
    }


def _point(d: Mapping[str, Any]) -> IntensityPoint:
    fetched = d.get("fetched_at")
    return IntensityPoint(
        parse_time(d["start"]),
        checked_slot(float(d["duration_s"])),
        checked_intensity(float(d["g_per_kwh"])),
        d.get("signal", "average"),
        bool(d.get("is_forecast", True)),
        dt.datetime.fromisoformat(fetched) if fetched else None,
    )


def fetch_forecast(
    sources: Sequence[Source],
    start: dt.datetime,
    end: dt.datetime,
    store: Store | None = None,
    max_age: dt.timedelta = dt.timedelta(minutes=30),
) -> ForecastResult:
    """The first usable answer for [start, end) from the chain; NoUsableSource with reasons."""
    failures: list[str] = []
    for position, source in enumerate(sources):
        cache = store if getattr(source, "cacheable", True) else None
        hit = cache.cached(source, max_age) if cache is not None else None
        if hit is not None:
            points, fetched = hit
            from_cache = True
        else:
            try:
                points = source.forecast(start, end)
            except SourceError as e:
                failures.append(str(e))
                continue
            except Exception as e:  # a source's bug must not end the chain, nor the run
                failures.append(f"{source.name}: {one_line(e)}")
                continue
            fetched, from_cache = dt.datetime.now(dt.UTC), False
        try:
            series = IntensitySeries(points)
        except ValueError as e:
            failures.append(f"{source.name}: malformed reply: {e}")
            continue
        if series.end <= start or series.start >= end:
            failures.append(
                f"{source.name}: its data ({series.start:%Y-%m-%d %H:%M} to "
                f"{series.end:%Y-%m-%d %H:%M} UTC) misses the window asked for"
            )
            continue
        if cache is not None and not from_cache:
            try:
                cache.save(source, points, fetched)
            except OSError as e:  # the cache is a convenience: its failure costs no answer
                log.warning("intensity cache not written, the answer is used uncached: %s", e)
        return ForecastResult(series, source.name, fetched, from_cache, failures, position)
    reasons = "; ".join(failures) or "no source configured"
    raise NoUsableSource(f"no usable intensity source ({reasons})")
