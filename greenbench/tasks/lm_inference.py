"""Causal-LM inference, measured as two phases: prefill and decode.

- prefill: one forward pass over a batch of P-token prompts, filling a fresh KV cache
  (J per prompt token).
- decode: exactly N greedy steps from a prefilled cache (J per generated token). The prompt is
  prefilled once, outside the window; after each call the cache is cropped back to the prompt,
  so every call decodes the same N tokens and no prefill work leaks into decode figures.
  There is no stopping on end-of-sequence: the length is fixed.

Graph runtimes get the same phases from two ONNX graphs: prefill (prompt -> last-position logits
and the KV cache) and a one-token decode step (token + cache -> logits + cache).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenbench.protocol import Phase
from greenbench.tasks.base import Params, SessionFactory, WorkloadKind, phase_subset
from greenbench.tasks.onnx_export import export_onnx

PHASES = {"prefill": "token", "decode": "token"}


def make_prompt(model: Any, params: Params, device: str) -> Any:
    """The fixed batch of random prompts (seeded: every variant sees the same tokens)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    shape = (params["batch"], params["prompt_tokens"])
    return torch.randint(0, model.config.vocab_size, shape, generator=generator).to(device)


def fidelity_logits(model: Any, params: Params, device: str) -> Any:
    """Next-token logits at every prompt position (teacher-forced), shape (batch, P, vocab)."""
    import torch

    with torch.inference_mode():
        return model(input_ids=make_prompt(model, params, device)).logits


def make_phases(model: Any, params: Params, device: str, autocast: Any = None) -> list[Phase]:
    import torch

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


def _graph_modules(model: Any) -> tuple[Any, Any, Any]:
    """(full-logits graph for fidelity, prefill graph, decode-step graph)."""
    import torch
    from transformers import DynamicCache

    layers = model.config.num_hidden_layers

    def flat(cache: Any) -> list[Any]:
        out = []
        for layer in cache.layers:
            out += [layer.keys, layer.values]
        return out

    class Full(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any) -> Any:
            return self.model(input_ids=input_ids, use_cache=False).logits

    class Prefill(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any) -> tuple[Any, ...]:
            out = self.model(input_ids=input_ids, use_cache=True, logits_to_keep=1)
            return (out.logits, *flat(out.past_key_values))

    class Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, *kv: Any) -> tuple[Any, ...]:
            cache = DynamicCache()
            for i in range(layers):
                cache.update(kv[2 * i], kv[2 * i + 1], i)
            out = self.model(
                input_ids=input_ids, past_key_values=cache, use_cache=True, logits_to_keep=1
            )
            return (out.logits, *flat(out.past_key_values))

    return Full(), Prefill(), Step()


def export_graphs(
    model: Any, params: Params, make_session: SessionFactory, workdir: Path
) -> tuple[list[Phase], Any]:
    """Prefill and decode on a graph runtime, and the full logits for fidelity."""
    import numpy as np
    import torch

    batch, new_tokens = params["batch"], params["new_tokens"]
    prompt = make_prompt(model, params, "cpu")
    full, prefill_module, step_module = _graph_modules(model)
    layers = model.config.num_hidden_layers
    names = [f"past_{i}" for i in range(2 * layers)]

    with torch.no_grad():
        first = prefill_module(prompt)
    token = first[0][:, -1].argmax(-1, keepdim=True)
    length = torch.export.Dim("cache_length", min=2, max=1 << 16)
    paths = {name: workdir / f"{name}.onnx" for name in ("full", "prefill", "step")}
    export_onnx(full, (prompt,), paths["full"], ["input_ids"])
    export_onnx(prefill_module, (prompt,), paths["prefill"], ["input_ids"])
    export_onnx(
        step_module,
        (token, *first[1:]),
        paths["step"],
        ["input_ids", *names],
        {"input_ids": None, "kv": tuple({2: length} for _ in names)},
    )
    sessions = {k: make_session(p) for k, p in paths.items()}
    prompt_feed = {"input_ids": prompt.numpy()}
    state: dict[str, Any] = {}

    def prefill() -> Any:
        return sessions["prefill"].run(None, prompt_feed)

    def reset_decode() -> None:
        out = prefill()
        state["first"] = out[0][:, -1].argmax(-1)[:, None].astype(np.int64)
        state["cache"] = out[1:]  # kept as is: every call starts from the prompt's cache

    def decode() -> Any:
        token, cache = state["first"], state["cache"]
        for _ in range(new_tokens):
            feed = {"input_ids": token, **dict(zip(names, cache, strict=True))}
            out = sessions["step"].run(None, feed)
            token, cache = out[0][:, -1].argmax(-1)[:, None].astype(np.int64), out[1:]
        return token

    phases = {
        "prefill": Phase("prefill", "token", batch * params["prompt_tokens"], prefill),
        "decode": Phase("decode", "token", batch * new_tokens, decode, reset=reset_decode),
    }
    logits = torch.from_numpy(sessions["full"].run(None, prompt_feed)[0])
    return [phases[name] for name in params["phases"]], logits


KIND = WorkloadKind(
    name="lm-inference",
    task="inference",
    phases=PHASES,
    make_phases=make_phases,
    linear_quantization=True,
    fidelity_logits=fidelity_logits,
    export_graphs=export_graphs,
    param_rules={"phases": phase_subset(tuple(PHASES))},
    selectable_phases=True,
)
