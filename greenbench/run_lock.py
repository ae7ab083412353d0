"""One writer per run: a lock file holding the writer's pid and host, taken atomically.

Two `greenbench run --resume RUN` at once would both rerun the unfinished cells and append
duplicate rows. The lock file is created with O_EXCL, so exactly one writer gets it; it names its
holder so the second writer's error can say who. A lock whose process is gone (killed with
SIGKILL, a machine that rebooted) is stale: on the holder's own host it is cleared and taken.
A lock from another host cannot be checked from here and is left to the user to remove.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from greenbench.errors import GreenbenchError

LOCK_FILE = "run.lock"
TORN_LOCK_AGE_S = 10.0  # an empty lock younger than this may be being written


def _this_process() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": psutil.Process().create_time(),  # tells a reused pid from its holder
        "token": secrets.token_hex(8),
    }


def _alive_here(holder: dict[str, Any]) -> bool:
    """Whether the holder's process still runs; True when it cannot be told (another host)."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # another user's process: it is there
    recorded = holder.get("started")
    return not isinstance(recorded, int | float) or abs(started - recorded) < 1.0


def _read(path: Path) -> dict[str, Any] | None:
    """The holder named in a lock file; {} for an unreadable or torn one; None when it is gone."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def run_lock(run_dir: Path, run_id: str) -> Iterator[None]:
    """Hold the run's lock for the block; GreenbenchError naming the holder if another has it."""
    path = Path(run_dir) / LOCK_FILE
    me = _this_process()
    _acquire(path, me, run_id)
    try:
        yield
    finally:
        if _read(path) == me:  # not a lock someone else took after ours was cleared by hand
            path.unlink(missing_ok=True)


def _acquire(path: Path, me: dict[str, Any], run_id: str) -> None:
    data = json.dumps(me).encode()
    for _ in range(3):  # a stale lock cleared, then taken; a race lost to another writer
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is None:
                continue  # released meanwhile
            if (holder and _alive_here(holder)) or (not holder and _just_made(path)):
                raise GreenbenchError(_in_use(path, run_id, holder)) from None
            _clear_stale(path, holder)
            continue
        except OSError as e:
            raise GreenbenchError(
                f"cannot lock run '{run_id}': {path} ({e.strerror}); give a writable --out"
            ) from None
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    raise GreenbenchError(f"run '{run_id}' is being locked by another writer; try again")


def _just_made(path: Path) -> bool:
    """An empty lock file may be one whose writer has not written its pid yet."""
    try:
        return time.time() - path.stat().st_mtime < TORN_LOCK_AGE_S
    except OSError:
        return False


def _clear_stale(path: Path, seen: dict[str, Any]) -> None:
    """Remove the stale lock `seen`, not a live one another writer created in the meantime."""
    aside = path.with_name(f"{path.name}.stale-{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)  # atomic: exactly one of several clearing writers moves it
    except FileNotFoundError:
        return
    if _read(aside) == seen:
        aside.unlink(missing_ok=True)
        return
    # a live lock taken just now: put it back unless yet another writer holds the name
    with contextlib.suppress(FileExistsError):
        os.link(aside, path)
    aside.unlink(missing_ok=True)


def _in_use(path: Path, run_id: str, holder: dict[str, Any]) -> str:
    return (
        f"run '{run_id}' is in use by pid {holder.get('pid')} on {holder.get('host')}: "
        f"wait for it to finish or stop it (if it is gone, delete {path})"
    )
