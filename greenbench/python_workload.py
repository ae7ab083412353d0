"""Your own model as a workload: the `Workload` a Python factory returns, checked and mapped
onto a WorkloadKind.

`workload_kind` makes the kind, so variants, devices, fidelity and records treat a Workload as
they treat the presets; what does not apply to it is skipped with the reason.
workload_factories.py finds a factory by its name, in the parent and in each cell's child.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenbench.errors import one_line
from greenbench.models import module_linear_share
from greenbench.protocol import Phase
from greenbench.tasks.base import ParamRule, Params, Task, WorkloadKind

TASKS = ("inference", "training")
TRAINING_WEIGHT_COPIES = 4  # weights, gradients and AdamW's two moments: the cautious guess
# an nn.Module whose nn.Linear weights are at least this share of its Linear and convolution
# weights takes the Linear-only quantization variants (as the hf: checkpoints do)
LINEAR_COVERAGE = 0.9

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
        nn.Module, or the path of a TorchScript file or an ONNX file (`.onnx`: run by ONNX
        Runtime behind an nn.Module whose calls take and return tensors; fp32 only).
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
    def model_file(self) -> bool:
        return isinstance(self.model, str | os.PathLike)

    @property
    def onnx(self) -> bool:
        return self.model_file and self.torchscript_path().suffix.lower() == ".onnx"

    @property
    def torchscript(self) -> bool:
        return self.model_file and not self.onnx

    def torchscript_path(self) -> Path:
        return Path(str(self.model)).expanduser()


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
    if workload.model_file:
        what = "ONNX" if workload.onnx else "TorchScript"
        if not workload.torchscript_path().is_file():
            raise fail(f"no {what} file '{workload.model}'; check the path")
        if workload.onnx and importlib.util.find_spec("onnxruntime") is None:
            raise fail("an ONNX model needs ONNX Runtime: pip install 'greenbench[onnx]'")
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


def model_summary(workload: Workload) -> tuple[str, int, float]:
    """(class name, parameter count, Linear share of the matmul weights) of the model, built
    on torch's meta device when its builder allows (else on the CPU)."""
    import torch

    if workload.onnx:
        return "ONNX", onnx_parameter_count(workload.torchscript_path()), 0.0
    if workload.torchscript:
        model = build_workload_model(workload, "cpu")
        return "TorchScript", sum(p.numel() for p in model.parameters()), 0.0
    try:
        with torch.device("meta"):
            model = build_workload_model(workload, "meta")
    except Exception:  # noqa: BLE001 - a builder that cannot build on meta: build it for real
        model = build_workload_model(workload, "cpu")
    share = module_linear_share(model)
    return type(model).__name__, sum(p.numel() for p in model.parameters()), share


def build_workload_model(workload: Workload, device: str) -> Any:
    """The workload's model on `device`, in eval mode for inference."""
    import torch

    if workload.onnx:
        model = onnx_module(workload.torchscript_path(), device)
    elif workload.torchscript:
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
        linear_quantization=not workload.model_file and linear_share >= LINEAR_COVERAGE,
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
    if workload.onnx and (compiled or base != "fp32"):
        return (
            "an ONNX model runs as exported: greenbench cannot cast, quantize or compile its "
            "graph; export each variant's graph as a workload of its own"
        )
    if workload.torchscript and compiled:
        return "torch.compile does not take TorchScript modules; give an nn.Module"
    if workload.torchscript and base not in ("fp32", "bf16", "fp16"):
        return f"{base} swaps nn.Linear modules, which TorchScript has not; give an nn.Module"
    return None


def onnx_parameter_count(path: Path) -> int:
    """The elements of an ONNX graph's initializers (its weights), read without running it."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return sum(math.prod(init.dims) for init in graph.initializer)


def _onnx_module_class() -> Any:
    import torch

    class OnnxModule(torch.nn.Module):
        """An ONNX file run by ONNX Runtime, called like a module: tensors in (by the graph's
        input order), the first output back as a tensor on the model's device (all of them,
        as a tuple, when the graph has several)."""

        def __init__(self, path: Path, device: str) -> None:
            import onnxruntime

            super().__init__()
            provider = (
                "CUDAExecutionProvider"
                if torch.device(device).type == "cuda"
                else "CPUExecutionProvider"
            )
            if provider not in onnxruntime.get_available_providers():
                raise RuntimeError(f"this ONNX Runtime has no {provider}; run on the CPU")
            self.session = onnxruntime.InferenceSession(str(path), providers=[provider])
            self.names = [i.name for i in self.session.get_inputs()]
            self.device = device

        def forward(self, *inputs: Any) -> Any:
            feed = {
                name: x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
                for name, x in zip(self.names, inputs, strict=True)
            }
            outputs = [torch.from_numpy(o).to(self.device) for o in self.session.run(None, feed)]
            return outputs[0] if len(outputs) == 1 else tuple(outputs)

    return OnnxModule


def onnx_module(path: Path, device: str) -> Any:
    """The ONNX file as a module (its class is made on first use: torch is imported late)."""
    return _onnx_module_class()(path, device)
