"""Workers as replicates: statistics and gate decisions on synthetic worker values."""

import math

import numpy as np
import pytest

from bench.stats.replicates import (
    compare_replicates,
    needs_remeasure,
    outliers,
    summarize_replicates,
    worker_speedup,
    worker_throughput,
)
from bench.stats.samples import mann_whitney_u
from bench.store.record import Cell, Record
from bench.store.runfiles import Run, RunHeader
from reports.compare import compare_runs, confirmed_failures, needs_confirmation


def test_outliers_need_three_workers_and_flag_only_a_minority():
    assert outliers([100, 130], 0.1) == [False, False]  # two: no telling which one is off
    assert outliers([100, 101, 99, 70], 0.1) == [False, False, False, True]
    assert outliers([100, 102, 98], 0.1) == [False, False, False]
    assert outliers([100, 150, 60, 200], 0.1) == [False] * 4  # everyone disagrees: keep all


def test_summary_is_a_geometric_mean_with_a_t_interval_across_workers():
    s = summarize_replicates([100.0, 110.0, 105.0], 0.2)
    assert s.n == 3 and s.excluded == 0
    assert s.center == pytest.approx((100 * 110 * 105) ** (1 / 3))
    assert s.low < 100 < 110 < s.high  # t with 2 degrees of freedom: wide, and honest
    one = summarize_replicates([100.0], 0.1)
    assert one.n == 1 and math.isnan(one.low) and math.isnan(one.rel_halfwidth)
    slow = summarize_replicates([100.0, 101.0, 99.0, 60.0], 0.1)
    assert slow.excluded == 1 and slow.center == pytest.approx(100, rel=0.01)


def test_compare_replicates_change_and_significance():
    change, p = compare_replicates([100, 101, 99, 100], [90, 91, 89, 90])
    assert change == pytest.approx(-0.10, abs=0.005) and p < 0.001
    change, p = compare_replicates([100, 104, 96], [101, 97, 103])
    assert abs(change) < 0.02 and p > 0.5
    change, p = compare_replicates([100], [90, 91])
    assert change == pytest.approx(-0.095, abs=0.01) and math.isnan(p)


def test_needs_remeasure():
    assert needs_remeasure([100, 101, 99], 0.1, 3) is None
    assert "differ by" in needs_remeasure([100, 125], 0.1, 2)
    assert "from the median" in needs_remeasure([100, 101, 70], 0.1, 3)
    assert needs_remeasure([100, 101, 70, 99], 0.1, 3) is None  # three good ones left


# --------------------------------------------------------------------- gate on synthetic runs

CELL = Cell("cnn", "", "function", "infer", batch=8, threads="1")
EAGER = Cell("cnn", "", "eager", "infer", batch=8, threads="1")


def _worker(cell, round_index, step_s, paired=None, n=400, seed=0):
    """A worker whose steps sit tightly around its own median (within-worker noise 0.5%)."""
    rng = np.random.default_rng(seed)
    samples = list(step_s * (1 + 0.005 * rng.standard_normal(n)))
    record = Record(cell=cell, status="ok", round=round_index, samples_s=samples,
                    images_per_step=cell.batch, equivalent=True)
    if paired:
        mode_s, eager_s = paired
        record.paired_s = list(mode_s * (1 + 0.005 * rng.standard_normal(50)))
        record.paired_eager_s = list(eager_s * (1 + 0.005 * rng.standard_normal(50)))
    return record


def _run(worker_offsets, speedup=3.0, seed=0):
    """One run: workers whose whole process is offset (process-to-process noise)."""
    records = []
    for r, offset in enumerate(worker_offsets):
        eager_s = 0.030 * offset
        records.append(_worker(EAGER, r, eager_s, seed=seed + r))
        records.append(_worker(CELL, r, 0.010 * offset,
                               paired=(eager_s / speedup, eager_s), seed=seed + 10 + r))
    header = RunHeader(run_id=f"run{seed}", suite="t", started="2026-01-01T00:00:00+00:00",
                       machine={"fingerprint": "same"})
    return Run(header, records, complete=True, path=f"run{seed}.jsonl")


def test_pooled_samples_call_process_noise_significant_replicates_do_not():
    base = _run([1.00, 1.04, 0.97], seed=0)
    cur = _run([1.08, 1.03, 1.10], seed=100)  # other processes, same code: ~6% apart
    pooled_b = np.concatenate([r.samples_s for r in base.records if r.cell == CELL])
    pooled_c = np.concatenate([r.samples_s for r in cur.records if r.cell == CELL])
    assert mann_whitney_u(pooled_b, pooled_c) < 1e-10  # 1200 "independent" samples: "real"
    result = compare_runs([base], [cur], threshold=0.05, alpha=0.01, gate_absolute=True)
    row = result.rows[(result.rows.key == CELL.key) & (result.rows.metric == "images_per_s")]
    assert row.iloc[0]["p_value"] > 0.01 and row.iloc[0]["verdict"] == "same"
    assert "3 vs 3 workers" in row.iloc[0]["test"]
    assert not result.regressed


def test_paired_speedup_cancels_the_process_and_catches_a_real_slowdown():
    base = _run([1.00, 1.06, 0.95], speedup=3.0, seed=0)
    same = _run([1.10, 0.93, 1.02], speedup=3.0, seed=50)
    slower = _run([1.05, 0.98, 1.01], speedup=3.0 / 1.10, seed=90)  # the mode 10% slower
    assert not compare_runs([base], [same], threshold=0.05).regressed
    result = compare_runs([base], [slower], threshold=0.05)
    row = result.rows[(result.rows.key == CELL.key) & (result.rows.metric == "speedup_vs_eager")]
    assert row.iloc[0]["verdict"] == "regression" and row.iloc[0]["gated"]
    assert row.iloc[0]["change"] == pytest.approx(-0.0909, abs=0.01)
    assert needs_confirmation(result) == [CELL.key]


def test_a_flagged_cell_fails_only_when_the_confirmation_fails_too():
    base = _run([1.00, 1.01, 0.99], seed=0)
    slower = _run([1.0, 1.0, 1.0], speedup=2.5, seed=7)
    first = compare_runs([base], [slower], threshold=0.05)
    fluke_gone = compare_runs([base], [_run([1.0, 1.02, 0.98], seed=8)], threshold=0.05)
    still_slow = compare_runs([base], [_run([0.99, 1.0, 1.01], speedup=2.5, seed=9)],
                              threshold=0.05)
    assert len(first.failures()) and len(confirmed_failures(first, fluke_gone)) == 0
    assert list(confirmed_failures(first, still_slow)["key"]) == [CELL.key]


def test_worker_values_from_records():
    record = _worker(CELL, 0, 0.010, paired=(0.010, 0.030))
    assert worker_throughput(record) == pytest.approx(800, rel=0.01)
    assert worker_speedup(record) == pytest.approx(3.0, rel=0.01)
    assert worker_speedup(_worker(EAGER, 0, 0.03)) is None


def _group_run(factors, drift=1.0, seed=0):
    """Four graph modes of one group, each with 3 workers; `drift` scales every speed-up."""
    records = []
    for i, (mode, speedup) in enumerate(factors.items()):
        cell = Cell("cnn", "", mode, "infer", batch=8, threads="1")
        for r in range(3):
            noise = 1 + 0.01 * ((r + i + seed) % 3 - 1)
            records.append(_worker(cell, r, 0.01, paired=(0.03 / (speedup * drift * noise), 0.03),
                                   seed=seed + 10 * i + r))
    header = RunHeader(run_id=f"g{seed}", suite="t", started="2026-01-01T00:00:00+00:00",
                       machine={"fingerprint": "same"})
    return Run(header, records, complete=True, path=f"g{seed}.jsonl")


def test_a_shift_shared_by_the_group_is_drift_and_one_mode_moving_is_a_regression():
    speedups = {"session": 3.0, "function": 2.5, "xla": 1.2, "keras": 2.0}
    base = _group_run(speedups, seed=0)
    drifted = _group_run(speedups, drift=0.92, seed=1)  # the machine moved every mode by -8%
    assert compare_runs([base], [drifted], threshold=0.05).regressed  # raw: every mode "slower"
    assert not compare_runs([base], [drifted], threshold=0.05, shared_threshold=0.15).regressed
    planted = _group_run({**speedups, "function": 2.5 / 1.10}, drift=0.92, seed=2)
    result = compare_runs([base], [planted], threshold=0.05, shared_threshold=0.15)
    failed = result.failures()
    assert list(failed["key"]) == [Cell("cnn", "", "function", "infer", batch=8,
                                        threads="1").key]
    assert "after the group's shared -8" in failed["test"].iloc[0]
    everything = _group_run(speedups, drift=0.80, seed=3)  # all graph modes 20% slower
    assert compare_runs([base], [everything], threshold=0.05, shared_threshold=0.15).regressed
