"""Task quality where the inputs carry labels: what a variant's answers are worth, not only how
close they stay to fp32 (fidelity.py).

One metric per kind, in the records as `quality_metric`, `quality` and `quality_n` (how many
tokens, images or words it rests on); compare and the report put each variant's beside fp32's.
`HIGHER_IS_BETTER` says which way a change is a loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

HIGHER_IS_BETTER = {"perplexity": False, "top1_accuracy": True, "accuracy": True, "wer": False}


@dataclass(frozen=True)
class Quality:
    metric: str  # a key of HIGHER_IS_BETTER
    value: float
    count: int  # the tokens, images or words it rests on

    def as_record(self) -> dict[str, Any]:
        return {"quality_metric": self.metric, "quality": self.value, "quality_n": self.count}


def perplexity(texts: Iterable[tuple[Any, Any]]) -> Quality:
    """exp(mean negative log-likelihood) of each text's next tokens under teacher forcing.

    `texts`: per text, its logits (L, vocab) and its token ids (L); a text of L tokens predicts
    L - 1 of them, from the second on."""
    import torch

    total, count = 0.0, 0
    for logits, ids in texts:
        if len(ids) < 2:
            continue
        log_probs = torch.log_softmax(logits.detach().to("cpu", torch.float64)[:-1], -1)
        total -= log_probs.gather(-1, ids.to("cpu")[1:, None]).sum().item()
        count += len(ids) - 1
    if count == 0:
        raise ValueError("perplexity needs texts of at least 2 tokens")
    return Quality("perplexity", math.exp(total / count), count)


def top1_accuracy(logits: Any, labels: Sequence[int], metric: str = "top1_accuracy") -> Quality:
    """The share of rows whose highest logit is the label."""
    predicted = logits.detach().to("cpu").argmax(-1).tolist()
    if len(predicted) != len(labels) or not labels:
        raise ValueError(f"{len(predicted)} predictions for {len(labels)} labels")
    hits = sum(p == y for p, y in zip(predicted, labels, strict=True))
    return Quality(metric, hits / len(labels), len(labels))


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> Quality:
    """WER of transcripts against reference transcripts, by jiwer (word edits / reference words)."""
    import jiwer

    words = sum(len(r.split()) for r in references)
    return Quality("wer", float(jiwer.wer(list(references), list(hypotheses))), words)


def change(metric: str, value: float, baseline: float) -> float:
    """A variant's quality against fp32's: the ratio minus 1 for perplexity (+5 % = 5 % worse),
    the difference for rates (accuracy, WER: in points of the rate)."""
    if metric == "perplexity":
        return value / baseline - 1
    return value - baseline
