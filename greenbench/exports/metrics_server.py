"""`schedule serve --metrics-port`: the latest finished run's figures at /metrics, for
Prometheus to scrape, on 127.0.0.1 unless --metrics-host says otherwise."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

from greenbench.errors import GreenbenchError
from greenbench.exports.openmetrics import RunCollector, registry_of
from greenbench.exports.run_data import RunData, load_run
from greenbench.store import RUN_FILE

DEFAULT_HOST = "127.0.0.1"


def latest_run(out: str | Path) -> RunData | None:
    """The newest run under `out` that is not running and has records (run ids sort by
    start time); None before the first one."""
    folders = sorted((p.parent for p in Path(out).glob(f"*/{RUN_FILE}")), reverse=True)
    for folder in folders:
        try:
            status = json.loads((folder / RUN_FILE).read_bytes()).get("status")
        except (OSError, ValueError, AttributeError):
            continue
        if status == "running":
            continue
        try:
            return load_run(out, str(folder))
        except GreenbenchError:
            continue
    return None


def start_metrics_server(out: str | Path, host: str = DEFAULT_HOST, port: int = 9464) -> Any:
    """A /metrics server in a daemon thread, reading the latest run at every scrape; returns
    the server (`.server_address`, `.shutdown()`). GreenbenchError naming the flag."""
    from prometheus_client import start_http_server

    if not 0 <= port <= 65535:
        raise GreenbenchError(f"--metrics-port {port}: not a port; give 1 to 65535")
    registry = registry_of(RunCollector(latest=lambda: latest_run(out)))
    try:
        server, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise GreenbenchError(
                f"--metrics-port {port}: already in use on {host}; pick another"
            ) from None
        raise GreenbenchError(
            f"--metrics-host {host} --metrics-port {port}: cannot serve ({e.strerror or e}); "
            "the default host is 127.0.0.1"
        ) from None
    return server
