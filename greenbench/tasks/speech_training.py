"""Whisper fine-tuning steps: AdamW on the decoder's cross-entropy, teacher-forced.

Each step encodes a fixed batch of log-mel clips (as speech-recognition builds them) and scores
`seq_len` fixed random label tokens; J per second of audio (batch x audio_seconds per step).
"""

from __future__ import annotations

from typing import Any

from greenbench.protocol import Phase
from greenbench.tasks.base import Params, WorkloadKind
from greenbench.tasks.speech_recognition import PHASES, check_audio_seconds, log_mel
from greenbench.tasks.training import make_train_step


def make_phases(model: Any, params: Params, device: str, autocast: Any) -> list[Phase]:
    import torch

    batch, seq_len = params["batch"], params["seq_len"]
    features = log_mel(model, params, device, seed=0)
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, model.config.vocab_size, (batch, seq_len), generator=generator)
    labels = labels.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def loss() -> Any:
        # the decoder's input is the labels shifted right behind the start token
        return model(input_features=features, labels=labels).loss

    step = make_train_step(model, optimizer, loss, device, autocast)
    unit = PHASES["encode"]
    return [Phase("train", unit, batch * params["audio_seconds"], step)]


KIND = WorkloadKind(
    name="speech-training",
    task="training",
    phases={"train": PHASES["encode"]},
    make_phases=make_phases,
    weight_copies=4,  # weights, gradients, AdamW's two moments
    linear_quantization=True,
    param_rules={"audio_seconds": check_audio_seconds},
)
