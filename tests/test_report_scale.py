"""The report on long histories: the costly per-cell summary is made once when nothing is
left out of the ratio views."""

from greenbench.report import data, page
from greenbench.report.sample import synthetic_frame


def counting(monkeypatch):
    calls = []
    real = data.cell_summary

    def cell_summary(frame):
        calls.append(len(frame))
        return real(frame)

    monkeypatch.setattr(data, "cell_summary", cell_summary)
    return calls


def test_the_cell_summary_is_made_once_when_every_cell_is_valid(monkeypatch):
    frame = synthetic_frame({"m": ["forward"]}, ["fp32", "int8-dynamic"], repetitions=3)
    calls = counting(monkeypatch)
    html = page.build_report(frame, ["synthetic"])
    assert calls == [len(frame)] and "Quantization trade-off" in html


def test_with_an_invalid_cell_the_ratio_views_get_their_own_summary(monkeypatch):
    frame = synthetic_frame({"m": ["forward"]}, ["fp32", "int8-dynamic"], repetitions=3)
    frame.loc[frame["variant"] == "int8-dynamic", "valid"] = False
    frame.loc[frame["variant"] == "int8-dynamic", "validity"] = "net energy <= 0"
    calls = counting(monkeypatch)
    page.build_report(frame, ["synthetic"])
    assert calls == [len(frame), 3]  # all cells, then the fp32 cell's 3 windows
