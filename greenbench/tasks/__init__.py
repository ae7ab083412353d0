"""What a cell does: turn a built model into the phases the protocol measures."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from greenbench.protocol import Phase

MODULES = {
    "lm-inference": "greenbench.tasks.lm_inference",
    "vision-inference": "greenbench.tasks.vision_inference",
    "lm-training": "greenbench.tasks.lm_training",
    "vision-training": "greenbench.tasks.vision_training",
}


def _module(kind: str) -> Any:
    if kind not in MODULES:
        raise ValueError(f"no task for workload kind '{kind}'")
    return import_module(MODULES[kind])


def make_phases(
    kind: str, model: Any, params: Mapping[str, Any], device: str, autocast: Any = None
) -> list[Phase]:
    """The measured phases; `autocast` is the mixed-precision dtype of training variants."""
    if kind.endswith("-training"):
        return _module(kind).make_phases(model, params, device, autocast)
    return _module(kind).make_phases(model, params, device)


def fidelity_logits(kind: str, model: Any, params: Mapping[str, Any], device: str) -> Any:
    """The logits that fidelity compares, on fixed inputs of the workload (inference only)."""
    return _module(kind).fidelity_logits(model, params, device)


def input_dtype(model: Any) -> Any:
    """The dtype floating inputs must have: that of the model's first floating parameter."""
    import torch

    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32
