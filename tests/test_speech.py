"""Speech recognition (Whisper): the kinds, the presets, `hf:` checkpoints and a real run."""

import json

import pytest
from conftest import ONE_WINDOW_PROTOCOL

import greenbench
from greenbench.backends import skip_reason
from greenbench.checkpoints import CheckpointError
from greenbench.cli import main
from greenbench.fidelity import score
from greenbench.models import build_config, build_model, parameter_count
from greenbench.tasks import fidelity_logits, get_kind, make_phases
from greenbench.tasks.speech_recognition import log_mel, window_frames
from greenbench.variants import get_variant
from greenbench.workloads import get_preset


@pytest.fixture(scope="module")
def model():
    return build_model("tiny-whisper")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny WhisperForConditionalGeneration written by save_pretrained, seeded weights."""
    import torch
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("checkpoints") / "whisper"
    WhisperForConditionalGeneration(build_config("tiny-whisper")).save_pretrained(folder)
    return folder


def test_speech_recognition_measures_encode_per_audio_second_and_decode_per_token(model):
    kind = get_kind("speech-recognition")
    assert dict(kind.phases) == {"encode": "audio-second", "decode": "token"}
    assert kind.task == "inference" and kind.linear_quantization and kind.export_graphs is None
    params = get_preset("whisper-tiny-test").resolve_params({"batch": 2, "audio_seconds": 10})
    encode, decode = make_phases(kind, model, params, "cpu")
    assert (encode.name, encode.unit, encode.units_per_call) == ("encode", "audio-second", 20)
    assert (decode.name, decode.unit, decode.units_per_call) == ("decode", "token", 2 * 8)
    # the encoder always takes the whole 30 s window: 2 x max_source_positions frames, halved
    assert tuple(encode.step().shape) == (2, model.config.max_source_positions, 32)


class CacheLengths:
    """The model, recording the decoder cache's length at each call given one."""

    def __init__(self, model):
        self.model, self.config, self.lengths = model, model.config, []

    def get_encoder(self):
        return self.model.get_encoder()

    def parameters(self):
        return self.model.parameters()

    def __call__(self, **inputs):
        if inputs.get("cache") is not None:
            self.lengths.append(inputs["cache"].get_seq_length())
        return self.model(**inputs)


def test_every_decode_call_greedy_decodes_the_same_tokens_as_without_a_cache(model):
    import torch

    params = get_preset("whisper-tiny-test").resolve_params({"new_tokens": 5})
    recorded = CacheLengths(model)
    _, decode = make_phases("speech-recognition", recorded, params, "cpu")
    features = log_mel(model, params, "cpu", seed=0)  # the phases' own clips
    tokens = torch.full((1, 1), model.config.decoder_start_token_id)
    with torch.inference_mode():
        for _ in range(1 + 5):  # the start token's step, then the N measured ones
            logits = model(input_features=features, decoder_input_ids=tokens).logits
            tokens = torch.cat([tokens, logits[:, -1:].argmax(-1)], dim=1)
    decode.reset()
    assert decode.step().equal(tokens[:, -1:])
    assert decode.step().equal(tokens[:, -1:])
    # each call starts from the start token's cache: cropped back after the one before
    assert recorded.lengths == [1, 2, 3, 4, 5] * 2


def test_the_log_mel_input_pads_the_clip_to_the_window_at_its_floor(model):
    frames = window_frames(model.config)
    short = log_mel(model, {"batch": 2, "audio_seconds": 15}, "cpu", seed=0)
    assert tuple(short.shape) == (2, model.config.num_mel_bins, frames)
    clip, padding = short[..., : frames // 2], short[..., frames // 2 :]
    for i in range(2):
        assert (padding[i] == clip[i].min()).all()
        assert clip[i].std() > 0
    full = log_mel(model, {"batch": 2, "audio_seconds": 30}, "cpu", seed=0)
    assert full[..., -1].std() > 0  # nothing padded


@pytest.mark.parametrize("value", [0, 31, 2.5, True, "30"])
def test_audio_seconds_outside_whispers_window_is_refused_naming_the_range(value):
    with pytest.raises(ValueError, match="'audio_seconds' must be a whole number from 1 to 30"):
        get_preset("whisper-tiny-test").resolve_params({"audio_seconds": value})


def test_new_tokens_past_the_decoders_positions_is_refused():
    preset = get_preset("whisper-tiny-test")  # 64 decoder positions, one for the start token
    assert preset.resolve_params({"new_tokens": 63})["new_tokens"] == 63
    with pytest.raises(
        ValueError, match="new_tokens \\+ 1 .* = 65 is more than whisper-tiny-test's 64"
    ):
        preset.resolve_params({"new_tokens": 64})
    with pytest.raises(ValueError, match="is more than whisper-tiny's 448 positions"):
        get_preset("whisper-tiny").resolve_params({"new_tokens": 448})
    with pytest.raises(ValueError, match="'batch' must be a whole number"):
        preset.resolve_params({"batch": 0})


def test_a_bad_speech_parameter_exits_2_in_one_line_and_writes_nothing(tmp_path, capsys):
    suite = tmp_path / "speech.toml"
    suite.write_text(
        'workloads = ["whisper-tiny-test"]\n[params.whisper-tiny-test]\naudio_seconds = 45\n'
    )
    out = tmp_path / "results"
    assert main(["run", "--suite", str(suite), "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("greenbench: error: ") and "audio_seconds" in line and "30" in line
    assert not out.exists()


def test_the_presets_positions_are_their_configs_and_whisper_tiny_has_its_published_size():
    for name, architecture in (
        ("whisper-tiny", "whisper-tiny"),
        ("whisper-tiny-test", "tiny-whisper"),
    ):
        preset = get_preset(name)
        assert preset.positions == build_config(architecture).max_target_positions, name
        assert get_preset(f"{name}-train").kind.name == "speech-training"
    config = build_config("whisper-tiny")
    assert (config.d_model, config.encoder_layers, config.decoder_layers) == (384, 4, 4)
    assert window_frames(config) == 3000 and config.num_mel_bins == 80
    # openai/whisper-tiny's safetensors hold 37,760,640 parameters (its card says 39 M)
    assert parameter_count("whisper-tiny") == 37_760_640


def test_fidelity_compares_the_decoders_logits_fp32_against_itself_exactly(model):
    params = get_preset("whisper-tiny-test").resolve_params({"batch": 2, "new_tokens": 4})
    logits = fidelity_logits("speech-recognition", model, params, "cpu")
    assert tuple(logits.shape) == (2, 1 + 4, model.config.vocab_size)
    same = score(logits, fidelity_logits("speech-recognition", model, params, "cpu"))
    assert (same.top1_agreement, same.kl_divergence, same.predictions) == (1.0, 0.0, 10)


def test_quantization_variants_take_whisper_and_graph_runtimes_skip_it_with_a_reason():
    kind = get_kind("speech-recognition")
    assert skip_reason(kind, get_variant("int8-dynamic"), "cpu") is None
    assert skip_reason(kind, get_variant("bf16"), "cpu") is None
    reason = skip_reason(kind, get_variant("fp32"), "onnxruntime:CPU")
    assert reason and "no ONNX graphs" in reason and "speech-recognition" in reason
    training = get_kind("speech-training")
    assert "inference variant" in skip_reason(training, get_variant("int8-dynamic"), "cpu")


def test_a_speech_training_step_scores_the_labels_and_changes_the_weights(model):
    import torch

    trained = build_model("tiny-whisper")
    params = get_preset("whisper-tiny-test-train").resolve_params({})
    (train,) = make_phases("speech-training", trained, params, "cpu")
    assert (train.name, train.unit, train.units_per_call) == ("train", "audio-second", 30)
    before = trained.model.decoder.layers[0].fc1.weight.detach().clone()
    loss = train.step()
    assert torch.isfinite(loss) and loss > 0
    assert not before.equal(trained.model.decoder.layers[0].fc1.weight)


def test_a_whisper_checkpoint_is_a_speech_workload_with_its_own_weights(checkpoint):
    preset = get_preset(f"hf:{checkpoint}")
    assert preset.kind.name == "speech-recognition"
    assert preset.architecture == "WhisperForConditionalGeneration"
    assert preset.defaults == {"batch": 1, "audio_seconds": 30, "new_tokens": 32}
    with pytest.raises(ValueError, match="max_target_positions in its config.json"):
        preset.resolve_params({"new_tokens": 64})
    model = preset.build_model(preset.resolve_params({}))
    saved = build_model("tiny-whisper", weights=str(checkpoint))
    weight = "model.decoder.layers.0.fc1.weight"
    assert model.state_dict()[weight].equal(saved.state_dict()[weight])
    assert preset.parameter_count() == sum(p.numel() for p in model.parameters())
    params = preset.resolve_params({"new_tokens": 3})
    assert [p.name for p in make_phases(preset.kind, model, params, "cpu")] == ["encode", "decode"]
    assert get_preset(f"hf:{checkpoint}-train").kind.name == "speech-training"


def test_a_speech_model_that_is_not_whisper_is_refused_naming_the_supported_tasks(tmp_path):
    folder = tmp_path / "s2t"
    folder.mkdir()
    config = {"architectures": ["Speech2TextForConditionalGeneration"], "model_type": "s2t"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="Speech2Text.*speech recognition \\(Whisper"):
        get_preset(f"hf:{folder}")


TINY = (
    """
name = "speech"
workloads = ["whisper-tiny-test"]
variants = ["fp32", "int8-dynamic"]
"""
    + ONE_WINDOW_PROTOCOL
    + """[params.whisper-tiny-test]
new_tokens = 4
"""
)


@pytest.mark.slow
def test_whisper_runs_end_to_end_with_energy_and_fidelity_per_audio_second(tmp_path):
    suite = tmp_path / "speech.toml"
    suite.write_text(TINY)
    result = greenbench.run(str(suite), out=tmp_path / "results")
    frame = greenbench.load_results(tmp_path / "results")
    assert result.ok and set(frame["status"]) == {"ok"}
    assert len(frame) == 2 * 2  # variants x phases, one repetition
    assert (frame["energy_j"] > 0).all()
    units = dict(zip(frame["phase"], frame["unit"], strict=False))
    assert units == {"encode": "audio-second", "decode": "token"}
    encode = frame[frame["phase"] == "encode"]
    assert (encode["unit_count"] % 30 == 0).all()  # whole clips of 30 s
    int8 = frame[frame["variant"] == "int8-dynamic"]
    assert (int8["quantized_share"] > 0).all()
    assert int8["fidelity_top1"].between(0, 1).all() and (int8["fidelity_kl"] >= 0).all()
    assert frame[frame["variant"] == "fp32"]["fidelity_top1"].isna().all()
