"""Speed-up over eager: the one definition the table, report, compare and history share.

A cell's speed-up is over eager on the same cell in the same run (its eager partner: only the
mode replaced, `eager_key`). Two measurements can give it:

- paired: each worker alternated the mode's step with eager's, step by step
  (bench.engine.timing.measure_paired), so the worker's and the machine's state cancel in the
  ratio; each worker gives one value (bench.stats.replicates.worker_speedup). The speed-up is
  their geometric mean and its interval a t-interval across workers
  (bench.stats.replicates.summarize_replicates);
  with one worker, the median CI of its per-pair ratios, which sees only the noise inside that
  worker.
- separate workers: the ratio of the mode's and eager's throughputs, each the median of its
  pooled steps, with a percentile-bootstrap interval of that ratio. The machine's drift between
  the two workers does not cancel, which is why paired wins whenever it was measured.

`samples` holds one speed-up per replicate (per worker when paired, per round otherwise) and
`replicates` the bootstrap of the unpaired value: compare's tests of a change between two runs
read these instead of computing speed-ups of their own. Plain numpy; no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from bench.modes import REFERENCE_MODE
from bench.stats.replicates import CONFIDENCE, SPEEDUP_OUTLIER, summarize_replicates
from bench.stats.samples import bootstrap_medians, median_ci
from bench.store.record import Cell
from reports.pool import PooledCell

PAIRED = "paired"
UNPAIRED = "separate workers"
REFERENCE = "reference"  # eager itself: 1 by definition
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Speedup:
    """A cell's speed-up over eager, its 95% interval and the measurement it came from."""

    value: float
    low: float  # NaN when there is no interval (one paired worker with fewer than 3 pairs)
    high: float
    source: str  # PAIRED | UNPAIRED | REFERENCE
    samples: tuple[float, ...] = ()  # one per worker (paired) or per round (separate workers)
    replicates: tuple[float, ...] = field(default=(), repr=False)  # bootstrap, unpaired only


def eager_key(cell: Cell) -> str:
    """The key of the cell's eager partner: the same cell with only its mode replaced
    (threads included: a 1-thread cell's partner is 1-thread eager)."""
    return dataclasses.replace(cell, mode=REFERENCE_MODE).key


def speedup_over_eager(cell: PooledCell, eager: PooledCell | None,
                       paired: bool = True) -> Speedup | None:
    """The cell's speed-up over `eager` (its partner, same run), paired where measured so.

    A paired speed-up needs no partner: its workers timed eager's steps themselves (a run of
    `--modes xla` has one). The separate-workers ratio does, so it is None when the partner is
    missing, failed or has no samples; None too for a cell that failed or has no samples.
    paired=False asks for the separate-workers ratio even where pairs exist (compare falls back
    to it when a side has a single paired worker).
    """
    if not _measured(cell):
        return None
    if cell.cell.mode == REFERENCE_MODE:
        return Speedup(1.0, 1.0, 1.0, REFERENCE)
    if paired and cell.worker_speedups:
        return _paired(cell)
    return _unpaired(cell, eager) if _measured(eager) else None


def _measured(cell: PooledCell | None) -> bool:
    return cell is not None and cell.ok and len(cell.samples) > 0


def _paired(cell: PooledCell) -> Speedup:
    samples = tuple(float(cell.worker_speedups[w]) for w in sorted(cell.worker_speedups))
    summary = summarize_replicates(samples, SPEEDUP_OUTLIER)
    low, high = summary.low, summary.high
    if summary.n == 1 and len(cell.pair_ratios) >= 3:
        low, high = median_ci(cell.pair_ratios)
    return Speedup(summary.center, *_containing(summary.center, low, high), PAIRED, samples)


def _unpaired(cell: PooledCell, eager: PooledCell) -> Speedup | None:
    mode_s, eager_s = np.sort(cell.samples), np.sort(eager.samples)
    if not (np.median(mode_s) > 0 and np.median(eager_s) > 0):
        return None
    # Step times are per step; scale when the two cells put different image counts in one.
    scale = cell.images_per_step / eager.images_per_step
    value = scale * float(np.median(eager_s) / np.median(mode_s))
    # Seeded from the data: a rebuilt report shows the same interval, and two runs' bootstraps
    # (compare tests one against the other) are independent draws.
    rng = np.random.default_rng(zlib.crc32(mode_s.tobytes() + eager_s.tobytes()))
    replicates = scale * (bootstrap_medians(eager_s, BOOTSTRAP_RESAMPLES, rng)
                          / bootstrap_medians(mode_s, BOOTSTRAP_RESAMPLES, rng))
    alpha = 1.0 - CONFIDENCE
    low, high = np.quantile(replicates, (alpha / 2.0, 1.0 - alpha / 2.0))
    rounds = sorted(set(cell.round_samples) & set(eager.round_samples))
    samples = tuple(scale * float(np.median(eager.round_samples[r])
                                  / np.median(cell.round_samples[r])) for r in rounds)
    return Speedup(value, *_containing(value, float(low), float(high)), UNPAIRED, samples,
                   tuple(float(v) for v in replicates))


def _containing(value: float, low: float, high: float) -> tuple[float, float]:
    """The interval widened to hold the value (a percentile or order-statistic interval of a
    median can miss the point estimate by a sample); NaN stays NaN."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return math.nan, math.nan
    return min(low, value), max(high, value)
