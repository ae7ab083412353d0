"""One optimizer step, shared by the training workloads: forward, loss, backward, update.

Mixed precision follows common practice: autocast around the forward pass with fp32 master
weights, and gradient scaling for fp16 so small gradients do not underflow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any


def make_train_step(
    model: Any,
    optimizer: Any,
    loss: Callable[[], Any],
    device: str,
    autocast: Any,
) -> Callable[[], Any]:
    """A step function returning the loss (detached: reading it would sync the device)."""
    import torch

    kind = torch.device(device).type
    scaler = torch.amp.GradScaler(kind, enabled=autocast == torch.float16)
    model.train()

    def precision() -> Any:
        if autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(kind, dtype=autocast)

    def step() -> Any:
        optimizer.zero_grad(set_to_none=True)
        with precision():
            value = loss()
        scaler.scale(value).backward()
        scaler.step(optimizer)
        scaler.update()
        return value.detach()

    return step
