"""Speech recognition with a Whisper encoder-decoder, measured as two phases: encode and decode.

- encode: the encoder over a batch of log-mel inputs (J per second of audio). Whisper pads every
  clip to its 30 s window, so the encoder does 30 s of work whatever `audio_seconds` is; the unit
  counts the clip's own seconds, so a short clip costs more per second, as it does in use.
- decode: exactly N greedy decoder steps with the KV cache, attending to a fixed encoder output
  (J per generated token). The encoder output and the start token's step are computed outside
  the window; after each call the self-attention cache is cropped back to the start token, so
  every call decodes the same N tokens. There is no stopping on end-of-text: the length is fixed.

The inputs are seeded random log-mel features: the clip's frames random, the padded rest at the
clip's floor, as the feature extractor's clamp leaves silence. A model's window is its
2 x max_source_positions frames (3000 for Whisper: 10 ms each); a test model's smaller window
stands for the same 30 s.
"""

from __future__ import annotations

from typing import Any

from greenbench.protocol import Phase
from greenbench.tasks.base import Params, WorkloadKind, input_dtype

PHASES = {"encode": "audio-second", "decode": "token"}
WINDOW_S = 30  # Whisper's fixed input window


def check_audio_seconds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= WINDOW_S:
        raise ValueError(
            f"'audio_seconds' must be a whole number from 1 to {WINDOW_S} (Whisper pads every "
            f"clip to {WINDOW_S} s), got {value!r}"
        )
    return value


def window_frames(config: Any) -> int:
    """The log-mel frames the encoder takes: its two convolutions halve them once."""
    return 2 * int(config.max_source_positions)


def log_mel(model: Any, params: Params, device: str, seed: int) -> Any:
    """A seeded batch of log-mel inputs, (batch, mel bins, window frames), in the model's dtype."""
    import torch

    config = model.config
    frames = window_frames(config)
    audio = max(1, round(frames * params["audio_seconds"] / WINDOW_S))
    generator = torch.Generator().manual_seed(seed)
    shape = (params["batch"], config.num_mel_bins, frames)
    features = torch.randn(shape, generator=generator) * 0.5
    floor = features[..., :audio].amin(dim=(1, 2), keepdim=True)
    features[..., audio:] = floor.expand(-1, config.num_mel_bins, frames - audio)
    return features.to(device, input_dtype(model))


def start_tokens(model: Any, batch: int, device: str) -> Any:
    """The decoder's prompt: its start token (<|startoftranscript|> for Whisper), per clip."""
    import torch

    start = model.config.decoder_start_token_id
    return torch.full((batch, 1), int(start), dtype=torch.long, device=device)


def fidelity_tokens(model: Any, params: Params, device: str) -> Any:
    """The start token then N seeded tokens, the decoder's fixed teacher-forced input."""
    import torch

    generator = torch.Generator().manual_seed(2)
    shape = (params["batch"], params["new_tokens"])
    tokens = torch.randint(0, model.config.vocab_size, shape, generator=generator).to(device)
    return torch.cat([start_tokens(model, params["batch"], device), tokens], dim=1)


def fidelity_logits(model: Any, params: Params, device: str) -> Any:
    """Decoder logits at the start position and each of the N decoded positions, teacher-forced
    on fixed tokens over fixed clips, shape (batch, 1 + N, vocab).

    Fixed tokens rather than each model's own greedy ones: every variant is then scored on the
    same inputs and shapes, as lm-inference's prompts are."""
    import torch

    features = log_mel(model, params, device, seed=1)
    tokens = fidelity_tokens(model, params, device)
    with torch.inference_mode():
        return model(input_features=features, decoder_input_ids=tokens, use_cache=False).logits


def _encoder(model: Any) -> Any:
    """The encoder to call: compiled too when the variant compiled the whole model."""
    inner = getattr(model, "_orig_mod", None)  # torch.compile's wrapper keeps the original here
    if inner is None:
        return model.get_encoder()
    import torch

    return torch.compile(inner.get_encoder())


def make_phases(model: Any, params: Params, device: str, autocast: Any = None) -> list[Phase]:
    import torch

    batch, new_tokens = params["batch"], params["new_tokens"]
    features = log_mel(model, params, device, seed=0)
    encoder = _encoder(model)
    start = start_tokens(model, batch, device)

    @torch.inference_mode()
    def encode() -> Any:
        return encoder(input_features=features).last_hidden_state

    state: dict[str, Any] = {}

    @torch.inference_mode()
    def reset_decode() -> None:
        encoded = encoder(input_features=features)
        out = model(encoder_outputs=encoded, decoder_input_ids=start, use_cache=True)
        state["encoded"], state["cache"] = encoded, out.cache
        state["first"] = out.logits[:, -1].argmax(-1, keepdim=True)

    @torch.inference_mode()
    def decode() -> Any:
        encoded, cache, token = state["encoded"], state["cache"], state["first"]
        for _ in range(new_tokens):
            logits = model(
                encoder_outputs=encoded, decoder_input_ids=token, cache=cache, use_cache=True
            ).logits
            token = logits[:, -1].argmax(-1, keepdim=True)
        cache.self_attention_cache.crop(-new_tokens)  # back to the start token's step
        return token

    return [
        Phase("encode", PHASES["encode"], batch * params["audio_seconds"], encode),
        Phase("decode", PHASES["decode"], batch * new_tokens, decode, reset=reset_decode),
    ]


KIND = WorkloadKind(
    name="speech-recognition",
    task="inference",
    phases=PHASES,
    make_phases=make_phases,
    linear_quantization=True,  # two input convolutions; the rest is Linear layers
    fidelity_logits=fidelity_logits,
    export_graphs=None,  # no ONNX graphs yet: the graph runtimes skip it with that reason
    param_rules={"audio_seconds": check_audio_seconds},
)
