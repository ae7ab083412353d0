"""RAPL read directly, against fake sysfs trees modelled on the kernel's powercap and hwmon
`amd_energy` layouts: counters in microjoules that wrap at max_energy_range_uj, two packages,
a package without DRAM, and root-only (mode 0400) counters."""

from pathlib import Path

import pytest
from fake_base_meter import FakeBase

from greenbench.energy import rapl


def zone(root: Path, name: str, label: str, energy: int | None, range_uj: int = 2**32) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "name").write_text(label + "\n")
    (path / "max_energy_range_uj").write_text(f"{range_uj}\n")
    if energy is not None:
        (path / "energy_uj").write_text(f"{energy}\n")
    return path


def set_uj(path: Path, value: int) -> None:
    (path / "energy_uj").write_text(f"{value}\n")


def root_only(monkeypatch, *paths: Path) -> None:
    """Reading these files fails as for a user without read access (mode 0400, root's)."""
    denied = {str(p) for p in paths}
    read_text = Path.read_text

    def guarded(self, *args, **kwargs):
        if str(self) in denied:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", guarded)


def test_two_packages_are_summed_and_a_wrap_is_corrected(tmp_path):
    pkg0 = zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000, range_uj=10_000_000)
    pkg1 = zone(tmp_path, "intel-rapl:1", "package-1", 9_500_000, range_uj=10_000_000)
    zone(tmp_path, "intel-rapl:0:0", "core", 7)  # inside package-0: not added again
    zone(tmp_path, "intel-rapl:2", "psys", 5)  # the whole platform: would count twice
    counters = rapl.find_counters(tmp_path, tmp_path / "no-hwmon")
    assert [d.name for d in counters.readable] == ["package-0", "package-1"]
    meter = rapl.RaplMeter(FakeBase(), counters.readable, poll_s=None)
    meter.begin_window()
    set_uj(pkg0, 3_000_000)  # +2 J
    set_uj(pkg1, 500_000)  # wrapped past 10 J: +1 J
    m = meter.end_window()
    assert m.energy_j["cpu"] == pytest.approx(3.0)
    assert m.methods == {"cpu": "rapl", "gpu": "none", "ram": "ram-estimate"}  # no dram
    assert m.energy_j["ram"] == 5.0
    assert m.emissions_g == pytest.approx(8.0 / 3.6e6 * 360.0)
    meter.close()


def test_reads_between_the_edges_catch_every_wrap(tmp_path):
    pkg = zone(tmp_path, "intel-rapl:0", "package-0", 0, range_uj=1_000_000)
    meter = rapl.RaplMeter(FakeBase(), rapl.find_counters(tmp_path, tmp_path).readable, None)
    meter.begin_window()
    for value in (900_000, 400_000, 100_000):  # two wraps: only reads in between see both
        set_uj(pkg, value)
        meter.reader.read()
    assert meter.end_window().energy_j["cpu"] == pytest.approx(2.1)


def test_dram_is_measured_only_when_every_package_has_it(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    dram = zone(tmp_path, "intel-rapl:0:1", "dram", 0)
    zone(tmp_path, "intel-rapl:1", "package-1", 0)
    partial = rapl.RaplMeter(FakeBase(), rapl.find_counters(tmp_path, tmp_path).readable, None)
    assert not partial.dram
    zone(tmp_path, "intel-rapl:1:0", "dram", 0)
    full = rapl.RaplMeter(FakeBase(), rapl.find_counters(tmp_path, tmp_path).readable, None)
    full.begin_window()
    set_uj(dram, 4_000_000)
    m = full.end_window()
    assert m.methods["ram"] == "rapl" and m.energy_j["ram"] == pytest.approx(4.0)


def test_amd_energy_hwmon_sockets_are_read_when_powercap_has_none(tmp_path):
    hwmon = tmp_path / "hwmon" / "hwmon3"
    hwmon.mkdir(parents=True)
    (hwmon / "name").write_text("amd_energy\n")
    for i, (label, uj) in enumerate([("Ecore000", 5), ("Esocket0", 10), ("Esocket1", 20)], 1):
        (hwmon / f"energy{i}_label").write_text(label + "\n")
        (hwmon / f"energy{i}_input").write_text(f"{uj}\n")
    counters = rapl.find_counters(tmp_path / "powercap", tmp_path / "hwmon")
    assert [(d.name, d.package) for d in counters.readable] == [("Esocket0", 0), ("Esocket1", 1)]


def test_root_only_counters_give_the_grant_command_and_the_udev_rule(tmp_path, monkeypatch):
    pkg = zone(tmp_path, "intel-rapl:0", "package-0", 123)
    dram = zone(tmp_path, "intel-rapl:0:0", "dram", 4)
    root_only(monkeypatch, pkg / "energy_uj", dram / "energy_uj")
    counters = rapl.find_counters(tmp_path, tmp_path / "no-hwmon")
    assert counters.root_only and not counters.readable
    hint = rapl.access_hint(counters)
    assert "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj" in hint
    assert 'SUBSYSTEM=="powercap"' in hint and "/etc/udev/rules.d/" in hint
    assert "PLATYPUS" in hint and "\n" not in hint
    assert rapl.rapl_summary(counters).startswith("cpu-load-estimate: RAPL counters are present")


def test_the_glob_in_the_grant_command_matches_sub_domains(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 1)
    zone(tmp_path, "intel-rapl:0:0", "dram", 1)
    glob = rapl.GRANT_NOW.split()[-1].removeprefix("/sys/class/powercap/")
    assert sorted(p.parent.name for p in tmp_path.glob(glob)) == ["intel-rapl:0", "intel-rapl:0:0"]


def test_cpu_meter_notes_root_only_rapl_on_the_estimate(monkeypatch):
    made = {}

    class FakeCodeCarbon:
        def __init__(self, zone, note=None):
            made["note"] = note

    monkeypatch.setattr(rapl, "CodeCarbonMeter", FakeCodeCarbon)
    counters = rapl.Counters((), (Path("/sys/class/powercap/intel-rapl:0/energy_uj"),))
    rapl.cpu_meter(None, counters)  # type: ignore[arg-type]
    assert "root-only" in made["note"] and "chmod" in made["note"]
    rapl.cpu_meter(None, rapl.Counters((), ()))  # type: ignore[arg-type]
    assert made["note"] is None  # no RAPL at all (a VM): nothing to grant


def test_cpu_meter_reads_rapl_when_readable(tmp_path, monkeypatch):
    monkeypatch.setattr(rapl, "CodeCarbonMeter", lambda zone, note=None: FakeBase())
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    meter = rapl.cpu_meter(None, rapl.find_counters(tmp_path, tmp_path))  # type: ignore[arg-type]
    assert isinstance(meter, rapl.RaplMeter)
    meter.close()
    assert meter.base.closed  # type: ignore[attr-defined]
