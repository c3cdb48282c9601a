"""Dataset input through the worker: a measured call is an epoch, reported per batch and per
epoch, checked against eager's epoch before it counts."""

import pytest
from conftest import SMALL_CNN

from bench.engine.worker import CellOptions, run_cell
from bench.store.record import Cell

pytest.importorskip("tensorflow")

EPOCH = 2
OPTIONS = CellOptions(warmup=1, min_samples=3, budget_s=0.2, paired_budget_s=0.2,
                      epoch_batches=EPOCH)


@pytest.mark.parametrize(("mode", "phase"), [("session", "train"), ("function_epoch", "train"),
                                             ("keras", "infer")])
def test_worker_measures_epochs_and_checks_them_against_eager(tmp_path, mode, phase):
    from runs import write_run

    from bench.store.runfiles import load_runs
    from reports.table import records_frame

    case, _, config = SMALL_CNN.partition(":")
    record = run_cell(Cell(case, config, mode, phase, input="dataset", batch=2), OPTIONS)
    assert record.status == "ok", record.reason
    assert record.equivalent and record.max_abs_diff <= record.tolerance
    assert record.batches_per_call == EPOCH
    assert record.images_per_step == 2 and len(record.samples_s) >= 3
    # Paired samples are per batch on both sides: eager's reference step is an epoch too.
    assert record.paired_s and len(record.paired_s) == len(record.paired_eager_s)
    # (No timing ratio here: a factor of EPOCH = 2 hides in machine noise; tests assert
    # structure, benchmarks measure speed.)
    frame = records_frame(load_runs([write_run(tmp_path / "run.jsonl", [record])]))
    row = frame.iloc[0]
    assert row["input"] == "dataset" and row["epoch_batches"] == EPOCH
    assert row["epoch_s"] == pytest.approx(EPOCH * 2 / row["images_per_s"])
