"""results/: one folder per run, records appended one JSON line at a time.

Layout of a run folder:
    run.json       the run: id, status, times, resolved suite, environment (replaced atomically)
    records.jsonl  one record per line, appended and fsynced; never rewritten
    logs/          one log per cell child process

Crash safety: a line is written with one write() and fsynced before the next cell starts, and
run.json is replaced with os.replace. A kill at any point leaves every earlier line intact; a
torn last line is ignored when reading and cut off before the next append.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from greenbench.errors import GreenbenchError, GreenbenchWarning
from greenbench.record_check import row_problem
from greenbench.run_lock import run_lock

RECORDS_FILE = "records.jsonl"
RUN_FILE = "run.json"


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


class RunStore:
    """One run's folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tail_checked = False

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def records_path(self) -> Path:
        return self.path / RECORDS_FILE

    @property
    def log_dir(self) -> Path:
        return self.path / "logs"

    @classmethod
    def create(cls, out_dir: str | os.PathLike[str], meta: dict[str, Any]) -> RunStore:
        run_id = new_run_id()
        path = Path(out_dir) / run_id
        if path.parent.exists() and not path.parent.is_dir():
            raise GreenbenchError(f"--out: '{out_dir}' is a file; give a folder")
        try:
            path.mkdir(parents=True, exist_ok=False)
        except NotADirectoryError:
            raise GreenbenchError(f"--out: '{out_dir}' is inside a file; give a folder") from None
        except OSError as e:
            raise GreenbenchError(
                f"--out: cannot create a run folder in '{out_dir}' ({e.strerror}); "
                "give a folder you can write to"
            ) from None
        store = cls(path)
        store.write_meta({"run_id": run_id, **meta})
        store.records_path.touch()
        return store

    @classmethod
    def open(cls, out_dir: str | os.PathLike[str], run: str) -> RunStore:
        """A run by id (under out_dir) or by folder path."""
        for candidate in (Path(run), Path(out_dir) / run):
            if (candidate / RUN_FILE).is_file():
                return cls(candidate)
        raise GreenbenchError(
            f"no run '{run}' in {out_dir}; give a run id from {out_dir}/ or the run's folder path"
        )

    def read_meta(self) -> dict[str, Any]:
        """run.json; GreenbenchError naming the file when it is unreadable or not an object."""
        path = self.path / RUN_FILE
        try:
            meta = json.loads(path.read_bytes())
        except OSError as e:
            raise GreenbenchError(f"cannot read {path} ({e.strerror})") from None
        except (ValueError, RecursionError):
            meta = None
        if not isinstance(meta, dict):
            raise GreenbenchError(f"{path} is not a run's JSON object: the run is damaged")
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        target = self.path / RUN_FILE
        tmp = target.with_suffix(".json.tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def update_meta(self, **fields: Any) -> None:
        self.write_meta({**self.read_meta(), **fields})

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        data = "".join(json.dumps(r, default=str) + "\n" for r in records).encode()
        if not data:
            return
        self._cut_torn_tail()
        fd = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _cut_torn_tail(self) -> None:
        """Drop a partial last line left by a writer killed mid-write, once per store."""
        if self._tail_checked:
            return
        self._tail_checked = True
        if not self.records_path.exists():
            return
        with open(self.records_path, "rb+") as f:
            content = f.read()
            if content and not content.endswith(b"\n"):
                f.truncate(content.rfind(b"\n") + 1)

    def read_records(self) -> list[dict[str, Any]]:
        return read_records_file(self.records_path)

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the run's lock (see run_lock): the one writer of this run while it lasts."""
        return run_lock(self.path, self.run_id)


def read_records_file(path: Path) -> list[dict[str, Any]]:
    """Every usable record in a records file. A torn, corrupt or malformed line is skipped, and
    so is a file that cannot be read, with one GreenbenchWarning per file naming the lines."""
    try:
        content = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        _warn(f"{path}: cannot be read ({e.strerror}); its run is skipped")
        return []
    lines = content.split(b"\n")
    records, skipped = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            torn = number == len(lines)  # no newline after it: a writer stopped mid-line
            skipped.append((number, "torn, its writer stopped mid-line" if torn else "not JSON"))
            continue
        problem = row_problem(record)
        if problem is None:
            records.append(record)
        else:
            skipped.append((number, problem))
    if skipped:
        _warn_skipped(path, skipped)
    return records


def _warn_skipped(path: Path, skipped: list[tuple[int, str]]) -> None:
    (first, why), rest = skipped[0], [str(number) for number, _ in skipped[1:]]
    more = f", and {len(rest)} more bad line(s): {', '.join(rest[:10])}" if rest else ""
    more += ", ..." if len(rest) > 10 else ""
    _warn(f"{path}: skipped line {first} ({why}){more}")


def _warn(message: str) -> None:
    warnings.warn(message, GreenbenchWarning, stacklevel=3)


def find_record_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Records files named by paths: a records file, a run folder, or a folder of runs."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif (path / RECORDS_FILE).is_file():
            found.append(path / RECORDS_FILE)
        elif (path / RECORDS_FILE).exists():
            _warn(f"{path / RECORDS_FILE}: not a file; the run is skipped")
        elif (path / RUN_FILE).is_file():
            _warn(f"{path}: a run without {RECORDS_FILE}; skipped")
        elif path.is_dir():
            for candidate in sorted(path.glob(f"*/{RECORDS_FILE}")):
                if candidate.is_file():
                    found.append(candidate)
                else:
                    _warn(f"{candidate}: not a file; the run is skipped")
        else:
            raise GreenbenchError(f"no results at '{path}'; give a results folder, run or file")
    return found
