"""What a workload kind declares: its phases and units, inputs, fidelity, ONNX export, memory.

A kind is one module under tasks/ that builds a `WorkloadKind`; tasks/__init__.py lists them.
Everything else (presets, variants, backends, the runner, statistics, the report) asks the kind,
so a new kind touches no other module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from greenbench.fidelity import Fidelity, score
from greenbench.protocol import Phase

Task = Literal["inference", "training"]
Params = Mapping[str, Any]
# (model, params, device, autocast dtype or None) -> the measured phases
MakePhases = Callable[[Any, Params, str, Any], list[Phase]]
# (model, params, device) -> logits (or embeddings) on the kind's fixed fidelity inputs
FidelityLogits = Callable[[Any, Params, str], Any]
# (fp32 outputs, variant outputs) -> how closely the variant follows fp32 (fidelity.py)
FidelityScore = Callable[[Any, Any], Fidelity]
# an ONNX file -> a session with ONNX Runtime's `run(None, feed) -> outputs`
SessionFactory = Callable[[Path], Any]
# (model, params, session factory, work dir) -> (phases, logits on the fidelity inputs)
ExportGraphs = Callable[[Any, Params, SessionFactory, Path], tuple[list[Phase], Any]]
# a kind's own check of one parameter: the value (normalised) or ValueError naming the fix
ParamRule = Callable[[Any], Any]


@dataclass(frozen=True, eq=False)  # one object per kind: compared and hashed by identity
class WorkloadKind:
    name: str  # e.g. "lm-inference": the presets' `kind`
    task: Task
    phases: Mapping[str, str]  # phase -> unit of useful work, in the order they are measured
    make_phases: MakePhases
    # fp32 copies of the weights a cell holds: 1 for inference; training adds the gradients
    # and the optimizer's state (AdamW: 2 per weight, SGD with momentum: 1)
    weight_copies: int = 1
    # whether quantizing nn.Linear layers only covers the model (transformers: yes; CNNs: no)
    linear_quantization: bool = False
    fidelity_logits: FidelityLogits | None = None  # inference kinds: scored against fp32
    fidelity_score: FidelityScore = score  # class logits; embeddings score their cosine
    export_graphs: ExportGraphs | None = None  # kinds that graph runtimes (ONNX) can run
    param_rules: Mapping[str, ParamRule] = field(default_factory=dict)
    # kinds whose `phases` parameter picks a subset of `phases`
    selectable_phases: bool = False
    # the parameter that says how many tokens one unit holds (text kinds, whose unit is a
    # sequence: "seq_len"), so that J per token reads as energy per unit / tokens per unit
    unit_tokens: str | None = None

    def phase_names(self, params: Params) -> tuple[str, ...]:
        """The phases a cell with `params` measures."""
        if self.selectable_phases:
            return tuple(params["phases"])
        return tuple(self.phases)

    def tokens_per_unit(self, params: Params) -> int | None:
        """The tokens in one unit of a cell with `params`, for kinds that state them."""
        return params.get(self.unit_tokens) if self.unit_tokens else None

    def check_param(self, key: str, value: Any) -> Any:
        """A parameter's value, normalised; ValueError naming the fix."""
        if key in self.param_rules:
            return self.param_rules[key](value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"'{key}' must be a whole number >= 1, got {value!r}")
        return value


def phase_subset(known: Sequence[str]) -> ParamRule:
    """The rule for a `phases` parameter: a non-empty list drawn from `known`, kept in order."""

    def check(value: Any) -> list[str]:
        if (
            not isinstance(value, list)
            or not value
            or any(p not in known for p in value)
            or len(set(value)) != len(value)
        ):
            raise ValueError(f"'phases' must be a non-empty list drawn from {list(known)}")
        return [p for p in known if p in value]

    return check


def whole_number_at_least(key: str, minimum: int) -> ParamRule:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"'{key}' must be a whole number >= 1, got {value!r}")
        if value < minimum:
            raise ValueError(f"'{key}' must be >= {minimum}, got {value}")
        return value

    return check


def input_dtype(model: Any) -> Any:
    """The dtype floating inputs must have: that of the model's first floating parameter."""
    import torch

    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32
