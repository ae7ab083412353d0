"""Fidelity: how closely a variant's outputs follow the fp32 model with the same weights and inputs.

Kinds whose outputs are class or token logits get two numbers: top-1 agreement (the share of
positions, images or sequences where both pick the same token or class) and the mean KL
divergence KL(p_fp32 || p_variant) of the output distributions, in nats. fp32 against itself
scores exactly 1 and 0.

Kinds whose outputs are embeddings (sentence embeddings) have no classes to agree on: they get
the mean cosine similarity of each variant embedding to its fp32 embedding (`fidelity_cosine`,
1 for fp32 against itself), and no top-1 or KL. `fidelity_n` counts the predictions or
embeddings compared either way.

A prediction is a token position for language models, an image for image classifiers, a
sequence for text classifiers, and one object query of one image for object detection (DETR:
100 queries per image, each a class distribution over the labels plus "no object"; the
predicted boxes are not compared).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fidelity:
    top1_agreement: float | None
    kl_divergence: float | None
    predictions: (
        int  # how many positions, images, sequences, object queries or embeddings were compared
    )
    cosine: float | None = None  # embeddings: mean cosine similarity to fp32

    def as_record(self) -> dict[str, Any]:
        """The record columns this score has (the others stay None in the row)."""
        columns = {
            "fidelity_top1": self.top1_agreement,
            "fidelity_kl": self.kl_divergence,
            "fidelity_cosine": self.cosine,
            "fidelity_n": self.predictions,
        }
        return {k: v for k, v in columns.items() if v is not None}


def _as_rows(reference: Any, candidate: Any, what: str) -> tuple[Any, Any]:
    """Both outputs as float64 rows on the CPU, one row per prediction."""
    import torch

    if reference.shape != candidate.shape:
        raise ValueError(f"{what} shapes differ: {reference.shape} vs {candidate.shape}")
    ref = reference.detach().to("cpu", torch.float64).flatten(0, -2)
    cand = candidate.detach().to("cpu", torch.float64).flatten(0, -2)
    return ref, cand


def score(reference: Any, candidate: Any) -> Fidelity:
    """Compare logits of shape (..., classes); the leading dimensions are predictions."""
    import torch

    ref, cand = _as_rows(reference, candidate, "logit")
    agreement = (ref.argmax(-1) == cand.argmax(-1)).double().mean().item()
    log_p = torch.log_softmax(ref, -1)
    log_q = torch.log_softmax(cand, -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1).mean().item()
    return Fidelity(agreement, max(kl, 0.0), ref.shape[0])


def score_embeddings(reference: Any, candidate: Any) -> Fidelity:
    """Compare embeddings of shape (..., dim) by their mean cosine similarity to fp32."""
    import torch

    ref, cand = _as_rows(reference, candidate, "embedding")
    cosine = torch.nn.functional.cosine_similarity(ref, cand, dim=-1).mean().item()
    return Fidelity(None, None, ref.shape[0], cosine=min(cosine, 1.0))
