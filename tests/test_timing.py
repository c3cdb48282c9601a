"""Behaviour of the measurement loop, driven by a fake clock so every run is deterministic."""

import itertools
import math

import numpy as np
import pytest

from bench.engine import timing
from bench.engine.timing import Measurement, bare_loop, measure, overhead_benchmark


class FakeClock:
    """A clock that only moves when a fake step says it spent time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_step(clock: FakeClock, durations):
    """A step that advances the clock by the next duration; counts its calls."""
    durations = iter(durations)

    def step():
        step.calls += 1
        clock.now += next(durations)
        return step.calls

    step.calls = 0
    return step


def constant(d):
    while True:
        yield d


def noisy(seed, low=0.001, high=1.0):
    rng = np.random.default_rng(seed)
    while True:
        yield float(rng.uniform(low, high))


def test_constant_step_stops_on_target_at_min_samples():
    clock = FakeClock()
    step = fake_step(clock, constant(0.001))
    m = measure(step, warmup=2, min_samples=10, clock=clock)
    assert isinstance(m, Measurement)
    assert m.stopped_by == "target" and m.reached_target
    assert len(m.samples_s) == 10
    assert m.samples_s == pytest.approx([0.001] * 10)  # the step's time and nothing else
    assert step.calls == 12


def test_warmup_is_timed_but_excluded_from_samples():
    clock = FakeClock()
    step = fake_step(clock, [5.0, 3.0, 1.0, *[0.002] * 1000])
    m = measure(step, warmup=3, min_samples=10, clock=clock)
    assert m.warmup_s == pytest.approx([5.0, 3.0, 1.0])
    assert m.samples_s == pytest.approx([0.002] * 10)


def test_no_warmup():
    clock = FakeClock()
    m = measure(fake_step(clock, constant(0.01)), warmup=0, min_samples=3, clock=clock)
    assert m.warmup_s == [] and len(m.samples_s) == 3


@pytest.mark.parametrize("min_samples", [1, 37, 500])
def test_target_never_stops_before_min_samples(min_samples):
    clock = FakeClock()
    m = measure(fake_step(clock, constant(0.001)), min_samples=min_samples, clock=clock)
    assert len(m.samples_s) == min_samples and m.stopped_by == "target"


def test_mildly_noisy_step_reaches_target_after_min_samples():
    clock = FakeClock()
    step = fake_step(clock, noisy(0, low=0.0099, high=0.0101))  # +-1% around 10 ms
    m = measure(step, min_samples=20, target_rel_ci=0.002, clock=clock)
    assert m.stopped_by == "target" and m.reached_target
    assert len(m.samples_s) >= 20


def test_noisy_step_stops_on_budget():
    clock = FakeClock()
    step = fake_step(clock, noisy(1))
    m = measure(step, warmup=2, target_rel_ci=0.001, budget_s=20.0, clock=clock)
    assert m.stopped_by == "budget" and not m.reached_target
    spent = sum(m.samples_s)
    # The budget counts sampling only (not warm-up); the loop stops at the first step past it.
    assert spent >= 20.0 and spent - m.samples_s[-1] < 20.0
    assert len(m.samples_s) >= 10


def test_min_samples_are_taken_even_past_the_budget():
    clock = FakeClock()
    m = measure(fake_step(clock, noisy(3)), warmup=2, min_samples=7, target_rel_ci=1e-6,
                budget_s=0.5, clock=clock)
    assert m.stopped_by == "budget" and not m.reached_target
    assert len(m.warmup_s) == 2 and len(m.samples_s) == 7  # a usable median for slow cells


def test_noisy_step_stops_at_max_samples():
    clock = FakeClock()
    m = measure(
        fake_step(clock, noisy(2)), max_samples=150, target_rel_ci=1e-6, budget_s=1e9, clock=clock
    )
    assert m.stopped_by == "max_samples" and not m.reached_target
    assert len(m.samples_s) == 150


def test_precision_is_checked_only_as_the_count_grows(monkeypatch):
    checks = []
    real = timing._rel_halfwidth

    def counting(samples):
        checks.append(len(samples))
        return real(samples)

    monkeypatch.setattr(timing, "_rel_halfwidth", counting)
    clock = FakeClock()
    m = measure(
        fake_step(clock, noisy(3)),
        min_samples=10,
        max_samples=5000,
        target_rel_ci=1e-9,
        budget_s=1e9,
        clock=clock,
    )
    assert len(m.samples_s) == 5000
    assert checks[0] == 10 and checks[-1] == 5000
    # Each check waits for ~10% more samples (the last one may be cut short by max_samples).
    assert all(b >= math.ceil(a * 1.1) for a, b in itertools.pairwise(checks[:-1]))
    assert len(checks) < 80  # ~log(500)/log(1.1): a check every step would be 4991


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warmup": -1},
        {"min_samples": 0},
        {"min_samples": 10, "max_samples": 5},
        {"target_rel_ci": -0.1},
        {"budget_s": -1.0},
    ],
)
def test_measure_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        measure(lambda: None, **kwargs)


def test_bare_loop_returns_seconds_per_step():
    clock = FakeClock()
    step = fake_step(clock, constant(0.002))
    assert bare_loop(step, 50, clock=clock) == pytest.approx(0.002)
    assert step.calls == 50
    with pytest.raises(ValueError):
        bare_loop(step, 0)


def test_overhead_benchmark_with_fake_clock_shows_no_overhead():
    clock = FakeClock()
    step = fake_step(clock, constant(0.003))
    result = overhead_benchmark(step, 1000, block=100, clock=clock)
    assert step.calls == 2000  # n steps each way
    assert result["n"] == 1000 and result["block"] == 100
    for key in ("bare_s", "harness_s", "harness_median_s", "harness_wall_s"):
        assert result[key] == pytest.approx(0.003)
    assert result["overhead_rel"] == pytest.approx(0.0, abs=1e-9)
    assert result["wall_overhead_rel"] == pytest.approx(0.0, abs=1e-9)


def test_overhead_benchmark_counts_clock_cost_inside_samples():
    class CostlyClock(FakeClock):
        def __call__(self) -> float:  # reading the clock takes 1 us, after the reading
            now = self.now
            self.now += 1e-6
            return now

    clock = CostlyClock()
    step = fake_step(clock, constant(1e-4))
    result = overhead_benchmark(step, 500, block=50, clock=clock)
    # A sample holds the step plus one clock read; the bare loop spreads one read over a block.
    assert result["harness_s"] == pytest.approx(1.01e-4)
    assert result["bare_s"] == pytest.approx(1e-4 + 1e-6 / 50)
    assert result["overhead_rel"] == pytest.approx(1.01e-4 / (1e-4 + 2e-8) - 1)
    assert result["wall_overhead_rel"] > result["overhead_rel"]


def test_overhead_benchmark_with_real_clock_runs():
    result = overhead_benchmark(lambda: 1, 200, block=50)
    assert result["n"] == 200
    assert result["bare_s"] > 0 and result["harness_s"] > 0
    assert math.isfinite(result["overhead_rel"])
