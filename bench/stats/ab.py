"""Statistics of A/B in lockstep: one B/A ratio per worker pair, and a sequential verdict.

Each worker pair of a cell (a fresh A process and a fresh B process on the same CPU, taking
turns step by step) gives one number: the median of its step-by-step B/A ratios. The pair is
the unit of replication, as the worker is in a run (bench.stats.replicates): steps within a pair
share a process's memory layout and thread placement, so only fresh pairs sample those.

The verdict tests the mean of the pairs' log ratios with a Student t-interval, looked at
after `min_pairs` pairs, then after every `look_every` further pairs, and at `max_pairs` (the
look schedule, fixed before any data: 3, 6, 9, 12 by default):

- `slower` when the whole interval lies above +`margin` (by default a third of the
  threshold: a change of at least that size is established), `faster` when it lies below -margin;
- `same` (no change) when the whole interval lies within +-threshold;
- otherwise the cell gets another pair; at `max_pairs` it is `undecided`.

Why the false-alarm rate stays under alpha although the data are looked at several times:
each look uses the interval at confidence 1 - alpha/K, K being the number of looks in the
schedule, the most a cell can have (Bonferroni). The chance that any one of the K looks puts
the interval wholly above the true ratio is at most alpha/2 by the union bound, whatever the
looks' dependence; for identical code (true ratio 1) a `slower` verdict needs the interval
above 1 + margin, which is rarer still. Between looks a cell only collects pairs, so a sparser
schedule spends less of alpha per look: K = 4 for 3-12 pairs gives a 97.5% interval, where a
look at every pair would need 99.0%. Replayed on measured pairs, 3-12 looked at 3, 6, 9, 12
catches a planted 3% in 83% of cells where 3-8 looked at every pair caught 70%
(docs/regression-tracking.md). Across the cells of a run the gate re-measures every `slower`
cell with fresh pairs and fails only what the confirmation finds slower too
(reports.gate.gate_decision), and `bench gate-check` measures the whole run's rate.

A pair further than OUTLIER from the median of the cell's pairs is left out (only with three
or more pairs, and only a minority of them, as bench.stats.replicates.outliers does): a process
that lands in a slow state for its whole life (Keras training here runs at 23 or 45 ms per
batch, per process) is a state of that process, not of the code, and one such pair would
otherwise decide a cell. Pure Python + numpy/scipy; no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from bench.stats.replicates import outliers
from bench.store.record import Status

OUTLIER = 0.10


class Verdict(StrEnum):
    """What an A/B cell found; like Status, a member is its own name as a string."""

    SLOWER = "slower"
    FASTER = "faster"
    SAME = "no change"
    UNDECIDED = "undecided"
    FAILED = "failed"  # a side's worker failed: no ratio (the statuses say which)
    SKIPPED = Status.SKIPPED.value  # not applicable on both sides (the status's own word)


@dataclass(frozen=True)
class Rule:
    """The sequential rule's knobs (defaults: the CI gate's)."""

    threshold: float = 0.03  # the change the verdict must catch
    alpha: float = 0.10  # per cell, over all its looks (against no change at all)
    min_pairs: int = 3
    max_pairs: int = 12
    margin: float | None = None  # smallest change called slower/faster; None = threshold / 3
    look_every: int = 3  # pairs between looks after the first (run files before it: 1)

    @property
    def look_at(self) -> tuple[int, ...]:
        """The pair counts at which the verdict is judged (the last is always max_pairs)."""
        return (*range(self.min_pairs, self.max_pairs, self.look_every), self.max_pairs)

    @property
    def looks(self) -> int:
        return len(self.look_at)

    @property
    def effect(self) -> float:
        return self.threshold / 3 if self.margin is None else self.margin

    def check(self) -> Rule:
        from bench.errors import UsageError

        if not 0 < self.threshold < 1:
            raise UsageError(f"--threshold: expected a number in (0, 1), got {self.threshold!r}")
        if not 0 < self.alpha < 1:
            raise UsageError(f"--alpha: expected a number between 0 and 1, got {self.alpha!r}")
        if not 2 <= self.min_pairs <= self.max_pairs <= 1000:
            raise UsageError("--min-pairs/--max-pairs: expected 2 <= min <= max <= 1000, got "
                             f"{self.min_pairs} and {self.max_pairs}")
        if not 1 <= self.look_every <= 1000:
            raise UsageError(f"--look-every: expected a positive integer, got {self.look_every!r}")
        if not 0 <= self.effect <= self.threshold:
            raise UsageError(f"margin: expected 0 to the threshold, got {self.margin!r}")
        return self

    def as_dict(self) -> dict[str, float]:
        return {"threshold": self.threshold, "alpha": self.alpha,
                "min_pairs": self.min_pairs, "max_pairs": self.max_pairs, "margin": self.effect,
                "look_every": self.look_every}

    @classmethod
    def from_dict(cls, values: dict) -> Rule:
        """The rule a run recorded; runs from before the look schedule looked at every pair."""
        return cls(float(values.get("threshold", 0.03)), float(values.get("alpha", 0.10)),
                   int(values.get("min_pairs", 3)), int(values.get("max_pairs", 8)),
                   values.get("margin"), int(values.get("look_every", 1)))


@dataclass(frozen=True)
class Judgement:
    """A cell's state after some pairs: the verdict and the B/A ratio with its interval."""

    verdict: Verdict
    pairs: int  # pairs with a ratio
    excluded: int  # of those, left out as outliers
    ratio: float  # geometric mean B/A of the used pairs (NaN with none)
    low: float  # interval at the look's confidence (NaN with fewer than 2 used pairs)
    high: float

    @property
    def change(self) -> float:
        return self.ratio - 1.0


def pair_ratio(a_samples: Sequence[float], b_samples: Sequence[float]) -> float | None:
    """The pair's B/A: the median of the step-by-step ratios b_i / a_i, or None when a side
    has no samples.

    Sample i of A and sample i of B ran next to each other on the same CPU (the turns go
    A B, B A, ...), so their ratio cancels whatever state the machine was in for those few
    milliseconds; a ratio of the two medians does not, and where step times are bimodal (this
    VM's vCPUs switch between two speeds, e.g. 10.5 and 14.6 ms for one step) each median
    jumps between the modes on its own. On the same recorded pairs of identical code (quick
    suite, 8 pairs per cell) the pair-to-pair sd was 2.0-2.5% with the ratio of medians and
    1.2-1.3% with this (median over cells; docs/regression-tracking.md).
    """
    logs = [math.log(b / a) for a, b in zip(a_samples, b_samples, strict=False)
            if a and b and a > 0 and b > 0]
    if not logs:
        return None
    return float(math.exp(np.median(logs)))


def interval(log_ratios: Sequence[float], confidence: float) -> tuple[float, float, float]:
    """(geometric mean, low, high) of ratios from their logs, Student t on the logs."""
    logs = np.asarray(log_ratios, dtype=float)
    center = float(logs.mean()) if logs.size else math.nan
    if logs.size < 2:
        return math.exp(center), math.nan, math.nan
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, logs.size - 1) * logs.std(ddof=1)
                 / math.sqrt(logs.size))
    return math.exp(center), math.exp(center - half), math.exp(center + half)


def judge(ratios: Sequence[float], rule: Rule) -> Judgement:
    """The verdict on a cell's pair ratios (undecided: it needs more pairs, or this many pairs
    is not one of the rule's looks; the interval is shown at the look confidence anyway)."""
    values = np.asarray([r for r in ratios if r and r > 0 and math.isfinite(r)], dtype=float)
    flags = np.asarray(outliers(values, OUTLIER), dtype=bool) if values.size else values
    used = values[~flags] if values.size else values
    ratio, low, high = interval(np.log(used), 1.0 - rule.alpha / rule.looks)
    verdict = Verdict.UNDECIDED
    if values.size in rule.look_at and math.isfinite(low):
        if low > 1.0 + rule.effect:
            verdict = Verdict.SLOWER
        elif high < 1.0 / (1.0 + rule.effect):
            verdict = Verdict.FASTER
        elif low > 1.0 / (1.0 + rule.threshold) and high < 1.0 + rule.threshold:
            verdict = Verdict.SAME
    return Judgement(verdict, int(values.size), int(flags.sum()), ratio, low, high)


def decided(judgement: Judgement) -> bool:
    return judgement.verdict != Verdict.UNDECIDED


def sequential(ratios: Sequence[float], rule: Rule) -> tuple[Judgement, int]:
    """Replay the looks on ratios in the order they were measured: the first decision (and
    how many pairs it took), or the judgement on all of them (undecided at the cap)."""
    for n in (n for n in rule.look_at if n <= len(ratios)):
        judgement = judge(ratios[:n], rule)
        if decided(judgement):
            return judgement, n
    n = min(len(ratios), rule.max_pairs)
    return judge(ratios[:n], rule), n
