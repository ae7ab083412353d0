"""A columnar cache of records.jsonl: one Parquet file beside each records file.

records.jsonl stays the source of truth. The cache of a run holds the same rows (after
read_records_file's checks, with its warnings) and is keyed by the size and mtime_ns of
records.jsonl and run.json: any append, or any change of the run, and it is rebuilt on the next
load. A cache that cannot be read is rebuilt; one that cannot be written (a read-only results
folder) is skipped without a word. A run still being written (run.json status `running`) is
read from JSONL and not cached.

The frame built from the caches equals the one pandas builds from every row (dtypes included):
Arrow promotes a column only from null to a type or from int64 to double, as pandas does, and a
column a whole run lacks is NaN, as pandas fills a missing key. Anything else (a column of mixed
types, rows with different keys in one run) falls back to the rows.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greenbench.errors import GreenbenchWarning
from greenbench.records import COLUMNS
from greenbench.store import RUN_FILE, read_records_file

# bump when what a cache holds or how it is read changes: older caches are then rebuilt
FORMAT = "1"
KEY = b"greenbench.cache.key"
WARNINGS = b"greenbench.cache.warnings"
_SCHEMA = hashlib.sha256(" ".join(COLUMNS).encode()).hexdigest()[:12]


def cache_path(records: Path) -> Path:
    """Where the cache of a records file lives: beside it, hidden."""
    return records.with_name(f".{records.name}.cache.parquet")


@dataclass
class Part:
    """One records file, as a table (when Arrow can hold it) and/or its rows."""

    table: Any  # pyarrow.Table | None
    rows: list[dict[str, Any]] | None


def records_frame(files: Sequence[Path], use_cache: bool = True) -> pd.DataFrame:
    """Every usable record of `files` as pandas would build it from the rows, through the
    per-run caches where they are fresh (and built where they are not)."""
    if not use_cache or importlib.util.find_spec("pyarrow") is None:  # the cache is optional
        return pd.DataFrame([r for f in files for r in read_records_file(f)])
    parts = [run_part(Path(f)) for f in files]
    # a run without usable rows (just created, or all skipped) adds nothing to either frame
    tables = [p.table for p in parts if p.table is not None or p.rows != []]
    frame = _frame(tables) if tables and all(t is not None for t in tables) else None
    if frame is not None:
        return frame
    return pd.DataFrame([r for p in parts for r in _rows(p)])


def run_part(records: Path) -> Part:
    """A records file through its cache: read when fresh, else rebuilt from the JSONL."""
    key = _key(records)
    cache = cache_path(records)
    if key is not None:
        table = _read_cache(cache, key)
        if table is not None:
            return Part(table, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GreenbenchWarning)
        rows = read_records_file(records)
    messages = [str(w.message) for w in caught if issubclass(w.category, GreenbenchWarning)]
    for w in caught:  # shown as read_records_file would have shown them
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    table = rows_table(rows)
    if table is not None and key is not None and not _running(records.parent):
        _write_cache(cache, table, key, messages)
    # the table holds the rows: a year of history as dicts (~9 KB a row) would not fit in memory
    return Part(table, rows if table is None else None)


def rows_table(rows: list[dict[str, Any]]) -> Any:
    """The rows as a pyarrow Table, or None where a faithful one cannot be built: no rows,
    rows with different keys, a column of mixed types or of nested values."""
    import pyarrow as pa

    if not rows:
        return None
    keys = list(rows[0])
    if any(len(r) != len(keys) or r.keys() != rows[0].keys() for r in rows):
        return None
    try:
        arrays = [pa.array([r[k] for r in rows]) for k in keys]
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    if any(pa.types.is_nested(a.type) or not _plain_type(a.type) for a in arrays):
        return None
    return pa.table(dict(zip(keys, arrays, strict=True)))


def _plain_type(type_: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_null(type_)
        or pa.types.is_boolean(type_)
        or type_ == pa.int64()
        or type_ == pa.float64()
        or pa.types.is_string(type_)
    )


def _rows(part: Part) -> list[dict[str, Any]]:
    if part.rows is not None:
        return part.rows
    return list(part.table.to_pylist()) if part.table is not None else []


def _frame(tables: list[Any]) -> pd.DataFrame | None:
    """The tables as one frame equal to pandas' from their rows; None where that is not sure."""
    import pyarrow as pa

    try:
        unified = pa.unify_schemas(
            [t.schema.remove_metadata() for t in tables], promote_options="permissive"
        )
    except (pa.ArrowException, TypeError):
        return None
    for table in tables:
        for field in table.schema:
            if not _promotes_like_pandas(field.type, unified.field(field.name).type):
                return None
    combined = pa.concat_tables(
        [t.replace_schema_metadata(None) for t in tables], promote_options="permissive"
    )
    frame = combined.to_pandas()
    _missing_as_nan(frame, tables)
    return frame


def _promotes_like_pandas(own: Any, unified: Any) -> bool:
    import pyarrow as pa

    return bool(
        own == unified or pa.types.is_null(own) or (own == pa.int64() and unified == pa.float64())
    )


def _missing_as_nan(frame: pd.DataFrame, tables: list[Any]) -> None:
    """pandas fills a key a row lacks with NaN, Arrow a column a table lacks with null (None
    in an object column): put NaN there and let pandas infer the column as it would."""
    start, spans = 0, dict[str, list[tuple[int, int]]]()
    for table in tables:
        present = set(table.column_names)
        for column in frame.columns:
            if column not in present:
                spans.setdefault(column, []).append((start, start + table.num_rows))
        start += table.num_rows
    for column, ranges in spans.items():
        if frame[column].dtype != object:
            continue  # float and str columns hold NaN for null already
        values = frame[column].to_numpy(dtype=object, copy=True)
        for a, b in ranges:
            values[a:b] = np.nan
        frame[column] = pd.Series(values, index=frame.index).infer_objects()


def _stat(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _key(records: Path) -> str | None:
    """What the cache must have been built from; None when the records file is gone."""
    own = _stat(records)
    if own == "-":
        return None
    return f"{FORMAT}/{_SCHEMA}/{own}/{_stat(records.parent / RUN_FILE)}"


def _running(run: Path) -> bool:
    """Whether run.json says the run is still being written (or cannot be read)."""
    path = run / RUN_FILE
    if not path.exists():
        return False
    try:
        meta = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return True
    return not isinstance(meta, dict) or meta.get("status") == "running"


def _read_cache(cache: Path, key: str) -> Any:
    """The cached table when its key is `key`; None when absent, stale or unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(cache)
        meta = handle.schema_arrow.metadata or {}
        if meta.get(KEY) != key.encode():
            return None
        table = handle.read()
        messages = json.loads(meta.get(WARNINGS, b"[]"))
    except (OSError, pa.ArrowException, ValueError):
        return None
    for message in messages:  # the skipped lines, said again on every load
        warnings.warn(str(message), GreenbenchWarning, stacklevel=4)
    return table


def _write_cache(cache: Path, table: Any, key: str, messages: list[str]) -> None:
    """Write beside the records and rename: a reader never sees half a cache."""
    import pyarrow.parquet as pq

    meta = {KEY: key.encode(), WARNINGS: json.dumps(messages).encode()}
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table.replace_schema_metadata(meta), tmp)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only results folder: the JSONL is read every time, nothing is lost
    finally:
        tmp.unlink(missing_ok=True)
