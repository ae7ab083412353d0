"""One optimizer step, shared by the training workloads: forward, loss, backward, update.

Mixed precision follows common practice: autocast around the forward pass with fp32 master
weights, and gradient scaling for fp16 so small gradients do not underflow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from greenbench.backends.torch_device import device_type


def make_train_step(
    model: Any,
    optimizer: torch.optim.Optimizer,
    loss: Callable[[], Any],
    device: str,
    autocast: Any,
) -> Callable[[], torch.Tensor]:
    """A step function returning the loss (detached: reading it would sync the device)."""
    kind = device_type(device)
    scaler = torch.amp.GradScaler(kind, enabled=autocast == torch.float16)
    model.train()

    def precision() -> Any:
        if autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(kind, dtype=autocast)

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with precision():
            value = loss()
        scaler.scale(value).backward()
        scaler.step(optimizer)
        scaler.update()
        return value.detach()

    return step
