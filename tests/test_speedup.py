"""The one speed-up over eager: paired where the workers measured it, separate workers else."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from bench.store.record import Cell, Record, Status
from reports.pool import pool
from reports.speedup import (
    PAIRED,
    REFERENCE,
    UNPAIRED,
    eager_key,
    speedup_over_eager,
)

MEDIAN_S = {"eager": 0.010, "function": 0.005}


def records(mode: str, rounds: int = 3, paired: bool = True, seed: int = 0) -> list[Record]:
    """Rounds of one 1-thread cell; non-eager workers also time 40 alternating pairs."""
    rng = np.random.default_rng(seed + len(mode))
    out = []
    for r in range(rounds):
        steps = MEDIAN_S[mode] * rng.lognormal(0.0, 0.03, 30)
        pairs = {}
        if paired and mode != "eager":
            pairs = {"paired_s": (0.005 * rng.lognormal(0.0, 0.03, 40)).tolist(),
                     "paired_eager_s": (0.010 * rng.lognormal(0.0, 0.03, 40)).tolist()}
        out.append(Record(Cell("cnn", "", mode, "infer", batch=4, threads="1"), Status.OK,
                          round=r, samples_s=steps.tolist(), images_per_step=4, **pairs))
    return out


def pooled(mode: str, **kwargs):
    return pool([(0, r) for r in records(mode, **kwargs)])


def contains(s) -> bool:
    return s.low <= s.value <= s.high and s.low < s.high


def test_paired_workers_give_a_paired_speedup_with_an_interval_across_them():
    s = speedup_over_eager(pooled("function"), pooled("eager"))
    assert s.source == PAIRED
    assert s.value == pytest.approx(2.0, rel=0.03)
    assert contains(s)
    assert len(s.samples) == 3  # one per worker
    assert s.value == pytest.approx(math.exp(np.mean(np.log(s.samples))))


def test_separate_workers_give_a_throughput_ratio_with_a_bootstrap_interval():
    cell, eager = pooled("function", paired=False), pooled("eager")
    s = speedup_over_eager(cell, eager)
    assert s.source == UNPAIRED
    assert s.value == pytest.approx(cell.images_per_s() / eager.images_per_s())
    assert contains(s)
    assert len(s.samples) == 3 and len(s.replicates) > 100  # per round; the bootstrap
    assert speedup_over_eager(cell, eager) == s  # seeded: the same runs, the same interval


def test_paired_false_asks_for_the_separate_workers_ratio():
    s = speedup_over_eager(pooled("function"), pooled("eager"), paired=False)
    assert s.source == UNPAIRED and s.value == pytest.approx(2.0, rel=0.03)


def test_one_paired_worker_takes_its_interval_from_its_pairs():
    s = speedup_over_eager(pooled("function", rounds=1), pooled("eager", rounds=1))
    assert s.source == PAIRED and len(s.samples) == 1
    assert contains(s)


def test_no_speedup_without_an_ok_eager_partner_or_an_ok_cell():
    cell, eager = pooled("function", paired=False), pooled("eager")
    assert speedup_over_eager(cell, None) is None
    failed = [dataclasses.replace(r, status=Status.ERROR, samples_s=[])
              for r in records("eager")]
    assert speedup_over_eager(cell, pool([(0, r) for r in failed])) is None
    skipped = [dataclasses.replace(r, status=Status.SKIPPED, samples_s=[], paired_s=[],
                                   paired_eager_s=[]) for r in records("function")]
    assert speedup_over_eager(pool([(0, r) for r in skipped]), eager) is None


def test_paired_workers_timed_eager_themselves_and_need_no_partner():
    s = speedup_over_eager(pooled("function"), None)
    assert s.source == PAIRED and s.value == pytest.approx(2.0, rel=0.03)
    assert speedup_over_eager(pooled("function"), None, paired=False) is None


def test_eager_itself_is_one():
    eager = pooled("eager")
    s = speedup_over_eager(eager, eager)
    assert (s.value, s.low, s.high, s.source) == (1.0, 1.0, 1.0, REFERENCE)


def test_the_eager_partner_differs_only_in_mode():
    cell = Cell("cnn", "channels=3", "xla", "train", "cpu", "feed", 32, "1")
    assert eager_key(cell) == dataclasses.replace(cell, mode="eager").key
    assert eager_key(cell).endswith("/eager/train/cpu/feed/b32/t1")
