"""`hf:` workloads: tiny real checkpoints written by save_pretrained into a temporary folder."""

import hashlib
import json

import pytest
from conftest import ONE_WINDOW_PROTOCOL

import greenbench
from greenbench.cli import main
from greenbench.errors import SuiteError
from greenbench.suite import parse_suite
from greenbench.variants import get_variant
from greenbench.workloads import get_preset


def _save(model, path):
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny GPT-2 and Qwen2 causal LMs and a ViT image classifier, with seeded random weights."""
    import torch
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        Qwen2Config,
        Qwen2ForCausalLM,
        ResNetConfig,
        ResNetForImageClassification,
        ViTConfig,
        ViTForImageClassification,
    )

    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    gpt2 = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=128, n_positions=64)
    qwen2 = Qwen2Config(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
    )  # fmt: skip
    vit = ViTConfig(
        image_size=32, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=10,
    )  # fmt: skip
    resnet = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=10)
    return {
        "gpt2": _save(GPT2LMHeadModel(gpt2), root / "gpt2"),
        "qwen2": _save(Qwen2ForCausalLM(qwen2), root / "qwen2"),
        "vit": _save(ViTForImageClassification(vit), root / "vit"),
        "resnet": _save(ResNetForImageClassification(resnet), root / "resnet"),
    }


def _config_hash(folder):
    return hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()[:16]


def test_a_causal_lm_checkpoint_is_an_lm_workload_sized_from_its_config(checkpoints):
    preset = get_preset(f"hf:{checkpoints['gpt2']}")
    assert preset.kind.name == "lm-inference" and preset.architecture == "GPT2LMHeadModel"
    assert preset.defaults["prompt_tokens"] == 32 and preset.defaults["new_tokens"] == 16
    columns = preset.checkpoint_columns()
    assert columns == {
        "checkpoint": str(checkpoints["gpt2"]),
        "config_hash": _config_hash(checkpoints["gpt2"]),
        "checkpoint_dtype": "float32",
    }
    train = get_preset(f"hf:{checkpoints['qwen2']}-train")
    assert train.kind.name == "lm-training" and train.architecture == "Qwen2ForCausalLM"
    assert train.defaults["seq_len"] == 64


def test_an_image_classifier_checkpoint_is_a_vision_workload(checkpoints):
    preset = get_preset(f"hf:{checkpoints['vit']}")
    assert preset.kind.name == "vision-inference" and preset.defaults["image_size"] == 32
    assert get_preset(f"hf:{checkpoints['vit']}-train").kind.name == "vision-training"
    resnet = get_preset(f"hf:{checkpoints['resnet']}")
    assert resnet.architecture == "ResNetForImageClassification"
    assert resnet.defaults["image_size"] == 224  # ResNet's config has no image size


def test_linear_only_quantization_takes_a_vision_transformer_but_not_a_cnn(checkpoints):
    int8 = get_variant("int8-dynamic")
    assert int8.skip_reason(get_preset(f"hf:{checkpoints['vit']}").kind) is None
    assert "convolutional" in int8.skip_reason(get_preset(f"hf:{checkpoints['resnet']}").kind)


def test_the_model_has_the_checkpoints_own_weights_and_parameter_count(checkpoints):
    import torch
    from transformers import GPT2LMHeadModel

    saved = GPT2LMHeadModel.from_pretrained(checkpoints["gpt2"])
    preset = get_preset(f"hf:{checkpoints['gpt2']}")
    model = preset.build_model(preset.defaults)
    for name, tensor in saved.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert preset.parameter_count() == sum(p.numel() for p in saved.parameters())


def test_quantized_share_counts_gpt2_conv1d_layers_that_int8_dynamic_leaves(checkpoints):
    from greenbench.variants import linear_weight_sizes, quantized_share

    int8 = get_variant("int8-dynamic")
    shares = {}
    for name in ("gpt2", "qwen2"):
        preset = get_preset(f"hf:{checkpoints[name]}")
        model = preset.build_model(preset.defaults)
        sizes = linear_weight_sizes(model)
        shares[name] = quantized_share(int8.prepare_for_inference(model, "cpu"), sizes)
    assert shares["qwen2"] == 1.0
    assert 0 < shares["gpt2"] < 0.5  # only the LM head: the blocks are Conv1D


def test_a_cached_hub_id_is_found_without_a_download(checkpoints, tmp_path, monkeypatch):
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--acme--tiny-gpt2"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for file in checkpoints["gpt2"].iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    preset = get_preset("hf:acme/tiny-gpt2")
    assert preset.checkpoint_columns()["checkpoint"] == "acme/tiny-gpt2"
    assert preset.kind.name == "lm-inference"
    assert preset.parameter_count() == sum(
        p.numel() for p in preset.build_model(preset.defaults).parameters()
    )


def test_a_suite_takes_hf_workloads_and_their_params(checkpoints):
    name = f"hf:{checkpoints['gpt2']}"
    suite = parse_suite({"workloads": [name], "params": {name: {"new_tokens": 2}}}, "s.toml")
    (cell,) = suite.cells()
    assert cell.params["new_tokens"] == 2 and cell.phases == ("prefill", "decode")
    with pytest.raises(SuiteError, match="'weights' does not apply"):
        parse_suite({"workloads": [name], "params": {name: {"weights": "x"}}}, "s.toml")
    long = {"prompt_tokens": 60, "new_tokens": 8}
    with pytest.raises(SuiteError, match="prompt_tokens \\+ new_tokens = 68 is more than the"):
        parse_suite({"workloads": [name], "params": {name: long}}, "s.toml")


def test_a_task_confirms_the_config_and_one_that_does_not_match_is_one_line(
    checkpoints, tmp_path, capsys
):
    name = f"hf:{checkpoints['vit']}"
    confirmed = {"workloads": [name], "params": {name: {"task": "image-classification"}}}
    (cell,) = parse_suite(confirmed, "s.toml").cells()
    assert cell.params["task"] == "image-classification"
    suite = tmp_path / "s.toml"
    suite.write_text(f'workloads = ["{name}"]\n[params."{name}"]\ntask = "text-generation"\n')
    line = _bad(["--suite", str(suite)], tmp_path, capsys)
    assert str(checkpoints["vit"] / "config.json") in line
    assert "ViTForImageClassification, a model for image-classification" in line
    assert 'give task = "image-classification"' in line
    suite.write_text(f'workloads = ["{name}"]\n[params."{name}"]\ntask = "painting"\n')
    assert "'task' must be one of text-generation, " in _bad(
        ["--suite", str(suite)], tmp_path, capsys
    )
    with pytest.raises(SuiteError, match="unknown parameter 'task' for slm-tiny"):
        parse_suite({"workloads": ["slm-tiny"], "params": {"slm-tiny": {"task": "x"}}}, "s.toml")


def _bad(args, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", *args, "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("greenbench: error: ")
    assert not out.exists()
    return line


def test_a_folder_without_config_json_exits_2_naming_the_file(tmp_path, capsys):
    folder = tmp_path / "empty"
    folder.mkdir()
    line = _bad(["--workload", f"hf:{folder}"], tmp_path, capsys)
    assert str(folder / "config.json") in line and "save_pretrained" in line
    line = _bad(["--workload", f"hf:{tmp_path / 'missing'}"], tmp_path, capsys)
    assert "no such folder" in line


def test_an_unsupported_architecture_exits_2_naming_the_supported_tasks(tmp_path, capsys):
    folder = tmp_path / "gpt2"
    folder.mkdir()
    # a bare decoder: no head to generate with, and no text encoder to embed with
    config = {"architectures": ["GPT2Model"], "model_type": "gpt2"}
    (folder / "config.json").write_text(json.dumps(config))
    line = _bad(["--workload", f"hf:{folder}"], tmp_path, capsys)
    assert "GPT2Model" in line and "text generation" in line and "image classification" in line
    assert "text classification" in line and "sentence embeddings" in line


def test_a_hub_id_not_in_the_cache_exits_2_without_a_download(tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    line = _bad(["--workload", "hf:acme/not-here"], tmp_path, capsys)
    assert "not-here" in line and "never downloads" in line


FAST = (
    """
name = "hf"
workloads = ["hf:{gpt2}", "hf:{qwen2}", "hf:{vit}", "hf:{gpt2}-train"]
variants = ["fp32", "int8-dynamic"]
"""
    + ONE_WINDOW_PROTOCOL
    + """[params."hf:{gpt2}"]
prompt_tokens = 8
new_tokens = 4
[params."hf:{qwen2}"]
prompt_tokens = 8
new_tokens = 4
phases = ["prefill"]
[params."hf:{vit}"]
batch = 2
[params."hf:{gpt2}-train"]
seq_len = 8
"""
)


@pytest.mark.slow
def test_checkpoints_run_end_to_end_with_energy_fidelity_and_checkpoint_columns(
    checkpoints, tmp_path
):
    suite = tmp_path / "hf.toml"
    suite.write_text(FAST.format(gpt2=checkpoints["gpt2"], qwen2=checkpoints["qwen2"],
                                 vit=checkpoints["vit"]))  # fmt: skip
    result = greenbench.run(str(suite), out=tmp_path / "results")
    frame = greenbench.load_results(tmp_path / "results")
    ok = frame[frame["status"] == "ok"]
    assert list(frame[frame["status"] != "ok"]["cell_id"]) == [
        f"hf:{checkpoints['gpt2']}-train/int8-dynamic/cpu"  # an inference variant: skipped
    ]
    assert result.ok
    assert (ok["energy_j"] > 0).all()
    for name in ("gpt2", "qwen2", "vit"):
        folder = checkpoints[name]
        rows = ok[ok["checkpoint"] == str(folder)]
        assert set(rows["config_hash"]) == {_config_hash(folder)}, name
        assert set(rows["checkpoint_dtype"]) == {"float32"}, name
        assert rows["parameters"].nunique() == 1 and rows["parameters"].iloc[0] > 0, name
    assert set(ok["architecture"]) == {
        "GPT2LMHeadModel",
        "Qwen2ForCausalLM",
        "ViTForImageClassification",
    }
    int8 = ok[ok["variant"] == "int8-dynamic"]
    assert len(int8) == 4  # gpt2 prefill + decode, qwen2 prefill, vit forward
    assert (int8["quantized_share"] > 0).all()
    assert int8["fidelity_top1"].between(0, 1).all() and (int8["fidelity_kl"] >= 0).all()
    assert ok[ok["variant"] == "fp32"]["fidelity_top1"].isna().all()
    train = ok[ok["phase"] == "train"]
    assert list(train["unit"]) == ["token"] and list(train["task"]) == ["training"]
    assert set(ok[ok["architecture"] == "ViTForImageClassification"]["unit"]) == {"image"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qwen2", "vit"])
def test_checkpoints_export_to_onnx_runtime_and_agree_with_torch(checkpoints, name):
    pytest.importorskip("onnxruntime")
    import numpy as np

    from greenbench.backends import onnx_runtime
    from greenbench.tasks import make_phases

    preset = get_preset(f"hf:{checkpoints[name]}")
    small = {"prompt_tokens": 6, "new_tokens": 3} if name == "qwen2" else {"batch": 2}
    params = preset.resolve_params(small)
    model = preset.build_model(params)
    session = onnx_runtime.ort_session("onnxruntime:CPU", "fp32")
    phases, logits = onnx_runtime.prepare_graphs(preset.kind, model, params, session)
    torch_phases = make_phases(preset.kind, model, params, "cpu")
    assert [p.name for p in phases] == [p.name for p in torch_phases]
    assert np.isfinite(logits.numpy()).all()
    last, torch_last = phases[-1], torch_phases[-1]  # decode, or the vision forward
    last.reset()
    torch_last.reset()
    got, expected = last.step(), torch_last.step()
    if name == "qwen2":
        assert np.array_equal(got, expected.numpy())  # the same greedy tokens
    else:
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-5)
