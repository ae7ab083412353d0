"""CPU energy counters read directly: RAPL through the powercap tree (Intel, and AMD Zen under
the same `intel-rapl` names), or the hwmon `amd_energy` driver.

Powercap zones are `intel-rapl:N` (package N) with sub-zones `intel-rapl:N:M` (core, uncore,
dram); each has `energy_uj` (microjoules) that wraps at `max_energy_range_uj`. `psys` (the
whole platform) and `intel-rapl-mmio` (a second view of the package) would count twice and are
left out. `amd_energy` exposes `energyN_input` (uJ) labelled `Esocket0`, `Ecore000`, ...

Since the PLATYPUS mitigation `energy_uj` is mode 0400 on most kernels: the counters exist but
only root reads them. `access_hint` says how to grant read access instead of silently falling
back to CodeCarbon's estimate; the cells then get the estimate, with the reason in their note.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from greenbench.carbon.zones import Zone
from greenbench.energy.codecarbon_meter import CodeCarbonMeter
from greenbench.energy.meter import KWH_TO_J, Measurement, Meter

POWERCAP = Path("/sys/class/powercap")
HWMON = Path("/sys/class/hwmon")
HWMON_RANGE_UJ = 2**64  # amd_energy accumulates in 64 bits: no wrap in practice
POLL_S = 10.0  # reads between the window edges, so a counter wraps at most once between reads

GRANT_NOW = "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj"
GRANT_HWMON = "sudo chmod o+r /sys/class/hwmon/hwmon*/energy*_input"
UDEV_RULE = (
    'ACTION=="add", SUBSYSTEM=="powercap", KERNEL=="intel-rapl:*", '
    'RUN+="/bin/chmod o+r /sys%p/energy_uj"'
)
UDEV_FILE = "/etc/udev/rules.d/70-greenbench-rapl.rules"


@dataclass(frozen=True)
class Domain:
    """One energy counter: `package-0`, `dram` (of package 0), `Esocket1`, ..."""

    name: str
    path: Path  # the counter file, microjoules
    package: int
    kind: str  # "package" or "dram"
    range_uj: int  # the counter wraps back to 0 past this


@dataclass(frozen=True)
class Counters:
    """What a machine's CPU counters are: readable ones, and ones only root can read."""

    readable: tuple[Domain, ...]
    unreadable: tuple[Path, ...]

    @property
    def root_only(self) -> bool:
        return not self.readable and bool(self.unreadable)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _powercap_domains(root: Path) -> tuple[list[Domain], list[Path]]:
    readable, unreadable = [], []
    zones = sorted(root.glob("intel-rapl:*")) if root.is_dir() else []
    for zone in zones:
        match = re.fullmatch(r"intel-rapl:(\d+)(?::\d+)?", zone.name)
        energy = zone / "energy_uj"
        if not match or not energy.exists():
            continue
        name = (_text(zone / "name") or zone.name).strip()
        kind = "package" if name.startswith("package") else name
        if kind not in ("package", "dram"):
            continue  # core, uncore: inside the package; psys: the whole platform
        if _read_int(energy) is None:
            unreadable.append(energy)
            continue
        package = int(match[1])
        if kind == "package" and (num := re.fullmatch(r"package-(\d+)", name)):
            package = int(num[1])
        range_uj = _read_int(zone / "max_energy_range_uj") or 2**32
        readable.append(Domain(name, energy, package, kind, range_uj))
    return readable, unreadable


def _hwmon_domains(root: Path) -> tuple[list[Domain], list[Path]]:
    readable, unreadable = [], []
    for hwmon in sorted(root.glob("hwmon*")) if root.is_dir() else []:
        if (_text(hwmon / "name") or "").strip() != "amd_energy":
            continue
        for energy in sorted(hwmon.glob("energy*_input")):
            label = (_text(energy.with_name(energy.name.replace("_input", "_label"))) or "").strip()
            socket = re.fullmatch(r"Esocket(\d+)", label)
            if not socket:
                continue  # per-core counters are inside the socket's
            if _read_int(energy) is None:
                unreadable.append(energy)
                continue
            readable.append(Domain(label, energy, int(socket[1]), "package", HWMON_RANGE_UJ))
    return readable, unreadable


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def find_counters(powercap: Path = POWERCAP, hwmon: Path = HWMON) -> Counters:
    """The CPU package (and DRAM) counters: powercap RAPL first, else amd_energy's sockets."""
    readable, unreadable = _powercap_domains(powercap)
    if not any(d.kind == "package" for d in readable):
        more_readable, more_unreadable = _hwmon_domains(hwmon)
        if more_readable:
            readable = more_readable
        unreadable += more_unreadable
    return Counters(tuple(readable), tuple(unreadable))


def access_hint(counters: Counters) -> str:
    """One line: why RAPL is not read, the command to grant read access now, and the udev rule
    for a permanent grant."""
    hwmon_only = all(p.name.endswith("_input") for p in counters.unreadable)
    now = GRANT_HWMON if hwmon_only else GRANT_NOW
    return (
        f"RAPL counters are present but root-only ({len(counters.unreadable)} file(s), "
        f"e.g. {counters.unreadable[0]}), so CPU energy is CodeCarbon's estimate; to read them "
        f"run `{now}` (until reboot) or add `{UDEV_RULE}` to {UDEV_FILE} (permanent); "
        "this lets local users read energy, which PLATYPUS-style attacks can use to infer "
        "secrets, so grant it on benchmark machines only"
    )


def dram_measured(domains: tuple[Domain, ...]) -> bool:
    """Whether every package has a DRAM domain: only then is RAM energy a counter reading."""
    dram = {d.package for d in domains if d.kind == "dram"}
    return bool(dram) and dram >= {d.package for d in domains if d.kind == "package"}


class Reader:
    """Running totals of a set of counters, in joules, wrap-corrected between reads."""

    def __init__(self, domains: tuple[Domain, ...]) -> None:
        self.domains = domains
        self._last = {d.path: self._raw(d) for d in domains}
        self._total_uj = dict.fromkeys(self._last, 0)
        self._lock = threading.Lock()

    @staticmethod
    def _raw(domain: Domain) -> int:
        value = _read_int(domain.path)
        if value is None:
            raise OSError(f"cannot read {domain.path}")
        return value

    def read(self) -> dict[Path, float]:
        """Every counter's joules since this reader started."""
        with self._lock:
            for domain in self.domains:
                value = self._raw(domain)
                last = self._last[domain.path]
                step = value - last if value >= last else value + domain.range_uj - last
                self._total_uj[domain.path] += step
                self._last[domain.path] = value
            return {path: uj / 1e6 for path, uj in self._total_uj.items()}


class RaplMeter:
    """CPU package energy (summed over packages) from the counters, and DRAM energy where every
    package has a DRAM domain; CodeCarbon's meter gives the rest (RAM estimate otherwise) and
    the zone. A thread reads the counters every `poll_s` so long windows see every wrap."""

    def __init__(self, base: Meter, domains: tuple[Domain, ...], poll_s: float | None = POLL_S):
        self.base = base
        self.dram = dram_measured(domains)
        self.reader = Reader(tuple(d for d in domains if d.kind == "package" or self.dram))
        self._start: dict[Path, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if poll_s:
            self._thread = threading.Thread(target=self._poll, args=(poll_s,), daemon=True)
            self._thread.start()

    def _poll(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self.reader.read()
            except OSError:
                return  # the window's edge read reports it

    def begin_window(self) -> None:
        self.base.begin_window()
        self._start = self.reader.read()

    def end_window(self) -> Measurement:
        m = self.base.end_window()
        now = self.reader.read()
        joules = {"package": 0.0, "dram": 0.0}
        for domain in self.reader.domains:
            joules[domain.kind] += now[domain.path] - self._start[domain.path]
        energy = {**m.energy_j, "cpu": joules["package"]}
        methods = {**m.methods, "cpu": "rapl"}
        if self.dram:
            energy["ram"], methods["ram"] = joules["dram"], "rapl"
        intensity = m.carbon_intensity_g_per_kwh
        return dataclasses.replace(
            m,
            energy_j=energy,
            methods=methods,
            emissions_g=sum(energy.values()) / KWH_TO_J * intensity,
        )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.base.close()


def cpu_meter(zone: Zone, counters: Counters | None = None) -> Meter:
    """The CPU package and RAM meter every CPU-measured cell uses: the counters when readable,
    else CodeCarbon's estimate, with how to grant access in its note when they are root-only."""
    counters = find_counters() if counters is None else counters
    if any(d.kind == "package" for d in counters.readable):
        return RaplMeter(CodeCarbonMeter(zone), counters.readable)
    return CodeCarbonMeter(zone, note=access_hint(counters) if counters.root_only else None)


def rapl_summary(counters: Counters) -> str:
    """How the CPU is measured here, for `greenbench devices`."""
    if counters.readable:
        names = ", ".join(d.name for d in counters.readable)
        ram = "rapl (dram)" if dram_measured(counters.readable) else "ram-estimate"
        return f"rapl: energy counters ({names}) read directly; RAM: {ram}"
    if counters.root_only:
        return f"cpu-load-estimate: {access_hint(counters)}; RAM: ram-estimate"
    return (
        "cpu-load-estimate: CodeCarbon's TDP x load model (no RAPL counter under "
        f"{POWERCAP} or amd_energy hwmon); RAM: ram-estimate"
    )
