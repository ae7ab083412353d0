"""A checkpoint's own tokenizer and image processor: whether it has them, and loading them
offline. The source is a folder save_pretrained wrote or a hub id in the local cache."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
IMAGE_PROCESSOR_FILES = ("preprocessor_config.json",)


def source_file(source: str, name: str) -> Path | None:
    """The file `name` of a checkpoint folder, or of a hub id in the local cache; None if not."""
    path = Path(source).expanduser()
    if path.is_dir():
        file = path / name
        return file if file.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(source, name)
    except ValueError:  # not a valid repo id
        return None
    return Path(cached) if isinstance(cached, str) else None


def source_config(source: str) -> dict[str, Any] | None:
    """The checkpoint's config.json, or None where it cannot be read."""
    file = source_file(source, "config.json")
    try:
        config = json.loads(file.read_text()) if file else None
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def has_tokenizer(source: str) -> bool:
    return any(source_file(source, name) for name in TOKENIZER_FILES)


def has_image_processor(source: str) -> bool:
    return any(source_file(source, name) for name in IMAGE_PROCESSOR_FILES)


def require_tokenizer(key: str, source: str | None) -> None:
    """ValueError naming the fix unless the model's source has a tokenizer for `key`'s texts."""
    if source is None:
        raise ValueError(
            f"'{key}' needs the model's tokenizer, and a preset's random weights have none: "
            "give 'weights = FOLDER' with a tokenizer, or run the checkpoint as hf:FOLDER"
        )
    if not has_tokenizer(source):
        raise ValueError(
            f"'{key}' needs a tokenizer, and {source} has none ({', '.join(TOKENIZER_FILES)}): "
            "save it beside the model with tokenizer.save_pretrained(FOLDER)"
        )


def model_source(model: Any) -> str | None:
    """Where a model built by from_pretrained came from (None for random weights)."""
    source = getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", "")
    return str(source) if source else None


@functools.lru_cache(maxsize=8)
def load_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source, local_files_only=True)


@functools.lru_cache(maxsize=8)
def load_image_processor(source: str) -> Any:
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(source, local_files_only=True)


def id2label(config: Mapping[str, Any] | None) -> dict[int, str]:
    """A config's labels by id ({} when it has none)."""
    labels = (config or {}).get("id2label") or {}
    return {int(i): str(name) for i, name in labels.items()}
