"""`greenbench export RUN --format F`: a run's figures in formats other tools read.

One module per format; each turns a run (its records and run.json) into bytes. What leaves
greenbench is chosen field by field (run_data.public_environment): run.json may hold more than
a report should share.
"""

from __future__ import annotations

from collections.abc import Callable

from greenbench.exports import ai_energy_score, boamps, openmetrics, tables
from greenbench.exports.run_data import RunData, load_run

# format -> (what writes it, the default file name's suffix)
FORMATS: dict[str, tuple[Callable[[RunData], bytes], str]] = {
    "openmetrics": (openmetrics.export, ".prom"),
    "boamps": (boamps.export, ".boamps.json"),
    "ai-energy-score": (ai_energy_score.export, ".ai-energy-score.json"),
    "csv": (tables.export_csv, ".csv"),
    "parquet": (tables.export_parquet, ".parquet"),
}

__all__ = ["FORMATS", "RunData", "load_run"]
