"""One columnar cache per results folder: its finished runs' rows in one Arrow file.

A run's own cache (cache.py) costs one Parquet read, about 8 ms for 750 rows of 100 columns
whatever the rows, so a year of nightly runs from ten machines (3,650 runs) spent 30 s in reads
alone. Where a load takes at least FOLDER_MIN runs of one results folder, the folder gets
`.records.cache.arrow` beside its run folders: the runs' tables joined, in Arrow's IPC file
format with LZ4 (read 5.7x faster than the same table as Parquet: 1.3 against 7.2 s of CPU
for 2.7 M records on the 2-vCPU dev VM), and a manifest (in the file's metadata) of each run's
records file, cache key (cache.py's: the size and mtime of records.jsonl and run.json), rows,
own schema and skipped-line warnings. A load whose runs are all in it, fresh, reads it once
and takes their rows; a run added, changed or gone since is taken from its own cache (or its
JSONL) and the folder's cache is written anew with the other fresh runs kept, so a night's new
run costs one read and one write of it. A run being written is never in it. A load of few of
the folder's runs (under a quarter) reads their own caches.

The frame is the one cache.records_frame builds from the runs' own caches: each run's own
schema is kept, so cache.py's promotion checks and missing-column NaNs apply run by run.
"""

from __future__ import annotations

import base64
import json
import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenbench.cache import FORMAT, Part, run_key, run_part, still_running
from greenbench.errors import GreenbenchWarning

FOLDER_CACHE = ".records.cache.arrow"
FOLDER_MIN = 20  # fewer runs of a folder: their own caches cost less than reading the folder's
MANIFEST = b"greenbench.folder.manifest"
BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Entry:
    """One run in a folder's cache."""

    name: str  # its records file, relative to the folder: RUN/records.jsonl
    key: str
    rows: int
    schema: int  # index into Held.schemas
    warnings: list[str]


@dataclass
class Held:
    """A folder's cache as read: the joined table, its runs in order, their schemas."""

    table: Any
    entries: list[Entry]
    schemas: list[Any]

    def parts(self) -> dict[str, Part]:
        """Each run's rows as a slice of the table, with its own schema."""
        out, start = {}, 0
        for e in self.entries:
            piece = self.table.slice(start, e.rows)
            out[e.name] = Part(piece, None, self.schemas[e.schema], e.warnings)
            start += e.rows
        return out


def folder_parts(files: Sequence[Path]) -> list[Part]:
    """A Part per records file, in order: through their folder's cache where a load takes
    enough of its runs, else through their own caches."""
    found: dict[int, Part] = {}
    by_folder: dict[Path, list[int]] = defaultdict(list)
    for i, records in enumerate(files):
        by_folder[records.parent.parent].append(i)
    for folder, members in by_folder.items():
        if len(members) >= FOLDER_MIN:
            found.update(zip(members, _folder(folder, [files[i] for i in members]), strict=True))
    return [found[i] if i in found else run_part(f) for i, f in enumerate(files)]


def _name(records: Path) -> str:
    return f"{records.parent.name}/{records.name}"


def _folder(folder: Path, files: list[Path]) -> list[Part]:
    keys = {f: run_key(f) for f in files}
    cacheable = {f for f in files if keys[f] is not None and not still_running(f.parent)}
    path = folder / FOLDER_CACHE
    held = _read(path)
    known = {e.name: e for e in held.entries} if held is not None else {}
    if held is not None and len(files) * 4 < len(known):  # a few of many: their own caches
        return [run_part(f) for f in files]
    kept = held.parts() if held is not None else {}
    fresh = {f for f in cacheable if _name(f) in known and known[_name(f)].key == keys[f]}
    parts = {}
    for f in files:
        if f in fresh:  # the skipped lines, said again on every load, as run_part does
            for message in kept[_name(f)].warnings:
                warnings.warn(message, GreenbenchWarning, stacklevel=5)
            parts[f] = kept[_name(f)]
        else:
            parts[f] = run_part(f)
    if fresh == cacheable:  # every finished run asked for is in it, fresh: nothing to write
        return [parts[f] for f in files]
    # runs of the folder this load did not ask for stay while they are fresh
    asked = {_name(f) for f in files}
    others = {
        e.name: kept[e.name]
        for e in known.values()
        if e.name not in asked and run_key(folder / e.name) == e.key
    }
    entries = {_name(f): (keys[f], parts[f]) for f in files if f in cacheable}
    entries.update({name: (known[name].key, part) for name, part in others.items()})
    _write(path, [(n, k, p) for n, (k, p) in entries.items() if p.table is not None])
    return [parts[f] for f in files]


def _read(path: Path) -> Held | None:
    """The folder's cache; None when absent, of another format, or unreadable."""
    import pyarrow as pa

    try:
        with pa.ipc.open_file(str(path)) as reader:
            meta = json.loads((reader.schema.metadata or {}).get(MANIFEST, b"null"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                return None
            schemas = [
                pa.ipc.read_schema(pa.py_buffer(base64.b64decode(s))) for s in meta["schemas"]
            ]
            entries = [Entry(*e) for e in meta["runs"]]
            table = reader.read_all().replace_schema_metadata(None)
    except (OSError, pa.ArrowException, ValueError, KeyError, TypeError):
        return None
    if table.num_rows != sum(e.rows for e in entries):
        return None
    return Held(table, entries, schemas)


def _write(path: Path, entries: list[tuple[str, str | None, Part]]) -> None:
    """Join the runs' tables and write them with their manifest, beside, then renamed: a
    reader never sees half a cache. Tables Arrow cannot join (a column of one type in a run,
    another in the next) leave the folder without one; a read-only folder too."""
    import pyarrow as pa

    if not entries:
        return
    schemas: dict[bytes, int] = {}
    runs = []
    for name, key, part in entries:
        own = part.own_schema.remove_metadata()
        blob = own.serialize().to_pybytes()
        index = schemas.setdefault(blob, len(schemas))
        runs.append([name, key, part.table.num_rows, index, part.warnings])
    try:
        table = pa.concat_tables(
            [p.table.replace_schema_metadata(None) for _, _, p in entries],
            promote_options="permissive",
        )
    except (pa.ArrowException, TypeError):
        return
    manifest = {
        "format": FORMAT,
        "schemas": [base64.b64encode(blob).decode() for blob in schemas],
        "runs": runs,
    }
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    # a few large batches, not one per run: LZ4 per buffer, and slicing per run, stay cheap
    table = table.combine_chunks().replace_schema_metadata({MANIFEST: json.dumps(manifest)})
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    try:
        with pa.ipc.new_file(str(tmp), table.schema, options=options) as writer:
            writer.write_table(table, max_chunksize=BATCH_ROWS)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only results folder: the runs' own caches (or JSONL) serve
    finally:
        tmp.unlink(missing_ok=True)
