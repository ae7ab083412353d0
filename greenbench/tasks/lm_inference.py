"""Causal-LM inference, measured as two phases: prefill and decode.

- prefill: one forward pass over a batch of P-token prompts, filling a fresh KV cache
  (J per prompt token).
- decode: exactly N greedy steps from a prefilled cache (J per generated token). The prompt is
  prefilled once, outside the window; after each call the cache is cropped back to the prompt,
  so every call decodes the same N tokens and no prefill work leaks into decode figures.
  There is no stopping on end-of-sequence: the length is fixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from greenbench.protocol import Phase


def make_prompt(model: Any, params: Mapping[str, Any], device: str) -> torch.Tensor:
    """The fixed batch of random prompts (seeded: every variant sees the same tokens)."""
    generator = torch.Generator().manual_seed(0)
    shape = (params["batch"], params["prompt_tokens"])
    return torch.randint(0, model.config.vocab_size, shape, generator=generator).to(device)


@torch.inference_mode()
def fidelity_logits(model: Any, params: Mapping[str, Any], device: str) -> torch.Tensor:
    """Next-token logits at every prompt position (teacher-forced), shape (batch, P, vocab)."""
    return model(input_ids=make_prompt(model, params, device)).logits


def make_phases(model: Any, params: Mapping[str, Any], device: str) -> list[Phase]:
    batch, prompt_tokens, new_tokens = (
        params["batch"],
        params["prompt_tokens"],
        params["new_tokens"],
    )
    prompt = make_prompt(model, params, device)

    @torch.inference_mode()
    def prefill() -> Any:
        return model(input_ids=prompt, use_cache=True, logits_to_keep=1)

    state: dict[str, Any] = {}

    @torch.inference_mode()
    def reset_decode() -> None:
        out = prefill()
        state["cache"] = out.past_key_values
        state["first"] = out.logits[:, -1].argmax(-1, keepdim=True)

    @torch.inference_mode()
    def decode() -> Any:
        cache, token = state["cache"], state["first"]
        for _ in range(new_tokens):
            logits = model(input_ids=token, past_key_values=cache, use_cache=True).logits
            token = logits[:, -1].argmax(-1, keepdim=True)
        cache.crop(-new_tokens)  # negative: drop the N decoded positions, keep the prompt
        return token

    phases = {
        "prefill": Phase("prefill", "token", batch * prompt_tokens, prefill),
        "decode": Phase("decode", "token", batch * new_tokens, decode, reset=reset_decode),
    }
    return [phases[name] for name in params["phases"]]
