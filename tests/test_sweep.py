"""Sweeps: a list of values for a numeric workload parameter, a cell per value, the cells of one
sweep run interleaved in one child under one idle baseline, and compared along the parameter."""

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import ONE_WINDOW_PROTOCOL, FakeMeter
from rich.console import Console

from greenbench import runner
from greenbench.api import RunPlan, _finished_cells
from greenbench.backends.base import Prepared
from greenbench.cell import Cell
from greenbench.cli import main
from greenbench.compare import compare
from greenbench.conclusion import conclusions
from greenbench.errors import GreenbenchError, SuiteError
from greenbench.eta import RunEta, cell_estimate_s, group_estimate_s
from greenbench.executors import local as local_module
from greenbench.executors import ray_executor
from greenbench.executors.base import CellFailed, group_jobs, plan_jobs
from greenbench.executors.local import LocalExecutor
from greenbench.executors.ray_executor import RayExecutor
from greenbench.protocol import Phase, ProtocolSettings, run_protocol
from greenbench.records import COLUMNS
from greenbench.suite import RunOverrides, Suite, load_suite, parse_param, resolve_suite
from greenbench.terminal import RichReporter, group_window_order, results_tables
from greenbench.workloads import WorkloadPreset


def write(tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return str(path)


# parsing


def test_a_toml_list_of_numbers_sweeps_and_several_keys_form_their_product(tmp_path):
    suite = load_suite(
        write(
            tmp_path,
            'workloads = ["slm-tiny"]\nvariants = ["fp32", "int8-dynamic"]\n'
            "[params.slm-tiny]\nbatch = [1, 4]\nnew_tokens = [2, 3]\nprompt_tokens = 8",
        )
    )
    cells = suite.cells()
    assert [c.cell_id for c in cells[:4]] == [
        "slm-tiny/fp32/cpu/batch=1/new_tokens=2",
        "slm-tiny/fp32/cpu/batch=1/new_tokens=3",
        "slm-tiny/fp32/cpu/batch=4/new_tokens=2",
        "slm-tiny/fp32/cpu/batch=4/new_tokens=3",
    ]
    assert len(cells) == 8 and {c.params["prompt_tokens"] for c in cells} == {8}
    assert cells[2].params["batch"] == 4 and cells[2].swept == ("batch", "new_tokens")
    assert cells[2].label == "slm-tiny batch=4 new_tokens=2"


def test_cells_without_a_sweep_keep_their_id_so_older_runs_resume():
    (cell,) = Suite("s", ("slm-tiny",), params={"slm-tiny": {"batch": 2}}).cells()
    assert cell.cell_id == "slm-tiny/fp32/cpu" and cell.swept == ()


def test_a_comma_list_on_the_command_line_sweeps_and_python_takes_a_dict():
    assert parse_param("batch=1,4,16").value == [1, 4, 16]
    assert parse_param("slm-tiny.new_tokens=2, 3").value == [2, 3]
    assert parse_param("batch=[1, 4]").value == [1, 4]  # a TOML array sweeps too
    flags = resolve_suite(RunOverrides(suite="tiny", params=["slm-tiny.batch=1,2"]))
    python = resolve_suite(RunOverrides(suite="tiny", params={"slm-tiny": {"batch": [1, 2]}}))
    for suite in (flags, python):
        ids = [c.cell_id for c in suite.cells() if c.workload == "slm-tiny"]
        assert ids == ["slm-tiny/fp32/cpu/batch=1", "slm-tiny/fp32/cpu/batch=2"]
    # a plain key sweeps every workload that has it
    both = resolve_suite(RunOverrides(suite="tiny", params=["batch=1,2"])).cells()
    assert {(c.workload, c.params["batch"]) for c in both} == {
        (w, b) for w in ("slm-tiny", "resnet-tiny") for b in (1, 2)
    }


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("batch=1,x", r"^--param: 'batch=1,x': a comma list sweeps numbers; 'x' is not one"),
        ("batch=1,,2", r"'' is not one"),
        ("batch=1,true", r"'true' is not one"),
        ("phases=prefill,decode", r"'prefill' is not one; a list value is TOML"),
    ],
)
def test_a_comma_list_that_is_not_numbers_is_one_line_naming_it(text, error):
    with pytest.raises(SuiteError, match=error):
        parse_param(text)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("[]", "'batch': an empty list sweeps nothing"),
        ("[1, 4, 1]", "'batch': 1 is given twice"),
        ('[1, "4"]', "'batch': a sweep takes numbers, got '4'"),
        ("[1, true]", "'batch': a sweep takes numbers, got True"),
        ("[1, 0]", "batch"),  # each value is checked as a single one would be
    ],
)
def test_bad_sweeps_in_a_suite_name_the_key(tmp_path, value, error):
    path = write(tmp_path, f'workloads = ["slm-tiny"]\n[params.slm-tiny]\nbatch = {value}')
    with pytest.raises(SuiteError, match=rf"key 'params.slm-tiny': .*{error}"):
        load_suite(path)


def test_only_numeric_parameters_sweep_and_list_valued_ones_keep_their_list(tmp_path):
    path = write(tmp_path, 'workloads = ["slm-tiny"]\n[params.slm-tiny]\nweights = ["a", "b"]')
    with pytest.raises(SuiteError, match="'weights' cannot be swept: only numeric parameters"):
        load_suite(path)
    path = write(tmp_path, 'workloads = ["slm-tiny"]\n[params.slm-tiny]\ncolour = [1, 2]')
    with pytest.raises(SuiteError, match="unknown parameter 'colour' for slm-tiny"):
        load_suite(path)
    (cell,) = Suite("s", ("slm-tiny",), params={"slm-tiny": {"phases": ["decode"]}}).cells()
    assert cell.params["phases"] == ["decode"] and cell.swept == ()


def test_a_bad_sweep_flag_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["run", "--suite", "tiny", "--param", "slm-tiny.batch=1,1", "--out", str(out)]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "greenbench: error: --param: slm-tiny: 'batch': 1 is given twice; give each value once"
    )
    assert not out.exists()


def test_interleave_sweeps_is_a_switch(tmp_path):
    path = write(tmp_path, 'workloads = ["slm-tiny"]\n[protocol]\ninterleave_sweeps = false')
    assert load_suite(path).protocol.interleave_sweeps is False
    path = write(tmp_path, 'workloads = ["slm-tiny"]\n[protocol]\ninterleave_sweeps = 0')
    with pytest.raises(SuiteError, match="protocol.interleave_sweeps': must be true or false"):
        load_suite(path)


# groups and resume

SWEEP = Suite(
    "s",
    ("slm-tiny", "resnet-tiny"),
    variants=("fp32", "bf16"),
    params={"slm-tiny": {"batch": [1, 2]}},
    zone="GB",
)


def planned(tmp_path, suite=SWEEP):
    return plan_jobs(suite.cells(), suite, "run1", tmp_path / "logs", {}, lambda cell: None)


def test_a_sweeps_cells_form_one_group_per_variant_and_device(tmp_path):
    jobs = planned(tmp_path)
    groups = group_jobs(jobs)
    assert [[j.cell.cell_id for j in g.jobs] for g in groups] == [
        ["slm-tiny/fp32/cpu/batch=1", "slm-tiny/fp32/cpu/batch=2"],
        ["slm-tiny/bf16/cpu/batch=1", "slm-tiny/bf16/cpu/batch=2"],
        ["resnet-tiny/fp32/cpu"],
        ["resnet-tiny/bf16/cpu"],
    ]
    group = groups[0]
    assert group.timeout_s == 2 * SWEEP.protocol.cell_timeout_s
    assert [s["cell"]["params"]["batch"] for s in group.spec()["group"]] == [1, 2]
    assert groups[2].spec() == jobs[4].spec()  # a cell alone: its own spec, as before
    assert group.lead.log_path == tmp_path / "logs" / "slm-tiny_fp32_cpu_batch=1.1.log"
    assert all(len(g.jobs) == 1 for g in group_jobs(jobs, interleave=False))


def test_a_sweep_under_gpu_power_limits_groups_per_limit(tmp_path):
    """The parent sets one limit around a child, so a group never mixes limits."""
    suite = Suite(
        "limits",
        ("slm-tiny",),
        devices=("cuda:0",),
        params={"slm-tiny": {"batch": [1, 2]}},
        power_limit_w=(250, 300),
        zone="GB",
    )
    groups = group_jobs(planned(tmp_path, suite))
    assert [[j.cell.cell_id for j in g.jobs] for g in groups] == [
        ["slm-tiny/fp32/cuda:0@250W/batch=1", "slm-tiny/fp32/cuda:0@250W/batch=2"],
        ["slm-tiny/fp32/cuda:0@300W/batch=1", "slm-tiny/fp32/cuda:0@300W/batch=2"],
    ]
    specs = groups[1].spec()["group"]
    assert [s["cell"]["power_limit_w"] for s in specs] == [300, 300]


def test_a_groups_records_are_split_per_cell_and_a_failure_fails_every_cell(tmp_path):
    group = group_jobs(planned(tmp_path))[0]
    ids = [j.cell.cell_id for j in group.jobs]
    rows = [{"cell_id": i, "phase": p, "status": "ok"} for i in ids for p in ("prefill", "decode")]
    split = group.outcomes(lambda: rows)
    assert [(cell.cell_id, [r["phase"] for r in records]) for cell, records in split] == [
        (ids[0], ["prefill", "decode"]),
        (ids[1], ["prefill", "decode"]),
    ]

    def fail():
        raise CellFailed("child process killed by SIGKILL")

    failed = group.outcomes(fail)
    assert [cell.cell_id for cell, _ in failed] == ids
    for cell, records in failed:
        assert {(r["status"], r["error"], r["cell_id"]) for r in records} == {
            ("failed", "child process killed by SIGKILL", cell.cell_id)
        }
        assert json.loads(records[0]["params"])["batch"] == cell.params["batch"]


def test_the_local_executor_runs_a_group_in_one_child_with_the_sum_of_timeouts(
    tmp_path, monkeypatch
):
    children = []

    def fake_child(spec, log, timeout_s, on_event):
        children.append((spec, timeout_s))
        members = spec.get("group", [spec])
        on_event({"type": "window", "phase": "prefill", "repetition": 1,
                  "cell_id": members[-1]["context"]["cell_id"]})  # fmt: skip
        return [{"cell_id": m["context"]["cell_id"], "phase": "forward"} for m in members]

    monkeypatch.setattr(local_module, "run_in_child", fake_child)
    events = []

    class Progress:
        def cell_started(self, cell):
            events.append(("started", cell.cell_id))

        def cell_event(self, cell, event):
            events.append(("event", cell.cell_id))

    suite = Suite("s", ("slm-tiny",), params={"slm-tiny": {"batch": [1, 2]}}, zone="GB")
    out = list(LocalExecutor().run(group_jobs(planned(tmp_path, suite)), Progress()))
    assert len(children) == 1 and children[0][1] == 2 * suite.protocol.cell_timeout_s
    assert [c.cell_id for c, _ in out] == [
        "slm-tiny/fp32/cpu/batch=1",
        "slm-tiny/fp32/cpu/batch=2",
    ]
    assert events[-1] == ("event", "slm-tiny/fp32/cpu/batch=2")  # routed to the cell it names


class FakeRay:
    """Ray's calls the executor makes; each task's outcome from `outcome(spec)`."""

    def __init__(self, outcome):
        self.outcome, self.tasks = outcome, []

    def remote(self, function):
        ray = self

        class Remote:
            def options(self, **options):
                return self

            def remote(self, spec, *args):
                ray.tasks.append(spec)
                return len(ray.tasks) - 1

        return Remote()

    def wait(self, refs, num_returns):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return self.outcome(self.tasks[ref])


def test_the_ray_executor_runs_a_group_as_one_task_and_splits_its_records(tmp_path, monkeypatch):
    def outcome(spec):
        ids = [m["context"]["cell_id"] for m in spec["group"]]
        return {"records": [{"cell_id": i, "phase": "decode", "repetition": 1} for i in ids],
                "context": {"node": "n1", "zone": "GB"}}  # fmt: skip

    fake = FakeRay(outcome)
    monkeypatch.setattr(ray_executor, "import_ray", lambda: fake)
    monkeypatch.setattr(ray_executor, "connect", lambda address: fake)
    suite = Suite("s", ("slm-tiny",), params={"slm-tiny": {"batch": [1, 2]}}, zone="GB")

    class Progress:
        events = []

        def cell_started(self, cell):
            pass

        def cell_event(self, cell, event):
            self.events.append(cell.cell_id)

    progress = Progress()
    out = list(RayExecutor().run(group_jobs(planned(tmp_path, suite)), progress))
    assert len(fake.tasks) == 1
    assert [(c.cell_id, [r["cell_id"] for r in rows]) for c, rows in out] == [
        (c.cell_id, [c.cell_id]) for c in suite.cells()
    ]
    assert progress.events == [c.cell_id for c in suite.cells()]
    fake.outcome = lambda spec: {"failed": "timed out", "context": {"node": "n3", "zone": "GB"}}
    failed = list(RayExecutor().run(group_jobs(planned(tmp_path, suite)), progress))
    assert {(r["cell_id"], r["status"], r["node"]) for _, rows in failed for r in rows} == {
        (c.cell_id, "failed", "n3") for c in suite.cells()
    }
    spec = group_jobs(planned(tmp_path, suite))[0].spec()
    on_node = ray_executor.node_spec(spec)
    assert [m["context"]["cell_id"] for m in on_node["group"]] == [c.cell_id for c in suite.cells()]
    assert set(ray_executor.node_context(on_node)) == {"node", "zone"}


def test_resume_finds_finished_sweep_cells(tmp_path):
    suite = Suite("s", ("slm-tiny",), params={"slm-tiny": {"batch": [1, 2]}})
    done, todo = suite.cells()
    reps = suite.protocol.repetitions
    rows = [
        {"cell_id": done.cell_id, "status": "ok", "phase": p}
        for p in done.phases
        for _ in range(reps)
    ] + [{"cell_id": todo.cell_id, "status": "failed", "phase": p} for p in todo.phases]
    assert _finished_cells(pd.DataFrame(rows), suite) == {done.cell_id}


# the interleaving inside a group


class FakeBackend:
    """What run_group asks of a backend, with phases that log their calls on a fake clock."""

    def __init__(self, clock, log):
        self.clock, self.log = clock, log

    def device_skip_reason(self, variant, device):
        return None

    def free_memory_bytes(self, device):
        return None

    def prepare(self, cell, emit):
        def phase(name):
            def step():
                self.clock.sleep(0.1)
                self.log.append(f"{cell.params['batch']}:{name}")

            return Phase(name, "token", cell.params["batch"], step)

        return Prepared(phases=[phase("prefill"), phase("decode")])

    def make_meter(self, device, zone, emit):
        return FakeMeter(self.clock, {"cpu": 10.0}, {"cpu": "rapl"})

    def synchronize(self, device):
        pass


def test_a_group_interleaves_repetitions_across_every_cells_phases_under_one_idle(
    clock, monkeypatch
):
    log = []
    monkeypatch.setattr(runner, "backend_for", lambda device: FakeBackend(clock, log))
    # counting the real model's parameters imports transformers: seconds this test need not wait
    monkeypatch.setattr(WorkloadPreset, "parameter_count", lambda self: 1000)
    monkeypatch.setattr(
        runner,
        "run_protocol",
        lambda *a, **k: run_protocol(*a, **{**k, "clock": clock, "sleep": clock.sleep}),
    )
    suite = Suite(
        "s",
        ("slm-tiny",),
        protocol=ProtocolSettings(repetitions=2, min_window_s=0.1, min_calls=1, warmup_calls=0),
        params={"slm-tiny": {"batch": [1, 4]}},
        zone="GB",
    )
    group = group_jobs(plan_jobs(suite.cells(), suite, "r", Path("logs"), {}, lambda c: None))[0]
    events = []
    records = runner.run_group(group.spec()["group"], events.append)
    assert log == [f"{b}:{p}" for _ in range(2) for b in (1, 4) for p in ("prefill", "decode")]
    windows = [(e["cell_id"][-7:], e["phase"], e["repetition"]) for e in events
               if e["type"] == "window"]  # fmt: skip
    assert windows == [
        (f"batch={b}", p, r) for r in (1, 2) for b in (1, 4) for p in ("prefill", "decode")
    ]
    by_cell = {}
    for r in records:
        by_cell.setdefault(r["cell_id"], []).append((r["phase"], r["repetition"]))
    assert by_cell == {
        f"slm-tiny/fp32/cpu/batch={b}": [("prefill", 1), ("decode", 1), ("prefill", 2),
                                         ("decode", 2)]
        for b in (1, 4)
    }  # fmt: skip
    assert {json.loads(r["params"])["batch"] for r in records} == {1, 4}
    assert len({r["idle_power_w"] for r in records}) == 1  # one baseline for the group
    assert [r["unit_count"] for r in records if r["phase"] == "prefill"] == [1, 1, 4, 4]


def test_the_memory_check_counts_every_model_of_the_group():
    class Small:
        def free_memory_bytes(self, device):
            return 3 * 4 * 10**6  # room for about three copies of a 1M-parameter model

    cell = Cell("slm-tiny", "fp32", "cuda", {}, ("batch",))
    assert runner.memory_skip_reason(cell, Small(), 10**6, models=2) is None
    reason = runner.memory_skip_reason(cell, Small(), 10**6, models=4)
    assert "the sweep's 4 models" in reason and "interleave_sweeps = false" in reason


# progress and ETA


def test_progress_follows_the_groups_interleaved_order_and_the_eta_counts_it_once(tmp_path, clock):
    protocol = ProtocolSettings(repetitions=2)
    one, four = (
        Cell("slm-tiny", "fp32", "cpu", {"batch": b, "phases": ["prefill"]}, ("batch",))
        for b in (1, 4)
    )
    assert group_window_order([one, four], 2) == [
        (one.cell_id, "prefill", 1),
        (four.cell_id, "prefill", 1),
        (one.cell_id, "prefill", 2),
        (four.cell_id, "prefill", 2),
    ]
    console = Console(file=open(tmp_path / "out", "w"), width=200)  # noqa: SIM115
    reporter = RichReporter(console, clock)
    plan = RunPlan(protocol, (one, four), ((one, four),))
    reporter.run_started("r1", tmp_path, [one, four], 4, plan)
    reporter.cell_started(one)
    reporter.cell_started(four)
    reporter.cell_event(one, {"type": "window", "phase": "prefill", "repetition": 1})
    assert reporter.description == f"{four.cell_id}: measuring prefill 1/2"
    reporter.cell_event(four, {"type": "window", "phase": "prefill", "repetition": 1})
    assert reporter.description == f"{one.cell_id}: measuring prefill 2/2"
    eta = reporter.eta_column.eta
    assert eta.remaining_s() == pytest.approx(group_estimate_s(protocol, [1, 1]))
    assert group_estimate_s(protocol, [1, 1]) < 2 * cell_estimate_s(protocol, 1)  # one idle
    reporter.close()
    console.file.close()
    assert "sweeps: slm-tiny batch=1,4" in (tmp_path / "out").read_text()


def test_the_eta_counts_a_groups_time_once():
    protocol = ProtocolSettings()
    eta = RunEta(protocol, clock=lambda: 10.0)
    eta.plan_groups({"g": [2, 2]})
    eta.started("g")
    eta.started("g")  # every cell of the group starts it: the first time counts
    assert eta.remaining_s() == pytest.approx(group_estimate_s(protocol, [2, 2]))


# compare, tables and conclusion


def sweep_rows(variant, batch, values, phase="decode"):
    return [
        {
            "run_id": "r",
            "cell_id": f"w/{variant}/cpu/batch={batch}",
            "attempt": 1,
            "workload": "w",
            "phase": phase,
            "params": json.dumps({"batch": batch, "new_tokens": 8}, sort_keys=True),
            "variant": variant,
            "device": "cpu",
            "node": "n",
            "repetition": i + 1,
            "unit": "token",
            "energy_per_unit_j": v,
            "throughput": 10.0,
            "power_w": 20.0,
            "method_cpu": "rapl",
            "method_gpu": "none",
            "method_ram": "none",
            "estimated": False,
            "reliable": True,
            "valid": True,
            "status": "ok",
        }
        for i, v in enumerate(values)
    ]


def sweep_frame():
    rows = [
        *sweep_rows("fp32", 1, [1.0, 1.01, 0.99]),
        *sweep_rows("fp32", 4, [0.5, 0.51, 0.49]),
        *sweep_rows("fp32", 16, [0.25, 0.26, 0.24]),
        *sweep_rows("int8", 1, [0.8, 0.81, 0.79]),
        *sweep_rows("int8", 4, [0.5, 0.51, 0.49]),
    ]
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def test_compare_by_a_swept_parameter_takes_ratios_against_its_baseline_value():
    table = compare(sweep_frame(), "batch")
    fp32 = table[table["variant"] == "fp32"]
    assert list(fp32["batch"]) == [1, 4, 16]  # by value, not as text
    assert list(fp32["ratio"]) == pytest.approx([1.0, 0.5, 0.25])
    assert set(table["baseline"]) == {"1"}
    against_4 = compare(sweep_frame(), "batch", baseline="4")
    int8 = against_4[against_4["variant"] == "int8"].set_index("batch")
    assert int8.loc[1, "ratio"] == pytest.approx(1.6)
    with pytest.raises(GreenbenchError, match="--baseline: no batch '2'.*have 1, 4, 16"):
        compare(sweep_frame(), "batch", baseline="2")
    with pytest.raises(GreenbenchError, match="--by: unknown axis 'colour'.*parameter \\(batch\\)"):
        compare(sweep_frame(), "colour")


def test_compare_by_variant_faces_the_same_batch(capsys):
    table = compare(sweep_frame(), "variant")
    int8 = table[table["variant"] == "int8"]
    assert list(int8["ratio"]) == pytest.approx([0.8, 1.0])  # each against fp32 at its batch


def test_tables_and_the_conclusion_show_swept_values_not_json():
    console = Console(width=200, record=True)
    for table in results_tables(sweep_frame()):
        console.print(table)
    text = console.export_text()
    assert "batch" in text and '{"batch"' not in text
    headings = [c.heading for c in conclusions(sweep_frame().replace({"int8": "int8-dynamic"}))]
    assert headings == ["w on cpu, batch=1, int8-dynamic", "w on cpu, batch=4, int8-dynamic"]
    found = conclusions(sweep_frame().replace({"int8": "int8-dynamic"}))
    assert found[0].phases[0].startswith("decode: 0.80x fp32")
    assert found[1].phases[0].startswith("decode: 1.00x fp32")


def test_the_conclusion_follows_the_swept_values_in_number_order():
    frame = pd.concat(
        [sweep_frame(), pd.DataFrame(sweep_rows("int8", 16, [0.2, 0.21, 0.19]))]
    ).reindex(columns=COLUMNS)
    headings = [c.heading for c in conclusions(frame.replace({"int8": "int8-dynamic"}))]
    assert [h.split(", ")[1] for h in headings] == ["batch=1", "batch=4", "batch=16"]


# end to end


@pytest.mark.slow
def test_a_tiny_sweep_runs_in_one_child_and_compares_by_batch(tmp_path, capsys):
    suite = tmp_path / "one.toml"
    suite.write_text(
        'workloads = ["slm-tiny"]\n[params.slm-tiny]\nprompt_tokens = 4\nnew_tokens = 2\n'
        + ONE_WINDOW_PROTOCOL
    )
    out = tmp_path / "results"
    argv = ["run", "--suite", str(suite), "--param", "batch=1,2", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "sweeps: slm-tiny batch=1,2" in printed
    assert "ok slm-tiny/fp32/cpu/batch=1" in printed and "ok slm-tiny/fp32/cpu/batch=2" in printed
    (run,) = out.iterdir()
    records = [json.loads(line) for line in (run / "records.jsonl").open()]
    assert {(json.loads(r["params"])["batch"], r["phase"]) for r in records} == {
        (b, p) for b in (1, 2) for p in ("prefill", "decode")
    }
    assert len({r["idle_power_w"] for r in records}) == 1  # one child, one baseline
    # one short window per cell: invalid by check's rules, kept here to see both values
    assert main(["compare", str(run), "--by", "batch", "--include-invalid"]) == 0
    compared = capsys.readouterr().out
    assert "by batch, workload slm-tiny" in compared and "ratios to 1" in compared
    rows = [line.split("│")[1].strip() for line in compared.splitlines() if line.startswith("│")]
    assert set(rows) >= {"1", "2"}  # the batch column: a row per value
    assert "INVALID batch=2 decode" in compared  # a swept value named as such


def test_list_names_a_suites_sweeps(tmp_path, monkeypatch):
    from greenbench import cli

    path = write(
        tmp_path, 'workloads = ["slm-tiny"]\ndescription = "d"\n[params.slm-tiny]\nbatch = [1, 4]'
    )
    monkeypatch.setattr(cli, "builtin_suites", lambda: {"swept": Path(path)})
    console = Console(width=200, record=True)
    console.print(cli.suites_table())
    text = console.export_text()
    assert "│ 2     │" in text and "d (sweeps: slm-tiny batch=1,4)" in text
