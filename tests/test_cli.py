"""The CLI's wiring: flags derived from the one list of run options, choices from the
registries, every command dispatched by its parser, and the module layering."""

import argparse
import inspect
import subprocess
import sys

import pytest

import greenbench
from greenbench import api, cli
from greenbench.executors import EXECUTORS
from greenbench.records import COMPARE_AXES as AXES
from greenbench.suite import FLAG_FOR_KEY, RunOverrides


def subparsers(parser):
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def run_parser():
    return subparsers(cli.build_parser())["run"]


def test_every_run_option_is_a_flag_of_run_with_the_fields_name_as_destination():
    by_flag = {flag: a for a in run_parser()._actions for flag in a.option_strings}
    for name, option in RunOverrides.options().items():
        action = by_flag[option.flag]
        assert (action.dest, action.help) == (name, option.help)
        assert isinstance(action, argparse._AppendAction) == option.repeatable
    args = cli.build_parser().parse_args(
        ["run", "--workload", "a,b", "--workload", "c", "--min-window", "0.5", "--suite", "x"]
    )
    overrides = RunOverrides.from_args(args)
    assert overrides == RunOverrides(suite="x", workloads=["a,b", "c"], min_window_s=0.5)


def test_every_run_option_is_a_keyword_of_greenbench_run_and_named_by_the_resume_check():
    parameters = inspect.signature(greenbench.run).parameters
    message = api.resume_conflict()
    for name, option in RunOverrides.options().items():
        assert parameters[name].default is None
        assert option.flag in message
        if option.key:
            assert FLAG_FOR_KEY[option.key] == option.flag
    assert message == (
        "--resume reruns the run's own suite; drop --suite, --workload, --variant, "
        "--device, --repetitions, --min-window, --zone, --param, --power-limit and --pue"
    )


def test_resume_with_any_run_option_is_refused_naming_them(tmp_path):
    for name in RunOverrides.options():
        with pytest.raises(greenbench.errors.GreenbenchError, match="--resume reruns"):
            greenbench.run(resume="x", out=tmp_path, **{name: "1"})
    assert not list(tmp_path.iterdir())


def test_run_passes_every_run_option_through(monkeypatch, tmp_path):
    seen = {}

    def fake_run(**kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr("greenbench.run", fake_run)
    argv = ["run", "--suite", "tiny", "--device", "cpu", "--repetitions", "3", "--zone", "FR"]
    assert cli.main([*argv, "--out", str(tmp_path)]) == cli.EXIT_INTERRUPTED
    assert {k: seen[k] for k in RunOverrides.options()} == RunOverrides(
        suite="tiny", devices=["cpu"], repetitions=3, zone="FR"
    ).as_kwargs()
    assert (seen["executor"], seen["address"], seen["out"]) == ("local", None, str(tmp_path))


def test_executor_and_compare_axis_choices_come_from_their_registries(capsys, tmp_path):
    by_flag = {flag: a for a in run_parser()._actions for flag in a.option_strings}
    assert list(by_flag["--executor"].choices) == list(EXECUTORS)
    compare = subparsers(cli.build_parser())["compare"]
    (by,) = [a for a in compare._actions if "--by" in a.option_strings]
    assert all(axis in by.help for axis in AXES)  # or a swept parameter: compare.py checks
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--executor", "slurm"])
    assert exit_info.value.code == cli.EXIT_USAGE == 2
    assert "invalid choice: 'slurm'" in capsys.readouterr().err
    capsys.readouterr()
    assert cli.main(["compare", "--by", "colour", "--out", str(tmp_path)]) == cli.EXIT_USAGE
    assert "--by: unknown axis 'colour'" in capsys.readouterr().err


def test_every_command_and_schedule_action_has_its_function():
    commands = subparsers(cli.build_parser())
    for name, parser in commands.items():
        if name == "schedule":
            for action, action_parser in subparsers(parser).items():
                assert callable(action_parser.get_default("func")), action
        else:
            assert callable(parser.get_default("func")), name


def test_cli_carbon_does_not_import_the_cli():
    code = (
        "import sys, greenbench.cli_carbon; "
        "assert 'greenbench.cli' not in sys.modules, 'cli_carbon imported greenbench.cli'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert cli.cli_carbon is greenbench.cli_carbon  # and the cli imports it at module level


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--min-window", "nan"], "--min-window: must be a finite number, got nan"),
        (["--min-window", "1e12"], "--min-window: must be at most 86400 seconds"),
        (["--repetitions", "1000000000"], "--repetitions: must be at most 1000"),
        (["--suite", "."], "--suite: '.' is a folder; give a .toml file"),
        (["--workload", "resnet-tiny", "--out", "passwd"], "--out: 'passwd' is a file"),
    ],
)
def test_bad_run_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, argv, error):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "passwd").write_text("root:x:0:0")
    assert cli.main(["run", *argv]) == cli.EXIT_USAGE
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"greenbench: error: {error}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd"]
    assert (tmp_path / "passwd").read_text() == "root:x:0:0"
