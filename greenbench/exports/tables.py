"""The records of a run as CSV or Parquet: every column, in COLUMNS order."""

from __future__ import annotations

import io

from greenbench.exports.run_data import RunData
from greenbench.records import COLUMNS


def _columns(run: RunData) -> list[str]:
    extra = [c for c in run.records.columns if c not in COLUMNS]
    return COLUMNS + extra


def export_csv(run: RunData) -> bytes:
    return run.records.reindex(columns=_columns(run)).to_csv(index=False).encode()


def export_parquet(run: RunData) -> bytes:
    buffer = io.BytesIO()
    run.records.reindex(columns=_columns(run)).to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()
