"""Speech recognition with a Whisper encoder-decoder, measured as two phases: encode and decode.

- encode: the encoder over a batch of log-mel inputs (J per second of audio). Whisper pads every
  clip to its 30 s window, so the encoder does 30 s of work whatever `audio_seconds` is; the unit
  counts the clip's own seconds, so a short clip costs more per second, as it does in use.
- decode: exactly N greedy decoder steps with the KV cache, attending to a fixed encoder output
  (J per generated token). The encoder output and the start token's step are computed outside
  the window; after each call the self-attention cache is cropped back to the start token, so
  every call decodes the same N tokens. There is no stopping on end-of-text: the length is fixed.

Without real inputs they are seeded random log-mel features: the clip's frames random, the padded
rest at the clip's floor, as the feature extractor's clamp leaves silence. A model's window is
its 2 x max_source_positions frames (3000 for Whisper: 10 ms each); a test model's smaller window
stands for the same 30 s.

Real inputs: `audio = FOLDER` (audio.py: .wav clips, a same-name .txt transcript beside each)
feeds the measured batch (its first `batch` clips, starting over when it has fewer), fidelity and
WER (its first EVAL_CLIPS). Each clip, mono 16 kHz and at most 30 s, becomes log-mel features
by the checkpoint's WhisperFeatureExtractor (preprocessor_config.json) when it has one, else by
one built offline with the model's num_mel_bins; a window other than 3000 frames gets them
resampled along time. With `audio`, the clips' real lengths replace `audio_seconds`: the encode
phase counts the batch's seconds (each clip's, cut at 30 s), summed and rounded to whole
seconds (at least 1), so J per audio-second uses the real seconds.

WER (quality.word_error_rate) scores greedy transcripts against the references: decoding starts
at the start token, takes the generation config's forced_decoder_ids where it has them (the
task and no-timestamps tokens of a real Whisper) and stops at end-of-text or the model's
max_target_positions; the checkpoint's tokenizer decodes it. Both sides are normalised first
(normalise_transcript: lower case, punctuation dropped), as Whisper's WER figures are.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from greenbench.audio import (
    MAX_SECONDS,
    SAMPLE_RATE,
    AudioSet,
    check_wav,
    list_audio,
    read_wav,
    seconds,
)
from greenbench.inputs import cycled, input_path
from greenbench.preprocessors import (
    load_tokenizer,
    model_source,
    require_tokenizer,
    source_file,
)
from greenbench.protocol import Phase
from greenbench.quality import Quality, word_error_rate
from greenbench.tasks.base import InputParam, Params, WorkloadKind, input_dtype

PHASES = {"encode": "audio-second", "decode": "token"}
WINDOW_S = MAX_SECONDS  # Whisper's fixed input window
EVAL_CLIPS = 32  # the real clips fidelity and WER read, in sorted order
FEATURE_EXTRACTOR_FILE = "preprocessor_config.json"  # where save_pretrained writes it


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


def _check_audio(value: Any) -> str:
    path = input_path("audio", value)
    clips = list_audio(path)  # every transcript read now: a bad one fails before anything runs
    for clip in clips.paths:
        check_wav(clip)
    return str(path)


def _check_source(value: Any, source: str | None, config: Mapping[str, Any] | None) -> None:
    """Transcripts are scored as text: the model's tokenizer must decode its answers. A saved
    feature extractor must make the mel bins the model takes."""
    if list_audio(Path(value)).transcripts is not None:
        require_tokenizer("audio", source)
    file = source_file(source, FEATURE_EXTRACTOR_FILE) if source else None
    bins = (config or {}).get("num_mel_bins")
    if file is None or bins is None:
        return
    try:
        size = json.loads(file.read_text()).get("feature_size")
    except (OSError, ValueError, AttributeError):
        raise ValueError(f"{file}: not a JSON object; save it with save_pretrained") from None
    if size is not None and size != bins:
        raise ValueError(
            f"{file}: makes {size} mel bins, the model takes {bins} (num_mel_bins in its "
            "config.json); save the model's own feature extractor beside it"
        )


AUDIO_INPUTS = {"audio": InputParam(_check_audio, _check_source)}


def _audio_set(params: Params) -> AudioSet | None:
    folder = params.get("audio")
    return list_audio(Path(folder)) if folder else None


@functools.lru_cache(maxsize=8)
def _feature_extractor(source: str | None, mel_bins: int) -> Any:
    from transformers import WhisperFeatureExtractor

    if source and source_file(source, FEATURE_EXTRACTOR_FILE):
        return WhisperFeatureExtractor.from_pretrained(source, local_files_only=True)
    return WhisperFeatureExtractor(feature_size=mel_bins, sampling_rate=SAMPLE_RATE)


def clip_features(model: Any, paths: Sequence[Path], device: str) -> tuple[Any, list[float]]:
    """Clips as the model's input_features (count, mel bins, window frames), and their seconds."""
    import torch

    config = model.config
    clips = [read_wav(path) for path in paths]
    extractor = _feature_extractor(model_source(model), int(config.num_mel_bins))
    features = extractor(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt")["input_features"]
    frames = window_frames(config)
    if features.shape[-1] != frames:
        features = torch.nn.functional.interpolate(
            features, size=frames, mode="linear", align_corners=False
        )
    return features.to(device, input_dtype(model)), [seconds(c) for c in clips]


def phase_features(model: Any, params: Params, device: str, seed: int = 0) -> tuple[Any, int]:
    """The measured batch and its audio seconds: the folder's first clips (their real seconds),
    else seeded random features (`audio_seconds`)."""
    clips = _audio_set(params)
    if clips is None:
        return log_mel(model, params, device, seed), params["batch"] * params["audio_seconds"]
    features, lengths = clip_features(model, cycled(clips.paths, params["batch"]), device)
    return features, max(1, round(sum(lengths)))


def start_tokens(model: Any, batch: int, device: str) -> Any:
    """The decoder's prompt: its start token (<|startoftranscript|> for Whisper), per clip."""
    import torch

    start = model.config.decoder_start_token_id
    return torch.full((batch, 1), int(start), dtype=torch.long, device=device)


def fidelity_tokens(model: Any, params: Params, device: str, rows: int | None = None) -> Any:
    """The start token then N seeded tokens, the decoder's fixed teacher-forced input, for
    `rows` clips (default: the batch)."""
    import torch

    rows = params["batch"] if rows is None else rows
    generator = torch.Generator().manual_seed(2)
    shape = (rows, params["new_tokens"])
    tokens = torch.randint(0, model.config.vocab_size, shape, generator=generator).to(device)
    return torch.cat([start_tokens(model, rows, device), tokens], dim=1)


def fidelity_features(model: Any, params: Params, device: str) -> Any:
    """The clips fidelity scores: the folder's first EVAL_CLIPS, else a random batch."""
    clips = _audio_set(params)
    if clips is None:
        return log_mel(model, params, device, seed=1)
    return clip_features(model, clips.paths[:EVAL_CLIPS], device)[0]


def fidelity_logits(model: Any, params: Params, device: str) -> Any:
    """Decoder logits at the start position and each of the N decoded positions, teacher-forced
    on fixed tokens over fixed clips, shape (clips, 1 + N, vocab), in batches of `batch`.

    Fixed tokens rather than each model's own greedy ones: every variant is then scored on the
    same inputs and shapes, as lm-inference's prompts are."""
    import torch

    features = fidelity_features(model, params, device)
    tokens = fidelity_tokens(model, params, device, rows=len(features))
    batch = params["batch"]
    with torch.inference_mode():
        return torch.cat(
            [
                model(input_features=f, decoder_input_ids=t, use_cache=False).logits
                for f, t in zip(features.split(batch), tokens.split(batch), strict=True)
            ]
        )


def normalise_transcript(text: str) -> str:
    """Lower case, punctuation (but apostrophes) dropped, spaces collapsed: WER counts words."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def forced_tokens(model: Any) -> dict[int, int]:
    """Decoder positions whose token the generation config (else the model config) fixes:
    forced_decoder_ids, [[position, token or None], ...]."""
    generation = getattr(model, "generation_config", None)
    pairs = getattr(generation, "forced_decoder_ids", None)
    pairs = pairs or getattr(model.config, "forced_decoder_ids", None) or []
    return {int(pos): int(token) for pos, token in pairs if token is not None}


def end_token(model: Any) -> int:
    generation = getattr(model, "generation_config", None)
    eos = getattr(generation, "eos_token_id", None)
    if eos is None:
        eos = model.config.eos_token_id
    return int(eos[0] if isinstance(eos, list) else eos)


def greedy_tokens(model: Any, features: Any) -> list[list[int]]:
    """Each clip's greedy transcript tokens after the start token, up to end-of-text (kept) or
    max_target_positions, with the KV cache (module doc)."""
    import torch

    model = getattr(model, "_orig_mod", model)  # a compiled variant: its eager model
    forced, eos = forced_tokens(model), end_token(model)
    rows = len(features)
    with torch.inference_mode():
        encoded = model.get_encoder()(input_features=features)
        token = start_tokens(model, rows, features.device)
        done = torch.zeros(rows, dtype=torch.bool, device=features.device)
        cache, out = None, []
        for position in range(1, int(model.config.max_target_positions)):
            step = model(
                encoder_outputs=encoded, decoder_input_ids=token, cache=cache, use_cache=True
            )
            cache = step.cache
            token = step.logits[:, -1].argmax(-1, keepdim=True)
            if position in forced:
                token = torch.full_like(token, forced[position])
            token = torch.where(done[:, None], torch.full_like(token, eos), token)
            out.append(token)
            done |= token[:, 0] == eos
            if bool(done.all()):
                break
    ids = torch.cat(out, dim=1).tolist()
    return [row[: row.index(eos) + 1] if eos in row else row for row in ids]


def transcribe(model: Any, features: Any, batch: int) -> list[str]:
    """Greedy transcripts of the clips, in batches of `batch`, decoded by the checkpoint's
    tokenizer (special tokens dropped)."""
    source = model_source(model)
    require_tokenizer("audio", source)
    assert source is not None
    tokenizer = load_tokenizer(source)
    rows = [ids for part in features.split(batch) for ids in greedy_tokens(model, part)]
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in rows]


def quality(model: Any, params: Params, device: str) -> Quality | None:
    """WER of greedy transcripts against the folder's references (None without them)."""
    clips = _audio_set(params)
    if clips is None or clips.transcripts is None:
        return None
    features = clip_features(model, clips.paths[:EVAL_CLIPS], device)[0]
    hypotheses = transcribe(model, features, params["batch"])
    references = clips.transcripts[:EVAL_CLIPS]
    return word_error_rate(
        [normalise_transcript(r) for r in references],
        [normalise_transcript(h) for h in hypotheses],
    )


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
    features, audio_seconds = phase_features(model, params, device)
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
        Phase("encode", PHASES["encode"], audio_seconds, encode),
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
    input_params=AUDIO_INPUTS,
    quality=quality,
)
