"""Reading stored records back as a pandas DataFrame."""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd

from greenbench.cache import records_frame
from greenbench.records import COLUMNS
from greenbench.store import find_record_files


def load_results(
    paths: str | os.PathLike | Iterable[str | os.PathLike] = "results",
    all_attempts: bool = False,
    use_cache: bool = True,
) -> pd.DataFrame:
    """Records under `paths` (results folder, run folder or records file) as a DataFrame.

    A cell rerun by --resume keeps its earlier rows on disk; by default only the rows of each
    cell's latest attempt are returned. `all_attempts=True` returns every row.

    Finished runs are read through their columnar cache (cache.py), which gives the same frame
    as the JSONL; `use_cache=False` reads the JSONL alone.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    frame = records_frame(find_record_files(paths), use_cache)
    extra = [c for c in frame.columns if c not in COLUMNS]
    frame = frame.reindex(columns=COLUMNS + extra)
    if not all_attempts and not frame.empty:
        latest = frame.groupby(["run_id", "cell_id"])["attempt"].transform("max")
        frame = frame[frame["attempt"] == latest].reset_index(drop=True)
    return frame
