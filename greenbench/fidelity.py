"""Fidelity: how closely a variant's outputs follow the fp32 model with the same weights and inputs.

Two numbers per cell: top-1 agreement (the share of predictions where both pick the same token
or class) and the mean KL divergence KL(p_fp32 || p_variant) of the output distributions, in
nats. fp32 against itself scores exactly 1 and 0.

A prediction is a token position for language models, an image for image classifiers, and one
object query of one image for object detection (DETR: 100 queries per image, each a class
distribution over the labels plus "no object"; the predicted boxes are not compared).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fidelity:
    top1_agreement: float
    kl_divergence: float
    predictions: int  # how many positions, images or object queries were compared

    def as_record(self) -> dict[str, Any]:
        return {
            "fidelity_top1": self.top1_agreement,
            "fidelity_kl": self.kl_divergence,
            "fidelity_n": self.predictions,
        }


def score(reference: Any, candidate: Any) -> Fidelity:
    """Compare logits of shape (..., classes); the leading dimensions are predictions."""
    import torch

    if reference.shape != candidate.shape:
        raise ValueError(f"logit shapes differ: {reference.shape} vs {candidate.shape}")
    ref = reference.detach().to("cpu", torch.float64).flatten(0, -2)
    cand = candidate.detach().to("cpu", torch.float64).flatten(0, -2)
    agreement = (ref.argmax(-1) == cand.argmax(-1)).double().mean().item()
    log_p = torch.log_softmax(ref, -1)
    log_q = torch.log_softmax(cand, -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1).mean().item()
    return Fidelity(agreement, max(kl, 0.0), ref.shape[0])
