"""Causal-LM inference, measured as two phases: prefill and decode.

- prefill: one forward pass over a batch of P-token prompts, filling a fresh KV cache
  (J per prompt token).
- decode: exactly N greedy steps from a prefilled cache (J per generated token). The prompt is
  prefilled once, outside the window; after each call the cache is cropped back to the prompt,
  so every call decodes the same N tokens and no prefill work leaks into decode figures.
  There is no stopping on end-of-sequence: the length is fixed.

Graph runtimes get the same phases from two ONNX graphs: prefill (prompt -> last-position logits
and the KV cache) and a one-token decode step (token + cache -> logits + cache).

Real inputs (inputs.py; tokenized with the checkpoint's tokenizer): `prompts = FILE` feeds the
measured phases, `texts = FILE` fidelity and perplexity; either one alone feeds both. The phases
take the file's tokens end to end (each text's own special tokens kept), cut into `batch` rows
of `prompt_tokens`, starting over from the first text when the file is shorter: every position
is a real token, so J per token keeps its meaning. Fidelity and perplexity take the first
EVAL_TEXTS texts, each cut to `prompt_tokens` tokens, right-padded into batches of `batch`;
only real positions are scored (a causal model's logits there do not see the padding).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenbench.inputs import cycled, input_path, read_texts
from greenbench.preprocessors import load_tokenizer, model_source, require_tokenizer
from greenbench.protocol import Phase, TokenLatency
from greenbench.quality import Quality, perplexity
from greenbench.tasks.base import InputParam, Params, SessionFactory, WorkloadKind, phase_subset
from greenbench.tasks.onnx_export import export_onnx

PHASES = {"prefill": "token", "decode": "token"}
# Latency from the measured call times (records.py derives the columns): a prefill call ends
# with the logits whose argmax is the first output token, so TTFT is the prefill call's time
# (no decode step is added); TPOT is a decode call's time over its new_tokens steps.
TTFT = TokenLatency("ttft")
EVAL_TEXTS = 64  # the texts fidelity and perplexity read, from the top of the file


def _text_file(key: str) -> InputParam:
    def check(value: Any) -> str:
        path = input_path(key, value)
        read_texts(path)  # every line, now: a bad one fails before anything runs
        return str(path)

    def check_source(value: Any, source: str | None, config: Mapping[str, Any] | None) -> None:
        require_tokenizer(key, source)

    return InputParam(check, check_source)


TEXT_INPUTS = {"prompts": _text_file("prompts"), "texts": _text_file("texts")}


def _tokenized(model: Any, file: str) -> list[list[int]]:
    source = model_source(model)
    require_tokenizer("texts", source)
    assert source is not None
    tokenizer = load_tokenizer(source)
    return [tokenizer(text)["input_ids"] for text in read_texts(Path(file))]


def make_prompt(model: Any, params: Params, device: str) -> Any:
    """The fixed batch of prompts: the file's tokens when `prompts` or `texts` names one, else
    random ones (seeded: every variant sees the same tokens)."""
    import torch

    shape = (params["batch"], params["prompt_tokens"])
    file = params.get("prompts") or params.get("texts")
    if file:
        stream = [t for ids in _tokenized(model, file) for t in ids]
        tokens = cycled(stream, shape[0] * shape[1])
        return torch.tensor(tokens, dtype=torch.long).reshape(shape).to(device)
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, model.config.vocab_size, shape, generator=generator).to(device)


@dataclass(frozen=True)
class EvalTexts:
    """Real texts for fidelity and perplexity: right-padded batches and each row's length."""

    batches: list[Any]  # each (batch, prompt_tokens) token ids
    lengths: list[list[int]]  # per batch, per row: its real tokens (0 for a filler row)


def eval_texts(model: Any, params: Params) -> EvalTexts | None:
    """The first EVAL_TEXTS of `texts` (else `prompts`), None when neither is given."""
    import torch

    file = params.get("texts") or params.get("prompts")
    if not file:
        return None
    batch, width = params["batch"], params["prompt_tokens"]
    rows = [ids[:width] for ids in _tokenized(model, file)[:EVAL_TEXTS]]
    batches, lengths = [], []
    for start in range(0, len(rows), batch):
        group = rows[start : start + batch]
        group += [[]] * (batch - len(group))  # filler rows keep every batch the same shape
        padded = [ids + [0] * (width - len(ids)) for ids in group]
        batches.append(torch.tensor(padded, dtype=torch.long))
        lengths.append([len(ids) for ids in group])
    return EvalTexts(batches, lengths)


def real_positions(logits: Sequence[Any], lengths: Sequence[Sequence[int]]) -> Any:
    """The logits of real (not padded) positions, batch by batch and row by row: (N, vocab)."""
    import torch

    return torch.cat(
        [lg[i, :n] for lg, ns in zip(logits, lengths, strict=True) for i, n in enumerate(ns)]
    )


def _eval_logits(model: Any, texts: EvalTexts, device: str) -> list[Any]:
    import torch

    with torch.inference_mode():
        return [model(input_ids=b.to(device)).logits for b in texts.batches]


def fidelity_logits(model: Any, params: Params, device: str) -> Any:
    """Next-token logits at every prompt position (teacher-forced): shape (batch, P, vocab) on
    random prompts, (real positions, vocab) on real texts."""
    import torch

    texts = eval_texts(model, params)
    if texts is not None:
        return real_positions(_eval_logits(model, texts, device), texts.lengths)
    with torch.inference_mode():
        return model(input_ids=make_prompt(model, params, device)).logits


def quality(model: Any, params: Params, device: str) -> Quality | None:
    """Perplexity on the real texts (None on random prompts)."""
    texts = eval_texts(model, params)
    if texts is None:
        return None
    logits = _eval_logits(model, texts, device)
    return perplexity(
        (lg[i, :n], ids[i, :n])
        for lg, ids, ns in zip(logits, texts.batches, texts.lengths, strict=True)
        for i, n in enumerate(ns)
    )


def make_phases(model: Any, params: Params, device: str, autocast: Any = None) -> list[Phase]:
    import torch

    new_tokens = params["new_tokens"]
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

    return lm_phases(params, prefill, decode, reset_decode)


def lm_phases(
    params: Params, prefill: Callable[[], Any], decode: Callable[[], Any], reset: Callable[[], None]
) -> list[Phase]:
    """The phases `params["phases"]` names, in that order, from the prefill and decode calls
    (eager torch or graph runtime alike): J per prompt token and per generated token."""
    batch, new_tokens = params["batch"], params["new_tokens"]
    phases = {
        "prefill": Phase(
            "prefill", "token", batch * params["prompt_tokens"], prefill, token_latency=TTFT
        ),
        "decode": Phase(
            "decode",
            "token",
            batch * new_tokens,
            decode,
            reset=reset,
            token_latency=TokenLatency("tpot", new_tokens),
        ),
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

    new_tokens = params["new_tokens"]
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
    texts = eval_texts(model, params)
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

    phases = lm_phases(params, prefill, decode, reset_decode)
    if texts is None:
        logits = torch.from_numpy(sessions["full"].run(None, prompt_feed)[0])
    else:
        outputs = [sessions["full"].run(None, {"input_ids": b.numpy()})[0] for b in texts.batches]
        logits = real_positions([torch.from_numpy(o) for o in outputs], texts.lengths)
    return phases, logits


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
    input_params=TEXT_INPUTS,
    quality=quality,
)
