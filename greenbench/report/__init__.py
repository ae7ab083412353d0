"""`greenbench report`: a self-contained HTML dashboard of results, built with Plotly."""

from greenbench.report.page import build_report

__all__ = ["build_report"]
