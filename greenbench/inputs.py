"""Real inputs named by workload parameters: text files and image folders, read and checked.

- A text file (`prompts =`, `texts =`) is JSON Lines, one object with a "text" string a line
  (other keys, such as a label, are kept for the kinds that use them), or plain text (any
  other suffix), one text a line. Blank lines are skipped in both.
- An image folder (`images =`) holds images directly (inputs only), or one sub-folder per class
  (`folder/CLASS/*.jpg`), whose names are matched to the model's labels for top-1 accuracy.

Every problem is a ValueError naming the file (and line) and the fix, raised while the suite is
checked, before anything runs. Order is deterministic: file order for texts, sorted paths for
images, so every variant of a cell sees the same inputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
TEXT_KEY = "text"


def input_path(key: str, value: Any) -> Path:
    """A parameter naming a file or folder, as an absolute path (relative to the working
    directory); ValueError unless it is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{key}' must be a path (a string), got {value!r}")
    return Path(value.strip()).expanduser().resolve()


def read_texts(path: Path) -> list[str]:
    """The texts of a .jsonl file (its "text" fields) or of a plain text file (its lines)."""
    return [row[TEXT_KEY] for row in read_rows(path)]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """A text file's rows, each a dict with a "text" string; ValueError naming file:line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder; give a .jsonl or .txt file") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason}); save it as UTF-8") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror})") from None
    jsonl = path.suffix.lower() == ".jsonl"
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        rows.append(_json_row(path, number, line) if jsonl else {TEXT_KEY: line})
    if not rows:
        raise ValueError(f"{path}: no texts in it; give one text a line")
    return rows


def _json_row(path: Path, number: int, line: str) -> dict[str, Any]:
    fix = f'write one JSON object a line, e.g. {{"{TEXT_KEY}": "..."}}'
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{number}: not valid JSON ({e.msg}); {fix}") from None
    if not isinstance(row, dict):
        raise ValueError(f"{path}:{number}: a JSON {type(row).__name__}, not an object; {fix}")
    text = row.get(TEXT_KEY)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f'{path}:{number}: no "{TEXT_KEY}" string in the object; {fix}')
    return row


@dataclass(frozen=True)
class ImageSet:
    """The images of a folder in sorted order, with their class names when laid out by class."""

    folder: Path
    paths: tuple[Path, ...]
    classes: tuple[str, ...] | None = None  # per image, its sub-folder's name

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.classes or ())))


def list_images(folder: Path) -> ImageSet:
    """The images of `folder` (flat, or one sub-folder per class); ValueError naming the fix."""
    if not folder.is_dir():
        what = "no such folder" if not folder.exists() else "not a folder"
        raise ValueError(f"{folder}: {what}; give a folder of images or of class folders")
    entries = sorted(folder.iterdir())
    files = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    subfolders = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
    if files and subfolders:
        raise ValueError(
            f"{folder}: holds both images and folders ({subfolders[0].name}); put every image "
            "in a class folder, or none"
        )
    if files:
        return ImageSet(folder, tuple(files))
    paths: list[Path] = []
    classes: list[str] = []
    for sub in subfolders:
        images = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += images
        classes += [sub.name] * len(images)
    if not paths:
        raise ValueError(
            f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it or in its sub-folders"
        )
    return ImageSet(folder, tuple(paths), tuple(classes))


def label_ids(classes: Sequence[str], id2label: Mapping[Any, Any], folder: Path) -> list[int]:
    """Each class folder's label id: its name as one of the model's labels (id2label in the
    config; case and spaces/underscores do not matter) or as the id itself; ValueError naming
    the folders that match none."""
    if not id2label:
        raise ValueError(
            f"{folder}: laid out by class, but the model has no labels (random weights): give "
            "'weights = FOLDER' of a classifier or run it as hf:FOLDER, or give a flat folder"
        )
    by_name = {_label_key(str(name)): int(i) for i, name in id2label.items()}
    ids = {str(int(i)): int(i) for i in id2label}
    unknown = sorted({c for c in classes if _label_key(c) not in by_name and c not in ids})
    if unknown:
        known = ", ".join(str(id2label[k]) for k in list(id2label)[:5])
        raise ValueError(
            f"{folder}: class folder(s) {', '.join(unknown[:5])} match none of the model's "
            f"{len(id2label)} labels (id2label in its config.json, e.g. {known}); rename the "
            "folders to those labels or to their ids, or give a flat folder (no accuracy)"
        )
    return [by_name.get(_label_key(c), ids.get(c, -1)) for c in classes]


def _label_key(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def cycled(items: Sequence[Any], count: int) -> list[Any]:
    """The first `count` items, starting over from the first when there are fewer."""
    return [items[i % len(items)] for i in range(count)]
