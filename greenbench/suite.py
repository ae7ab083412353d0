"""Suites: a matrix of workloads x variants x devices plus protocol settings, from TOML or flags.

Validation is strict and happens before anything runs or is written: every error is one line
naming where it came from (a file or a flag), the key, and the fix.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenbench.backends import parse_device
from greenbench.carbon.zones import ZONE_ENV, default_zone, resolve_zone
from greenbench.cell import Cell
from greenbench.checkpoints import CheckpointError
from greenbench.energy.power_limit import is_cuda
from greenbench.errors import SuiteError
from greenbench.footprint import FootprintSettings, parse_footprint
from greenbench.protocol import ProtocolSettings
from greenbench.python_workload import PythonWorkloadError
from greenbench.sweep import comma_sweep, expand, sweep_problem
from greenbench.variants import get_variant
from greenbench.workloads import OPTIONAL_PARAMS, PRESETS, get_preset

DEFAULT_SUITE = "quick"
SUITE_KEYS = (
    "name",
    "description",
    "workloads",
    "variants",
    "devices",
    "zone",
    "protocol",
    "params",
    "expected_duration",
    "power_limit_w",
    "footprint",
)
PROTOCOL_FIELDS = {f.name: f for f in dataclasses.fields(ProtocolSettings)}


@dataclass(frozen=True)
class Suite:
    name: str
    workloads: tuple[str, ...]
    variants: tuple[str, ...] = ("fp32",)
    devices: tuple[str, ...] = ("cpu",)
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # per-workload overrides
    zone: str = field(default_factory=default_zone)
    description: str = ""
    expected_duration: str = ""  # how long a run takes where it was timed, e.g. "3 min"
    power_limit_w: tuple[int, ...] = ()  # GPU power limits: one CUDA cell per limit
    footprint: FootprintSettings = field(default_factory=FootprintSettings)  # PUE, WUE, hardware

    def cells(self) -> list[Cell]:
        """Workload x variant x device (x GPU power limit, CUDA devices only), and per swept
        value (sweep.expand) innermost, so the cells of one sweep are neighbours."""
        cells = []
        for w, v, d in itertools.product(self.workloads, self.variants, self.devices):
            preset = get_preset(w)
            limits = self.power_limit_w if is_cuda(d) and self.power_limit_w else (None,)
            for limit in limits:
                for overrides, swept in expand(self.params.get(w, {}), preset.defaults):
                    cells.append(Cell(w, v, d, preset.resolve_params(overrides), swept, limit))
        return cells

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["params"] = {k: dict(v) for k, v in self.params.items()}
        return json.loads(json.dumps(data))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<python>") -> Suite:
        return parse_suite(data, source)


def builtin_suite_dirs() -> list[Path]:
    """Where the suites shipped with greenbench live: in the wheel, or in a source checkout."""
    here = Path(__file__).resolve().parent
    return [d for d in (here / "suites", here.parent / "workloads") if d.is_dir()]


def builtin_suites() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in builtin_suite_dirs():
        for path in sorted(directory.glob("*.toml")):
            found.setdefault(path.stem, path)
    return found


def load_suite(name_or_path: str) -> Suite:
    """A suite by built-in name (`quick`) or from a TOML file path."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" or path.exists()):
        suites = builtin_suites()
        if name_or_path not in suites:
            known = ", ".join(suites) or "none found"
            raise SuiteError(
                "--suite",
                None,
                f"unknown suite '{name_or_path}' (built-in: {known}); "
                "or give the path of a .toml file",
            )
        path = suites[name_or_path]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError("--suite", None, f"no such file '{path}'; check the path") from None
    except IsADirectoryError:
        raise SuiteError("--suite", None, f"'{path}' is a folder; give a .toml file") from None
    except OSError as e:
        raise SuiteError("--suite", None, f"cannot read '{path}' ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise SuiteError(
            str(path), None, f"not UTF-8 text (byte {e.start}); save the file as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(str(path), None, f"not valid TOML ({e}); fix the syntax") from None
    data.setdefault("name", path.stem)
    return parse_suite(data, str(path))


def parse_suite(data: Mapping[str, Any], source: str) -> Suite:
    """Validate a suite's raw mapping (from TOML, JSON or Python) into a Suite."""

    def fail(key: str, problem: str) -> SuiteError:
        return SuiteError(source, key, problem)

    if not isinstance(data, Mapping):
        raise SuiteError(source, None, f"a suite is a table of keys, not a {type(data).__name__}")
    for key in data:
        if key not in SUITE_KEYS:
            raise fail(key, f"unknown key; allowed keys are {', '.join(SUITE_KEYS)}")
    if "workloads" not in data:
        raise fail("workloads", 'missing; list the workloads to run, e.g. workloads = ["resnet50"]')

    name = data.get("name", "suite")
    if not isinstance(name, str) or not name:
        raise fail("name", "must be a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "must be a string")
    expected_duration = data.get("expected_duration", "")
    if not isinstance(expected_duration, str):
        raise fail("expected_duration", 'must be a string such as "3 min"')

    workloads = _names(data["workloads"], "workloads", fail, _check_workload)
    variants = _names(data.get("variants", ["fp32"]), "variants", fail, _check_variant)
    devices = _names(data.get("devices", ["cpu"]), "devices", fail, parse_device)
    protocol = _protocol(data.get("protocol", {}), fail)
    params = _params(data.get("params", {}), fail)
    zone = _zone(data, fail)
    power_limits = _power_limits(data.get("power_limit_w", []), devices, fail)
    footprint = parse_footprint(data.get("footprint", {}), fail)

    return Suite(
        name=name,
        workloads=workloads,
        variants=variants,
        devices=devices,
        protocol=protocol,
        params=params,
        zone=zone,
        description=description,
        expected_duration=expected_duration,
        power_limit_w=power_limits,
        footprint=footprint,
    )


def _zone(data: Mapping[str, Any], fail: Any) -> str:
    """The suite's zone; without one, $GREENBENCH_ZONE's or GB, and a bad variable is blamed."""
    if "zone" not in data and os.environ.get(ZONE_ENV):
        try:
            return resolve_zone(default_zone()).code
        except ValueError as e:
            raise SuiteError(
                f"${ZONE_ENV}", None, f"{e}; set the variable to one, or unset it"
            ) from None
    zone = data.get("zone", default_zone())
    if not isinstance(zone, str):
        raise fail("zone", 'must be a string such as "GB"')
    try:
        return resolve_zone(zone).code
    except ValueError as e:
        raise fail("zone", str(e)) from None


def _power_limits(value: Any, devices: Sequence[str], fail: Any) -> tuple[int, ...]:
    """The GPU power limits to run CUDA cells at: whole watts, each its own cell."""
    values = value if isinstance(value, list) else [value]
    for raw in values:
        problem = POWER_LIMIT_BOUNDS.problem(raw)
        if problem is not None:
            raise fail(
                "power_limit_w",
                f"{problem}; give watts, e.g. power_limit_w = 300 or [250, 300, 350]",
            )
    if values and not any(is_cuda(d) for d in devices):
        raise fail(
            "power_limit_w",
            f"sets an NVIDIA GPU's power limit, but the devices ({', '.join(devices)}) hold no "
            'CUDA device: add one (devices = ["cuda:0"]) or drop power_limit_w',
        )
    return tuple(dict.fromkeys(int(v) for v in values))


def _check_workload(name: str) -> str:
    try:
        get_preset(name)
    except (CheckpointError, PythonWorkloadError) as e:
        raise ValueError(str(e)) from None
    except KeyError as e:
        raise ValueError(f"{e.args[0]}; see `greenbench list`") from None
    return name


def _check_variant(name: str) -> str:
    try:
        get_variant(name)
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    return name


def _names(value: Any, key: str, fail: Any, check: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise fail(key, "must be a non-empty list of names")
    names: list[str] = []
    for raw in value:
        try:
            name = check(raw.strip())
        except ValueError as e:
            raise fail(key, str(e)) from None
        if name not in names:
            names.append(name)
    return tuple(names)


def _protocol(value: Any, fail: Any) -> ProtocolSettings:
    if not isinstance(value, Mapping):
        raise fail("protocol", "must be a table, e.g. [protocol] repetitions = 3")
    settings: dict[str, Any] = {}
    for key, raw in value.items():
        if key not in PROTOCOL_FIELDS:
            raise fail(f"protocol.{key}", f"unknown key; allowed: {', '.join(PROTOCOL_FIELDS)}")
        if key in PROTOCOL_SWITCHES:
            if not isinstance(raw, bool):
                raise fail(f"protocol.{key}", f"must be true or false, got {raw!r}")
            settings[key] = raw
            continue
        settings[key] = _protocol_value(key, raw, fail)
    return ProtocolSettings(**settings)


@dataclass(frozen=True)
class Bounds:
    """The values a protocol setting may take; NaN and infinities are never among them."""

    whole: bool  # a count, not seconds
    low: float
    high: float  # beyond it a value is a typo (10**9 repetitions), not a plan
    low_allowed: bool = True  # False: the value must be above `low`

    def problem(self, raw: Any) -> str | None:
        """Why `raw` is not allowed, naming the limit; None when it is."""
        kind = "a whole number" if self.whole else "a number of seconds"
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return f"must be {kind}, got {raw!r}"
        if isinstance(raw, float) and not math.isfinite(raw):
            return f"must be a finite number, got {raw}"
        if self.whole and raw != int(raw):
            return f"must be {kind}, got {raw!r}"
        unit = "" if self.whole else " seconds"
        if raw < self.low or (raw == self.low and not self.low_allowed):
            relation = ">=" if self.low_allowed else ">"
            return f"must be {relation} {self._shown(self.low)}{unit}, got {self._shown(raw)}"
        if raw > self.high:
            return f"must be at most {self._shown(self.high)}{unit}, got {self._shown(raw)}"
        return None

    def _shown(self, value: float) -> str:
        if isinstance(value, int) or (self.whole and abs(value) < 1e15):
            return str(int(value)) if abs(value) < 10**30 else "a number of over 30 digits"
        return f"{value:g}"


DAY_S = 86_400.0
# every ProtocolSettings field, whether it comes from a suite file, a flag or run.json
PROTOCOL_BOUNDS: dict[str, Bounds] = {
    "repetitions": Bounds(whole=True, low=1, high=1000),
    "min_window_s": Bounds(whole=False, low=0, high=DAY_S, low_allowed=False),
    "min_calls": Bounds(whole=True, low=1, high=10**7),
    "warmup_calls": Bounds(whole=True, low=0, high=10**6),
    "idle_s": Bounds(whole=False, low=0, high=3600, low_allowed=False),
    "cell_timeout_s": Bounds(whole=False, low=0, high=7 * DAY_S, low_allowed=False),
    "cooldown_max_s": Bounds(whole=False, low=0, high=3600, low_allowed=False),
    "settle_max_s": Bounds(whole=False, low=0, high=3600),
    "warmup_max_s": Bounds(whole=False, low=0, high=3600),
}


# the ProtocolSettings fields that are switches, not numbers
PROTOCOL_SWITCHES = ("interleave_sweeps",)

POWER_LIMIT_BOUNDS = Bounds(whole=True, low=1, high=5000)  # W; above: a typo (mW?), not a GPU


def _protocol_value(key: str, raw: Any, fail: Any) -> int | float:
    bounds = PROTOCOL_BOUNDS[key]
    problem = bounds.problem(raw)
    if problem is not None:
        raise fail(f"protocol.{key}", problem)
    return int(raw) if bounds.whole else float(raw)


def _params(value: Any, fail: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise fail("params", "must be a table of tables, e.g. [params.resnet50] batch = 8")
    params: dict[str, dict[str, Any]] = {}
    for workload, overrides in value.items():
        try:
            preset = get_preset(workload)
        except KeyError as e:
            nested = overrides if isinstance(overrides, Mapping) else {}
            hint = next((f"{workload}.{k}" for k in nested if f"{workload}.{k}" in PRESETS), None)
            if hint:
                raise fail(
                    f"params.{workload}",
                    f'TOML splits names at dots: write [params."{hint}"] with quotes',
                ) from None
            raise fail(f"params.{workload}", e.args[0]) from None
        if not isinstance(overrides, Mapping):
            raise fail(f"params.{workload}", "must be a table of parameter = value")
        names = preset.param_names()
        for key, raw in overrides.items():
            # an unknown key is named as such by resolve_params below, list or not
            problem = sweep_problem(key, raw, preset.defaults) if key in names else None
            if problem:
                raise fail(f"params.{workload}", problem)
        try:
            for plain, _ in expand(overrides, preset.defaults):  # every value of a sweep
                preset.resolve_params(plain)
        except ValueError as e:
            raise fail(f"params.{workload}", str(e)) from None
        params[workload] = dict(overrides)
    return params


def split_values(values: Iterable[str] | None) -> list[str] | None:
    """Repeatable flags also take comma-separated values: ['a,b', 'c'] -> ['a', 'b', 'c']."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@dataclass(frozen=True)
class RunOption:
    """How one override is spelled on the command line and where it goes in a suite."""

    flag: str
    key: str | None  # dotted suite key it replaces; None for --suite, which picks the suite
    type: type
    help: str
    repeatable: bool = False  # repeat the flag or comma-list its values

    @property
    def metavar(self) -> str:
        return self.flag.lstrip("-").upper().replace("-", "_")


def _option(flag: str, key: str | None, kind: type, help: str, repeatable: bool = False) -> Any:
    return field(default=None, metadata={"option": RunOption(flag, key, kind, help, repeatable)})


@dataclass(frozen=True)
class RunOverrides:
    """The suite a run uses and the values replacing its own: the one list of these options.

    The `greenbench run` flags, the resume conflict check, FLAG_FOR_KEY and apply_overrides are
    all derived from these fields; None leaves the suite's own value.
    """

    suite: Suite | str | None = _option(
        "--suite", None, str, "built-in suite name or path to a .toml file (default quick)"
    )
    workloads: Sequence[str] | None = _option(
        "--workload", "workloads", str, "workload preset; repeat or comma-list", repeatable=True
    )
    variants: Sequence[str] | None = _option(
        "--variant", "variants", str, "variant; repeat or comma-list", repeatable=True
    )
    devices: Sequence[str] | None = _option(
        "--device", "devices", str, "device (cpu, cuda, cuda:N, ...)", repeatable=True
    )
    repetitions: int | None = _option(
        "--repetitions", "protocol.repetitions", int, "measured repetitions per phase"
    )
    min_window_s: float | None = _option(
        "--min-window", "protocol.min_window_s", float, "minimum seconds per measured window"
    )
    zone: str | None = _option(
        "--zone", "zone", str, "grid zone for carbon, ISO country code (default GB)"
    )
    # from Python also {workload: {key: value}}, a value a list to sweep
    params: Sequence[str] | Mapping[str, Mapping[str, Any]] | None = _option(
        "--param",
        "params",
        str,
        "set a workload parameter: KEY=VALUE for every named workload that has KEY, or "
        "WORKLOAD.KEY=VALUE for one; VALUE is a TOML value (a bare word is a string), or a "
        "comma list of numbers to sweep (batch=1,4,16: a cell per value); repeat",
        repeatable=True,
    )
    power_limit_w: Sequence[str | int] | str | int | None = _option(
        "--power-limit",
        "power_limit_w",
        str,
        "GPU power limit in W for the CUDA cells, set through NVML and restored after each "
        "(needs root); each limit is its own cell; repeat or comma-list: 250,300,350",
        repeatable=True,
    )
    pue: float | None = _option(
        "--pue",
        "footprint.pue",
        float,
        "the facility's power usage effectiveness (1.0 to 5.0, default 1.0): recorded, and "
        "the facility-energy and water columns use it; never folded into measured energy",
    )

    @staticmethod
    def options() -> dict[str, RunOption]:
        """Field name -> its option, in declaration order."""
        return {f.name: f.metadata["option"] for f in dataclasses.fields(RunOverrides)}

    @classmethod
    def from_args(cls, args: Any) -> RunOverrides:
        """From an argparse namespace whose destinations are the field names."""
        return cls(**{name: getattr(args, name) for name in cls.options()})

    def as_kwargs(self) -> dict[str, Any]:
        """The fields as `greenbench.run` keywords (not dataclasses.asdict: a Suite stays one)."""
        return {name: getattr(self, name) for name in self.options()}

    def given(self) -> list[str]:
        """The names of the fields that are set."""
        return [name for name in self.options() if getattr(self, name) is not None]


FLAG_FOR_KEY = {o.key: o.flag for o in RunOverrides.options().values() if o.key}
AXIS_OVERRIDES = ("workloads", "variants", "devices")  # given alone: an ad-hoc suite


def apply_overrides(suite: Suite, overrides: RunOverrides) -> Suite:
    """The suite with flag values replacing its axes and settings, validated like a file.

    `overrides.suite` is not looked at here: `suite` is the base (see resolve_suite).
    """
    data = suite.to_dict()
    for name, option in RunOverrides.options().items():
        value = getattr(overrides, name)
        if option.key is None or value is None:
            continue
        if name == "params":
            data["params"] = apply_params(data, param_settings(value))
            continue
        if name == "power_limit_w":
            data["power_limit_w"] = power_limits_given(value)
            continue
        *tables, key = option.key.split(".")
        target = data
        for table in tables:
            target = target.setdefault(table, {})
        target[key] = split_values(value) if option.repeatable else value
    try:
        return parse_suite(data, "flags")
    except SuiteError as e:
        table, _, workload = (e.key or "").partition(".")
        if table == "params" and workload:  # a --param value: name the workload it went to
            raise SuiteError(PARAM_FLAG, None, f"{workload}: {e.problem}") from None
        raise SuiteError(FLAG_FOR_KEY.get(e.key or "", "flags"), None, e.problem) from None


PARAM_FLAG = "--param"


def power_limits_given(value: Sequence[str | int] | str | int) -> list[int]:
    """`--power-limit 250,300` (repeatable) or greenbench.run's power_limit_w=[250, 300] as
    watts; parse_suite checks their range."""
    items = [value] if isinstance(value, str | int) else list(value)
    limits = []
    for item in items:
        for part in [item] if isinstance(item, int) else split_values([item]) or []:
            try:
                limits.append(part if isinstance(part, int) else int(part))
            except ValueError:
                raise SuiteError(
                    "--power-limit",
                    None,
                    f"'{part}' is not a whole number of watts; write e.g. --power-limit 250,300",
                ) from None
    return limits


@dataclass(frozen=True)
class ParamSetting:
    """One `--param`: a workload parameter's new value, for one workload or (None) for every
    named workload that has the parameter."""

    workload: str | None
    key: str
    value: Any


def parse_param(text: str) -> ParamSetting:
    """`KEY=VALUE` or `WORKLOAD.KEY=VALUE` (the key follows the last dot: workload names such as
    slm-1.7b hold dots); VALUE read as TOML, a bare word as a string. SuiteError naming --param.

    A comma list of numbers (`batch=1,4,16`) is a sweep: the value is their list.
    """
    name, sep, raw = text.partition("=")
    target, _, key = name.strip().rpartition(".")
    raw = raw.strip()
    if not sep or not key or not raw:
        raise SuiteError(PARAM_FLAG, None, f"'{text}' is not KEY=VALUE; write e.g. batch=4")
    try:
        swept = comma_sweep(raw)
    except ValueError as e:
        raise SuiteError(
            PARAM_FLAG, None, f'\'{text}\': {e}; a list value is TOML: KEY=["a", "b"]'
        ) from None
    if swept is not None:
        return ParamSetting(target or None, key.strip(), swept)
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        if any(c in raw for c in "\"'[]{}="):
            raise SuiteError(
                PARAM_FLAG, None, f"'{text}': VALUE is not a TOML value; quote a string"
            ) from None
        value = raw  # a bare word: weights=random, device paths
    return ParamSetting(target or None, key.strip(), value)


def param_settings(value: Sequence[str] | Mapping[str, Mapping[str, Any]]) -> list[ParamSetting]:
    """`--param` texts, or from Python a {workload: {key: value}} mapping, as settings."""
    if isinstance(value, Mapping):
        settings = []
        for workload, overrides in value.items():
            if not isinstance(overrides, Mapping):
                raise SuiteError(
                    "params", None, f"{workload}: must be a dict of parameter -> value"
                )
            settings += [ParamSetting(workload, k, v) for k, v in overrides.items()]
        return settings
    return [parse_param(text) for text in ([value] if isinstance(value, str) else value)]


def _has_param(workload: str, key: str) -> bool:
    preset = get_preset(workload)
    return key in preset.defaults or (key in OPTIONAL_PARAMS and preset.checkpoint is None)


def apply_params(
    data: Mapping[str, Any], settings: Sequence[ParamSetting]
) -> dict[str, dict[str, Any]]:
    """A suite mapping's `params` table with `settings` applied (parse_suite validates the
    values). A plain KEY goes to every one of the suite's workloads that has it, and none
    having it is an error; a WORKLOAD.KEY names a workload of the suite."""
    workloads = list(data.get("workloads", []))
    params = {w: dict(v) for w, v in data.get("params", {}).items()}
    for setting in settings:
        if setting.workload is not None:
            if setting.workload not in workloads:
                raise SuiteError(
                    PARAM_FLAG,
                    None,
                    f"'{setting.workload}.{setting.key}': {setting.workload} is not one of "
                    f"the run's workloads ({', '.join(workloads)})",
                )
            targets = [setting.workload]
        else:
            targets = [w for w in workloads if _has_param(w, setting.key)]
            if not targets:
                raise SuiteError(
                    PARAM_FLAG,
                    None,
                    f"no workload of the run ({', '.join(workloads)}) has a parameter "
                    f"'{setting.key}'; see `greenbench run --help` for each one's",
                )
        for workload in targets:
            params.setdefault(workload, {})[setting.key] = setting.value
    return params


def workload_parameters() -> dict[str, list[str]]:
    """Each catalogue preset's settable parameters, in its defaults' order (`run --help`)."""
    return {
        name: [*preset.defaults, *(k for k in OPTIONAL_PARAMS if preset.checkpoint is None)]
        for name, preset in PRESETS.items()
    }


def resolve_suite(overrides: RunOverrides) -> Suite:
    """The suite a new run uses: `overrides.suite` (a Suite, a name, a path; default quick)
    with the other overrides applied. Axis flags alone make an ad-hoc suite from quick's
    defaults."""
    if isinstance(overrides.suite, Suite):
        base = overrides.suite
    else:
        base = load_suite(overrides.suite or DEFAULT_SUITE)
        if overrides.suite is None and any(
            getattr(overrides, name) is not None for name in AXIS_OVERRIDES
        ):
            base = dataclasses.replace(base, name="adhoc", description="from flags")
    return apply_overrides(base, overrides)
