"""Real inputs (`prompts`, `texts`, `images`) and task quality, on tiny real checkpoints and
tiny datasets written into temporary folders: offline, seconds."""

import json
import math

import pandas as pd
import pytest

import greenbench
from greenbench import quality
from greenbench.backends.cpu import BACKEND as CPU
from greenbench.cell import Cell
from greenbench.cli import main
from greenbench.compare import compare
from greenbench.inputs import read_texts
from greenbench.report import data, figures
from greenbench.tasks import lm_inference, vision_inference
from greenbench.terminal import results_tables
from greenbench.workloads import get_preset

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "away", "and", "slept"]
TEXTS = [
    "the cat sat on the mat",
    "a dog ran far away",
    "the dog slept",
    "and the cat ran away on a mat",
    "a cat",
]


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]")


def _png(path, color):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 36), color).save(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A GPT-2 with a tokenizer, one without, a 2-class ViT, and texts and images for them."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, ViTConfig, ViTForImageClassification

    root = tmp_path_factory.mktemp("real")
    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=16, n_positions=32)
    GPT2LMHeadModel(config).save_pretrained(root / "gpt2")
    _tokenizer().save_pretrained(root / "gpt2")
    GPT2LMHeadModel(config).save_pretrained(root / "bare")
    vit = ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=2, id2label={0: "cat", 1: "hot_dog"},
        label2id={"cat": 0, "hot_dog": 1},
    )  # fmt: skip
    ViTForImageClassification(vit).save_pretrained(root / "vit")
    (root / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    (root / "prompts.txt").write_text("the cat sat\n\na dog ran far away\n")
    colors = {"cat": [(250, 10, 10), (10, 250, 10)], "Hot Dog": [(10, 10, 250)]}
    for label, shades in colors.items():
        for i, color in enumerate(shades):
            _png(root / "classes" / label / f"{i}.png", color)
    _png(root / "flat" / "only.png", (128, 128, 128))
    return root


def _bad_line(tmp_path, text, name="prompts.jsonl"):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError) as e:
        read_texts(path)
    return str(e.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"text": "fine"}\n{"text": oops}\n', "not valid JSON"),
        ('{"text": "fine"}\n["a list"]\n', "a JSON list, not an object"),
        ('{"text": "fine"}\n{"prompt": "x"}\n', 'no "text" string'),
    ],
)
def test_a_bad_jsonl_line_names_the_file_the_line_and_the_fix(tmp_path, text, problem):
    message = _bad_line(tmp_path, text)
    assert f"{tmp_path / 'prompts.jsonl'}:2: {problem}" in message
    assert 'e.g. {"text": "..."}' in message


def test_a_plain_text_file_is_one_text_a_line_without_blank_lines(world):
    assert read_texts(world / "prompts.txt") == ["the cat sat", "a dog ran far away"]
    assert read_texts(world / "texts.jsonl") == TEXTS


def test_a_bad_prompts_file_stops_the_run_with_one_line_and_writes_nothing(world, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "the cat"}\n{"text": 3}\n')
    suite = tmp_path / "s.toml"
    suite.write_text(
        f'name = "s"\nworkloads = ["hf:{world / "gpt2"}"]\n'
        f'[params."hf:{world / "gpt2"}"]\nprompts = "{bad}"\n'
    )
    out = tmp_path / "results"
    assert main(["run", "--suite", str(suite), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{bad}:2" in err and '"text"' in err
    assert not out.exists()


def test_texts_need_the_checkpoints_tokenizer(world):
    with pytest.raises(ValueError, match=r"tokenizer.save_pretrained"):
        get_preset(f"hf:{world / 'bare'}").resolve_params({"texts": str(world / "texts.jsonl")})
    with pytest.raises(ValueError, match=r"random weights have none"):
        get_preset("slm-tiny").resolve_params({"prompts": str(world / "prompts.txt")})


def test_real_input_parameters_belong_to_the_kinds_that_read_them(world):
    with pytest.raises(ValueError, match=r"unknown parameter 'images'.*prompts.*texts"):
        get_preset(f"hf:{world / 'gpt2'}").resolve_params({"images": str(world / "flat")})
    with pytest.raises(ValueError, match=r"unknown parameter 'prompts'"):
        get_preset("slm-tiny-train").resolve_params({"prompts": str(world / "prompts.txt")})


def test_a_relative_path_is_made_absolute(world, monkeypatch):
    monkeypatch.chdir(world)
    params = get_preset(f"hf:{world / 'gpt2'}").resolve_params({"prompts": "prompts.txt"})
    assert params["prompts"] == str(world / "prompts.txt")


def test_class_folders_must_name_the_models_labels(world, tmp_path):
    vit = get_preset(f"hf:{world / 'vit'}")
    params = vit.resolve_params({"images": str(world / "classes")})  # "Hot Dog" is hot_dog
    assert params["images"] == str(world / "classes")
    by_id = tmp_path / "by_id"
    _png(by_id / "1" / "a.png", (0, 0, 0))
    vit.resolve_params({"images": str(by_id)})
    _png(tmp_path / "zoo" / "zebra" / "z.png", (0, 0, 0))
    _png(tmp_path / "zoo" / "cat" / "c.png", (0, 0, 0))
    with pytest.raises(ValueError, match=r"zoo: class folder\(s\) zebra match none .* cat"):
        vit.resolve_params({"images": str(tmp_path / "zoo")})
    with pytest.raises(ValueError, match=r"model has no labels \(random weights\)"):
        get_preset("resnet-tiny").resolve_params({"images": str(world / "classes")})
    get_preset("resnet-tiny").resolve_params({"images": str(world / "flat")})  # no labels needed


def test_a_folder_of_images_and_folders_is_refused(world, tmp_path):
    _png(tmp_path / "mixed" / "a.png", (0, 0, 0))
    _png(tmp_path / "mixed" / "cls" / "b.png", (0, 0, 0))
    with pytest.raises(ValueError, match=r"both images and folders"):
        get_preset(f"hf:{world / 'vit'}").resolve_params({"images": str(tmp_path / "mixed")})


def _lm(world, **overrides):
    preset = get_preset(f"hf:{world / 'gpt2'}")
    params = preset.resolve_params({"prompt_tokens": 5, "new_tokens": 2, "batch": 2, **overrides})
    return preset.build_model(params), params


def test_prompts_feed_the_phases_end_to_end_starting_over_when_short(world):
    model, params = _lm(world, prompts=str(world / "prompts.txt"))
    tokenizer = _tokenizer()
    stream = [
        t for text in ["the cat sat", "a dog ran far away"] for t in tokenizer(text).input_ids
    ]
    assert len(stream) == 8  # 10 tokens are needed: the file starts over
    prompt = lm_inference.make_prompt(model, params, "cpu")
    assert prompt.tolist() == [stream[:5], [*stream[5:], *stream[:2]]]


def test_perplexity_on_texts_is_that_of_each_text_computed_directly(world):
    import torch

    model, params = _lm(world, texts=str(world / "texts.jsonl"))
    result = lm_inference.quality(model, params, "cpu")
    tokenizer = _tokenizer()
    nll, count = 0.0, 0
    for text in TEXTS:  # one at a time, unpadded: padding must change nothing
        ids = torch.tensor(tokenizer(text).input_ids[:5])
        with torch.no_grad():
            logits = model(input_ids=ids[None]).logits[0]
        nll += torch.nn.functional.cross_entropy(logits[:-1], ids[1:], reduction="sum").item()
        count += len(ids) - 1
    assert result.metric == "perplexity" and result.count == count == 4 + 4 + 2 + 4 + 1
    assert result.value == pytest.approx(math.exp(nll / count), rel=1e-6)
    logits = lm_inference.fidelity_logits(model, params, "cpu")
    assert logits.shape == (5 + 5 + 3 + 5 + 2, 16)  # real positions only


def test_without_real_inputs_an_lm_has_random_prompts_and_no_quality(world):
    model, params = _lm(world)
    assert lm_inference.quality(model, params, "cpu") is None
    assert lm_inference.fidelity_logits(model, params, "cpu").shape == (2, 5, 16)


def test_images_without_a_processor_get_the_documented_default(world):
    preset = get_preset(f"hf:{world / 'vit'}")
    params = preset.resolve_params({"images": str(world / "flat"), "batch": 3})
    model = preset.build_model(params)
    pixels = vision_inference.phase_images(model, params, "cpu")
    assert pixels.shape == (3, 3, 32, 32)  # one image, three times: the batch starts over
    mean, std = vision_inference.DEFAULT_PREPROCESSING.values()
    expected = [(128 / 255 - m) / s for m, s in zip(mean, std, strict=True)]
    assert pixels[:, :, 5, 7].flatten().tolist() == pytest.approx(expected * 3, abs=1e-6)
    assert vision_inference.quality(model, params, "cpu") is None  # flat: no labels


def test_a_checkpoints_image_processor_prepares_its_images_at_the_workloads_size(world, tmp_path):
    import shutil

    from transformers import ViTImageProcessor

    folder = tmp_path / "vit"
    shutil.copytree(world / "vit", folder)
    ViTImageProcessor(size={"height": 24, "width": 24}).save_pretrained(folder)  # mean, std 0.5
    preset = get_preset(f"hf:{folder}")
    params = preset.resolve_params({"images": str(world / "flat"), "batch": 1})
    pixels = vision_inference.phase_images(preset.build_model(params), params, "cpu")
    assert pixels.shape == (1, 3, 32, 32)  # resized to image_size after the processor's 24
    assert pixels[0, :, 9, 9].tolist() == pytest.approx([(128 / 255 - 0.5) / 0.5] * 3, abs=1e-4)


def test_top1_accuracy_on_class_folders_matches_each_image_scored_alone(world):
    import torch

    preset = get_preset(f"hf:{world / 'vit'}")
    params = preset.resolve_params({"images": str(world / "classes"), "batch": 2})
    model = preset.build_model(params)
    result = vision_inference.quality(model, params, "cpu")
    files = [("Hot Dog/0.png", 1), ("cat/0.png", 0), ("cat/1.png", 0)]  # sorted by folder
    hits = 0
    for name, label in files:
        pixels = vision_inference.load_images(model, [world / "classes" / name], 32)
        with torch.no_grad():
            hits += int(model(pixel_values=pixels).logits.argmax(-1).item() == label)
    assert result == quality.Quality("top1_accuracy", hits / 3, 3)


def test_the_backend_records_quality_for_fp32_and_fidelity_beside_it_for_bf16(world):
    params = {"prompt_tokens": 5, "new_tokens": 2, "batch": 2, "texts": str(world / "texts.jsonl")}
    workload = f"hf:{world / 'gpt2'}"
    params = get_preset(workload).resolve_params(params)
    events = []
    fp32 = CPU.prepare(Cell(workload, "fp32", "cpu", params), events.append).record_columns()
    bf16 = CPU.prepare(Cell(workload, "bf16", "cpu", params), events.append).record_columns()
    assert fp32["quality_metric"] == "perplexity" and fp32["quality_n"] == 15
    assert "fidelity_top1" not in fp32
    assert bf16["quality_metric"] == "perplexity" and bf16["quality_n"] == 15
    assert bf16["fidelity_n"] == 20 and 0 <= bf16["fidelity_top1"] <= 1
    assert {"type": "stage", "stage": "scoring quality"} in events


def test_quality_functions_against_hand_values():
    import torch

    logits = torch.tensor([[0.1, 2.0], [3.0, 0.0], [0.0, 1.0]])
    assert quality.top1_accuracy(logits, [1, 0, 0]) == quality.Quality("top1_accuracy", 2 / 3, 3)
    uniform = torch.zeros(3, 4)  # every next token has probability 1/4: perplexity 4
    assert quality.perplexity([(uniform, torch.tensor([0, 1, 2]))]).value == pytest.approx(4.0)
    assert quality.change("perplexity", 12.0, 10.0) == pytest.approx(0.2)
    assert quality.change("top1_accuracy", 0.8, 0.9) == pytest.approx(-0.1)


def test_word_error_rate_counts_word_edits_against_the_references():
    pytest.importorskip("jiwer")
    result = quality.word_error_rate(["the cat sat", "a dog"], ["the cat sat down", "a fog"])
    assert result == quality.Quality("wer", pytest.approx(2 / 5), 5)


def _summary_rows(variant, j, value, metric="perplexity"):
    return {
        "run_id": "r", "cell_id": f"w/{variant}/cpu", "attempt": 1, "suite": "s",
        "workload": "w", "task": "inference", "phase": "prefill", "params": "{}",
        "variant": variant, "device": "cpu", "repetition": 1, "unit": "token",
        "energy_per_unit_j": j, "gross_energy_per_unit_j": 2 * j, "throughput": 1.0,
        "power_w": 1.0, "method_cpu": "rapl", "method_gpu": "none", "method_ram": "none",
        "estimated": False, "reliable": True, "status": "ok", "quality_metric": metric,
        "quality": value, "fidelity_top1": None if variant == "fp32" else 0.9,
        "fidelity_kl": None if variant == "fp32" else 0.01,
    }  # fmt: skip


def _frame():
    from greenbench.records import COLUMNS

    rows = [_summary_rows("fp32", j, 10.0) for j in (1.0, 1.02, 0.98)]
    rows += [_summary_rows("int8-dynamic", j, 11.0) for j in (0.5, 0.51, 0.49)]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_compare_puts_the_quality_change_against_the_baseline():
    table = compare(_frame(), "variant").set_index("variant")
    assert table.loc["fp32", "quality_change"] == 0
    assert table.loc["int8-dynamic", "quality_change"] == pytest.approx(0.1)
    assert table.loc["int8-dynamic", "quality"] == pytest.approx(11.0)


def test_results_and_compare_tables_show_quality_only_when_some_row_has_it(capsys):
    from rich.console import Console

    def headers(frame):
        return [c.header for c in results_tables(frame)[0].columns]

    assert "quality" in headers(_frame())
    assert "quality" not in headers(_frame().assign(quality=None, quality_metric=None))
    console = Console(width=250)
    with console.capture() as shown:
        (table,) = results_tables(_frame())
        console.print(table)
    assert "ppl 11" in shown.get() and "ppl 10" in shown.get()


def test_the_tradeoff_view_plots_energy_saved_against_the_quality_change():
    from greenbench.check import with_group_verdicts
    from greenbench.stats import summarize_frame

    frame = _frame()
    summary = with_group_verdicts(summarize_frame(frame), frame)
    summary["label"] = summary["variant"]
    tradeoffs = data.tradeoffs(summary)
    assert tradeoffs["quality_change"].tolist() == [pytest.approx(0.1)]
    fig = figures.quantization_tradeoff(tradeoffs)
    assert fig.layout.xaxis.title.text.startswith("perplexity change vs fp32")
    assert list(fig.data[0].x) == [pytest.approx(10.0)]
    without = figures.quantization_tradeoff(tradeoffs.assign(quality_change=math.nan))
    assert without.layout.xaxis.title.text == "top-1 agreement with fp32 (%)"
    assert list(without.data[0].x) == [pytest.approx(90.0)]


@pytest.mark.slow
def test_real_inputs_run_end_to_end_with_quality_and_fidelity_in_the_records(world, tmp_path):
    """One int8 cell (one child process: the CI budget): it scores fp32 and itself inside."""
    suite = tmp_path / "real.toml"
    gpt2 = f"hf:{world / 'gpt2'}"
    suite.write_text(
        f'name = "real"\nworkloads = ["{gpt2}"]\nvariants = ["int8-dynamic"]\n'
        "[protocol]\nrepetitions = 1\nmin_window_s = 0.1\nmin_calls = 1\nwarmup_calls = 1\n"
        "idle_s = 0.1\nsettle_max_s = 0.5\nwarmup_max_s = 0.5\n"
        f'[params."{gpt2}"]\nprompt_tokens = 5\nnew_tokens = 2\nbatch = 2\n'
        f'phases = ["prefill"]\nprompts = "{world / "prompts.txt"}"\n'
        f'texts = "{world / "texts.jsonl"}"\n'
    )
    result = greenbench.run(str(suite), out=tmp_path / "results")
    assert result.ok
    (row,) = greenbench.load_results(tmp_path / "results").to_dict("records")
    assert row["status"] == "ok" and row["energy_j"] > 0
    assert row["quality_metric"] == "perplexity" and row["quality_n"] == 15
    assert row["fidelity_n"] == 20 and 0 <= row["fidelity_top1"] <= 1
    model, params = _lm(world, texts=str(world / "texts.jsonl"))
    fp32 = lm_inference.quality(model, params, "cpu").value
    assert row["quality"] == pytest.approx(fp32, rel=0.01)  # int8 moves a tiny model a little
    assert json.loads(row["params"])["prompts"] == str(world / "prompts.txt")
