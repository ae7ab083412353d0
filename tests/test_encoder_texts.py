"""Real texts for the text encoders (`texts =`): tokenized sequences, labels and accuracy, on a
tiny BERT classifier and embedder with a word-level tokenizer, saved into a temporary folder."""

import json

import pytest

from greenbench.cli import main
from greenbench.quality import top1_accuracy
from greenbench.tasks import text_classification
from greenbench.tasks.text_inputs import read_labelled
from greenbench.workloads import get_preset

WORDS = ["good", "bad", "film", "plot", "very", "dull", "fine", "acting"]
ROWS = [
    {"text": "very good film", "label": "positive"},
    {"text": "bad plot", "label": "negative"},
    {"text": "dull acting very dull", "label": 0},
    {"text": "fine film", "label": "POSITIVE"},
    {"text": "good acting", "label": 1},
]


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    root = tmp_path_factory.mktemp("encoder-texts")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=16, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, pad_token_id=1,
        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(root / "classifier")
    _tokenizer().save_pretrained(root / "classifier")
    BertModel(config).save_pretrained(root / "embedder")
    _tokenizer().save_pretrained(root / "embedder")
    BertForSequenceClassification(config).save_pretrained(root / "untokenized")
    (root / "labelled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (root / "plain.txt").write_text("very good film\nbad plot\n")
    return root


def _cell(world, folder, **params):
    preset = get_preset(f"hf:{world / folder}")
    resolved = preset.resolve_params({"batch": 2, "seq_len": 6, **params})
    return preset, resolved, preset.build_model(resolved)


def test_the_measured_batch_is_the_files_texts_padded_to_seq_len(world):
    preset, params, model = _cell(world, "classifier", texts=str(world / "labelled.jsonl"))
    ids, mask = text_classification.measured_sequences(model, params, "cpu")
    assert ids.shape == (2, 6) and mask[0].tolist() == [1, 1, 1, 0, 0, 0]  # "very good film"
    assert ids[0, :3].tolist() == [6, 2, 4] and ids[0, 3:].tolist() == [1, 1, 1]  # [PAD] = 1
    (phase,) = preset.kind.make_phases(model, params, "cpu", None)
    assert phase.step().shape == (2, 2)


def test_labelled_texts_score_accuracy_against_each_text_classified_alone(world):
    import torch

    preset, params, model = _cell(world, "classifier", texts=str(world / "labelled.jsonl"))
    found = preset.kind.quality(model, params, "cpu")
    tokenizer = _tokenizer()
    with torch.inference_mode():
        alone = torch.cat([model(**tokenizer(r["text"], return_tensors="pt")).logits for r in ROWS])
    expected = top1_accuracy(alone, [1, 0, 0, 1, 1], "accuracy")
    assert (found.metric, found.count) == ("accuracy", 5)
    assert found.value == pytest.approx(expected.value)
    assert preset.kind.fidelity_logits(model, params, "cpu").shape == (5, 2)


def test_unlabelled_texts_give_inputs_and_fidelity_but_no_accuracy(world):
    preset, params, model = _cell(world, "classifier", texts=str(world / "plain.txt"))
    assert preset.kind.quality(model, params, "cpu") is None
    assert preset.kind.fidelity_logits(model, params, "cpu").shape == (2, 2)
    embedder, e_params, e_model = _cell(world, "embedder", texts=str(world / "labelled.jsonl"))
    assert embedder.kind.name == "sentence-embedding" and embedder.kind.quality is None
    assert embedder.kind.fidelity_logits(e_model, e_params, "cpu").shape == (5, 16)


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([{"text": "good", "label": "positive"}, {"text": "bad"}], '1 of 2 texts have a "label"'),
        ([{"text": "good", "label": [1]}], "is not a label name or id"),
        ([{"text": "good", "label": "meh"}], "label 'meh' matches none of the model's 2 labels"),
        ([{"text": "good", "label": 7}], "label 7 matches none"),
    ],
)
def test_bad_labels_are_one_line_naming_the_file_exit_2_nothing_written(
    world, tmp_path, capsys, rows, problem
):
    texts = tmp_path / "bad.jsonl"
    texts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    name = f"hf:{world / 'classifier'}"
    suite = tmp_path / "s.toml"
    suite.write_text(f'workloads = ["{name}"]\n[params."{name}"]\ntexts = "{texts}"\n')
    out = tmp_path / "results"
    assert main(["run", "--suite", str(suite), "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(texts) in line and problem in line
    assert not out.exists()


def test_texts_need_the_checkpoints_tokenizer(world):
    preset = get_preset(f"hf:{world / 'untokenized'}")
    with pytest.raises(ValueError, match="needs a tokenizer.*tokenizer.save_pretrained"):
        preset.resolve_params({"texts": str(world / "plain.txt")})
    with pytest.raises(ValueError, match="random weights have none"):
        get_preset("distilbert-tiny").resolve_params({"texts": str(world / "plain.txt")})


def test_read_labelled_keeps_the_labels_as_written(world):
    found = read_labelled(world / "labelled.jsonl")
    assert found.labels == ["positive", "negative", 0, "POSITIVE", 1]
    assert read_labelled(world / "plain.txt").labels is None
