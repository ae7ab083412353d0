"""Real audio (`audio = FOLDER`) and WER for speech recognition, on a tiny Whisper checkpoint with
a tiny tokenizer and a few short .wav files written into temporary folders: offline, seconds."""

import math
import wave
from types import SimpleNamespace

import numpy as np
import pytest

import greenbench
from greenbench import audio, quality
from greenbench.backends.cpu import BACKEND as CPU
from greenbench.cell import Cell
from greenbench.cli import main
from greenbench.tasks import speech_recognition as speech
from greenbench.workloads import get_preset

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"]
SPECIAL = ["[UNK]", "<|endoftext|>", "<|startoftranscript|>"]
VOCAB = {token: i for i, token in enumerate([*SPECIAL, *WORDS])}
REFERENCES = {"a": "The cat sat.", "b": "a dog ran", "c": "on the mat"}


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece()  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        eos_token="<|endoftext|>",
        bos_token="<|startoftranscript|>",
        pad_token="<|endoftext|>",
    )


def write_wav(path, samples, rate=16_000, channels=1, width=2):
    """Float samples in [-1, 1] (frames x channels for several) as integer PCM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scale = (1 << (8 * width - 1)) - 1
    ints = np.round(np.asarray(samples, dtype=np.float64) * scale).astype("<i4")
    if width == 1:
        data = (ints + 128).astype(np.uint8).tobytes()
    else:
        data = b"".join(int(v).to_bytes(4, "little", signed=True)[:width] for v in ints.ravel())
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(channels)
        clip.setsampwidth(width)
        clip.setframerate(rate)
        clip.writeframes(data)


def _tone(seconds, rate=16_000, hz=440.0):
    return 0.5 * np.sin(2 * math.pi * hz * np.arange(int(seconds * rate)) / rate)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny Whisper with a tokenizer, one without, and a folder of clips with transcripts."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    root = tmp_path_factory.mktemp("speech")
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=len(VOCAB), num_mel_bins=8, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_source_positions=16, max_target_positions=6,
        decoder_start_token_id=2, eos_token_id=1, pad_token_id=1, bos_token_id=1,
        suppress_tokens=[], begin_suppress_tokens=[],
    )  # fmt: skip
    whisper = WhisperForConditionalGeneration(config)
    with torch.no_grad():  # random weights repeat the start token: make them say words
        whisper.model.decoder.embed_tokens.weight[[0, 2]] = 0
    whisper.save_pretrained(root / "whisper")
    _tokenizer().save_pretrained(root / "whisper")
    WhisperForConditionalGeneration(config).save_pretrained(root / "bare")
    clips = root / "clips"
    write_wav(clips / "a.wav", _tone(0.5))
    write_wav(clips / "b.wav", _tone(1.5, rate=8_000, hz=200), rate=8_000)
    write_wav(clips / "c.wav", _tone(0.75, hz=300))
    for name, text in REFERENCES.items():
        (clips / f"{name}.txt").write_text(text + "\n")
    untranscribed = root / "untranscribed"
    write_wav(untranscribed / "x.wav", _tone(0.25))
    return root


def _speech(world, folder="whisper", **overrides):
    preset = get_preset(f"hf:{world / folder}")
    params = preset.resolve_params({"new_tokens": 2, "batch": 2, **overrides})
    return preset.build_model(params), params


def test_a_wav_is_read_as_mono_16khz_linearly_interpolated(tmp_path):
    ramp = np.linspace(-0.5, 0.5, 80)  # 10 ms at 8 kHz
    stereo = np.stack([ramp, ramp / 2], axis=1)  # the channels are averaged
    write_wav(tmp_path / "r.wav", stereo, rate=8_000, channels=2)
    samples = audio.read_wav(tmp_path / "r.wav")
    assert len(samples) == 160 and audio.seconds(samples) == pytest.approx(0.01)
    mono = np.round(stereo * 32767).astype(int) / 32768
    expected = np.interp(np.arange(160) / 2, np.arange(80), mono.mean(axis=1))
    assert samples == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_every_pcm_sample_width_reads_to_the_same_signal(tmp_path, width):
    tone = _tone(0.01)
    write_wav(tmp_path / "w.wav", tone, width=width)
    step = max(2 / (1 << (8 * width - 1)), 1e-6)  # a quantization step, or float32's precision
    assert audio.read_wav(tmp_path / "w.wav") == pytest.approx(tone, abs=step)


def test_a_clip_longer_than_whispers_window_is_cut_to_30_seconds(tmp_path):
    write_wav(tmp_path / "long.wav", np.zeros(31 * 1000), rate=1000, width=1)
    assert audio.seconds(audio.read_wav(tmp_path / "long.wav")) == 30


def test_transcripts_are_read_beside_the_clips_in_sorted_order(world):
    clips = audio.list_audio(world / "clips")
    assert [p.name for p in clips.paths] == ["a.wav", "b.wav", "c.wav"]
    assert clips.transcripts == tuple(REFERENCES.values())
    assert audio.list_audio(world / "untranscribed").transcripts is None


def _refused(tmp_path, setup, world=None):
    folder = tmp_path / "bad"
    folder.mkdir(exist_ok=True)
    setup(folder)
    with pytest.raises(ValueError) as e:
        get_preset("whisper-tiny-test").resolve_params({"audio": str(folder)})
    return str(e.value)


def test_bad_audio_folders_are_refused_naming_the_file_and_the_fix(tmp_path):
    def not_a_wav(folder):
        (folder / "n.wav").write_bytes(b"RIFF nonsense")

    assert _refused(tmp_path, not_a_wav).startswith(f"{tmp_path / 'bad' / 'n.wav'}: not a PCM")
    assert "ffmpeg" in _refused(tmp_path, not_a_wav)

    def empty_clip(folder):
        (folder / "n.wav").unlink()
        write_wav(folder / "e.wav", [])

    assert f"{tmp_path / 'bad' / 'e.wav'}: no audio samples" in _refused(tmp_path, empty_clip)

    def some_transcripts(folder):
        (folder / "e.wav").unlink()
        write_wav(folder / "x.wav", _tone(0.1))
        write_wav(folder / "y.wav", _tone(0.1))
        (folder / "x.txt").write_text("the cat")

    message = _refused(tmp_path, some_transcripts)
    assert f"{tmp_path / 'bad' / 'y.txt'}: missing; 1 of the 2 clips" in message

    def empty_transcript(folder):
        (folder / "y.txt").write_text("  \n")

    assert f"{tmp_path / 'bad' / 'y.txt'}: empty" in _refused(tmp_path, empty_transcript)
    with pytest.raises(ValueError, match=r"no \.wav files in it"):
        get_preset("whisper-tiny-test").resolve_params({"audio": str(tmp_path)})


def test_transcripts_need_the_checkpoints_tokenizer_but_bare_clips_do_not(world):
    with pytest.raises(ValueError, match=r"tokenizer.save_pretrained"):
        get_preset(f"hf:{world / 'bare'}").resolve_params({"audio": str(world / "clips")})
    with pytest.raises(ValueError, match=r"random weights have none"):
        get_preset("whisper-tiny-test").resolve_params({"audio": str(world / "clips")})
    get_preset("whisper-tiny-test").resolve_params({"audio": str(world / "untranscribed")})


def test_a_bad_wav_stops_the_run_with_one_line_and_writes_nothing(world, tmp_path, capsys):
    bad = tmp_path / "clips"
    bad.mkdir()
    (bad / "broken.wav").write_text("not audio")
    suite = tmp_path / "s.toml"
    workload = f"hf:{world / 'whisper'}"
    suite.write_text(
        f'name = "s"\nworkloads = ["{workload}"]\n[params."{workload}"]\naudio = "{bad}"\n'
    )
    out = tmp_path / "results"
    assert main(["run", "--suite", str(suite), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{bad / 'broken.wav'}: not a PCM .wav file" in err
    assert not out.exists()


def test_the_measured_batch_is_the_first_clips_and_counts_their_real_seconds(world):
    model, params = _speech(world, audio=str(world / "clips"), batch=4)
    phases = speech.make_phases(model, params, "cpu")
    encode = next(p for p in phases if p.name == "encode")
    assert encode.units_per_call == round(0.5 + 1.5 + 0.75 + 0.5)  # a, b, c, then a again
    features, _ = speech.phase_features(model, params, "cpu")
    assert features.shape == (4, 8, 32)  # the 3000 frames resampled to the test window
    assert features[0].tolist() == features[3].tolist()
    _, one = speech.phase_features(model, {**params, "batch": 1}, "cpu")
    assert one == 1  # 0.5 s rounds to at least one second


def test_without_audio_the_features_are_random_and_audio_seconds_counts(world):
    model, params = _speech(world, audio_seconds=7)
    features, units = speech.phase_features(model, params, "cpu")
    assert features.shape == (2, 8, 32) and units == 2 * 7
    assert speech.quality(model, params, "cpu") is None


def test_a_checkpoints_feature_extractor_prepares_the_clips(world, tmp_path):
    import shutil

    from transformers import WhisperFeatureExtractor

    folder = tmp_path / "whisper"
    shutil.copytree(world / "whisper", folder)
    WhisperFeatureExtractor(feature_size=8, padding_value=0.25).save_pretrained(folder)
    import torch

    model, params = _speech(tmp_path, audio=str(world / "clips"))
    clip = world / "clips" / "a.wav"
    features, _ = speech.clip_features(model, [clip], "cpu")

    def extracted(extractor):
        frames = extractor([audio.read_wav(clip)], sampling_rate=16_000, return_tensors="pt")
        return torch.nn.functional.interpolate(frames["input_features"], size=32, mode="linear")

    assert features.shape == (1, 8, 32)  # the 3000 frames resampled to the test window
    saved = WhisperFeatureExtractor.from_pretrained(folder)
    torch.testing.assert_close(features, extracted(saved), atol=1e-6, rtol=0)
    # the saved extractor pads with 0.25, not silence: the offline one would differ at the end
    offline = extracted(WhisperFeatureExtractor(feature_size=8))
    assert features[0, :, -1].tolist() != pytest.approx(offline[0, :, -1].tolist(), abs=1e-3)


def test_a_saved_feature_extractor_must_make_the_models_mel_bins(world, tmp_path):
    import shutil

    from transformers import WhisperFeatureExtractor

    folder = tmp_path / "whisper"
    shutil.copytree(world / "whisper", folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    with pytest.raises(ValueError, match=r"preprocessor_config.json: makes 80 mel bins, the model"):
        get_preset(f"hf:{folder}").resolve_params({"audio": str(world / "clips")})


def _reference_greedy(model, features):
    """Greedy decoding without a cache or batching: the whole prefix each step."""
    import torch

    tokens = [2]
    with torch.no_grad():
        while len(tokens) < model.config.max_target_positions:
            ids = torch.tensor([tokens])
            logits = model(input_features=features[None], decoder_input_ids=ids).logits
            tokens.append(int(logits[0, -1].argmax()))
            if tokens[-1] == 1:
                break
    return tokens[1:]


def test_wer_is_jiwers_on_the_greedy_transcripts_against_the_references(world):
    import jiwer

    model, params = _speech(world, audio=str(world / "clips"))
    result = speech.quality(model, params, "cpu")
    features = speech.fidelity_features(model, params, "cpu")
    tokenizer = _tokenizer()
    hypotheses = [
        tokenizer.decode(_reference_greedy(model, f), skip_special_tokens=True) for f in features
    ]
    references = ["the cat sat", "a dog ran", "on the mat"]  # normalised: no capital, no stop
    assert result.metric == "wer" and result.count == 9
    assert any(hypotheses) and result.value == pytest.approx(jiwer.wer(references, hypotheses))


def test_forced_decoder_ids_fix_their_positions(world):
    model, params = _speech(world, audio=str(world / "clips"))
    model.generation_config.forced_decoder_ids = [[1, 5], [2, None], [3, 7]]
    features = speech.fidelity_features(model, params, "cpu")
    for row in speech.greedy_tokens(model, features):
        assert row[0] == 5 and (len(row) < 3 or row[2] == 7)


class _CountingDecoder:
    """A stand-in Whisper whose row r says word 3 until step r + 1, then end-of-text (1)."""

    class config:
        decoder_start_token_id, eos_token_id, max_target_positions = 2, 1, 8

    generation_config = None

    def get_encoder(self):
        return lambda input_features: input_features

    def __call__(self, encoder_outputs, decoder_input_ids, cache, use_cache):
        import torch

        step = 0 if cache is None else cache + 1
        rows = len(decoder_input_ids)
        logits = torch.zeros(rows, 1, len(VOCAB))
        for r in range(rows):
            logits[r, 0, 1 if step >= r + 1 else 3] = 1.0
        return SimpleNamespace(logits=logits, cache=step)


def test_greedy_decoding_stops_each_clip_at_its_end_of_text():
    import torch

    rows = speech.greedy_tokens(_CountingDecoder(), torch.zeros(3, 8, 32))
    assert rows == [[3, 1], [3, 3, 1], [3, 3, 3, 1]]  # the end kept, nothing after it
    # without an end of text a clip runs to max_target_positions: the start token + 7
    assert speech.greedy_tokens(_CountingDecoder(), torch.zeros(8, 8, 32))[-1] == [3] * 7


def test_word_error_rate_on_known_strings_matches_jiwer():
    import jiwer

    references = ["The cat sat on the mat.", "A dog, it ran!"]
    hypotheses = ["the cat sat on a mat", "a dog it ran away"]
    normalised = [speech.normalise_transcript(t) for t in references]
    assert normalised == ["the cat sat on the mat", "a dog it ran"]
    result = quality.word_error_rate(normalised, hypotheses)
    assert result == quality.Quality("wer", pytest.approx(2 / 10), 10)
    assert result.value == pytest.approx(jiwer.wer(normalised, hypotheses))
    assert speech.normalise_transcript("Don't  STOP") == "don't stop"


def test_the_backend_records_wer_and_fidelity_on_the_real_clips(world):
    workload = f"hf:{world / 'whisper'}"
    params = get_preset(workload).resolve_params(
        {"new_tokens": 2, "batch": 2, "audio": str(world / "clips")}
    )
    events = []
    fp32 = CPU.prepare(Cell(workload, "fp32", "cpu", params), events.append).record_columns()
    bf16 = CPU.prepare(Cell(workload, "bf16", "cpu", params), events.append).record_columns()
    model, _ = _speech(world, audio=str(world / "clips"))
    assert fp32["quality_metric"] == "wer" and fp32["quality_n"] == 9
    assert fp32["quality"] == pytest.approx(speech.quality(model, params, "cpu").value)
    assert bf16["quality_metric"] == "wer" and bf16["quality"] >= 0
    assert bf16["fidelity_n"] == 3 * 3  # three clips, start token and two decoded positions


@pytest.mark.slow
def test_real_audio_runs_end_to_end_with_wer_and_real_seconds_in_the_records(world, tmp_path):
    """One int8 cell (one child process: the CI budget): it scores fp32 and itself inside."""
    suite = tmp_path / "speech.toml"
    workload = f"hf:{world / 'whisper'}"
    suite.write_text(
        f'name = "speech"\nworkloads = ["{workload}"]\nvariants = ["int8-dynamic"]\n'
        "[protocol]\nrepetitions = 1\nmin_window_s = 0.1\nmin_calls = 1\nwarmup_calls = 1\n"
        f'idle_s = 0.1\n[params."{workload}"]\nnew_tokens = 2\nbatch = 2\n'
        f'audio = "{world / "clips"}"\n'
    )
    result = greenbench.run(str(suite), out=tmp_path / "results")
    assert result.ok
    rows = greenbench.load_results(tmp_path / "results").set_index("phase")
    encode = rows.loc["encode"]
    assert encode["status"] == "ok" and encode["energy_j"] > 0
    assert encode["unit_count"] == 2 * encode["calls"]  # round(0.5 + 1.5) s a call, not 2 x 30
    assert encode["quality_metric"] == "wer" and encode["quality_n"] == 9
    assert 0 <= encode["fidelity_top1"] <= 1
