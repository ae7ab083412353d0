"""Your own model as a workload: a Python factory that returns a `Workload`.

A Python workload is named `MODULE:FACTORY` (`mypkg.bench:factory`, or `my_workload:factory` for
a file my_workload.py in the current directory, which is importable as with `python -m`),
`FILE.py:FACTORY`, or a name that an installed package registers in the `greenbench.workloads`
entry-point group. Each cell's child process gets only that name and imports the factory again,
so the factory must be a module-level callable taking no arguments; it should be cheap (it runs
in the parent too): the model itself is built by the Workload's `model`, in the child.

`workload_kind` maps a Workload onto a WorkloadKind, so variants, devices, fidelity and records
treat it as they treat the presets; what does not apply is skipped with the reason.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenbench.errors import one_line
from greenbench.protocol import Phase
from greenbench.tasks.base import ParamRule, Params, Task, WorkloadKind

ENTRY_POINT_GROUP = "greenbench.workloads"
TASKS = ("inference", "training")
TRAINING_WEIGHT_COPIES = 4  # weights, gradients and AdamW's two moments: the cautious guess
# an nn.Module whose nn.Linear weights are at least this share of its Linear and convolution
# weights takes the Linear-only quantization variants (as the hf: checkpoints do)
LINEAR_COVERAGE = 0.9

_MODULE = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_QUALNAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_NAME = re.compile(rf"(?P<target>{_MODULE}|.+\.py):(?P<qualname>{_QUALNAME.pattern})")

# (model, params, device) -> one call of the phase's work, measured as is
MakeStep = Callable[[Any, Params, str], Callable[[], object]]
# (model, params, device) -> outputs (..., classes) on fixed inputs, scored against fp32
Outputs = Callable[[Any, Params, str], Any]


class PythonWorkloadError(KeyError):
    """A Python workload that cannot be used; the message names the factory and the fix."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is read by people
        return str(self.args[0])


@dataclass(frozen=True)
class WorkloadPhase:
    """One measured phase: `step(model, params, device)` returns the function whose calls are
    measured; each call does `units_per_call` units of `unit` (a number, or the name of an
    integer parameter such as "batch")."""

    name: str
    unit: str
    step: MakeStep
    units_per_call: int | str = 1


@dataclass(frozen=True)
class Workload:
    """What a Python workload measures, as its factory returns it.

    model: builds the fp32 model: a callable taking the device to build on (greenbench passes
        "cpu", or "meta" to count parameters, and moves the model to the cell's device), an
        nn.Module, or the path of a TorchScript file.
    phases: the measured phases, in order.
    params: parameter -> default; `[params."NAME"]` in a suite overrides them, each checked
        against its default's type (and `param_rules`, which return the value or raise
        ValueError naming the fix).
    fidelity: inference only: outputs on fixed inputs (logits, classes last), which every
        variant is scored against fp32 on.
    task: "inference" (variants cast or quantize the model) or "training" (bf16 autocasts
        each step; the step does its own backward and optimizer update).
    """

    model: Callable[[str], Any] | Any
    phases: Sequence[WorkloadPhase]
    params: Mapping[str, Any] = field(default_factory=dict)
    fidelity: Outputs | None = None
    task: Task = "inference"
    param_rules: Mapping[str, ParamRule] = field(default_factory=dict)
    description: str = ""
    # (module, qualname, file) of the function that made it: what the cells' children import
    maker: tuple[str, str, str | None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.maker is None:
            caller = sys._getframe(2)  # 1 is the dataclass's __init__
            maker = (
                str(caller.f_globals.get("__name__")),
                caller.f_code.co_qualname,
                caller.f_globals.get("__file__"),
            )
            object.__setattr__(self, "maker", maker)

    @property
    def torchscript(self) -> bool:
        return isinstance(self.model, str | os.PathLike)

    def torchscript_path(self) -> Path:
        return Path(str(self.model)).expanduser()


@dataclass(frozen=True)
class Loaded:
    """A factory's Workload with what greenbench derives from it, once per process."""

    workload: Workload
    kind: WorkloadKind
    architecture: str  # the model's class name
    parameters: int


# factories handed to greenbench.run in this process, by the name the children import
_REGISTERED: dict[str, Callable[[], Any]] = {}
_LOADED: dict[str, Loaded] = {}


def is_python_name(name: str) -> bool:
    """Whether `name` has the form of a factory (`module:factory`, `file.py:factory`)."""
    return _NAME.fullmatch(name) is not None


def entry_point_names() -> list[str]:
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})


def is_entry_point(name: str) -> bool:
    return bool(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name))


def load_workload(name: str) -> Loaded:
    """The Workload that the factory `name` returns, and its kind (once per process);
    PythonWorkloadError naming the fix when it cannot be imported, raises or returns
    something else."""
    if name not in _LOADED:
        factory = _REGISTERED.get(name) or _find_factory(name)
        try:
            workload = factory()
        except Exception as e:  # noqa: BLE001 - the user's code: any failure is reported
            raise PythonWorkloadError(
                f"workload '{name}': the factory raised {one_line(e)}; fix the factory"
            ) from None
        check_workload(name, workload)
        try:
            architecture, parameters, share = model_summary(workload)
        except Exception as e:  # noqa: BLE001 - the user's builder
            raise PythonWorkloadError(
                f"workload '{name}': building its model failed ({one_line(e)}); fix the model"
            ) from None
        _LOADED[name] = Loaded(workload, workload_kind(workload, share), architecture, parameters)
    return _LOADED[name]


def forget(name: str | None = None) -> None:
    """Drop what was loaded or registered (`name`, or everything): for tests and notebooks."""
    for table in (_LOADED, _REGISTERED):
        if name is None:
            table.clear()
        else:
            table.pop(name, None)


def _find_factory(name: str) -> Callable[[], Any]:
    match = _NAME.fullmatch(name)
    if match is None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name):
            try:
                factory = ep.load()
            except Exception as e:  # noqa: BLE001
                raise PythonWorkloadError(
                    f"workload '{name}': its entry point '{ep.value}' does not load "
                    f"({one_line(e)}); reinstall the package that registers it"
                ) from None
            return _callable(name, factory)
        raise PythonWorkloadError(f"unknown workload '{name}'")
    target, qualname = match["target"], match["qualname"]
    module = _import_file(name, target) if target.endswith(".py") else _import(name, target)
    value: Any = module
    for part in qualname.split("."):
        if not hasattr(value, part):
            public = sorted(k for k, v in vars(module).items() if callable(v) and k[0] != "_")
            raise PythonWorkloadError(
                f"workload '{name}': {target} has no '{qualname}' (its callables: "
                f"{', '.join(public) or 'none'}); check the name after the colon"
            )
        value = getattr(value, part)
    return _callable(name, value)


def _callable(name: str, value: Any) -> Callable[[], Any]:
    if not callable(value):
        raise PythonWorkloadError(
            f"workload '{name}' names {value!r}, not a factory; name a function that returns "
            "a greenbench.Workload"
        )
    return value


def _import(name: str, module: str) -> Any:
    """The module, with the current directory importable as `python -m` makes it."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise PythonWorkloadError(
                f"workload '{name}': no module '{module}' in {here} or the installed packages; "
                f"run greenbench from the folder holding {module.split('.')[0]}.py, or install "
                "its package"
            ) from None
        raise _import_failed(name, module, e) from None
    except Exception as e:  # noqa: BLE001 - the user's module: any failure is reported
        raise _import_failed(name, module, e) from None


def _import_file(name: str, target: str) -> Any:
    """A .py file as a module of its own (never `__main__`: a script's guarded code stays
    unrun), its folder importable as when the script runs."""
    path = Path(target).expanduser().resolve()
    if not path.is_file():
        raise PythonWorkloadError(f"workload '{name}': no such file '{target}'; check the path")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    module_name = f"_greenbench_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None  # a .py file always has a loader
    module = importlib.util.module_from_spec(spec)
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001
        del sys.modules[module_name]
        raise _import_failed(name, str(path), e) from None
    return module


def _import_failed(name: str, module: str, error: BaseException) -> PythonWorkloadError:
    return PythonWorkloadError(
        f"workload '{name}': importing {module} failed ({one_line(error)}); fix the module "
        "or install what it imports"
    )


def check_workload(name: str, workload: Any) -> None:
    """PythonWorkloadError naming the fix unless `workload` is a usable Workload."""

    def fail(problem: str) -> PythonWorkloadError:
        return PythonWorkloadError(f"workload '{name}': {problem}")

    if not isinstance(workload, Workload):
        raise fail(
            f"the factory returned a {type(workload).__name__}, not a greenbench.Workload; "
            "return greenbench.Workload(model=..., phases=[...])"
        )
    if workload.task not in TASKS:
        raise fail(f"task must be 'inference' or 'training', not {workload.task!r}")
    if workload.task == "training" and workload.fidelity is not None:
        raise fail("fidelity applies to inference workloads; drop it or set task='inference'")
    if workload.torchscript:
        if not workload.torchscript_path().is_file():
            raise fail(f"no TorchScript file '{workload.model}'; check the path")
    elif not callable(workload.model):
        raise fail("model must be a callable taking the device, an nn.Module or a file path")
    _check_params(workload, fail)
    _check_phases(workload, fail)


def _check_params(workload: Workload, fail: Callable[[str], Exception]) -> None:
    if not isinstance(workload.params, Mapping):
        raise fail("params must be a dict of parameter -> default")
    for key, default in workload.params.items():
        if not isinstance(key, str) or not key or key in ("weights", "phases"):
            raise fail(f"parameter name {key!r} is not allowed; use another name")
        if _json_type(default) is None:
            raise fail(
                f"parameter '{key}' defaults to a {type(default).__name__}; defaults are "
                "numbers, strings, booleans or lists of them"
            )
        try:
            param_rule(workload, key)(default)
        except ValueError as e:
            raise fail(f"the default of '{key}' fails its own rule ({e})") from None
    for key in workload.param_rules:
        if key not in workload.params:
            raise fail(f"param_rules names '{key}', which is not in params; add its default")


def _check_phases(workload: Workload, fail: Callable[[str], Exception]) -> None:
    phases = workload.phases
    if isinstance(phases, str | bytes) or not isinstance(phases, Sequence) or not phases:
        raise fail("phases must be a non-empty list of greenbench.WorkloadPhase")
    names: set[str] = set()
    for phase in phases:
        if not isinstance(phase, WorkloadPhase):
            raise fail(f"a phase is a {type(phase).__name__}, not a greenbench.WorkloadPhase")
        if not isinstance(phase.name, str) or not phase.name.strip() or phase.name in names:
            raise fail(f"phase names must be distinct non-empty strings, got {phase.name!r}")
        names.add(phase.name)
        if not isinstance(phase.unit, str) or not phase.unit.strip():
            raise fail(f"phase '{phase.name}': unit must name the unit of work, e.g. 'sample'")
        if not callable(phase.step):
            raise fail(f"phase '{phase.name}': step must be a callable (model, params, device)")
        count = phase.units_per_call
        if isinstance(count, str):
            default = workload.params.get(count)
            if isinstance(default, bool) or not isinstance(default, int):
                raise fail(
                    f"phase '{phase.name}': units_per_call '{count}' must name an integer "
                    "parameter in params"
                )
        elif isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise fail(
                f"phase '{phase.name}': units_per_call must be a whole number >= 1 or a "
                f"parameter's name, got {count!r}"
            )


def _json_type(value: Any) -> type | None:
    """The type a parameter's overrides must have, from its default; None if not allowed."""
    if isinstance(value, bool):
        return bool
    if isinstance(value, int):
        return int
    if isinstance(value, float):
        return float if math.isfinite(value) else None
    if isinstance(value, str):
        return str
    if isinstance(value, list) and all(_json_type(v) not in (None, list) for v in value):
        return list
    return None


_TYPE_NAMES: dict[type | None, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
    list: "a list",
}


def param_rule(workload: Workload, key: str) -> ParamRule:
    """A parameter's check: its default's type, then the workload's own rule if it has one."""
    wanted = _json_type(workload.params[key])
    own = workload.param_rules.get(key)

    def check(value: Any) -> Any:
        got = _json_type(value)
        if not (got is wanted or (wanted is float and got is int)):
            expected = _TYPE_NAMES.get(wanted, "a value")
            raise ValueError(f"'{key}' must be {expected} like its default, got {value!r}")
        if wanted is float:
            value = float(value)
        if own is None:
            return value
        try:
            return own(value)
        except ValueError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's rule: any failure is a bad value
            raise ValueError(f"'{key}' = {value!r} is refused ({one_line(e)})") from None

    return check


def workload_name(workload: Any) -> str:
    """The name the cells' children import for `workload`: a name as is, a factory's
    `module:qualname` (a script's factory by the script's path), or the factory that made a
    Workload; registered here so this process uses the object it was given."""
    if isinstance(workload, str):
        return workload
    if isinstance(workload, Workload):
        assert workload.maker is not None  # set by __post_init__
        module, qualname, file = workload.maker
        factory: Callable[[], Any] = lambda: workload  # noqa: E731 - this process has it
    elif callable(workload):
        module = getattr(workload, "__module__", None) or ""
        qualname = getattr(workload, "__qualname__", "")
        file = getattr(sys.modules.get(module), "__file__", None)
        factory = workload
    else:
        raise PythonWorkloadError(
            f"a workload is a name, a factory or a greenbench.Workload, not a "
            f"{type(workload).__name__}"
        )
    if qualname == "<module>":
        raise PythonWorkloadError(
            "this Workload was made outside a function: each cell's child process imports a "
            "factory by name, so return it from a module-level function and pass that"
        )
    if not _QUALNAME.fullmatch(qualname) or "." in qualname:
        raise PythonWorkloadError(
            f"'{qualname}' is not a module-level function: each cell's child process imports "
            "the factory by name, so define it at the top level of a module or script"
        )
    if module == "__main__":
        if not file:
            raise PythonWorkloadError(
                f"'{qualname}' is defined in an interactive session; put the factory in a .py "
                "file so each cell's child process can import it"
            )
        name = f"{Path(file).resolve()}:{qualname}"
    else:
        name = f"{module}:{qualname}"
    _REGISTERED[name] = factory
    _LOADED.pop(name, None)
    return name


def model_summary(workload: Workload) -> tuple[str, int, float]:
    """(class name, parameter count, Linear share of the matmul weights) of the model, built
    on torch's meta device when its builder allows (else on the CPU)."""
    import torch

    if workload.torchscript:
        model = build_workload_model(workload, "cpu")
        return "TorchScript", sum(p.numel() for p in model.parameters()), 0.0
    try:
        with torch.device("meta"):
            model = build_workload_model(workload, "meta")
    except Exception:  # noqa: BLE001 - a builder that cannot build on meta: build it for real
        model = build_workload_model(workload, "cpu")
    linear = conv = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            linear += module.weight.numel()
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            conv += module.weight.numel()
    share = linear / (linear + conv) if linear + conv else 0.0
    return type(model).__name__, sum(p.numel() for p in model.parameters()), share


def build_workload_model(workload: Workload, device: str) -> Any:
    """The workload's model on `device`, in eval mode for inference."""
    import torch

    if workload.torchscript:
        model = torch.jit.load(str(workload.torchscript_path()), map_location=device)
    elif isinstance(workload.model, torch.nn.Module):
        model = workload.model.to(device)
    else:
        model = workload.model(device)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"the workload's model builder returned a {type(model).__name__}")
    return model.eval() if workload.task == "inference" else model.train()


def workload_kind(workload: Workload, linear_share: float) -> WorkloadKind:
    """The WorkloadKind that measures `workload`: its phases, parameters, fidelity, and why
    the variants that cannot apply to it skip."""
    rules = {key: param_rule(workload, key) for key in workload.params}

    def make_phases(model: Any, params: Params, device: str, autocast: Any) -> list[Phase]:
        return [
            Phase(
                phase.name,
                phase.unit,
                _units(phase, params),
                _autocast(phase.step(model, params, device), device, autocast),
            )
            for phase in workload.phases
        ]

    return WorkloadKind(
        name=f"python-{workload.task}",
        task=workload.task,
        phases={phase.name: phase.unit for phase in workload.phases},
        make_phases=make_phases,
        weight_copies=1 if workload.task == "inference" else TRAINING_WEIGHT_COPIES,
        linear_quantization=not workload.torchscript and linear_share >= LINEAR_COVERAGE,
        fidelity_logits=workload.fidelity,
        param_rules=rules,
        variant_skip=lambda variant: _variant_skip(workload, variant),
    )


def _units(phase: WorkloadPhase, params: Params) -> int:
    count = phase.units_per_call
    return int(params[count]) if isinstance(count, str) else count


def _autocast(step: Callable[[], object], device: str, dtype: Any) -> Callable[[], object]:
    """Training variants' mixed precision: each step runs under autocast."""
    if dtype is None:
        return step
    import torch

    kind = torch.device(device).type

    def run() -> object:
        with torch.autocast(kind, dtype=dtype):
            return step()

    return run


def _variant_skip(workload: Workload, variant: str) -> str | None:
    base, compiled = variant.partition("+")[0], variant.endswith("+compile")
    if workload.task == "training" and base == "fp16":
        return (
            "fp16 training needs gradient scaling inside the step, which a Python workload's "
            "step does itself; run fp32 or bf16"
        )
    if workload.torchscript and compiled:
        return "torch.compile does not take TorchScript modules; give an nn.Module"
    if workload.torchscript and base not in ("fp32", "bf16", "fp16"):
        return f"{base} swaps nn.Linear modules, which TorchScript has not; give an nn.Module"
    return None
