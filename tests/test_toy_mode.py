"""Adding a mode is one module plus one row of bench.modes.MODE_TABLE: a toy mode registered
here, at test time, goes through plan, run, table, report and compare without any of them
being touched.

The toy module lives only in this process (`sys.modules`) and its row only in this process's
table (monkeypatch), so the cells run in process through `bench.engine.worker.run_cell`, the whole
of a worker's job (prepare, first call, equivalence with eager, measurement, paired speed-up,
teardown); the runner's worker processes start from a fresh interpreter and would not see a
registration made here. The runner itself is mode-agnostic (tests/test_runner.py).
"""

import dataclasses
import sys
import types

import pytest
from conftest import SMALL_CNN
from runs import write_run

from bench.engine import plan
from bench.modes import EAGER, INFER, MODE_TABLE, ModeInfo
from bench.store.record import Status

TOY = "toy"


def _toy_module() -> types.ModuleType:
    """The toy mode: eager's ops, with the step wrapped in a plain Python closure and a
    setup stage of its own. Inference only, so its training cells must be skipped."""
    module = types.ModuleType("toy_mode_for_tests")

    def prepare(request):
        from bench.modes import eager
        from bench.store.record import SetupStage

        inner = eager.prepare(request)
        calls = []

        def step():
            calls.append(1)
            return inner.step()

        return dataclasses.replace(inner, step=step, setup_s={SetupStage.BUILD: 0.0},
                                   extra={"mode_impl": TOY, "toy_calls": calls})

    module.prepare = prepare
    return module


@pytest.fixture
def toy_mode(monkeypatch):
    module = _toy_module()
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(MODE_TABLE, TOY, ModeInfo(
        TOY, "eager ops in a Python closure (test only)", tolerance=1e-6,
        train_tolerance=None, order=99, color="#123456", phases=(INFER,),
        not_applicable="not applicable: the {mode} mode does not {phase}",
        module=module.__name__))
    return TOY


def test_a_registered_toy_mode_goes_through_plan_run_table_report_and_compare(
        toy_mode, tmp_path):
    from bench.engine.worker import CellOptions, run_cell
    from bench.store.runfiles import load_run
    from reports.compare import compare_runs
    from reports.plots import mode_colors
    from reports.report import build_report
    from reports.table import records_frame

    # Plan: the toy mode is an accepted value and expands like any other mode.
    suite = plan.load_suite("smoke")
    cells = plan.expand(suite, cases=[SMALL_CNN], modes=[EAGER, toy_mode],
                        phases=["infer", "train"])
    assert {(c.mode, c.phase) for c in cells} == {
        (EAGER, "infer"), (EAGER, "train"), (toy_mode, "infer"), (toy_mode, "train")}

    # Run: every cell through the worker's whole job, in this process.
    options = CellOptions.from_settings(suite.settings, budget_s=0.05, paired_budget_s=0.05,
                                        min_samples=3, warmup=1)
    records = [run_cell(cell, options) for cell in cells]
    by_cell = {(r.cell.mode, r.cell.phase): r for r in records}
    toy = by_cell[(toy_mode, "infer")]
    assert toy.status == Status.OK and toy.equivalent and toy.tolerance == 1e-6
    assert toy.paired_s and toy.mode_impl == toy_mode
    assert list(toy.setup_s) == ["build", "first_call"]
    skipped = by_cell[(toy_mode, "train")]
    assert skipped.status == Status.SKIPPED
    assert skipped.reason == "not applicable: the toy mode does not train"

    def run_file(name: str, run_id: str):
        stamped = [dataclasses.replace(r, run_id=run_id) for r in records]
        return load_run(write_run(tmp_path / name, stamped, run_id=run_id))

    baseline, current = run_file("base.jsonl", "base"), run_file("current.jsonl", "current")

    # Table: a row per cell, with the same columns as any mode's rows, and a speed-up.
    frame = records_frame([current])
    toy_rows = frame[frame["mode"] == toy_mode]
    assert len(toy_rows) == 2
    assert toy_rows.set_index("phase").loc["infer", "images_per_s"] > 0
    assert mode_colors([toy_mode, EAGER])[toy_mode] == "#123456"

    # Report: the toy mode appears in the page like the built-in ones.
    html = build_report([current]).html
    assert f">{toy_mode}<" in html or f"{toy_mode}</" in html

    # Compare: the toy cells are compared like any other.
    result = compare_runs([baseline], [current])
    keys = set(result.rows["key"])
    assert any(f"/{toy_mode}/infer/" in k for k in keys), keys


def test_the_toy_registration_does_not_outlive_its_test():
    assert TOY not in MODE_TABLE
