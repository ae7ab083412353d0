"""Text-classification fine-tuning steps: AdamW on cross-entropy over fixed random sequences
and labels.

J per training sequence (J per token: J per sequence / seq_len, the records' `tokens_per_unit`);
J per step is in the records too.
"""

from __future__ import annotations

from typing import Any

from greenbench.protocol import Phase
from greenbench.tasks.base import Params, WorkloadKind
from greenbench.tasks.text_classification import UNIT, random_tokens
from greenbench.tasks.training import make_train_step


def make_phases(model: Any, params: Params, device: str, autocast: Any) -> list[Phase]:
    import torch

    batch = params["batch"]
    ids, mask = random_tokens(model, batch, params["seq_len"], device, seed=0)
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, model.config.num_labels, (batch,), generator=generator).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)

    def loss() -> Any:
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    step = make_train_step(model, optimizer, loss, device, autocast)
    return [Phase("train", UNIT, batch, step)]


KIND = WorkloadKind(
    name="text-classification-training",
    task="training",
    phases={"train": UNIT},
    make_phases=make_phases,
    weight_copies=4,  # weights, gradients, AdamW's two moments
    linear_quantization=True,
    unit_tokens="seq_len",
)
