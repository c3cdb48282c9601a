"""Planted regressions: make one mode's step slower by a known fraction, to test the gate.

    BENCH_INJECT_SLOWDOWN=<mode>[:<phase>]:<fraction>[,...]   e.g. function:infer:0.10

The runner reads the variable and hands each matching cell its fraction; inside the worker
the timed step (and the mode's side of the paired measurement) then does busy work worth
that fraction of the step's own median time after every call. The busy work is a plain
Python loop whose speed is calibrated in the worker, so it is real CPU work that slows down
with the machine like the step does, not a sleep. Records of a planted run carry
`Record.injected_slowdown`; it is a testing aid (next to BENCH_INJECT_FAULT), never a result.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.errors import UsageError
from bench.store.record import Status

SLOWDOWN_ENV = "BENCH_INJECT_SLOWDOWN"
# Planted failures: BENCH_INJECT_FAULT=<mode>:<kind>[,...], kind one of FAULT_KINDS; the worker
# of every cell of that mode then crashes, hangs, eats memory or raises (bench.engine.worker).
FAULT_ENV = "BENCH_INJECT_FAULT"
FAULT_KINDS = ("crash", "hang", "oom", Status.ERROR)
CALIBRATION_ITERATIONS = 200_000

Clock = Callable[[], float]


def parse_slowdowns(text: str | None) -> dict[tuple[str, str | None], float]:
    """'function:infer:0.1,xla:0.05' -> {('function', 'infer'): 0.1, ('xla', None): 0.05}."""
    from bench.modes import MODE_TABLE as MODES
    from bench.store.record import PHASES

    planted: dict[tuple[str, str | None], float] = {}
    for item in filter(None, (p.strip() for p in (text or "").split(","))):
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise UsageError(f"{SLOWDOWN_ENV}: {item!r}: expected mode[:phase]:fraction, "
                             "e.g. function:infer:0.10")
        mode, phase = parts[0], parts[1] if len(parts) == 3 else None
        try:
            fraction = float(parts[-1])
        except ValueError:
            fraction = float("nan")
        if mode not in MODES or (phase is not None and phase not in PHASES):
            raise UsageError(f"{SLOWDOWN_ENV}: {item!r}: unknown mode or phase; modes: "
                             f"{', '.join(MODES)}; phases: {', '.join(PHASES)}")
        if not 0 < fraction <= 10:
            raise UsageError(f"{SLOWDOWN_ENV}: {item!r}: the fraction must be in (0, 10], "
                             "e.g. 0.10 for 10% slower")
        planted[(mode, phase)] = fraction
    return planted


def parse_faults(text: str | None) -> dict[str, str]:
    """'eager:crash,xla:hang' -> {'eager': 'crash', 'xla': 'hang'}; a typo is a UsageError,
    never a silently fault-free run."""
    from bench.modes import MODE_TABLE as MODES

    faults: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in (text or "").split(","))):
        mode, _, kind = item.partition(":")
        if mode not in MODES or kind not in FAULT_KINDS:
            raise UsageError(f"{FAULT_ENV}: {item!r}: expected mode:kind, e.g. eager:crash; "
                             f"modes: {', '.join(MODES)}; kinds: {', '.join(FAULT_KINDS)}")
        faults[mode] = kind
    return faults


def slowdown_from_env() -> dict[tuple[str, str | None], float]:
    """The planted slowdowns; the planted faults are checked here too (one UsageError before
    the run starts), as every run reads both variables when it starts."""
    parse_faults(os.environ.get(FAULT_ENV))
    return parse_slowdowns(os.environ.get(SLOWDOWN_ENV))


def slowdown_for(mode: str, phase: str, planted: dict[tuple[str, str | None], float]) -> float:
    """The planted fraction for a cell (a phase-specific entry wins), 0.0 for none."""
    return planted.get((mode, phase), planted.get((mode, None), 0.0))


def busy_work(iterations: int) -> int:
    """A deterministic CPU-bound loop; returns a value so it cannot be optimised away."""
    total = 0
    for i in range(iterations):
        total ^= i
    return total


def iterations_per_second(clock: Clock = time.perf_counter) -> float:
    """The busy loop's speed in this process (best of three, as a timer's floor)."""
    best = float("inf")
    for _ in range(3):
        start = clock()
        busy_work(CALIBRATION_ITERATIONS)
        best = min(best, clock() - start)
    return CALIBRATION_ITERATIONS / best if best > 0 else float("inf")


def slow_down(step: Callable[[], Any], fraction: float, calls: int = 9,
              clock: Clock = time.perf_counter) -> tuple[Callable[[], Any], int]:
    """`step` followed by busy work worth `fraction` of its median time over `calls` calls.

    One untimed call first, so a cold first call (caches, lazy allocation) cannot inflate the
    base time and with it the planted fraction. Returns the slowed step and the busy
    iterations it adds per call.
    """
    step()
    times = []
    for _ in range(calls):
        start = clock()
        step()
        times.append(clock() - start)
    base_s = statistics.median(times)
    iterations = max(1, round(fraction * base_s * iterations_per_second(clock)))

    def slowed() -> Any:
        result = step()
        busy_work(iterations)
        return result

    return slowed, iterations
