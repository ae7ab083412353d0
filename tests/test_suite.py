import dataclasses

import pytest

from greenbench.errors import SuiteError
from greenbench.protocol import ProtocolSettings
from greenbench.suite import (
    FLAG_FOR_KEY,
    PROTOCOL_BOUNDS,
    PROTOCOL_SWITCHES,
    RunOverrides,
    Suite,
    apply_overrides,
    builtin_suites,
    load_suite,
    resolve_suite,
    split_values,
)

VALID = """
name = "mine"
workloads = ["slm-tiny", "resnet-tiny"]
variants = ["fp32"]
devices = ["cpu"]
zone = "DE"

[protocol]
repetitions = 2
min_window_s = 0.5

[params.slm-tiny]
new_tokens = 4
phases = ["decode"]
"""


def write(tmp_path, text, name="suite.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_suite_expands_to_cells(tmp_path):
    suite = load_suite(str(write(tmp_path, VALID)))
    assert suite.name == "mine" and suite.zone == "DE"
    assert suite.protocol.repetitions == 2 and suite.protocol.min_window_s == 0.5
    cells = suite.cells()
    assert [c.cell_id for c in cells] == ["slm-tiny/fp32/cpu", "resnet-tiny/fp32/cpu"]
    assert cells[0].params == {
        "batch": 1,
        "prompt_tokens": 16,
        "new_tokens": 4,
        "phases": ["decode"],
    }


def test_builtin_suites_load():
    assert {"quick", "tiny", "standard", "gpu", "nightly"} <= set(builtin_suites())
    quick = load_suite("quick")
    assert quick.workloads == ("slm-135m", "resnet50")
    assert quick.variants == ("fp32", "int8-dynamic") and quick.devices == ("cpu",)
    standard = load_suite("standard")
    from greenbench.workloads import PRESETS

    catalogue = {n for n, p in PRESETS.items() if "for tests" not in p.description}
    assert {"whisper-tiny", "vit-b16", "detr-resnet50"} <= catalogue
    assert set(standard.workloads) == catalogue
    assert standard.params["slm-1.7b"] == {"new_tokens": 8}
    assert load_suite("gpu").devices == ("cuda",)
    for name in builtin_suites():
        first_line = builtin_suites()[name].read_text().splitlines()[0]
        assert first_line.startswith(f"# {name}: "), "each suite says what it is for"


def test_dotted_workload_names_in_params_get_the_quoting_hint(tmp_path):
    path = tmp_path / "dots.toml"
    path.write_text('workloads = ["slm-1.7b"]\n[params.slm-1.7b]\nbatch = 2\n')
    with pytest.raises(SuiteError, match=r'write \[params."slm-1.7b"\] with quotes'):
        load_suite(str(path))


def test_suite_round_trips_through_dict(tmp_path):
    suite = load_suite(str(write(tmp_path, VALID)))
    assert type(suite).from_dict(suite.to_dict()) == suite


@pytest.mark.parametrize(
    ("text", "key", "fix"),
    [
        ('workloads = ["slm-tiny"]\ncolour = 1', "colour", "allowed keys"),
        ('variants = ["fp32"]', "workloads", "list the workloads"),
        ('workloads = ["gpt-9"]', "workloads", "greenbench list"),
        ("workloads = []", "workloads", "non-empty list"),
        ('workloads = ["slm-tiny"]\nvariants = ["int3"]', "variants", "known: fp32"),
        ('workloads = ["slm-tiny"]\ndevices = ["tpu"]', "devices", "known: cpu"),
        ('workloads = ["slm-tiny"]\ndevices = ["cpu:1"]', "devices", "use 'cpu'"),
        ('workloads = ["slm-tiny"]\nzone = "XX"', "zone", "ISO-3166"),
        ('workloads = ["slm-tiny"]\n[protocol]\nrepeats = 3', "protocol.repeats", "allowed"),
        ('workloads = ["slm-tiny"]\n[protocol]\nrepetitions = 0', "protocol.repetitions", ">= 1"),
        (
            'workloads = ["slm-tiny"]\n[protocol]\nrepetitions = 1.5',
            "protocol.repetitions",
            "whole number",
        ),
        ('workloads = ["slm-tiny"]\n[protocol]\nmin_window_s = -1', "protocol.min_window_s", "> 0"),
        (
            'workloads = ["slm-tiny"]\n[protocol]\nidle_s = "long"',
            "protocol.idle_s",
            "number of seconds",
        ),
        (
            'workloads = ["slm-tiny"]\n[params.slm-tiny]\nheads = 2',
            "params.slm-tiny",
            "unknown parameter 'heads'",
        ),
        ('workloads = ["slm-tiny"]\n[params.slm-tiny]\nbatch = 0', "params.slm-tiny", ">= 1"),
        (
            'workloads = ["slm-tiny"]\n[params.slm-tiny]\nphases = ["train"]',
            "params.slm-tiny",
            "phases",
        ),
        (
            'workloads = ["slm-tiny"]\n[params.resnet-tiny]\nimage_size = 8',
            "params.resnet-tiny",
            ">= 32",
        ),
        ('workloads = ["slm-tiny"]\n[params.bert]\nbatch = 2', "params.bert", "unknown workload"),
    ],
)
def test_every_validation_error_names_file_key_and_fix(tmp_path, text, key, fix):
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: key '{key}':")
    assert fix in message


def test_toml_syntax_error_names_the_file(tmp_path):
    path = write(tmp_path, "workloads = [")
    with pytest.raises(SuiteError, match=rf"^{path}: not valid TOML"):
        load_suite(str(path))


def test_unknown_suite_name_lists_builtins():
    with pytest.raises(SuiteError, match="unknown suite 'nightlyx'.*built-in: .*quick"):
        load_suite("nightlyx")


def test_missing_suite_file():
    with pytest.raises(SuiteError, match="no such file"):
        load_suite("does/not/exist.toml")


def test_flags_take_comma_separated_and_repeated_values():
    assert split_values(["slm-tiny,resnet-tiny", "resnet50"]) == [
        "slm-tiny",
        "resnet-tiny",
        "resnet50",
    ]


def test_overrides_replace_axes_and_settings():
    suite = apply_overrides(
        load_suite("quick"),
        RunOverrides(
            workloads=["resnet-tiny,slm-tiny"], repetitions=5, min_window_s=0.2, zone="fr"
        ),
    )
    assert suite.workloads == ("resnet-tiny", "slm-tiny")
    assert suite.protocol.repetitions == 5 and suite.protocol.min_window_s == 0.2
    assert suite.zone == "FR"
    assert suite.params["slm-135m"]["prompt_tokens"] == 128  # the file's params are kept


BAD_VALUES = [
    ({"workloads": ["nope"]}, "--workload"),
    ({"variants": ["int3"]}, "--variant"),
    ({"devices": ["tpu"]}, "--device"),
    ({"repetitions": 0}, "--repetitions"),
    ({"min_window_s": 0}, "--min-window"),
    ({"zone": "Atlantis"}, "--zone"),
    ({"params": ["batch=0"]}, "--param"),
    ({"power_limit_w": ["0"]}, "--power-limit"),
    ({"pue": 0.5}, "--pue"),
]


@pytest.mark.parametrize(("kwargs", "flag"), BAD_VALUES)
def test_bad_flags_name_the_flag(kwargs, flag):
    with pytest.raises(SuiteError, match=rf"^{flag}: "):
        apply_overrides(load_suite("quick"), RunOverrides(**kwargs))


def test_every_override_that_changes_a_suite_has_a_flag_for_its_key_and_a_bad_value_test():
    keyed = {name: o for name, o in RunOverrides.options().items() if o.key}
    assert {o.key: o.flag for o in keyed.values()} == FLAG_FOR_KEY
    assert {next(iter(kwargs)) for kwargs, _ in BAD_VALUES} == set(keyed)
    assert RunOverrides.options()["suite"].key is None  # picks the suite, changes no key


def test_overrides_reach_the_key_their_option_names():
    quick = load_suite("quick")
    values = {"workloads": ["resnet-tiny"], "repetitions": 7, "min_window_s": 0.25, "zone": "DE"}
    data = apply_overrides(quick, RunOverrides(**values)).to_dict()
    for name, value in values.items():
        *tables, key = RunOverrides.options()[name].key.split(".")
        target = data
        for table in tables:
            target = target[table]
        assert target[key] == value


def test_overrides_given_and_as_kwargs():
    overrides = RunOverrides(suite="tiny", repetitions=3)
    assert overrides.given() == ["suite", "repetitions"]
    assert overrides.as_kwargs() == {name: None for name in RunOverrides.options()} | {
        "suite": "tiny",
        "repetitions": 3,
    }
    suite = load_suite("tiny")
    assert RunOverrides(suite=suite).as_kwargs()["suite"] is suite  # not turned into a dict


def test_resolve_suite_names_a_flags_only_suite_adhoc():
    assert resolve_suite(RunOverrides()).name == "quick"
    assert resolve_suite(RunOverrides(suite="tiny", workloads=["resnet-tiny"])).name == "tiny"
    adhoc = resolve_suite(RunOverrides(workloads=["resnet-tiny"]))
    assert (adhoc.name, adhoc.workloads) == ("adhoc", ("resnet-tiny",))
    assert resolve_suite(RunOverrides(repetitions=2)).name == "quick"  # not an axis
    mine = Suite("mine", ("resnet-tiny",))
    assert resolve_suite(RunOverrides(suite=mine, zone="FR")).name == "mine"


@pytest.mark.parametrize("key", list(PROTOCOL_BOUNDS))
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_protocol_values_are_refused(tmp_path, key, value):
    path = write(tmp_path, f'workloads = ["slm-tiny"]\n[protocol]\n{key} = {value}')
    with pytest.raises(SuiteError, match=rf"key 'protocol.{key}': must be a finite number"):
        load_suite(str(path))


@pytest.mark.parametrize(
    ("key", "value", "limit"),
    [
        ("repetitions", "1_000_000_000", "at most 1000,"),
        ("min_window_s", "1e12", "at most 86400 seconds"),
        ("cell_timeout_s", "1e300", "at most 604800 seconds"),
        ("min_calls", "10_000_000_000", "at most 10000000, got 10000000000"),
        ("warmup_calls", "1" + "0" * 40, "at most 1000000, got a number of over 30 digits"),
    ],
)
def test_absurd_protocol_values_are_refused_naming_the_limit(tmp_path, key, value, limit):
    path = write(tmp_path, f'workloads = ["slm-tiny"]\n[protocol]\n{key} = {value}')
    with pytest.raises(SuiteError, match=rf"key 'protocol.{key}': must be {limit}"):
        load_suite(str(path))


def test_every_protocol_setting_has_bounds_that_take_its_default():
    fields = {f.name for f in dataclasses.fields(ProtocolSettings)}
    assert set(PROTOCOL_BOUNDS) | set(PROTOCOL_SWITCHES) == fields
    for f in dataclasses.fields(ProtocolSettings):
        if f.name in PROTOCOL_BOUNDS:
            assert PROTOCOL_BOUNDS[f.name].problem(f.default) is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e12])
def test_non_finite_and_absurd_flags_name_the_flag(value):
    with pytest.raises(SuiteError, match=r"^--min-window: must be "):
        apply_overrides(load_suite("quick"), RunOverrides(min_window_s=value))
    with pytest.raises(SuiteError, match=r"^--repetitions: must be "):
        apply_overrides(load_suite("quick"), RunOverrides(repetitions=value))


def test_non_finite_workload_params_are_refused(tmp_path):
    path = write(tmp_path, 'workloads = ["slm-tiny"]\n[params.slm-tiny]\nbatch = nan')
    with pytest.raises(SuiteError, match="key 'params.slm-tiny': 'batch' must be a whole number"):
        load_suite(str(path))


def test_a_suite_that_is_not_utf8_or_is_a_folder_is_a_one_line_error(tmp_path):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('workloads = ["slm-tiny"]\ndescription = "café"\n'.encode("latin-1"))
    with pytest.raises(SuiteError, match=rf"^{latin1}: not UTF-8 text \(byte \d+\); save the"):
        load_suite(str(latin1))
    with pytest.raises(SuiteError, match=rf"^--suite: '{tmp_path}' is a folder; give a .toml"):
        load_suite(str(tmp_path))


def test_a_bad_greenbench_zone_is_blamed_on_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENBENCH_ZONE", "XX")
    path = write(tmp_path, 'workloads = ["slm-tiny"]')
    with pytest.raises(SuiteError, match=r"^\$GREENBENCH_ZONE: unknown zone 'XX'.*or unset it"):
        load_suite(str(path))
    fr = write(tmp_path, 'workloads = ["slm-tiny"]\nzone = "FR"', name="fr.toml")
    assert load_suite(str(fr)).zone == "FR"  # the file's own zone wins
    monkeypatch.setenv("GREENBENCH_ZONE", "de")
    assert load_suite(str(path)).zone == "DE"
