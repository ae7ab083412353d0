"""`greenbench export RUN --format F [-o FILE]`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from greenbench.errors import GreenbenchError
from greenbench.exit_codes import EXIT_OK

# greenbench.exports.FORMATS' names, here so that parsing the command line loads no pandas
FORMAT_NAMES = ("openmetrics", "boamps", "ai-energy-score", "csv", "parquet")


def add_export_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    export = sub.add_parser("export", help="write a run's figures as OpenMetrics, BoAmps, ...")
    export.set_defaults(func=cmd_export)
    export.add_argument("run", help="a run id (under --out) or a run's folder path")
    export.add_argument("--format", required=True, choices=FORMAT_NAMES, help="what to write")
    export.add_argument(
        "-o", "--output", help="file to write (default RUN_ID plus the format's suffix, here)"
    )
    return export


def add_metrics_options(serve: argparse.ArgumentParser) -> None:
    """`schedule serve`'s /metrics endpoint (prometheus-client), off unless a port is given."""
    serve.add_argument(
        "--metrics-port",
        type=int,
        help="also serve the latest run's figures at /metrics on this port (e.g. 9464)",
    )
    serve.add_argument(
        "--metrics-host", default="127.0.0.1", help="address of /metrics (127.0.0.1)"
    )


def start_metrics(args: argparse.Namespace, console: Console) -> Any:
    """The /metrics server `schedule serve` asked for, or None."""
    if getattr(args, "metrics_port", None) is None:
        return None
    from greenbench.exports.metrics_server import start_metrics_server

    server = start_metrics_server(args.out, args.metrics_host, args.metrics_port)
    host, port = server.server_address[:2]
    console.print(f"metrics: http://{host}:{port}/metrics (the latest run's figures)")
    return server


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from greenbench.exports import FORMATS, ai_energy_score, load_run

    run = load_run(args.out, args.run)
    write, suffix = FORMATS[args.format]
    target = Path(args.output or f"{run.run_id}{suffix}")
    if target.is_dir():
        raise GreenbenchError(
            f"-o {target}: is a folder; give a file name, e.g. -o {target / (run.run_id + suffix)}"
        )
    write_atomically(target, write(run))
    console.print(f"{args.format}: {target} ({target.stat().st_size} bytes)")
    if args.format == "ai-energy-score":
        console.print(ai_energy_score.text_table(ai_energy_score.score(run)), end="")
    return EXIT_OK


def write_atomically(target: Path, data: bytes) -> None:
    """Beside the target, then renamed: a reader (node-exporter's textfile collector) never
    sees half a file, and a failed write leaves the earlier one."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as e:
        raise GreenbenchError(
            f"-o {target}: cannot write ({e.strerror or e}); give a writable file path"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
