"""Hugging Face checkpoints as workloads: `hf:DIR` or `hf:ORG/NAME` (already in the local cache).

A checkpoint is a folder `save_pretrained` wrote (config.json and weights) or a hub id whose
files are in the local Hugging Face cache: greenbench never downloads. Its model family is read
from config.json (`architectures`, else `model_type`) against the classes transformers' Auto
loaders take: causal LMs run the LM kinds, image classifiers the vision kinds, DETR-like object
detectors the object-detection kind, Whisper speech models the speech kinds, sequence
classifiers text classification, and bare text encoders (BertModel; a sentence-transformers
folder, whose config.json is one) sentence embeddings. `hf:SOURCE-train` measures training
steps instead, as the presets' `-train` names do (not for detectors or bare encoders).

A bare model (AutoModel's MODEL_MAPPING) counts as a text encoder when its model_type is one of
a bidirectional text encoder: transformers has a masked-LM head and a sequence classifier for it
(BERT, RoBERTa, DistilBERT, MPNet, ...), and its config is not an encoder-decoder's (BART).
That leaves out bare decoders (GPT2Model has no masked-LM head), vision and audio backbones
(wav2vec2's classifier is an audio one).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenbench.hub_cli import download_hint

PREFIX = "hf:"
TRAIN_SUFFIX = "-train"
# family -> what the error for an unsupported model calls it
SUPPORTED = {
    "causal-lm": "text generation (causal LMs: AutoModelForCausalLM)",
    "image-classification": "image classification (AutoModelForImageClassification)",
    "object-detection": "object detection (DETR, Table Transformer, YOLOS)",
    "speech-seq2seq": "speech recognition (Whisper: AutoModelForSpeechSeq2Seq)",
    "text-classification": "text classification (AutoModelForSequenceClassification)",
    "sentence-embedding": "sentence embeddings (bare text encoders such as BertModel)",
}
# the object detectors the object-detection kind scores: one softmax over the labels plus "no
# object" per query (`logits`); Conditional and Deformable DETR score each label by a sigmoid
DETECTION_TYPES = ("detr", "table-transformer", "yolos")
# the speech seq2seq model types the speech kinds run: Whisper's log-mel inputs and decoder
SPEECH_TYPES = ("whisper",)
# where a config states its longest token sequence, in the order they are read
POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_target_positions")


# the Hugging Face task names a suite's `task =` may give -> the family that runs them
TASKS = {
    "text-generation": "causal-lm",
    "image-classification": "image-classification",
    "object-detection": "object-detection",
    "automatic-speech-recognition": "speech-seq2seq",
    "text-classification": "text-classification",
    "feature-extraction": "sentence-embedding",
    "sentence-similarity": "sentence-embedding",
}


def check_task(checkpoint: Checkpoint, value: Any) -> str:
    """A `task =` that names what the checkpoint's config describes; ValueError naming the fix
    otherwise (the task is read from config.json, so `task` only confirms it)."""
    if value not in TASKS:
        raise ValueError(f"'task' must be one of {', '.join(TASKS)}; got {value!r}")
    if TASKS[value] != checkpoint.family:
        expected = next(t for t, family in TASKS.items() if family == checkpoint.family)
        where = (
            Path(checkpoint.source) / "config.json"
            if Path(checkpoint.source).is_dir()
            else (f"{checkpoint.source}'s config.json")
        )
        raise ValueError(
            f"task '{value}' does not match the model: {where} describes "
            f'{checkpoint.architecture}, a model for {expected}; give task = "{expected}" or '
            "another checkpoint"
        )
    return str(value)


class CheckpointError(KeyError):
    """An `hf:` workload that cannot be used; the message names the file and the fix."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is read by people
        return str(self.args[0])


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint found on this machine, with what the records say about it."""

    source: str  # the folder (absolute) or the hub id, as from_pretrained takes it
    family: str  # a key of SUPPORTED
    architecture: str  # the config's class name, e.g. "GPT2LMHeadModel"
    config: Mapping[str, Any]
    config_hash: str  # sha256 of config.json's bytes, first 16 hex digits
    training: bool

    @property
    def positions(self) -> int | None:
        """The longest token sequence the config allows (a speech model's decoder), if it says."""
        key = self.positions_key
        return self.config[key] if key else None

    @property
    def positions_key(self) -> str | None:
        """The config key that states `positions`."""
        for key in POSITION_KEYS:
            value = self.config.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return key
        return None

    @property
    def dtype(self) -> str | None:
        """The dtype the weights were saved in (transformers 5 writes `dtype`, 4 `torch_dtype`)."""
        value = self.config.get("dtype") or self.config.get("torch_dtype")
        return str(value) if value else None


def is_checkpoint_name(name: str) -> bool:
    return name.startswith(PREFIX)


def find_checkpoint(name: str) -> Checkpoint:
    """The checkpoint an `hf:` workload names; CheckpointError naming the fix otherwise.

    `hf:X-train` is X's training workload unless X-train is itself a checkpoint."""
    text = name[len(PREFIX) :].strip()
    if not text:
        raise CheckpointError(f"workload '{name}': give a folder or a cached hub id after 'hf:'")
    if text.endswith(TRAIN_SUFFIX) and _config_file(text) is None:
        base = text[: -len(TRAIN_SUFFIX)]
        if _config_file(base) is not None:
            return _checkpoint(name, base, training=True)
    return _checkpoint(name, text, training=False)


def _checkpoint(name: str, text: str, training: bool) -> Checkpoint:
    config_file = _config_file(text)
    if config_file is None:
        raise CheckpointError(_not_found(name, text))
    try:
        raw = config_file.read_bytes()
        config = json.loads(raw)
    except (OSError, ValueError) as e:
        raise CheckpointError(
            f"workload '{name}': cannot read {config_file} ({e}); save the model again with "
            "save_pretrained"
        ) from None
    if not isinstance(config, dict):
        raise CheckpointError(
            f"workload '{name}': {config_file} is not a JSON object; save the model again "
            "with save_pretrained"
        )
    family, architecture = _family(name, config_file, config)
    _check_backbone(name, config_file, config)
    path = Path(text).expanduser()
    source = str(path.resolve()) if path.is_dir() else text
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return Checkpoint(source, family, architecture, config, digest, training)


def _config_file(text: str) -> Path | None:
    """config.json of a folder, or of a hub id in the local cache; None if neither."""
    path = Path(text).expanduser()
    if path.is_dir():
        config = path / "config.json"
        return config if config.is_file() else None
    if _looks_like_path(text):
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(text, "config.json")
    except ValueError:  # not a valid repo id
        return None
    return Path(cached) if isinstance(cached, str) else None


def _looks_like_path(text: str) -> bool:
    return Path(text).is_absolute() or text.startswith((".", "~")) or text.count("/") > 1


def _not_found(name: str, text: str) -> str:
    path = Path(text).expanduser()
    if path.is_dir():
        return (
            f"workload '{name}': {path / 'config.json'} does not exist; give the folder that "
            "save_pretrained wrote"
        )
    if _looks_like_path(text) or path.exists():
        return f"workload '{name}': no such folder '{text}'; check the path"
    return (
        f"workload '{name}': '{text}' is neither a folder nor in the local Hugging Face cache; "
        f"greenbench never downloads: fetch it once ({download_hint(text)}) or give a folder"
    )


def _family(name: str, config_file: Path, config: Mapping[str, Any]) -> tuple[str, str]:
    """(family, architecture class) of a config; CheckpointError naming the supported tasks."""
    classes = _auto_classes()
    if config.get("is_encoder_decoder"):
        del classes["sentence-embedding"]  # a bare BartModel or T5Model is no text encoder
    architectures = config.get("architectures") or []
    model_type = config.get("model_type")
    for architecture in architectures:
        for family, known in classes.items():
            if architecture in known["classes"]:
                return family, architecture
    if not architectures and isinstance(model_type, str):
        # a bare config of an encoder type (bert) is its encoder, not its causal-LM head
        for family, known in classes.items():
            if model_type in known["types"]:
                return family, known["types"][model_type]
    what = ", ".join(map(str, architectures)) or f"model_type {model_type!r}"
    supported = "; ".join(SUPPORTED.values())
    raise CheckpointError(
        f"workload '{name}': {config_file} describes {what}, which greenbench cannot run yet; "
        f"supported: {supported}"
    )


def _check_backbone(name: str, config_file: Path, config: Mapping[str, Any]) -> None:
    """CheckpointError naming the fix if the config's backbone needs timm and it is missing
    (DETR checkpoints written by transformers 4, facebook/detr-resnet-50 among them)."""
    backbone = config.get("backbone_config")
    timm = (isinstance(backbone, Mapping) and backbone.get("model_type") == "timm_backbone") or (
        not backbone and config.get("use_timm_backbone") is True
    )
    if timm and importlib.util.find_spec("timm") is None:
        raise CheckpointError(
            f"workload '{name}': {config_file} builds its backbone with the timm package, which "
            "is not installed: pip install timm"
        )


def _auto_classes() -> dict[str, dict[str, Any]]:
    """Per family: the model classes its Auto loader builds, and model_type -> class."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES,
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
        MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES,
        MODEL_MAPPING_NAMES,
    )

    def index(mapping: Mapping[str, str | Iterable[str]]) -> dict[str, Any]:
        types = {t: c if isinstance(c, str) else next(iter(c)) for t, c in mapping.items()}
        classes = {c for v in mapping.values() for c in ([v] if isinstance(v, str) else v)}
        return {"types": types, "classes": classes}

    encoder_types = MODEL_FOR_MASKED_LM_MAPPING_NAMES.keys() & (
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.keys()
    )
    encoders = {t: c for t, c in MODEL_MAPPING_NAMES.items() if t in encoder_types}
    # in lookup order: a model_type alone names its encoder before its causal-LM head
    return {
        "sentence-embedding": index(encoders),
        "causal-lm": index(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES),
        "image-classification": index(MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES),
        "object-detection": index(
            {t: MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES[t] for t in DETECTION_TYPES}
        ),
        "speech-seq2seq": index(
            {t: c for t, c in MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES.items() if t in SPEECH_TYPES}
        ),
        "text-classification": index(MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES),
    }
