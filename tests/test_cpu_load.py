"""Other processes' CPU time in a window is measured and, beyond the bound, makes it invalid."""

from __future__ import annotations

import time

import pytest
from test_protocol import timed_phase

from greenbench.energy.cpu_load import MAX_FOREIGN_CPU_SHARE, CpuTimes, cpu_times, foreign_share
from greenbench.protocol import ProtocolSettings, run_protocol
from greenbench.records import measured_records


class FakeCpu:
    """A 2-core machine on the fake clock: this cell keeps one core busy, others `foreign`."""

    def __init__(self, clock, foreign_cores: float) -> None:
        self.clock, self.foreign_cores = clock, foreign_cores

    def __call__(self) -> CpuTimes:
        now = self.clock()
        return CpuTimes(now * (1.0 + self.foreign_cores), now * 1.0, now, cores=2)


def run(clock, meter, foreign_cores):
    settings = ProtocolSettings(repetitions=2, min_window_s=1.0, warmup_calls=0, idle_s=1.0)
    return run_protocol(
        [timed_phase(clock)],
        meter,
        settings,
        clock=clock,
        sleep=clock.sleep,
        cpu_probe=FakeCpu(clock, foreign_cores),
    )


def test_the_share_of_the_machine_other_processes_used_is_recorded(clock, meter):
    result = run(clock, meter, foreign_cores=0.2)
    assert result.idle.foreign_cpu_share == pytest.approx(0.1)
    assert [w.foreign_cpu_share for w in result.windows] == pytest.approx([0.1, 0.1])
    rows = measured_records({"cell_id": "c"}, result)
    assert all(r["foreign_cpu_share"] == pytest.approx(0.1) for r in rows)
    assert not any("other processes" in (r["validity"] or "") for r in rows)  # within bound
    assert all(r["idle_foreign_cpu_share"] == pytest.approx(0.1) for r in rows)


def test_a_busy_machine_makes_its_windows_invalid_saying_why(clock, meter):
    result = run(clock, meter, foreign_cores=1.0)  # half of a 2-core machine
    (row, _) = measured_records({"cell_id": "c"}, result)
    assert row["foreign_cpu_share"] == pytest.approx(0.5) and row["foreign_cpu_share"] > (
        MAX_FOREIGN_CPU_SHARE
    )
    assert row["valid"] is False
    assert "other processes used 50% of the machine's CPU during the window" in row["validity"]
    assert "during the idle baseline" in row["validity"]


def test_the_real_probe_counts_this_process_as_its_own():
    before = cpu_times()
    end = time.process_time() + 0.2
    while time.process_time() < end:
        sum(range(1000))
    after = cpu_times()
    assert after.own_s - before.own_s >= 0.15
    share = foreign_share(before, after)
    assert share is not None and 0.0 <= share <= 1.0
