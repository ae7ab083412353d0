"""What a workload kind declares: its phases and units, inputs, fidelity, quality, ONNX export,
memory.

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
# (checked value, the model's source -- a folder or cached hub id, None for random weights --,
# its config.json or None) -> None, or ValueError naming what the inputs need from the model
SourceRule = Callable[[Any, str | None, Mapping[str, Any] | None], None]
# (model, params, device) -> task quality on the real inputs the params name, None without labels
ScoreQuality = Callable[[Any, Params, str], Any]


@dataclass(frozen=True)
class InputParam:
    """An optional parameter naming real inputs (`prompts`, `texts`, `images`, `audio`): absent
    by default (random inputs), checked in full before anything runs."""

    check: ParamRule  # reads the file or folder: the normalised value, or ValueError (file:line)
    check_source: SourceRule | None = None  # e.g. the checkpoint has a tokenizer


# a variant's name -> why the kind cannot run it, or None (beyond the variants' own rules)
VariantSkip = Callable[[str], str | None]


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
    # optional parameters naming real inputs; the kind's phases, fidelity and quality read them
    input_params: Mapping[str, InputParam] = field(default_factory=dict)
    # task quality (quality.py) on labelled real inputs, for every inference variant and fp32
    quality: ScoreQuality | None = None
    # kinds whose `phases` parameter picks a subset of `phases`
    selectable_phases: bool = False
    variant_skip: VariantSkip | None = None
    # the parameter that says how many tokens one unit holds (text kinds, whose unit is a
    # sequence: "seq_len"), so that J per token reads as energy per unit / tokens per unit
    unit_tokens: str | None = None

    def phase_names(self, params: Params) -> tuple[str, ...]:
        """The phases a cell with `params` measures."""
        if self.selectable_phases:
            return tuple(params["phases"])
        return tuple(self.phases)

    def check_inputs(
        self, params: Params, source: str | None, config: Mapping[str, Any] | None
    ) -> None:
        """ValueError naming the fix when the real inputs in `params` need what the model
        (`source`, its `config`) lacks, such as a tokenizer or matching labels."""
        for key, rule in self.input_params.items():
            if key in params and rule.check_source is not None:
                rule.check_source(params[key], source, config)

    def tokens_per_unit(self, params: Params) -> int | None:
        """The tokens in one unit of a cell with `params`, for kinds that state them."""
        return params.get(self.unit_tokens) if self.unit_tokens else None

    def check_param(self, key: str, value: Any) -> Any:
        """A parameter's value, normalised; ValueError naming the fix."""
        if key in self.param_rules:
            return self.param_rules[key](value)
        if key in self.input_params:
            return self.input_params[key].check(value)
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
