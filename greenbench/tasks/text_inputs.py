"""Real texts for the text encoders (`texts =`): their sequences, and labels for accuracy.

A `texts` file is read as inputs.py reads every text file. The encoder kinds tokenize it with
the checkpoint's tokenizer, padded and cut to `seq_len`: the measured batch is the first `batch`
texts (starting over when the file is shorter), fidelity and accuracy read the first
EVAL_TEXTS. In a .jsonl file a text classifier's rows may carry a "label" (one of the model's
labels, by name or id: id2label in its config.json); then every row must, and accuracy is the
task quality. Without `texts`, the kinds use seeded random tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenbench.inputs import cycled, input_path, read_rows
from greenbench.preprocessors import id2label, load_tokenizer, model_source, require_tokenizer
from greenbench.tasks.base import InputParam, Params

EVAL_TEXTS = 256  # the texts fidelity and accuracy read, from the top of the file
LABEL_KEY = "label"


@dataclass(frozen=True)
class Texts:
    texts: list[str]
    labels: list[Any] | None  # as written in the file (names or ids); None: not labelled


def read_labelled(path: Path) -> Texts:
    """A texts file's texts, and their labels when every row has one; ValueError naming the
    file and the fix when only some do, or a label is neither a string nor a whole number."""
    rows = read_rows(path)
    labelled = [LABEL_KEY in row for row in rows]
    if not any(labelled):
        return Texts([row["text"] for row in rows], None)
    if not all(labelled):
        raise ValueError(
            f'{path}: {sum(labelled)} of {len(rows)} texts have a "{LABEL_KEY}"; give every '
            "text a label (for accuracy) or none"
        )
    for row in rows:
        label = row[LABEL_KEY]
        if isinstance(label, bool) or not isinstance(label, str | int):
            raise ValueError(
                f'{path}: the label {label!r} of "{row["text"][:40]}" is not a label name or id; '
                'write e.g. {"text": "...", "label": "positive"}'
            )
    return Texts([row["text"] for row in rows], [row[LABEL_KEY] for row in rows])


def label_ids(labels: list[Any], config: Mapping[str, Any] | None, path: Path) -> list[int]:
    """Each label as the model's label id (by name, ignoring case, or as the id itself);
    ValueError naming the labels that match none."""
    known = id2label(config)
    if not known:
        raise ValueError(
            f"{path}: its texts are labelled, but the model has no labels (random weights): "
            "give 'weights = FOLDER' of a classifier or run it as hf:FOLDER, or drop the labels"
        )
    by_name = {name.lower(): i for i, name in known.items()}
    ids = []
    for label in labels:
        if isinstance(label, int) and label in known:
            ids.append(label)
        elif str(label).lower() in by_name:
            ids.append(by_name[str(label).lower()])
        else:
            names = ", ".join(list(known.values())[:5])
            raise ValueError(
                f"{path}: label {label!r} matches none of the model's {len(known)} labels "
                f"(id2label in its config.json: {names}); use those names or their ids"
            )
    return ids


def texts_param(labels_allowed: bool) -> InputParam:
    """The `texts` parameter of an encoder kind: read in full when the suite is checked, then
    checked against the model (a tokenizer; labels it knows, where `labels_allowed`)."""

    def check(value: Any) -> str:
        path = input_path("texts", value)
        read_labelled(path)
        return str(path)

    def check_source(value: Any, source: str | None, config: Mapping[str, Any] | None) -> None:
        require_tokenizer("texts", source)
        found = read_labelled(Path(value))
        if found.labels is not None and labels_allowed:
            label_ids(found.labels, config, Path(value))

    return InputParam(check, check_source)


def _tokenizer(model: Any) -> Any:
    source = model_source(model)
    require_tokenizer("texts", source)
    assert source is not None
    tokenizer = load_tokenizer(source)
    if tokenizer.pad_token is None:  # decoder classifiers (GPT-2): pad with their end token
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def encode(model: Any, texts: list[str], seq_len: int, device: str) -> tuple[Any, Any]:
    """(input_ids, attention_mask) of `texts`, padded and cut to `seq_len` tokens."""
    batch = _tokenizer(model)(
        texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="pt"
    )
    return batch["input_ids"].to(device), batch["attention_mask"].to(device)


def measured_texts(model: Any, params: Params, device: str) -> tuple[Any, Any] | None:
    """The measured batch from `texts` (None without it)."""
    file = params.get("texts")
    if not file:
        return None
    texts = read_labelled(Path(file)).texts
    return encode(model, cycled(texts, params["batch"]), params["seq_len"], device)


def eval_texts(model: Any, params: Params, device: str) -> tuple[Any, Any, list[Any] | None]:
    """(input_ids, attention_mask, labels or None) of the first EVAL_TEXTS texts."""
    found = read_labelled(Path(params["texts"]))
    ids, mask = encode(model, found.texts[:EVAL_TEXTS], params["seq_len"], device)
    labels = found.labels[:EVAL_TEXTS] if found.labels is not None else None
    return ids, mask, labels
