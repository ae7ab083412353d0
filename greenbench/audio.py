"""Audio folders for speech recognition (`audio = FOLDER`): .wav clips and their transcripts.

- The folder holds .wav files directly (PCM, 8/16/24/32-bit integer samples, any sample rate,
  any number of channels), taken in sorted order. They are read with the stdlib `wave` module:
  no audio library is needed; other formats (float WAV, mp3, flac) must be converted first.
- A clip's reference transcript is the same-name .txt beside it (`a.wav` -> `a.txt`, UTF-8, its
  whole text). Every clip has one (WER is scored) or none does (inputs only).
- Samples are averaged to mono and resampled to SAMPLE_RATE by linear interpolation between
  neighbouring samples (numpy.interp). It has no anti-aliasing filter: a clip recorded above
  16 kHz keeps a little folded-back energy from above 8 kHz; give 16 kHz files for exact
  features. Clips longer than MAX_SECONDS are cut to it (Whisper's window); shorter ones are
  padded with silence by the feature extractor.

Every problem is a ValueError naming the file and the fix, raised while the suite is checked,
before anything runs.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_RATE = 16_000  # Hz: what Whisper's feature extractor takes
MAX_SECONDS = 30  # Whisper's input window
WAV_SUFFIX = ".wav"
TRANSCRIPT_SUFFIX = ".txt"
CONVERT_HINT = "convert it to 16-bit PCM, e.g. `ffmpeg -i IN -ac 1 -ar 16000 OUT.wav`"


@dataclass(frozen=True)
class AudioSet:
    """The clips of a folder in sorted order, with their reference transcripts when it has them."""

    folder: Path
    paths: tuple[Path, ...]
    transcripts: tuple[str, ...] | None = None  # per clip, its .txt's text


def list_audio(folder: Path) -> AudioSet:
    """The .wav clips of `folder` and their transcripts; ValueError naming the fix."""
    if not folder.is_dir():
        what = "no such folder" if not folder.exists() else "not a folder"
        raise ValueError(f"{folder}: {what}; give a folder of .wav files")
    paths = tuple(
        sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == WAV_SUFFIX)
    )
    if not paths:
        raise ValueError(f"{folder}: no .wav files in it; give a folder of .wav clips")
    texts = [p.with_suffix(TRANSCRIPT_SUFFIX) for p in paths]
    present = [t for t in texts if t.is_file()]
    if not present:
        return AudioSet(folder, paths)
    if len(present) < len(texts):
        missing = next(t for t in texts if not t.is_file())
        raise ValueError(
            f"{missing}: missing; {len(present)} of the {len(paths)} clips have a transcript: "
            f"write one .txt beside every .wav (for WER), or remove them all (inputs only)"
        )
    return AudioSet(folder, paths, tuple(read_transcript(t) for t in texts))


def read_transcript(path: Path) -> str:
    """A reference transcript: the file's text, stripped; ValueError unless non-empty UTF-8."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason}); save it as UTF-8") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror})") from None
    if not text:
        raise ValueError(f"{path}: empty; write the clip's reference transcript in it")
    return text


def check_wav(path: Path) -> None:
    """ValueError naming the file and the fix unless it is a PCM .wav with samples in it."""
    _open(path, read=False)


def read_wav(path: Path) -> Any:
    """A clip as float32 samples in [-1, 1]: mono, SAMPLE_RATE, at most MAX_SECONDS."""
    import numpy as np

    samples, rate = _open(path, read=True)
    return resample(samples, rate)[: SAMPLE_RATE * MAX_SECONDS].astype(np.float32)


def seconds(samples: Any) -> float:
    """How long a clip read by read_wav lasts."""
    return len(samples) / SAMPLE_RATE


def resample(samples: Any, rate: int) -> Any:
    """Mono samples at `rate` Hz, linearly interpolated to SAMPLE_RATE (see the module doc)."""
    import numpy as np

    if rate == SAMPLE_RATE:
        return samples
    count = max(1, round(len(samples) * SAMPLE_RATE / rate))
    times = np.arange(count) * (rate / SAMPLE_RATE)  # each output sample, in input samples
    return np.interp(times, np.arange(len(samples)), samples)


def _open(path: Path, read: bool) -> tuple[Any, int]:
    try:
        with wave.open(str(path), "rb") as clip:
            channels, width = clip.getnchannels(), clip.getsampwidth()
            rate, frames = clip.getframerate(), clip.getnframes()
            data = clip.readframes(frames) if read else b""
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{path}: not a PCM .wav file ({e}); {CONVERT_HINT}") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror})") from None
    if width not in (1, 2, 3, 4):
        raise ValueError(f"{path}: {8 * width}-bit samples are not supported; {CONVERT_HINT}")
    if frames == 0 or rate <= 0:
        raise ValueError(f"{path}: no audio samples in it; record the clip or remove the file")
    if not read:
        return None, rate
    return _to_mono(data, channels, width), rate


def _to_mono(data: bytes, channels: int, width: int) -> Any:
    """Little-endian PCM frames as float64 in [-1, 1], channels averaged."""
    import numpy as np

    raw = np.frombuffer(data, dtype=np.uint8)
    raw = raw[: len(raw) // (width * channels) * width * channels].reshape(-1, width)
    if width == 1:  # 8-bit WAV is unsigned
        values = raw[:, 0].astype(np.float64) - 128
    else:  # sign-extend from the top byte
        padded = np.zeros((len(raw), 4), dtype=np.uint8)
        padded[:, 4 - width :] = raw
        values = (padded.view("<i4")[:, 0] >> (8 * (4 - width))).astype(np.float64)
    scale = float(1 << (8 * width - 1))
    return (values / scale).reshape(-1, channels).mean(axis=1)
