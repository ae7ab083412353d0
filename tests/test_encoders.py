"""Text encoders: text classification, sentence embeddings and classifier fine-tuning, on tiny
configs built here; the real-size presets only on torch's meta device."""

import json

import pandas as pd
import pytest
import torch
from conftest import ONE_WINDOW_PROTOCOL

import greenbench
from greenbench.checkpoints import CheckpointError
from greenbench.fidelity import score, score_embeddings
from greenbench.models import build_model, parameter_count
from greenbench.stats import summarize_frame
from greenbench.tasks import fidelity_logits, get_kind, make_phases
from greenbench.tasks.sentence_embedding import mean_pool
from greenbench.variants import get_variant
from greenbench.workloads import PRESETS, get_preset


def test_the_presets_follow_the_published_architectures():
    # DistilBERT-base-uncased with a 2-label head: 66,362,880 + pre-classifier and classifier
    assert parameter_count("distilbert-base") == 66_955_010
    # all-MiniLM-L6-v2 (BertModel with its pooler): 22.7 M, as its model card states
    assert parameter_count("minilm-l6") == 22_713_216
    for name, kind in [
        ("distilbert", "text-classification"),
        ("distilbert-train", "text-classification-training"),
        ("minilm-l6", "sentence-embedding"),
    ]:
        assert PRESETS[name].kind.name == kind
        assert dict(PRESETS[name].defaults) == {"batch": 8, "seq_len": 128}
    assert "minilm-l6-train" not in PRESETS  # embedders are trained on pairs, not labels


def test_classify_embed_and_train_count_sequences_and_state_their_tokens():
    cases = [
        ("distilbert-tiny", "classify", (3, 2)),
        ("bert-tiny", "embed", (3, 32)),
        ("distilbert-tiny-train", "train", ()),
    ]
    for name, phase_name, shape in cases:
        preset = PRESETS[name]
        params = preset.resolve_params({"batch": 3, "seq_len": 12})
        (phase,) = make_phases(preset.kind, build_model(preset.architecture), params, "cpu")
        assert (phase.name, phase.unit, phase.units_per_call) == (phase_name, "sequence", 3)
        assert phase.step().shape == shape, name
        assert preset.kind.tokens_per_unit(params) == 12  # J per token = J per sequence / 12
    assert get_kind("lm-inference").tokens_per_unit({"prompt_tokens": 8}) is None


def test_encoder_kinds_quantize_their_linear_layers():
    for kind in ("text-classification", "sentence-embedding"):
        assert get_variant("int8-dynamic").skip_reason(get_kind(kind)) is None
    assert get_variant("int8-dynamic").skip_reason(get_kind("vision-inference")) is not None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"seq_len": 129}, "seq_len = 129 is more than bert-tiny's 128 positions"),
        ({"seq_len": 0}, "'seq_len' must be a whole number >= 1"),
        ({"batch": "8"}, "'batch' must be a whole number >= 1"),
        ({"image_size": 32}, "unknown parameter 'image_size' for bert-tiny"),
    ],
)
def test_bad_params_name_the_fix(overrides, message):
    with pytest.raises(ValueError, match=message):
        PRESETS["bert-tiny"].resolve_params(overrides)


def test_a_too_long_sequence_for_a_real_size_preset_is_an_error_before_the_run():
    assert PRESETS["minilm-l6"].resolve_params({"seq_len": 512})["seq_len"] == 512
    with pytest.raises(ValueError, match="more than distilbert's 512 positions"):
        PRESETS["distilbert"].resolve_params({"seq_len": 513})


def test_mean_pooling_skips_the_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_embedding_fidelity_is_a_cosine_exact_for_fp32_and_close_for_int8():
    preset = PRESETS["bert-tiny"]
    params = preset.resolve_params({"batch": 16})  # the fidelity inputs in two calls
    model = build_model(preset.architecture)
    reference = fidelity_logits(preset.kind, model, params, "cpu")
    assert reference.shape == (32, 32)  # 32 fixed sequences, hidden size 32
    same = preset.kind.fidelity_score(reference, fidelity_logits(preset.kind, model, params, "cpu"))
    assert same.cosine == pytest.approx(1.0, abs=1e-12) and same.predictions == 32
    assert same.top1_agreement is None and same.kl_divergence is None
    quantized = get_variant("int8-dynamic").prepare_for_inference(model, "cpu")
    close = preset.kind.fidelity_score(
        reference, fidelity_logits(preset.kind, quantized, params, "cpu")
    )
    assert 0.9 < close.cosine < 1.0
    assert close.as_record()["fidelity_cosine"] == close.cosine


def test_embedding_fidelity_falls_with_the_angle_not_the_length():
    reference = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert score_embeddings(reference, 3 * reference).cosine == pytest.approx(1.0)
    turned = torch.tensor([[0.0, 1.0], [0.0, 2.0]])  # the first one at right angles
    assert score_embeddings(reference, turned).cosine == pytest.approx(0.5)
    with pytest.raises(ValueError, match="embedding shapes differ"):
        score_embeddings(reference, reference[:1])


def test_classifier_fidelity_scores_logits_exact_for_fp32_and_close_for_int8():
    preset = PRESETS["distilbert-tiny"]
    params = preset.resolve_params({"batch": 16})
    model = build_model(preset.architecture)
    reference = fidelity_logits(preset.kind, model, params, "cpu")
    assert reference.shape == (32, 2)
    assert preset.kind.fidelity_score is score
    same = score(reference, fidelity_logits(preset.kind, model, params, "cpu"))
    assert (same.top1_agreement, same.kl_divergence, same.cosine) == (1.0, 0.0, None)
    quantized = get_variant("int8-dynamic").prepare_for_inference(model, "cpu")
    close = score(reference, fidelity_logits(preset.kind, quantized, params, "cpu"))
    assert close.top1_agreement >= 0.8 and close.kl_divergence < 0.05


def test_the_fidelity_inputs_are_padded_so_the_mask_counts():
    preset = PRESETS["bert-tiny"]
    params = preset.resolve_params({"batch": 16})
    model = build_model(preset.architecture)
    embeddings = fidelity_logits(preset.kind, model, params, "cpu")
    ignoring_mask = torch.cat(
        [mean_pool(model(input_ids=i).last_hidden_state, torch.ones_like(i)) for i in _ids(model)]
    )
    assert not torch.allclose(embeddings, ignoring_mask, atol=1e-3)


def _ids(model):
    from greenbench.tasks.text_classification import random_tokens

    ids, _ = random_tokens(model, 32, 16, "cpu", seed=1, padded=True)
    return ids.split(16)


def test_j_per_token_is_j_per_sequence_over_its_tokens():
    base = {
        "status": "ok", "workload": "bert-tiny", "phase": "embed", "variant": "fp32",
        "device": "cpu", "node": "n", "params": "{}", "unit": "sequence", "valid": True,
        "estimated": False, "reliable": True, "method_cpu": "rapl", "method_gpu": "none",
        "method_ram": "none", "unit_count": 10, "duration_s": 1.0, "idle_power_se_w": 0.0,
        "tokens_per_unit": 16,
    }  # fmt: skip
    frame = pd.DataFrame([{**base, "energy_per_unit_j": j} for j in (3.0, 5.0)])
    (row,) = summarize_frame(frame).to_dict("records")
    assert row["j_per_unit"] == 4.0 and row["j_per_token"] == 0.25


def _save(model, path):
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny BertForSequenceClassification, a tiny BertModel, and a bare GPT2Model."""
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertModel,
        GPT2Config,
        GPT2ForSequenceClassification,
    )

    root = tmp_path_factory.mktemp("encoders")
    torch.manual_seed(0)
    bert = BertConfig(
        vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=3,
    )  # fmt: skip
    gpt2 = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=128, n_positions=64)
    return {
        "classifier": _save(BertForSequenceClassification(bert), root / "classifier"),
        "encoder": _save(BertModel(bert), root / "encoder"),
        "gpt2-classifier": _save(GPT2ForSequenceClassification(gpt2), root / "gpt2-classifier"),
    }


def test_a_sequence_classifier_checkpoint_runs_text_classification(checkpoints):
    preset = get_preset(f"hf:{checkpoints['classifier']}")
    assert preset.kind.name == "text-classification"
    assert preset.architecture == "BertForSequenceClassification"
    assert dict(preset.defaults) == {"batch": 8, "seq_len": 64}  # 128, capped by 64 positions
    params = preset.resolve_params({"batch": 2, "seq_len": 8})
    (phase,) = make_phases(preset.kind, preset.build_model(params), params, "cpu")
    assert phase.step().shape == (2, 3)
    with pytest.raises(ValueError, match="more than the checkpoint's 64 positions"):
        preset.resolve_params({"seq_len": 65})
    train = get_preset(f"hf:{checkpoints['classifier']}-train")
    assert train.kind.name == "text-classification-training"


def test_a_bare_encoder_checkpoint_runs_sentence_embeddings(checkpoints):
    preset = get_preset(f"hf:{checkpoints['encoder']}")
    assert (preset.kind.name, preset.architecture) == ("sentence-embedding", "BertModel")
    assert preset.parameter_count() == sum(p.numel() for p in preset.build_model({}).parameters())
    with pytest.raises(CheckpointError, match="inference only; drop '-train'"):
        get_preset(f"hf:{checkpoints['encoder']}-train")


def test_a_bare_bert_config_without_architectures_is_its_encoder(tmp_path):
    folder = tmp_path / "config-only"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert get_preset(f"hf:{folder}").kind.name == "sentence-embedding"


def test_a_bare_encoder_decoder_is_no_text_encoder(tmp_path):
    from transformers import BartConfig

    folder = tmp_path / "bart"
    config = BartConfig(vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1)
    config.architectures = ["BartModel"]
    config.save_pretrained(folder)
    with pytest.raises(CheckpointError, match="describes BartModel, which greenbench cannot run"):
        get_preset(f"hf:{folder}")


def test_a_decoder_classifier_without_a_pad_token_takes_batches(checkpoints):
    preset = get_preset(f"hf:{checkpoints['gpt2-classifier']}")
    assert preset.kind.name == "text-classification"
    params = preset.resolve_params({"batch": 2, "seq_len": 8})
    (phase,) = make_phases(preset.kind, preset.build_model(params), params, "cpu")
    assert phase.step().shape == (2, 2)


FAST = (
    """
name = "encoders"
workloads = ["bert-tiny"]
variants = ["fp32", "int8-dynamic"]
"""
    + ONE_WINDOW_PROTOCOL
)


@pytest.mark.slow
def test_the_tiny_encoder_runs_end_to_end_with_tokens_and_fidelity(tmp_path):
    """One child per cell: the classifier's cells would double the time for little more."""
    suite = tmp_path / "encoders.toml"
    suite.write_text(FAST)
    result = greenbench.run(str(suite), out=tmp_path / "results")
    assert result.ok
    frame = greenbench.load_results(tmp_path / "results")
    assert (frame["status"] == "ok").all() and len(frame) == 2
    assert set(frame["phase"]) == {"embed"} and set(frame["unit"]) == {"sequence"}
    assert set(frame["tokens_per_unit"]) == {16} and (frame["energy_j"] > 0).all()
    (int8,) = frame[frame["variant"] == "int8-dynamic"].to_dict("records")
    assert 0.9 < int8["fidelity_cosine"] <= 1.0 and int8["fidelity_n"] == 32
    assert pd.isna(int8["fidelity_top1"]) and pd.isna(int8["fidelity_kl"])
    assert int8["quantized_share"] > 0
    assert frame[frame["variant"] == "fp32"]["fidelity_cosine"].isna().all()


def _embed_rows(variant, joules, cosine=None):
    return [
        {
            "run_id": "r", "cell_id": f"bert-tiny/{variant}/cpu", "attempt": 1, "suite": "s",
            "workload": "bert-tiny", "task": "inference", "phase": "embed", "params": "{}",
            "variant": variant, "device": "cpu", "repetition": i + 1, "unit": "sequence",
            "tokens_per_unit": 16, "energy_per_unit_j": joules, "throughput": 10.0,
            "power_w": 20.0, "emissions_per_1k_units_g": 0.1, "method_cpu": "rapl",
            "method_gpu": "none", "method_ram": "none", "estimated": False, "reliable": True,
            "valid": True, "fidelity_cosine": cosine, "fidelity_n": 32 if cosine else None,
            "status": "ok",
        }
        for i in range(3)
    ]  # fmt: skip


def test_the_run_table_shows_j_per_token_and_the_cosine_to_fp32():
    from rich.console import Console

    from greenbench.records import COLUMNS
    from greenbench.terminal import results_tables

    rows = _embed_rows("fp32", 1.6) + _embed_rows("int8-dynamic", 0.8, cosine=0.998765)
    (table,) = results_tables(pd.DataFrame(rows).reindex(columns=COLUMNS))
    console = Console(record=True, width=250)
    console.print(table)
    lines = console.export_text().splitlines()
    header = next(line for line in lines if "J/token" in line)
    assert "cos vs fp32" in header and "top-1 vs fp32" not in header
    int8 = next(line for line in lines if "│ int8-dynamic" in line).split("│")
    assert int8[-3].strip() == "0.05" and int8[-2].strip() == "0.99877"  # 0.8 J / 16 tokens
    fp32 = next(line for line in lines if "│ fp32" in line).split("│")
    assert fp32[-3].strip() == "0.1" and fp32[-2].strip() == "-"


@pytest.mark.slow
def test_the_embedder_exports_to_onnx_runtime_and_agrees_with_torch():
    """The classifier's graph is the same export with logits out: one kind is enough here."""
    pytest.importorskip("onnxruntime")
    import numpy as np

    from greenbench.backends import onnx_runtime

    preset = PRESETS["bert-tiny"]
    params = preset.resolve_params({"batch": 16})
    model = build_model(preset.architecture)
    session = onnx_runtime.ort_session("onnxruntime:CPU", "fp32")
    (phase,), embeddings = onnx_runtime.prepare_graphs(preset.kind, model, params, session)
    (torch_phase,) = make_phases(preset.kind, model, params, "cpu")
    assert (phase.name, phase.unit, phase.units_per_call) == ("embed", "sequence", 16)
    np.testing.assert_allclose(phase.step(), torch_phase.step().numpy(), rtol=1e-4, atol=1e-5)
    reference = fidelity_logits(preset.kind, model, params, "cpu")
    assert preset.kind.fidelity_score(reference, embeddings).cosine == pytest.approx(1.0)


def test_compare_shows_j_per_token_and_the_cosine_to_fp32(tmp_path, capsys):
    from greenbench.cli import main
    from greenbench.records import build_record
    from greenbench.store import RunStore

    store = RunStore.create(tmp_path, {"status": "complete"})
    rows = _embed_rows("fp32", 1.6) + _embed_rows("int8-dynamic", 0.8, cosine=0.998765)
    store.append([build_record(r, {"run_id": store.run_id}) for r in rows])
    assert main(["compare", str(store.path), "--include-invalid"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "J/token" in line)
    assert "cos" in header
    int8 = next(line for line in lines if "│ int8-dynamic" in line).split("│")
    assert int8[-3].strip() == "0.05" and int8[-2].strip() == "0.99877"
