"""The measurement loop: time a step callable until its median is known precisely enough.

No TensorFlow here: a mode hands over a `step` that returns host values (so asynchronous
devices have finished when it returns) and this module only times it. As in
tf_cnn_benchmarks, each step is timed by a perf_counter pair immediately around the call and
warm-up steps are kept apart. As in pyperf, the number of steps is not fixed: sampling goes on
until the median's confidence interval is tight enough, or the time budget runs out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.stats.samples import median_ci

CHECK_GROWTH = 1.1  # re-check precision when the sample count has grown by 10%

Clock = Callable[[], float]


@dataclass
class Measurement:
    """Raw timings of one measured step; statistics are derived later (bench.stats.samples)."""

    samples_s: list[float]  # steady-state step times, warm-up excluded
    warmup_s: list[float]
    reached_target: bool  # the median's 95% CI met target_rel_ci (then stopped_by == "target")
    stopped_by: str  # "target", "budget" or "max_samples"


def _timed_steps(
    step: Callable[[], Any], count: int, clock: Clock, out: list[float], deadline: float
) -> bool:
    """Run `count` steps, appending each step's time to `out`; True if the deadline passed.

    Only `step()` and half of each clock call fall between the two readings: the append and
    the deadline test happen outside, so the harness adds almost nothing to a sample.
    """
    append = out.append
    for _ in range(count):
        t0 = clock()
        step()
        t1 = clock()
        append(t1 - t0)
        if t1 >= deadline:
            return True
    return False


def _rel_halfwidth(samples: list[float]) -> float:
    """Relative half-width of the median's 95% CI; 0 for identical samples."""
    arr = np.asarray(samples, dtype=float)
    median = float(np.median(arr))
    low, high = median_ci(arr)
    if median == 0:
        return 0.0 if high == low else math.inf
    return (high - low) / 2.0 / median


def _check_args(
    warmup: int, min_samples: int, max_samples: int, target_rel_ci: float, budget_s: float
) -> None:
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup!r}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples!r}")
    if max_samples < min_samples:
        raise ValueError(f"max_samples ({max_samples}) must be >= min_samples ({min_samples})")
    if target_rel_ci < 0:
        raise ValueError(f"target_rel_ci must be >= 0, got {target_rel_ci!r}")
    if budget_s < 0:
        raise ValueError(f"budget_s must be >= 0, got {budget_s!r}")


def measure(
    step: Callable[[], Any],
    *,
    warmup: int = 2,
    min_samples: int = 10,
    max_samples: int = 100_000,
    target_rel_ci: float = 0.02,
    budget_s: float = 10.0,
    clock: Clock = time.perf_counter,
) -> Measurement:
    """Time `step` adaptively until the median is precise, the budget ends, or max_samples.

    Precision is the relative half-width of the median's 95% order-statistic CI, checked at
    min_samples and then each time the count grows by ~10%, so the check costs O(1) per step
    amortised. Warm-up steps always all run first; they absorb first-call costs and are not
    part of the budget. min_samples steps are then always taken, whatever the budget, so a
    slow cell still gets a usable median (the worker's timeout is the hard stop). After that
    the budget (wall time of sampling) ends the loop, checked after every step.
    `clock` is injectable so tests can drive the loop deterministically.
    """
    _check_args(warmup, min_samples, max_samples, target_rel_ci, budget_s)
    warmup_s: list[float] = []
    _timed_steps(step, warmup, clock, warmup_s, math.inf)
    deadline = clock() + budget_s
    samples: list[float] = []
    _timed_steps(step, min_samples, clock, samples, math.inf)
    while True:
        n = len(samples)
        if _rel_halfwidth(samples) <= target_rel_ci:
            return Measurement(samples, warmup_s, reached_target=True, stopped_by="target")
        if n >= max_samples:
            return Measurement(samples, warmup_s, reached_target=False, stopped_by="max_samples")
        if clock() >= deadline:
            return Measurement(samples, warmup_s, reached_target=False, stopped_by="budget")
        next_check = min(max_samples, max(n + 1, math.ceil(n * CHECK_GROWTH)))
        if _timed_steps(step, next_check - n, clock, samples, deadline):
            n = len(samples)
            if _rel_halfwidth(samples) <= target_rel_ci:
                return Measurement(samples, warmup_s, reached_target=True, stopped_by="target")
            return Measurement(samples, warmup_s, reached_target=False, stopped_by="budget")


def bare_loop(step: Callable[[], Any], n: int, clock: Clock = time.perf_counter) -> float:
    """Seconds per step over n steps timed by one clock pair: the harness-free reference."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    start = clock()
    for _ in range(n):
        step()
    return (clock() - start) / n


def overhead_benchmark(
    step: Callable[[], Any], n: int, block: int = 100, clock: Clock = time.perf_counter
) -> dict[str, float]:
    """How much the per-step harness inflates step times, versus a bare loop.

    n steps each way, in blocks of `block` steps that alternate harness / bare loop, so drift
    (frequency scaling, other processes) hits both alike, and the median over blocks drops
    the blocks an interruption landed in. A bare loop only yields a mean per step, so the
    comparable harness figure is the mean of the timed samples in a block (`harness_s`):
    `overhead_rel` = harness_s / bare_s - 1 is the bias the harness puts into samples, and
    `wall_overhead_rel` also counts the bookkeeping between samples (its wall-time cost).
    `harness_median_s` is the median of all samples, what measure() would report.
    """
    if n < 1 or block < 1:
        raise ValueError(f"n and block must be >= 1, got n={n!r}, block={block!r}")
    block = min(block, n)
    blocks = n // block  # n rounded down to whole blocks
    bare, mean, wall = [], [], []
    samples: list[float] = []
    for b in range(blocks):
        if b % 2:  # swap the order every block so neither side always runs second
            bare.append(bare_loop(step, block, clock))
        first = len(samples)
        start = clock()
        _timed_steps(step, block, clock, samples, math.inf)
        wall.append((clock() - start) / block)
        mean.append(math.fsum(samples[first:]) / block)
        if not b % 2:
            bare.append(bare_loop(step, block, clock))
    bare_s = float(np.median(bare))
    harness_s = float(np.median(mean))
    harness_wall_s = float(np.median(wall))
    return {
        "n": blocks * block,
        "block": block,
        "bare_s": bare_s,
        "harness_s": harness_s,
        "harness_median_s": float(np.median(samples)),
        "harness_wall_s": harness_wall_s,
        "overhead_rel": _relative(harness_s, bare_s),
        "wall_overhead_rel": _relative(harness_wall_s, bare_s),
    }


def _relative(value: float, reference: float) -> float:
    if reference == 0:
        return 0.0 if value == 0 else math.inf
    return value / reference - 1.0


def measure_paired(
    step: Callable[[], Any],
    reference: Callable[[], Any],
    *,
    min_pairs: int = 10,
    max_pairs: int = 100_000,
    target_rel_ci: float = 0.02,
    budget_s: float = 1.0,
    clock: Clock = time.perf_counter,
) -> tuple[list[float], list[float]]:
    """Time `step` and `reference` alternately (A B B A A B ...): one pair per iteration.

    Both run in the same process, back to back, so whatever state the process is in (its
    thread placement, the machine's frequency, a noisy neighbour) hits both alike and cancels
    in their ratio, as in TorchBench/dynamo's interleaved eager-versus-compiled timing. The
    order flips every pair so neither always runs second (warm caches, pending frees). Stops
    once both medians' CIs are within `target_rel_ci` or the budget (sampling time) is spent,
    after at least `min_pairs` pairs. Returns (step times, reference times).
    """
    _check_args(0, min_pairs, max_pairs, target_rel_ci, budget_s)
    a: list[float] = []
    b: list[float] = []
    deadline = clock() + budget_s
    next_check = min_pairs
    while len(a) < max_pairs:
        first, second, out_first, out_second = (
            (step, reference, a, b) if len(a) % 2 == 0 else (reference, step, b, a))
        t0 = clock()
        first()
        t1 = clock()
        second()
        t2 = clock()
        out_first.append(t1 - t0)
        out_second.append(t2 - t1)
        n = len(a)
        if n < min_pairs:
            continue
        if t2 >= deadline:
            break
        if n >= next_check:
            if max(_rel_halfwidth(a), _rel_halfwidth(b)) <= target_rel_ci:
                break
            next_check = max(n + 1, math.ceil(n * CHECK_GROWTH))
    return a, b
