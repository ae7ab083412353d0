"""Workload kinds: what a cell does with a built model. One module per kind, listed here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from greenbench.protocol import Phase
from greenbench.tasks import (
    lm_inference,
    lm_training,
    object_detection,
    sentence_embedding,
    speech_recognition,
    speech_training,
    text_classification,
    text_training,
    vision_inference,
    vision_training,
)
from greenbench.tasks.base import WorkloadKind, input_dtype

__all__ = ["KINDS", "fidelity_logits", "get_kind", "input_dtype", "make_phases"]

# the registry: a new kind is its module plus one line here; the order is the display order
KINDS: dict[str, WorkloadKind] = {
    kind.name: kind
    for kind in (
        lm_inference.KIND,
        vision_inference.KIND,
        object_detection.KIND,
        speech_recognition.KIND,
        text_classification.KIND,
        sentence_embedding.KIND,
        lm_training.KIND,
        vision_training.KIND,
        speech_training.KIND,
        text_training.KIND,
    )
}


def get_kind(name: str) -> WorkloadKind:
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown workload kind '{name}' (known: {', '.join(KINDS)})") from None


def ordered_phases() -> tuple[str, ...]:
    """Every kind's phases, each once, in registry order: how tables and charts sort them."""
    return tuple(dict.fromkeys(phase for kind in KINDS.values() for phase in kind.phases))


def _as_kind(kind: str | WorkloadKind) -> WorkloadKind:
    return kind if isinstance(kind, WorkloadKind) else get_kind(kind)


def make_phases(
    kind: str | WorkloadKind,
    model: Any,
    params: Mapping[str, Any],
    device: str,
    autocast: Any = None,
) -> list[Phase]:
    """The measured phases of a `kind` workload; `autocast` is a training variant's dtype."""
    return _as_kind(kind).make_phases(model, params, device, autocast)


def fidelity_logits(
    kind: str | WorkloadKind, model: Any, params: Mapping[str, Any], device: str
) -> Any:
    """The logits that fidelity compares, on the kind's fixed inputs (inference kinds)."""
    logits = _as_kind(kind).fidelity_logits
    if logits is None:
        raise ValueError(f"workload kind '{_as_kind(kind).name}' scores no fidelity")
    return logits(model, params, device)


def phase_units() -> dict[str, str]:
    """A phase's unit as the first kind measuring it states it (for synthetic records)."""
    units: dict[str, str] = {}
    for kind in KINDS.values():
        for phase, unit in kind.phases.items():
            units.setdefault(phase, unit)
    return units
