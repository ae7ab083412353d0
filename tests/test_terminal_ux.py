"""What a newcomer reads in the terminal and the CLI (issue 16, items 1-8): the run's conclusion
in words, one unit per column, progress with the window being measured and an ETA, --version,
suites in `list`, --param, hints that run as printed, schedules in the user's terms, and compare
saying when there is nothing to compare."""

from __future__ import annotations

import contextlib
import datetime as dt
import shlex

import pytest
from rich.console import Console
from test_compare import frame, rows

import greenbench
from greenbench import cli, hub_cli
from greenbench.api import RunPlan
from greenbench.conclusion import conclusions
from greenbench.errors import SuiteError
from greenbench.eta import RunEta, cell_estimate_s, fmt_eta
from greenbench.formatting import MASS_SCALES, column_scale, energy_text, fmt, fmt_kl
from greenbench.models import check_weights
from greenbench.protocol import ProtocolSettings
from greenbench.records import build_record
from greenbench.schedule import ScheduleStore
from greenbench.store import RunStore
from greenbench.suite import Cell, RunOverrides, parse_param, resolve_suite
from greenbench.terminal import RichReporter, print_conclusion, results_tables


def text_of(console_print, width=200):
    console = Console(record=True, width=width, markup=False)
    console_print(console)
    return " ".join(console.export_text().split())


def with_fidelity(group, top1, kl=0.01):
    return [{**r, "fidelity_top1": top1, "fidelity_kl": kl} for r in group]


# item 1 and 4: the conclusion


def test_the_conclusion_says_each_variants_ratio_with_its_interval_and_fidelity_once():
    data = frame(
        rows("fp32", [1.0, 1.02, 0.98]),
        with_fidelity(rows("int8-dynamic", [0.6, 0.61, 0.59]), 0.81),
    )
    (found,) = conclusions(data)
    assert found.heading.startswith("w on cpu, int8-dynamic: 81.0% top-1 agreement with fp32")
    assert "one score for all its phases" in found.heading
    (sentence,) = found.phases
    assert sentence.startswith("decode: 0.60x fp32 energy per token [0.")
    assert sentence.endswith(", a saving of 40 %")
    printed = text_of(lambda c: print_conclusion(data, c))
    assert "conclusion (energy per unit net of idle, ratio to fp32 [95% CI]):" in printed
    assert printed.count("top-1 agreement") == 1


def test_the_conclusion_names_parameters_only_where_one_workload_ran_with_several():
    def of(workload, variant, params, values):
        return [{**r, "workload": workload, "params": params} for r in rows(variant, values)]

    two_workloads = frame(
        of("a", "fp32", '{"batch": 1}', [1.0, 1.01]),
        of("a", "int8", '{"batch": 1}', [0.5, 0.51]),
        of("b", "fp32", '{"size": 2}', [1.0, 1.01]),
    )
    assert [c.heading for c in conclusions(two_workloads)] == ["a on cpu, int8"]
    batches = frame(
        of("a", "fp32", '{"batch": 1}', [1.0, 1.01]),
        of("a", "int8", '{"batch": 1}', [0.5, 0.51]),
        of("a", "fp32", '{"batch": 4}', [1.0, 1.01]),
        of("a", "int8", '{"batch": 4}', [0.5, 0.51]),
    )
    headings = [c.heading for c in conclusions(batches)]
    assert headings == ["a on cpu, batch=1, int8", "a on cpu, batch=4, int8"]  # not JSON


def test_the_conclusion_names_invalid_unreliable_and_noise_level_cells():
    noisy = rows("int8-dynamic", [0.25, 0.5, 0.25])  # CV 43 %: check judges it invalid
    (found,) = conclusions(frame(rows("fp32", [1.0, 1.02, 0.98]), noisy))
    assert found.phases[0].startswith("decode: INVALID, no conclusion (J per unit varies 43%")
    same = rows("bf16", [1.0, 1.03, 0.99])
    (found,) = conclusions(frame(rows("fp32", [1.0, 1.02, 0.98]), same))
    assert found.phases[0].endswith("], no difference beyond the noise")
    short = [{**r, "reliable": False} for r in rows("fp32", [1.0, 1.02, 0.98])]
    (found,) = conclusions(frame(short, same))
    assert found.phases[0].startswith(
        "decode: no conclusion, the fp32 cell is INVALID (3 window(s) shorter than"
    )


def test_a_run_of_fp32_alone_says_there_is_nothing_to_conclude():
    printed = text_of(lambda c: print_conclusion(frame(rows("fp32", [1.0, 1.1])), c))
    assert "only fp32 ran: nothing to compare it with" in printed
    assert "--variant fp32,int8-dynamic" in printed and "beside" not in printed
    printed = text_of(lambda c: print_conclusion(frame(rows("bf16", [1.0, 1.1])), c))
    assert "bf16 ran without fp32, the baseline" in printed and "--variant fp32,bf16" in printed


# item 2: units and numbers in tables


def test_no_scientific_notation_and_one_unit_per_column():
    assert fmt(1.23e-5) == "0.0000123" and fmt(0.000999) == "0.000999" and fmt(12345) == "12,345"
    assert fmt_kl(1.1e-5) == "0.000011" and fmt_kl(0) == "0"
    assert fmt(-4.5e-7, 2) == "-0.00000045" and fmt(950.0, 2) == "950" and fmt(999.7, 2) == "1000"
    assert column_scale([2e-5, 3e-5, 9e-3], MASS_SCALES) == (1e-6, "µg")
    tiny = [{**r, "emissions_per_1k_units_g": 2e-5} for r in rows("fp32", [1e-4, 1.1e-4])]
    (table,) = results_tables(frame(tiny))
    headers = [c.header for c in table.columns]
    assert "µgCO2e/1k tokens" in headers
    printed = text_of(lambda c: c.print(table), width=250)
    assert "e-0" not in printed and "│ ~20 │" in printed


def test_an_interval_wider_than_its_mean_is_flagged():
    assert energy_text(1.0, 0.5, False).endswith("± 0.5")
    assert energy_text(1.0, 1.5, False) == "1 ± 1.5 !"
    wide = frame(rows("fp32", [0.1, 1.9, 0.2]))
    printed = text_of(lambda c: cli_results(wide, c))
    assert "! the 95 % CI is wider than the figure" in printed


def cli_results(data, console):
    from greenbench.terminal import print_results

    print_results(data, console)


# item 3: progress


def test_the_eta_starts_from_the_protocol_and_learns_from_finished_cells(clock):
    protocol = ProtocolSettings(repetitions=2, min_window_s=1.0, idle_s=0.5)
    guess = cell_estimate_s(protocol, phases=2)
    assert guess == 5.0 + 2 * 0.5 + 4 * 1.0
    eta = RunEta(protocol, clock)
    eta.plan({"a": 2, "b": 2, "c": 1})
    assert eta.remaining_s() == pytest.approx(guess * 2 + cell_estimate_s(protocol, 1))
    eta.started("a")
    clock.sleep(3.0)
    assert eta.remaining_s() == pytest.approx(guess * 2 - 3.0 + cell_estimate_s(protocol, 1))
    clock.sleep(2 * guess - 3.0)  # `a` took twice its guess: the rest will too
    eta.finished("a", measured=True)
    assert eta.scale == pytest.approx(2.0)
    assert eta.remaining_s() == pytest.approx(2 * (guess + cell_estimate_s(protocol, 1)))
    eta.started("b")
    eta.finished("b", measured=False)  # failed at once: teaches nothing
    assert eta.scale == pytest.approx(2.0)
    assert fmt_eta(130) == "ETA 2m10s" and fmt_eta(45) == "ETA 45s" and fmt_eta(3900) == "ETA 1h05m"


def test_progress_shows_the_window_being_measured_and_windows_done_of_total(tmp_path, clock):
    console = Console(file=open(tmp_path / "out", "w"), width=200)  # noqa: SIM115
    reporter = RichReporter(console, clock)
    cell = Cell("slm-tiny", "fp32", "cpu", {"phases": ["prefill", "decode"]})
    protocol = ProtocolSettings(repetitions=2)
    reporter.run_started("r1", tmp_path, [cell], 4, RunPlan(protocol, (cell,)))
    reporter.cell_started(cell)
    reporter.cell_event(cell, {"type": "stage", "stage": "measuring"})
    assert reporter.description.endswith("idle baseline and warmup, then prefill 1/2")
    reporter.cell_event(cell, {"type": "window", "phase": "prefill", "repetition": 1})
    assert reporter.description.endswith(": measuring decode 1/2")
    reporter.cell_event(cell, {"type": "window", "phase": "decode", "repetition": 1})
    assert reporter.description.endswith(": measuring prefill 2/2")
    task = reporter.progress.tasks[0]
    assert (task.completed, task.total) == (2, 4)
    assert reporter.eta_column.render(task).plain.startswith("ETA ")
    for phase in ("prefill", "decode"):
        reporter.cell_event(cell, {"type": "window", "phase": phase, "repetition": 2})
    assert reporter.description.endswith(": idle after the windows")
    reporter.close()


# item 5: --version, list, --param


def test_version_and_the_suites_in_list(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"greenbench {greenbench.__version__}"
    # the suites' table of `greenbench list` (its workloads table counts parameters: slow)
    Console(width=200).print(cli.suites_table())
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    (tiny,) = [line for line in lines if line.startswith("│ tiny ")]
    assert "│ 2 │ 30 s │ slm-tiny and resnet-tiny" in tiny
    (quick,) = [line for line in lines if line.startswith("│ quick ")]
    assert "│ 4 (1 skipped) │ 3 min │" in quick


def test_run_help_names_each_workloads_parameters_and_how_to_set_them(capsys):
    with contextlib.suppress(SystemExit):
        cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--param KEY=VALUE" in text and "--param WORKLOAD.KEY=VALUE" in text
    assert "resnet-tiny" in text and "batch" in text and "new_tokens" in text


def test_param_values_are_toml_and_a_comma_list_of_numbers_is_a_sweep():
    assert parse_param("batch=4") == parse_param(" batch = 4 ")
    assert (parse_param("batch=4").workload, parse_param("batch=4").value) == (None, 4)
    named = parse_param("slm-1.7b.new_tokens=8")
    assert (named.workload, named.key, named.value) == ("slm-1.7b", "new_tokens", 8)
    assert parse_param('phases=["decode"]').value == ["decode"]
    assert parse_param("weights=/models/x").value == "/models/x"
    assert parse_param('weights="a b"').value == "a b"
    assert parse_param("batch=1,4,16").value == [1, 4, 16]
    with pytest.raises(SuiteError, match="--param: 'batch=1,b': a comma list sweeps numbers"):
        parse_param("batch=1,b")
    with pytest.raises(SuiteError, match="is not KEY=VALUE"):
        parse_param("batch")


def test_params_apply_to_the_workloads_that_have_them_or_to_the_one_named():
    suite = resolve_suite(RunOverrides(suite="tiny", params=["batch=3", "slm-tiny.new_tokens=2"]))
    cells = {c.workload: c.params for c in suite.cells()}
    assert cells["slm-tiny"]["batch"] == cells["resnet-tiny"]["batch"] == 3
    assert cells["slm-tiny"]["new_tokens"] == 2
    suite = resolve_suite(RunOverrides(suite="tiny", params=["new_tokens=2"]))
    assert "new_tokens" not in {c.workload: c.params for c in suite.cells()}["resnet-tiny"]
    with pytest.raises(SuiteError, match="--param: no workload of the run .* has a parameter"):
        resolve_suite(RunOverrides(suite="tiny", params=["colour=2"]))
    with pytest.raises(SuiteError, match="resnet50 is not one of the run's workloads"):
        resolve_suite(RunOverrides(suite="tiny", params=["resnet50.batch=2"]))
    with pytest.raises(SuiteError, match="^--param: "):
        resolve_suite(RunOverrides(suite="tiny", params=["batch=0"]))


def test_a_bad_sweep_on_the_command_line_is_one_line_and_writes_nothing(tmp_path, capsys):
    argv = ["run", "--suite", "tiny", "--param", "batch=1,four", "--out", str(tmp_path / "r")]
    assert cli.main(argv) == cli.EXIT_USAGE
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("greenbench: error: --param: 'batch=1,four': a comma list sweeps")
    assert not (tmp_path / "r").exists()


# item 6: hints that run as printed


@pytest.mark.parametrize(
    "argv",
    [
        ["schedule", "serve"],
        ["schedule", "list"],
        ["schedule", "add", "n", "--cron", "0 22 * * *"],
        ["schedule", "remove", "n"],
        ["run"],
        ["forecast"],
        ["list"],
        ["devices"],
        ["compare"],
        ["check"],
        ["report"],
        ["import-pytest-benchmark", "f.json"],
        ["backtest", "--trace", "t.csv"],
    ],
)
def test_out_is_taken_after_every_command_and_before_it(argv):
    parser = cli.build_parser()
    assert parser.parse_args([*argv, "--out", "elsewhere"]).out == "elsewhere"
    assert parser.parse_args(["--out", "before", *argv]).out == "before"
    assert parser.parse_args(argv).out == "results"
    if argv[0] == "schedule":
        assert parser.parse_args(["schedule", "--out", "mid", *argv[1:]]).out == "mid"


def test_compare_check_and_report_read_out_when_given_no_paths(tmp_path, capsys):
    assert cli.main(["check", "--out", str(tmp_path)]) == 0
    assert f"no measured cells under {tmp_path}" in capsys.readouterr().out


def test_ctrl_c_prints_the_exact_resume_command(monkeypatch, tmp_path, capsys):
    def interrupted(**kwargs):
        kwargs["reporter"].run_started(
            "20261201-abc", tmp_path, [], 0, RunPlan(ProtocolSettings(), ())
        )
        raise KeyboardInterrupt

    monkeypatch.setattr("greenbench.run", interrupted)
    out = str(tmp_path / "my results")
    assert cli.main(["run", "--suite", "tiny", "--out", out]) == cli.EXIT_INTERRUPTED
    printed = " ".join(capsys.readouterr().out.split())
    assert f"greenbench run --resume 20261201-abc --out {shlex.quote(out)}" in printed


def test_forecast_without_a_source_names_the_variables_and_the_file_source(
    monkeypatch, tmp_path, capsys
):
    for variable in ("ELECTRICITYMAPS_TOKEN", "WATTTIME_USERNAME", "CARBON_AWARE_SDK_URL"):
        monkeypatch.delenv(f"GREENBENCH_{variable}", raising=False)
    monkeypatch.setenv("GREENBENCH_CONFIG", str(tmp_path / "none.toml"))
    assert cli.main(["forecast", "--zone", "DE", "--out", str(tmp_path)]) == cli.EXIT_USAGE
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "GREENBENCH_ELECTRICITYMAPS_TOKEN" in line and "--source file:PATH" in line


def test_the_weights_error_names_the_installed_hubs_download_command(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match=r"fetch it once \(hf download nobody/nothing\)"):
        check_weights("nobody/nothing")
    assert "hf" in hub_cli.hub_commands()  # huggingface-hub >= 0.34 ships `hf`
    monkeypatch.setattr(hub_cli, "hub_commands", lambda: {"huggingface-cli"})
    assert hub_cli.download_hint("org/m") == "huggingface-cli download org/m"


# item 7: schedules in the user's terms


def test_schedule_list_shows_the_users_own_terms(tmp_path, capsys):
    ScheduleStore(tmp_path).add(
        "weekdays", "tiny", "30 21 * * mon-fri", 8 * 3600, "GB", tz="Europe/London"
    )
    assert cli.main(["schedule", "list", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    (row,) = [" ".join(line.split()) for line in out.splitlines() if "weekdays" in line]
    assert row.startswith("│ weekdays │ 30 21 * * mon-fri │ Europe/London │ tiny │ GB │ 8h │")
    assert " UTC │" in row and "cron[" not in out
    (job,) = ScheduleStore(tmp_path).list()
    assert job.next_run_utc is not None and job.next_run_utc > dt.datetime.now(dt.UTC)


# item 8: compare


def stored(tmp_path, groups):
    store = RunStore.create(tmp_path, {"status": "complete"})
    store.append([build_record(r, {"run_id": store.run_id}) for g in groups for r in g])
    return str(store.path)


def test_compare_by_an_axis_with_one_value_says_there_is_nothing_to_compare(tmp_path, capsys):
    path = stored(tmp_path, [rows("fp32", [1.0, 1.02, 0.98]), rows("int8", [0.5, 0.51, 0.49])])
    assert cli.main(["compare", path, "--by", "device"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "nothing to compare by device: every result has the same device (cpu)" in out
    assert "ratio" not in out and "mJ/unit ± CI95" in out  # the figures, without 1s
    assert cli.main(["compare", path, "--by", "variant"]) == 0
    assert "ratio" in capsys.readouterr().out


def test_compare_help_documents_every_axis_and_by_run(capsys):
    with contextlib.suppress(SystemExit):
        cli.main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--by run --baseline RUN_A" in text
    for axis in ("variant", "device", "workload", "run"):
        assert f"{axis} " in text
