"""Pooling: the records of one cell (its rounds, and the runs given together) -> one PooledCell.

The one place rounds are combined, for the tables, the comparison and the history. Samples
are kept per worker, keyed (run index, round), because a worker is the replicate between-worker
statistics need; `samples` concatenates them. The status is the worst round's
(bench.store.record.Status severity), and a cell is ok only when every round was. Setup stages and
the first result take the median over rounds (one slow first call should not dominate); memory
takes the maximum (a peak is a peak); graph node counts and probe facts come from the earliest
round that has them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import numpy as np

from bench.stats.replicates import worker_speedup, worker_throughput
from bench.store.record import Cell, Record, Status, severity
from bench.store.runfiles import Run

Worker = tuple[int, int]  # (run index, round)


@dataclass
class PooledCell:
    """All rounds of one cell."""

    cell: Cell
    status: str  # the worst round's
    reason: str  # the worst round's; empty when ok
    rounds: int
    round_samples: dict[Worker, np.ndarray]  # ok rounds' step times per worker
    images_per_step: int
    # One value per worker: its images/s and its paired speed-up over eager.
    worker_ips: dict[Worker, float] = field(default_factory=dict)
    worker_speedups: dict[Worker, float] = field(default_factory=dict)
    setup_stages: dict[str, float] = field(default_factory=dict)  # stage -> median seconds
    first_result_s: float | None = None
    peak_rss_mb: float | None = None
    peak_device_mb: float | None = None
    graph_nodes: dict[str, int] = field(default_factory=dict)
    max_abs_diff: float | None = None
    tolerance: float | None = None
    equivalent: bool | None = None
    macs: int | None = None
    params: int | None = None
    flops_per_image: float | None = None
    wall_s: float | None = None
    debug: dict[str, Any] = field(default_factory=dict)
    other_load: float | None = None
    cpus: list[int] = field(default_factory=list)
    # Per-pair ratios (eager / mode, step by step): the within-worker CI of a cell that ran in
    # one worker.
    pair_ratios: list[float] = field(default_factory=list)
    batches_per_call: int = 1  # dataset input: batches in one measured call (an epoch)
    time_s: dict[str, float] = field(default_factory=dict)  # stage -> seconds, summed over rounds

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    @property
    def samples(self) -> np.ndarray:
        parts = [self.round_samples[r] for r in sorted(self.round_samples)]
        return np.concatenate(parts) if parts else np.empty(0)

    def images_per_s(self, samples: np.ndarray | None = None) -> float:
        median_s = float(np.median(self.samples if samples is None else samples))
        return self.images_per_step / median_s if median_s > 0 else math.inf


def pool_cells(runs: Sequence[Run]) -> dict[str, PooledCell]:
    """The records of some runs grouped by cell key; rounds (and runs) of a cell are pooled."""
    grouped: dict[str, list[tuple[int, Record]]] = {}
    for index, run in enumerate(runs):
        for record in run.records:
            grouped.setdefault(record.cell.key, []).append((index, record))
    return {key: pool(items) for key, items in grouped.items()}


def pool(items: Sequence[tuple[int, Record]]) -> PooledCell:
    """(run index, record) pairs of one cell -> one PooledCell."""
    records = [record for _, record in items]
    worst = max(records, key=lambda r: severity(r.status))
    ok = worst.status == Status.OK
    rounds: dict[Worker, list[float]] = {}
    worker_ips: dict[Worker, float] = {}
    worker_speedups: dict[Worker, float] = {}
    for index, record in items:
        if record.status == Status.OK and record.samples_s:
            rounds.setdefault((index, record.round), []).extend(record.samples_s)
        ips, speedup = worker_throughput(record), worker_speedup(record)
        if ips:
            worker_ips[(index, record.round)] = ips
        if speedup:
            worker_speedups[(index, record.round)] = speedup
    stages: dict[str, list[float]] = {}
    graph_nodes: dict[str, int] = {}
    debug: dict[str, Any] = {}
    for record in records:
        for stage, seconds in record.setup_s.items():
            stages.setdefault(stage, []).append(float(seconds))
    for record in sorted(records, key=lambda r: r.round):  # the earliest round wins
        for name, count in record.graph_nodes.items():
            graph_nodes.setdefault(name, count)
        for name, value in record.debug.items():
            debug.setdefault(name, value)
    loads = [r.load.get("other_cores") for r in records if r.status == Status.OK and r.load]
    time_s: dict[str, float] = {}
    for record in records:
        for stage, seconds in record.time_s.items():
            time_s[stage] = time_s.get(stage, 0.0) + float(seconds)
    diffs = [r.max_abs_diff for r in records if r.max_abs_diff is not None]
    verdicts = [v for v in map(_equivalent, records) if v is not None]
    return PooledCell(
        cell=records[0].cell,
        status=worst.status,
        reason="" if ok else worst.reason,
        rounds=len(records),
        round_samples={k: np.asarray(v, dtype=float) for k, v in rounds.items()},
        images_per_step=_first(r.images_per_step for r in records) or records[0].cell.batch,
        worker_ips=worker_ips,
        worker_speedups=worker_speedups,
        setup_stages={k: median(v) for k, v in stages.items()},
        first_result_s=_median_or_none(r.first_result_s for r in records),
        peak_rss_mb=_max_or_none(r.peak_rss_mb for r in records),
        peak_device_mb=_max_or_none(r.peak_device_mb for r in records),
        graph_nodes=graph_nodes,
        max_abs_diff=max(diffs) if diffs else None,
        tolerance=_first(r.tolerance for r in records),
        equivalent=all(verdicts) if verdicts else None,
        macs=_first(r.macs_per_image for r in records),
        params=_first(r.params for r in records),
        flops_per_image=_first(r.flops_per_image for r in records),
        wall_s=_sum_or_none(r.wall_s for r in records),
        debug=debug,
        other_load=max((v for v in loads if v is not None), default=None),
        cpus=next((r.cpus for r in records if r.cpus), []),
        pair_ratios=[e / m for r in records if ok
                     for m, e in zip(r.paired_s, r.paired_eager_s, strict=False) if m > 0],
        batches_per_call=_first(r.batches_per_call for r in records) or 1,
        time_s=time_s,
    )


def _equivalent(record: Record) -> bool | None:
    """The record's verdict, or max_abs_diff <= tolerance when only the numbers were stored."""
    if record.equivalent is not None:
        return bool(record.equivalent)
    if record.max_abs_diff is not None and record.tolerance is not None:
        return record.max_abs_diff <= record.tolerance
    return None


def _first(values: Iterable[Any]) -> Any:
    return next((v for v in values if v not in (None, 0)), None)


def _median_or_none(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if present else None


def _max_or_none(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _sum_or_none(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None

