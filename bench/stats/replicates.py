"""Workers are the unit of replication: a cell's result is the spread of its workers.

Measured on the 2-vCPU machines this suite runs on, a cell's median inside one worker process
can be known to 1-2% while the next worker of the same cell lands 3-15% away (thread placement,
memory layout, drift over minutes). Pooling every step of every worker and testing them as
independent samples then calls that process-to-process noise significant. So, as pyperf
does with its worker processes, each worker contributes *one* value per metric:

- throughput: the worker's median step time;
- speed-up over eager: the ratio of eager's and the mode's median step times measured
  alternately inside that same worker (bench.engine.timing.measure_paired), so the worker's state
  cancels.

A cell's value is the geometric mean of its workers' values (ratios and rates average
geometrically), its 95% CI a Student-t interval on their logarithms, and two sets of workers are
compared with Student's t-test (pooled variance) on the logarithms. A worker far from the
cell's other workers (`outliers`) is left out, and the runner re-measures the cell in a fresh
worker when that happens (`needs_remeasure`). Plain numpy/scipy; no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.store.record import Status

CONFIDENCE = 0.95
# A worker whose value is further than this from the median of the cell's workers is an
# outlier. Measured on the 2-vCPU VMs this suite runs on: a pure-Python loop pinned alone to
# one CPU of an idle VM runs at a speed that varies 11% (CV) between 1-second windows and
# 0.6-1.0x over 30 s, so workers of one cell landing 10-20% apart is the machine, not the
# code; 25% is beyond that.
# Paired ratios are never left out: the machine's state cancels in them, and what remains far
# off is a real mode of the workload (Keras training here runs at one of two speeds, 23 or 45
# ms per batch, for a worker's whole life); dropping the minority mode biased the baseline.
THROUGHPUT_OUTLIER = 0.25
SPEEDUP_OUTLIER = math.inf


@dataclass(frozen=True)
class ReplicateSummary:
    """One metric over a cell's workers; NaN where it cannot be computed."""

    n: int  # workers used
    excluded: int  # workers left out as outliers
    center: float  # geometric mean of the used workers' values
    low: float  # 95% CI of the center (Student t on logs); NaN with fewer than 2 workers
    high: float
    cv: float  # spread of the used workers' values (std / mean); NaN with fewer than 2

    @property
    def rel_halfwidth(self) -> float:
        if not (self.n >= 2 and self.center > 0):
            return math.nan
        return (self.high - self.low) / 2.0 / self.center


def _positive(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    return arr[np.isfinite(arr) & (arr > 0)]


def outliers(values: Sequence[float], rel: float) -> list[bool]:
    """Which workers sit more than `rel` away from the median of all the cell's workers.

    Needs at least three workers (with two there is no telling which one is off; with three
    the median is the middle one, which one slow worker cannot move), and flags only a
    minority: when most workers disagree with each other nobody is the odd one out.
    """
    arr = np.asarray(values, dtype=float)
    n = arr.size
    if n < 3:
        return [False] * n
    center, limit = float(np.median(arr)), math.log1p(rel)
    flags = [bool(abs(math.log(v / center)) > limit) for v in arr]
    if sum(flags) * 2 >= n:
        return [False] * n
    return flags


def summarize_replicates(values: Sequence[float], rel: float) -> ReplicateSummary:
    """Geometric mean, t-interval and CV of the workers' values, outliers left out."""
    arr = _positive(values)
    if arr.size == 0:
        return ReplicateSummary(0, 0, math.nan, math.nan, math.nan, math.nan)
    flags = np.asarray(outliers(arr, rel), dtype=bool)
    used = arr[~flags]
    logs = np.log(used)
    center = float(np.exp(logs.mean()))
    if used.size < 2:
        return ReplicateSummary(1, int(flags.sum()), center, math.nan, math.nan, math.nan)
    from scipy.stats import t

    half = float(t.ppf(0.5 + CONFIDENCE / 2, used.size - 1) * logs.std(ddof=1)
                 / math.sqrt(used.size))
    cv = float(used.std(ddof=1) / used.mean())
    return ReplicateSummary(int(used.size), int(flags.sum()), center,
                            center * math.exp(-half), center * math.exp(half), cv)


def used_values(values: Sequence[float], rel: float) -> np.ndarray:
    """The workers' values that count (positive, finite, not outliers)."""
    arr = _positive(values)
    return arr[~np.asarray(outliers(arr, rel), dtype=bool)] if arr.size else arr


def compare_replicates(baseline: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """(relative change of the geometric mean, Student t-test p-value on the logarithms).

    The variance is pooled over both sides rather than taken per side (Welch): the machines
    this runs on drift over minutes, so a run's few workers, measured within minutes of each
    other, agree more closely than runs an hour apart do. The baseline, recorded with more
    workers over a longer stretch, carries the better estimate of how much the machine moves,
    and pooling lets it speak for both sides instead of trusting the current run's tight
    cluster (measured here: a clean run's MobileNet speed-ups sat 11% below the baseline with
    Welch p < 0.001 and within 10% in the confirmation run minutes later).
    Both sides need at least two workers for a p-value (NaN otherwise). Identical spreads of
    zero give p = 0 for different means and 1 for equal ones.
    """
    a, b = np.log(_positive(baseline)), np.log(_positive(current))
    if a.size == 0 or b.size == 0:
        return math.nan, math.nan
    change = math.exp(b.mean() - a.mean()) - 1.0
    if a.size < 2 or b.size < 2:
        return change, math.nan
    if a.std() == 0 and b.std() == 0:
        return change, 1.0 if a.mean() == b.mean() else 0.0
    from scipy.stats import ttest_ind

    return change, float(ttest_ind(b, a, equal_var=True).pvalue)


def needs_remeasure(values: Sequence[float], rel: float, wanted: int) -> str | None:
    """Why a cell should get another worker, or None.

    Two workers further apart than `rel`: a third tells which one is off. Three or more with
    an outlier and fewer than `wanted` good workers left: a fresh worker replaces it.
    """
    arr = _positive(values)
    if arr.size == 2:
        apart = abs(math.log(arr[0] / arr[1]))
        if apart > math.log1p(rel):
            return f"its 2 workers differ by {math.expm1(apart):.0%}"
        return None
    flags = outliers(arr, rel)
    if arr.size >= 3 and any(flags) and arr.size - sum(flags) < wanted:
        center = float(np.median(arr))
        off = max((v / center - 1.0 for v in arr), key=abs)
        return f"a worker is {off:+.0%} from the median of the cell's workers"
    return None


def worker_throughput(record) -> float | None:
    """Images/s of one worker (a Record): images per step over its median step time."""
    if record.status != Status.OK or not record.samples_s:
        return None
    median = float(np.median(record.samples_s))
    per_step = record.images_per_step or record.cell.batch
    return per_step / median if median > 0 else None


def worker_speedup(record) -> float | None:
    """Speed-up over eager measured alternately inside one worker (None when not paired)."""
    if record.status != Status.OK or not record.paired_s or not record.paired_eager_s:
        return None
    mode, eager = float(np.median(record.paired_s)), float(np.median(record.paired_eager_s))
    return eager / mode if mode > 0 and eager > 0 else None


def remeasure_reason(records: Sequence, wanted: int) -> str | None:
    """Whether a cell's workers disagree on throughput or paired speed-up (see needs_remeasure)."""
    throughput = [v for v in map(worker_throughput, records) if v]
    reason = needs_remeasure(throughput, THROUGHPUT_OUTLIER, wanted)
    if reason:
        return f"throughput: {reason}"
    speedups = [v for v in map(worker_speedup, records) if v]
    reason = needs_remeasure(speedups, SPEEDUP_OUTLIER, wanted)
    return f"paired speed-up: {reason}" if reason else None


def remeasure_needed(records: Sequence, wanted: int) -> str | None:
    """Why a cell whose workers all ran should get one more (remeasure_reason), or None; a
    cell with a failed or skipped worker is not re-measured (its status says enough)."""
    if any(r.status != Status.OK for r in records):
        return None
    return remeasure_reason(records, wanted)
