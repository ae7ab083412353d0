"""Intensity from a file of the user's own: CSV, greenbench JSON, or the Carbon Aware SDK's
JSON data-file format (`{"Emissions": [{"Location", "Time", "Rating", "Duration"}]}`).

CSV: a header row with a time column (Time, datetime, timestamp, start, from) and an intensity
column (Carbon Intensity, intensity, g_per_kwh, rating, value, gco2_per_kwh); naive times are
UTC. Each slot lasts until the next row's time; the last one as long as the typical step.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import statistics
from pathlib import Path
from typing import Any

from greenbench.carbon.intensity import (
    MAX_SLOT,
    IntensityPoint,
    IntensitySeries,
    Signal,
    checked_intensity,
    checked_slot,
    parse_time,
    shown,
)
from greenbench.errors import GreenbenchError

TIME_COLUMNS = ("time", "datetime", "timestamp", "start", "from")
VALUE_COLUMNS = ("carbon intensity", "intensity", "g_per_kwh", "rating", "value", "gco2_per_kwh")


def load_series(
    path: str | Path, signal: Signal = "average", is_forecast: bool = False
) -> IntensitySeries:
    """The file's intensity as an IntensitySeries; GreenbenchError naming the fix otherwise."""
    points = load_points(path, signal, is_forecast)
    try:
        return IntensitySeries(points)
    except ValueError as e:
        raise GreenbenchError(f"{path}: {e}; fix the file") from None


def load_points(
    path: str | Path, signal: Signal = "average", is_forecast: bool = False
) -> list[IntensityPoint]:
    file = Path(path)
    text = _text(file)
    rows = _json_rows(text, file) if file.suffix.lower() == ".json" else _csv_rows(text, file)
    if not rows:
        raise GreenbenchError(f"{file}: no intensity rows; give at least one time and value")
    rows.sort(key=lambda r: r[0])
    steps = [b[0] - a[0] for a, b in zip(rows, rows[1:], strict=False) if b[0] > a[0]]
    # timedeltas add and halve, which is all median needs (the stubs ask for numbers)
    typical = statistics.median(steps) if steps else dt.timedelta(hours=1)  # type: ignore[type-var]
    points = []
    for i, (start, value, duration) in enumerate(rows):
        if duration is None:
            following = rows[i + 1][0] if i + 1 < len(rows) else start + typical
            duration = min(following - start, typical) if following > start else typical
        points.append(IntensityPoint(start, duration, value, signal, is_forecast))
    return points


def _text(file: Path) -> str:
    """The file as UTF-8 text (a BOM allowed); GreenbenchError naming the fix otherwise."""
    if file.is_dir():
        raise GreenbenchError(f"'{file}' is a folder; give the trace file in it")
    try:
        return file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise GreenbenchError(f"no such trace file '{file}'; check the path") from None
    except UnicodeDecodeError as e:
        raise GreenbenchError(
            f"{file}: not UTF-8 text (byte {e.start}); save it as UTF-8 CSV or JSON"
        ) from None
    except OSError as e:
        raise GreenbenchError(f"cannot read trace file '{file}' ({e.strerror or e})") from None


def _number(raw: Any, file: Path, where: str) -> float:
    try:
        if isinstance(raw, bool):
            raise TypeError("a boolean is not an intensity")
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise GreenbenchError(
            f"{file}: {where}: '{shown(raw)}' is not a number of gCO2/kWh"
        ) from None
    try:
        return checked_intensity(value)
    except ValueError as e:
        raise GreenbenchError(f"{file}: {where}: {e}") from None


def _time(raw: Any, file: Path, where: str) -> dt.datetime:
    try:
        return parse_time(raw)
    except ValueError as e:
        raise GreenbenchError(f"{file}: {where}: {e}") from None


def _column(header: list[str], names: tuple[str, ...], file: Path, what: str) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise GreenbenchError(
        f"{file}: no {what} column in the header ({shown(', '.join(header), 80)}); name it one "
        f"of {', '.join(names)}"
    )


def _csv_rows(text: str, file: Path) -> list[tuple[dt.datetime, float, None]]:
    try:
        return _csv_lines(text, file)
    except csv.Error as e:  # a NUL byte, an over-long field
        raise GreenbenchError(f"{file}: not a readable CSV file ({e}); fix the file") from None


def _csv_lines(text: str, file: Path) -> list[tuple[dt.datetime, float, None]]:
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if not header:
        raise GreenbenchError(f"{file}: empty file; give a header row and data rows")
    t_col = _column(header, TIME_COLUMNS, file, "time")
    v_col = _column(header, VALUE_COLUMNS, file, "intensity")
    rows = []
    for line_no, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        where = f"line {line_no}"
        if len(row) <= max(t_col, v_col):
            raise GreenbenchError(f"{file}: {where}: too few columns")
        rows.append((_time(row[t_col], file, where), _number(row[v_col], file, where), None))
    return rows


def _duration(raw: Any, file: Path, where: str) -> dt.timedelta | None:
    """`[d.]hh:mm:ss[.fff]` (the Carbon Aware SDK's TimeSpan) or seconds; None when absent."""
    if raw is None or raw == "":
        return None
    try:
        if isinstance(raw, bool):
            raise ValueError("a boolean is not a duration")
        if isinstance(raw, int | float):
            return checked_slot(float(raw))
        hours, minutes, seconds = str(raw).split(":")
        days = 0
        if "." in hours:
            day_text, hours = hours.split(".")
            days = int(day_text)
        total = days * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        return checked_slot(total)
    except (ValueError, OverflowError):
        raise GreenbenchError(
            f"{file}: {where}: duration '{shown(raw)}' is not hh:mm:ss, up to {MAX_SLOT.days} days"
        ) from None


def _json_rows(text: str, file: Path) -> list[tuple[dt.datetime, float, dt.timedelta | None]]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, too many digits, deep nesting
        raise GreenbenchError(f"{file}: not valid JSON ({shown(e, 80)}); fix the file") from None
    if isinstance(data, dict):
        data = next(
            (v for k, v in data.items() if k.lower() in ("emissions", "data", "points")), None
        )
    if not isinstance(data, list):
        raise GreenbenchError(
            f'{file}: expected a list of points or {{"Emissions": [...]}} (Carbon Aware SDK)'
        )
    rows = []
    for i, item in enumerate(data):
        where = f"item {i}"
        if not isinstance(item, dict):
            raise GreenbenchError(f"{file}: {where}: expected an object with a time and a value")
        keys = {k.lower(): v for k, v in item.items()}
        t = next((keys[k] for k in TIME_COLUMNS if k in keys), None)
        v = next((keys[k] for k in VALUE_COLUMNS if k in keys), None)
        if t is None or v is None:
            raise GreenbenchError(f"{file}: {where}: needs a time (Time) and a value (Rating)")
        duration = _duration(keys.get("duration"), file, where)
        rows.append((_time(t, file, where), _number(v, file, where), duration))
    return rows
