"""The first run: time accounting in every record, an ETA from a corrected cost model, and a
verdict in the terminal, checked on real recorded runs (timing values are never asserted,
only their structure and bookkeeping)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import SMALL_CNN

from bench.engine.eta import (
    Budget,
    Corrector,
    Estimate,
    Forecast,
    actual,
    cell_shape,
    estimate,
)
from bench.engine.lifecycle import Laps
from bench.store.record import TIME_STAGES, Cell, Record
from bench.store.runfiles import load_run, load_runs
from reports.table import records_frame
from reports.time_spent import by_mode, by_stage, eta_accuracy, eta_error_at, time_line
from reports.verdict import verdict_lines, with_labels

ROOT = Path(__file__).resolve().parent.parent
BUDGET = Budget(warmup=1, min_samples=5, budget_s=0.5, paired_budget_s=0.5, paired=True)


def _cell(mode="session", phase="infer", batch=1, case="cnn", config=""):
    return Cell(case, config, mode, phase, batch=batch, threads="1")


def test_laps_add_up_to_the_wall_time():
    started = time.perf_counter()
    laps = Laps(started)
    time.sleep(0.01)
    laps.lap("inputs")
    time.sleep(0.02)
    laps.split("warmup", "sampling", 0.005)
    laps.lap("inputs")  # a stage met twice accumulates
    wall = time.perf_counter() - started
    assert list(laps.stages) == ["inputs", "warmup", "sampling"]
    assert laps.stages["warmup"] == pytest.approx(0.005)
    assert sum(laps.stages.values()) == pytest.approx(wall, abs=1e-3)


def test_split_never_charges_more_than_the_lap():
    laps = Laps(time.perf_counter())
    laps.split("warmup", "sampling", 100.0)
    assert laps.stages["sampling"] == pytest.approx(0.0, abs=1e-3)


def test_estimates_grow_with_the_work_a_cell_does():
    small = estimate(cell_shape(_cell(), {"cpu/t1": 1e11}, probes=False), BUDGET)
    big = estimate(cell_shape(_cell(batch=64, case="mobilenet", config="alpha=1.0"),
                              {"cpu/t1": 1e11}, probes=False), BUDGET)
    probed = estimate(cell_shape(_cell(), {"cpu/t1": 1e11}, probes=True), BUDGET)
    assert big.total_s > small.total_s > 0
    assert probed.probes_s > 0 and small.probes_s == 0
    xla = estimate(cell_shape(_cell("xla", "train", case="mobilenet"), {"cpu/t1": 1e11}, False),
                   BUDGET)
    eager = estimate(cell_shape(_cell("eager", "train", case="mobilenet"), {"cpu/t1": 1e11},
                                False), BUDGET)
    assert xla.fixed_s > eager.fixed_s  # compiling costs more than nothing


def test_not_applicable_cells_cost_nothing():
    shape = cell_shape(_cell("frozen", "train"), {}, probes=True)
    assert not shape.applicable and estimate(shape, BUDGET).total_s == 0


def test_corrector_learns_the_machine_and_shrinks_early():
    corrector = Corrector.empty()
    prior = Estimate(fixed_s=2.0, budget_s=1.0)
    assert corrector.corrected("xla", prior) == pytest.approx(3.0)  # nothing learned yet
    for _ in range(200):  # this machine compiles 3x slower and measures 2x slower
        corrector.add("xla", prior, Estimate(fixed_s=6.0, budget_s=2.0))
    assert corrector.factor("fixed", "xla") == pytest.approx(3.0, rel=0.05)
    assert corrector.factor("budget") == pytest.approx(2.0, rel=0.05)
    # another mode's fixed part moves with the global factor (shrunk toward it)
    assert corrector.factor("fixed", "eager") == pytest.approx(corrector.factor("fixed"))
    one = Corrector.empty()
    one.add("xla", prior, Estimate(fixed_s=60.0, budget_s=1.0))  # one outlier: damped
    assert one.factor("fixed", "xla") < 60.0 / 2.0


def test_forecast_takes_finished_cells_off_and_learns():
    cells = [_cell("session"), _cell("eager")]
    forecast = Forecast([(c, Estimate(fixed_s=1.0, budget_s=1.0)) for c in cells], tail_s=5)
    assert forecast.remaining_s() == pytest.approx(9.0)
    done = Record(cells[0], "ok", time_s={"setup": 1.0, "sampling": 1.0})
    forecast.done(done)
    assert forecast.remaining_s() == pytest.approx(7.0)
    assert actual(done).fixed_s == 1.0 and actual(done).measure_s == 1.0


def test_shape_reads_layers_and_flops_without_tensorflow():
    code = ("import sys; from bench.engine.eta import cell_shape; "
            "from bench.store.record import Cell; "
            "s = cell_shape(Cell('mobilenet', 'alpha=0.25,resolution=96', 'xla', 'train', "
            "batch=4, threads='1'), {'cpu/t1': 1e11}, True); "
            "assert s.layers > 10 and s.flops_per_step > 0 and s.peak_flops == 1e11; "
            "assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def _suite(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(
        'description = "test"\n[settings]\nbudget_s = 0.1\npaired_budget_s = 0.1\n'
        'min_samples = 3\nwarmup = 1\nprobes = "once"\n[defaults]\n'
        'modes = ["session", "frozen", "eager"]\nphases = ["infer", "train"]\nthreads = [1]\n'
        f'[[case]]\nspec = "{SMALL_CNN}"\nbatches = [2]\n')
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A real tiny run through the CLI: its stdout (the verdict) and its run file."""
    tmp = tmp_path_factory.mktemp("first")
    out = tmp / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "bench", "run", "--suite",
                             str(_suite(tmp)), "--out", str(out), "--quiet", "--report",
                             str(tmp / "r.html")], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result, load_run(next(out.glob("*.jsonl")))


def test_every_record_says_where_its_time_went(recorded):
    _, run = recorded
    for record in run.records:
        assert set(record.time_s) <= set(TIME_STAGES)
        if record.status == "ok":
            for stage in ("start", "inputs", "setup", "first_call", "sampling", "reference"):
                assert record.time_s.get(stage, 0) > 0, (record.cell.key, stage)
            assert sum(record.time_s.values()) >= record.wall_s  # + the runner's share
    probed = [r for r in run.records if r.debug]
    assert probed and all(r.time_s["probes"] > 0 for r in probed)
    paired = [r for r in run.records if r.paired_s]
    assert paired and all(r.time_s["paired"] > 0 for r in paired)


def test_eta_promises_are_recorded_and_checkable(recorded):
    _, run = recorded
    assert run.elapsed_s and run.elapsed_s > 0
    table = eta_accuracy(run)
    assert len(table) == len(run.records)
    assert (table["promised_left_s"] >= 0).all()
    assert table["actual_left_s"].is_monotonic_decreasing
    assert eta_error_at(run, 0.1) is not None


def test_time_accounting_tables(recorded):
    _, run = recorded
    stages = by_stage([run])
    assert {"sampling", "setup", "reference"} <= set(stages["stage"])
    assert stages["share"].sum() == pytest.approx(1.0)
    modes = by_mode([run])
    assert set(modes["mode"]) == {"session", "frozen", "eager"}
    assert (modes["total"] >= modes["measuring"]).all()
    assert time_line([run]).startswith("time: ")


def test_the_terminal_verdict_names_the_findings(recorded):
    result, run = recorded
    out = result.stdout
    assert out.startswith("What this run found")
    assert "infer batch 2:" in out and "train batch 2:" in out
    assert "first result soonest" in out and "most debuggable" in out
    assert "failed: none" in out and "disagreed with eager: none" in out
    assert "report: " in out and "time: " in out
    assert len(out.strip().splitlines()) <= 14


def test_verdict_names_failures_and_disagreements():
    frame = with_labels(records_frame(load_runs(
        [ROOT / "tests" / "data" / "quick-cpu-xeon.jsonl"])))
    frame.loc[frame.index[0], "status"] = "crashed"
    wrong = frame.index[frame["status"] == "ok"][0]
    frame.loc[wrong, "equivalent"] = False
    text = "\n".join(verdict_lines(frame, "x.html"))
    assert f"failed: 1: {frame.loc[frame.index[0], 'key']} (crashed)" in text
    assert f"disagreed with eager: 1: {frame.loc[wrong, 'key']}" in text
    assert "x [" in text  # speed-ups are shown with their interval
    assert "report: x.html" in text


def test_full_table_stays_available_for_scripts(recorded, tmp_path):
    _, run = recorded
    frame = records_frame([run])
    assert isinstance(frame, pd.DataFrame) and not frame.empty
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "bench", "run", "--suite",
                             str(_suite(tmp_path)), "--mode", "eager", "--phase", "infer",
                             "--out", str(tmp_path / "o"), "--quiet", "--format", "csv"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("case,")
    assert "What this run found" not in result.stdout


def test_measuring_is_bounded_by_the_budget_or_by_slow_steps():
    fast = estimate(cell_shape(_cell("optimized"), {"cpu/t1": 1e11}, False), BUDGET)
    assert fast.budget_s > 0 and fast.steps_s < fast.budget_s
    slow_budget = Budget(warmup=1, min_samples=50, budget_s=0.01, paired_budget_s=0.01,
                         paired=True)
    slow = estimate(cell_shape(_cell("keras", "train", batch=64, case="mobilenet"),
                               {"cpu/t1": 1e10}, False), slow_budget)
    assert slow.budget_s == 0 and slow.steps_s > 0


def test_report_has_a_time_section_and_eta_check(recorded):
    from reports.report import build_report

    _, run = recorded
    html = build_report([run]).html
    assert 'id="time"' in html and "Where the time went" in html
    assert "sampling" in html and "paid once per cell whatever the budget" in html
    assert "Error of the remaining time the progress display printed" in html


def test_scorecard_colours_only_where_a_direction_is_better():
    from reports.report import _probe_cell

    count = _probe_cell("dbg_graph_nodes", 53.0, (10.0, 100.0))
    assert count.style == ""  # a graph's size is not better or worse for debugging
    fast = _probe_cell("dbg_cold_start_s", 0.1, (0.1, 1.0))
    slow = _probe_cell("dbg_cold_start_s", 1.0, (0.1, 1.0))
    assert "hsl(120" in fast.style and "hsl(0," in slow.style  # lower is better
    assert _probe_cell("dbg_nan_detected", True, (0, 0)).css == "good"
    assert _probe_cell("dbg_batch_norm_folded", True, (0, 0)).css == ""  # a fact, not a grade
    listed = _probe_cell("dbg_fused_op_types", '["BiasAdd","Relu"]', (0, 0))
    assert "2 names" in str(listed.markup) and "BiasAdd, Relu" in str(listed.markup)
    assert "varies: phase: infer yes" in str(
        _probe_cell("dbg_nan_detected", "mixed", (0, 0), "phase: infer yes · train no").markup)


def test_scorecard_explains_where_a_probe_varies(recorded):
    from reports.pivots import scorecard

    _, run = recorded
    card = scorecard(records_frame([run]))
    eager = card[card["mode"] == "eager"].iloc[0]
    # eager's Python runs every step in both phases, but a different number of calls
    assert eager["dbg_python_calls_per_step__varies"].startswith("phase: infer")
    assert eager["dbg_fault_layer__varies"] == ""  # the same layer in every cell


def test_estimate_prints_the_plan_and_runs_nothing(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "bench", "run", "--suite", "overview",
                             "--estimate", "--out", str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("overview: 84 cells (76 run, 8 not applicable), estimated ")
    assert "reference machine" in result.stdout
    assert not list(tmp_path.iterdir())
