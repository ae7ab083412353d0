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

import importlib.util
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greenbench.errors import GreenbenchWarning
from greenbench.store import RUN_FILE, read_records_file

# bump when what a cache holds, how it is read, or which rows record_check keeps changes:
# older caches are then rebuilt. A new record column changes none of these (a cache holds the
# file's own columns; load_results adds the rest), so it keeps every cache: a year of history
# takes 8 minutes to parse again
FORMAT = "2"
KEY = b"greenbench.cache.key"
WARNINGS = b"greenbench.cache.warnings"


def cache_path(records: Path) -> Path:
    """Where the cache of a records file lives: beside it, hidden."""
    return records.with_name(f".{records.name}.cache.parquet")


@dataclass
class Part:
    """One records file, as a table (when Arrow can hold it) and/or its rows."""

    table: Any  # pyarrow.Table | None
    rows: list[dict[str, Any]] | None
    # the run's own schema where `table` is a slice of a wider one (folder_cache.py)
    schema: Any = None
    warnings: list[str] = field(default_factory=list)  # the skipped lines, as warned

    @property
    def own_schema(self) -> Any:
        return self.schema if self.schema is not None else self.table.schema


def records_frame(files: Sequence[Path], use_cache: bool = True) -> pd.DataFrame:
    """Every usable record of `files` as pandas would build it from the rows, through the
    caches where they are fresh (and built where they are not): a results folder's own
    (folder_cache.py) where many of its runs are loaded, else each run's."""
    if not use_cache or importlib.util.find_spec("pyarrow") is None:  # the cache is optional
        return pd.DataFrame([r for f in files for r in read_records_file(f)])
    from greenbench.folder_cache import folder_parts  # it builds on this module

    parts = folder_parts([Path(f) for f in files])
    # a run without usable rows (just created, or all skipped) adds nothing to either frame
    held = [p for p in parts if p.table is not None or p.rows != []]
    frame = _frame(held) if held and all(p.table is not None for p in held) else None
    if frame is not None:
        return frame
    return pd.DataFrame([r for p in parts for r in _rows(p)])


def run_part(records: Path) -> Part:
    """A records file through its cache: read when fresh, else rebuilt from the JSONL."""
    key = run_key(records)
    cache = cache_path(records)
    if key is not None:
        cached = _read_cache(cache, key)
        if cached is not None:
            return cached
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GreenbenchWarning)
        rows = read_records_file(records)
    messages = [str(w.message) for w in caught if issubclass(w.category, GreenbenchWarning)]
    for w in caught:  # shown as read_records_file would have shown them
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    table = rows_table(rows)
    if table is not None and key is not None and not still_running(records.parent):
        _write_cache(cache, table, key, messages)
    # the table holds the rows: a year of history as dicts (~9 KB a row) would not fit in memory
    return Part(table, rows if table is None else None, warnings=messages)


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
    if part.table is None:
        return []
    return list(conform(part.table, part.own_schema).to_pylist())


def conform(table: Any, schema: Any) -> Any:
    """`table`'s columns named in `schema`, in its order and of its types: a slice of a wider
    table (a column another run promoted, or one this run lacks) as its rows would give it."""
    import pyarrow as pa

    columns = []
    for want in schema:
        column = table.column(want.name)
        if pa.types.is_null(want.type):
            column = pa.nulls(table.num_rows)
        elif column.type != want.type:
            column = column.cast(want.type)  # only double to int64, of values once int64
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata())


def _frame(parts: list[Part]) -> pd.DataFrame | None:
    """The parts' tables as one frame equal to pandas' from their rows; None where that is
    not sure."""
    import pyarrow as pa

    schemas = [p.own_schema.remove_metadata() for p in parts]
    distinct = list({s.serialize().to_pybytes(): s for s in schemas}.values())  # runs share them
    try:
        unified = pa.unify_schemas(distinct, promote_options="permissive")
    except (pa.ArrowException, TypeError):
        return None
    for schema in distinct:
        for own in schema:
            if not _promotes_like_pandas(own.type, unified.field(own.name).type):
                return None
    try:
        combined = pa.concat_tables(
            [p.table.replace_schema_metadata(None) for p in parts], promote_options="permissive"
        )
        combined = conform(combined, unified)  # slices of a folder's cache: wider, or promoted
    except (pa.ArrowException, TypeError, ValueError):
        return None
    frame = _to_pandas(combined)
    present = [(set(s.names), p.table.num_rows) for s, p in zip(schemas, parts, strict=True)]
    _missing_as_nan(frame, present)
    return frame


def _to_pandas(table: Any) -> pd.DataFrame:
    """table.to_pandas(), but the null-typed columns (no row of these runs has a value) made at
    once: Arrow makes them None by None, 4.3 of the 4.6 s of CPU for a year of history."""
    import pyarrow as pa

    nulls = [i for i, f in enumerate(table.schema) if pa.types.is_null(f.type)]
    if not nulls:
        return table.to_pandas()
    names = table.schema.names
    frame = table.drop_columns([names[i] for i in nulls]).to_pandas()
    for i in nulls:  # ascending: each lands where it was; numpy fills with None; no inference
        empty = pd.Series(np.empty(table.num_rows, dtype=object), dtype=object, copy=False)
        frame.insert(i, names[i], empty)
    return frame


def _promotes_like_pandas(own: Any, unified: Any) -> bool:
    import pyarrow as pa

    return bool(
        own == unified or pa.types.is_null(own) or (own == pa.int64() and unified == pa.float64())
    )


def _missing_as_nan(frame: pd.DataFrame, parts: list[tuple[set[str], int]]) -> None:
    """pandas fills a key a row lacks with NaN, Arrow a column a table lacks with null (None
    in an object column): put NaN there and let pandas infer the column as it would.
    `parts`: each run's own columns and its rows, in the frame's order."""
    start, spans = 0, dict[str, list[tuple[int, int]]]()
    columns = list(frame.columns)  # iterating an Index is slow, per part and column
    for present, rows in parts:
        for column in columns:
            if column not in present:
                spans.setdefault(column, []).append((start, start + rows))
        start += rows
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


def run_key(records: Path) -> str | None:
    """What the cache must have been built from; None when the records file is gone."""
    own = _stat(records)
    if own == "-":
        return None
    return f"{FORMAT}/{own}/{_stat(records.parent / RUN_FILE)}"


def still_running(run: Path) -> bool:
    """Whether run.json says the run is still being written (or cannot be read)."""
    path = run / RUN_FILE
    if not path.exists():
        return False
    try:
        meta = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return True
    return not isinstance(meta, dict) or meta.get("status") == "running"


def _read_cache(cache: Path, key: str) -> Part | None:
    """The cached run when its key is `key`; None when absent, stale or unreadable."""
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
    return Part(table, None, warnings=[str(m) for m in messages])


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
