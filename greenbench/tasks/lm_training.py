"""Causal-LM fine-tuning steps: AdamW on cross-entropy over fixed random token batches.

J per training token (batch x seq_len tokens per step); J per step is in the records too.
"""

from __future__ import annotations

from typing import Any

from greenbench.protocol import Phase
from greenbench.tasks.base import Params, WorkloadKind
from greenbench.tasks.training import make_train_step


def make_phases(model: Any, params: Params, device: str, autocast: Any) -> list[Phase]:
    import torch

    batch, seq_len = params["batch"], params["seq_len"]
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, model.config.vocab_size, (batch, seq_len), generator=generator)
    tokens = tokens.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def loss() -> Any:
        return model(input_ids=tokens, labels=tokens).loss  # labels are shifted inside

    step = make_train_step(model, optimizer, loss, device, autocast)
    return [Phase("train", "token", batch * seq_len, step)]


KIND = WorkloadKind(
    name="lm-training",
    task="training",
    phases={"train": "token"},
    make_phases=make_phases,
    weight_copies=4,  # weights, gradients, AdamW's two moments
    linear_quantization=True,
)
