"""This process's PIDs as other PID namespaces see them, to tell NVML's PIDs apart.

NVML lists the PIDs of the processes computing on a GPU as the driver sees them: most drivers
give PIDs of the host's (initial) PID namespace whatever namespace the caller is in; some newer
ones translate them into the caller's. Inside a container os.getpid() is the container's PID,
so comparing it with NVML's would report greenbench's own process as a foreign one.

`/proc/self/status` lists, under NSpid, this process's PID in every namespace from the one that
mounted /proc inwards (a container's own /proc shows only the innermost), and
`/proc/self/ns/pid` names the namespace: the kernel's initial one has a fixed inode.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = "/proc"  # tests point it at a /proc tree they build
INITIAL_PID_NAMESPACE = "pid:[4026531836]"  # the kernel's PROC_PID_INIT_INO


def _nspid(status: Path) -> set[int]:
    try:
        text = status.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("NSpid:"):
            return {int(p) for p in line.split()[1:] if p.isdigit()}
    return set()


def own_pids(proc: str | None = None) -> set[int]:
    """This process's and its parent's PIDs, in every PID namespace /proc shows."""
    root = Path(proc or PROC)
    pid, ppid = os.getpid(), os.getppid()
    return {pid, ppid} | _nspid(root / "self" / "status") | _nspid(root / str(ppid) / "status")


def in_initial_pid_namespace(proc: str | None = None) -> bool | None:
    """True on the host's PID namespace, False in another (a container's); None: cannot tell."""
    try:
        return os.readlink(Path(proc or PROC) / "self" / "ns" / "pid") == INITIAL_PID_NAMESPACE
    except OSError:
        return None
