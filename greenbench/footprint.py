"""The footprint beyond the measured electricity: PUE, embodied emissions and water.

Every figure here is an estimate with its source in its own column; none is folded into the
measured energy_j or emissions_g. PUE scales the measured energy into facility_energy_j;
water is that facility energy x a water-usage factor (WUE); embodied emissions are the
hardware's manufacture emissions (greenbench/data/embodied.toml, from Boavizta) spread evenly
over its lifetime and charged per hour of the window.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from greenbench.energy.meter import KWH_TO_J

EMBODIED_FILE = Path(__file__).resolve().parent / "data" / "embodied.toml"
HOURS_PER_YEAR = 8760.0
# Shehabi et al., United States Data Center Energy Usage Report, LBNL-1005775 (2016): the
# average on-site water use of US data centres
DEFAULT_WUE_L_PER_KWH = 1.8
DEFAULT_WUE_SOURCE = "LBNL-1005775 (Shehabi et al. 2016) US data-centre average on-site WUE"
FOOTPRINT_KEYS = ("pue", "wue_l_per_kwh", "hardware")
# a PUE below 1 is impossible; above this is a typo (the worst measured sites are near 3)
PUE_MAX = 5.0
WUE_MAX = 20.0
ESTIMATE = "estimate"


@dataclass(frozen=True)
class FootprintSettings:
    """The `[footprint]` table of a suite: recorded with every row."""

    pue: float = 1.0
    wue_l_per_kwh: float | None = None  # None: DEFAULT_WUE_L_PER_KWH
    hardware: str | None = None  # an embodied.toml class instead of the detected one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FootprintSettings:
        return cls(**dict(data)) if data else cls()


@dataclass(frozen=True)
class EmbodiedClass:
    """One row of embodied.toml."""

    name: str
    label: str
    embodied_kg: float
    lifetime_years: float
    per: str  # "device" or "vcpu"
    source: str
    url: str
    date: str


def embodied_classes(path: Path = EMBODIED_FILE) -> dict[str, EmbodiedClass]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {name: EmbodiedClass(name=name, **row) for name, row in data.items()}


def parse_footprint(value: Any, fail: Any) -> FootprintSettings:
    """Validate a suite's `[footprint]` table; `fail(key, problem)` makes the one-line error."""
    if not isinstance(value, Mapping):
        raise fail("footprint", "must be a table, e.g. [footprint] pue = 1.2")
    for key in value:
        if key not in FOOTPRINT_KEYS:
            raise fail(f"footprint.{key}", f"unknown key; allowed: {', '.join(FOOTPRINT_KEYS)}")
    pue = _number(value, "pue", 1.0, PUE_MAX, fail, "1.2 (facility energy / IT energy)")
    wue = _number(value, "wue_l_per_kwh", 0.0, WUE_MAX, fail, "1.8 (litres per kWh)")
    hardware = value.get("hardware")
    if hardware is not None:
        classes = embodied_classes()
        if not isinstance(hardware, str) or hardware not in classes:
            raise fail("footprint.hardware", f"must be one of {', '.join(classes)}")
    return FootprintSettings(pue=1.0 if pue is None else pue, wue_l_per_kwh=wue, hardware=hardware)


def _number(
    table: Mapping[str, Any], key: str, low: float, high: float, fail: Any, example: str
) -> float | None:
    raw = table.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise fail(f"footprint.{key}", f"must be a number such as {example}")
    if not low <= raw <= high:
        raise fail(f"footprint.{key}", f"must be between {low:g} and {high:g}, got {raw:g}")
    return float(raw)


@dataclass(frozen=True)
class Embodied:
    """A cell's hardware as embodied emissions per hour of use, or why there is no figure."""

    g_per_hour: float | None
    source: str  # the class and its source, or the reason there is no figure


def hardware_class(device: str, cpu_model: str, gpu_name: str | None) -> str | None:
    """The embodied.toml class of a cell's device; None where no class fits (no guess)."""
    if device == "cpu":
        return "apple_m" if cpu_model.startswith("Apple M") else "server_vcpu"
    if device == "mps":
        return "apple_m"
    name = (gpu_name or "").upper()
    for marker, cls in (
        ("H200", "nvidia_h200"),
        ("H100", "nvidia_h100"),
        ("A100", "nvidia_a100"),
        ("MI300", "amd_mi300"),
    ):
        if marker in name:
            return cls
    return None


def embodied_share(
    settings: FootprintSettings,
    device: str,
    cpu_model: str,
    gpu_name: str | None,
    logical_cpus: int,
    classes: Mapping[str, EmbodiedClass] | None = None,
) -> Embodied:
    """The embodied g/h charged to a cell on `device`: its class's figure over its lifetime."""
    classes = embodied_classes() if classes is None else classes
    name = settings.hardware or hardware_class(device, cpu_model, gpu_name)
    if name is None:
        known = ", ".join(classes)
        return Embodied(
            None, f"no embodied figure for {gpu_name or device}: set [footprint] hardware ({known})"
        )
    row = classes[name]
    units = logical_cpus if row.per == "vcpu" else 1
    g_per_hour = row.embodied_kg * 1000 * units / (row.lifetime_years * HOURS_PER_YEAR)
    share = f"{units} x " if row.per == "vcpu" else ""
    return Embodied(
        g_per_hour,
        f"{ESTIMATE}: {share}{row.label}, {row.embodied_kg:g} kgCO2e over "
        f"{row.lifetime_years:g} years; {row.source} ({row.url})",
    )


@dataclass(frozen=True)
class Footprint:
    """What a cell's windows need to derive their footprint columns."""

    settings: FootprintSettings
    embodied: Embodied

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings.to_dict(), "embodied": asdict(self.embodied)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Footprint:
        return cls(FootprintSettings.from_dict(data["settings"]), Embodied(**data["embodied"]))


def _per(value: float | None, count: int) -> float | None:
    return value / count if value is not None and count else None


def footprint_columns(
    footprint: Footprint | None, energy_j: float, duration_s: float, unit_count: int
) -> dict[str, Any]:
    """The footprint columns of one window; all None for a producer that has no footprint.

    Totals are gross like energy_j (what the machine drew, and the hours it was held);
    per-unit figures divide them by the window's units.
    """
    if footprint is None:
        return {}
    settings = footprint.settings
    facility_j = energy_j * settings.pue
    wue = settings.wue_l_per_kwh
    water_source = f"{ESTIMATE}: PUE {settings.pue:g} x " + (
        f"WUE {wue:g} L/kWh (suite setting)"
        if wue is not None
        else f"WUE {DEFAULT_WUE_L_PER_KWH:g} L/kWh, {DEFAULT_WUE_SOURCE}"
    )
    water_l = facility_j / KWH_TO_J * (DEFAULT_WUE_L_PER_KWH if wue is None else wue)
    rate = footprint.embodied.g_per_hour
    embodied_g = rate * duration_s / 3600 if rate is not None else None
    return {
        "pue": settings.pue,
        "facility_energy_j": facility_j,
        "embodied_g": embodied_g,
        "embodied_per_unit_g": _per(embodied_g, unit_count),
        "embodied_source": footprint.embodied.source,
        "water_l": water_l,
        "water_per_unit_l": _per(water_l, unit_count),
        "water_source": water_source,
    }
