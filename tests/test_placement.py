"""Placement: CPU sets, pool sizes, load accounting, planted slowdowns, paired timing."""

import os
import time

import pytest
from conftest import SMALL_CNN

from bench.engine.inject import busy_work, parse_slowdowns, slowdown_for
from bench.engine.placement import LoadMeter, available_cpus, parse_threads, placement
from bench.engine.timing import measure_paired
from bench.errors import UsageError


def test_placement_pins_the_last_cpus_and_leaves_the_rest_to_the_runner():
    one = placement("1", cpus=[0, 1, 2, 3])
    assert one.cpus == (3,) and one.runner_cpus == (0, 1, 2)
    assert (one.intra_op, one.inter_op) == (1, 1)
    three = placement("3", cpus=[0, 1, 2, 3])
    assert three.cpus == (1, 2, 3) and (three.intra_op, three.inter_op) == (3, 2)
    every = placement("all", cpus=[0, 1])
    assert every.cpus == (0, 1) and every.runner_cpus == (0, 1) and every.intra_op == 2
    assert placement("all", inter_threads=1, cpus=[0, 1]).inter_op == 1


@pytest.mark.parametrize("threads", ["1", "2", "all", "8"])
def test_pools_never_exceed_the_cpus_given(threads):
    cpus = list(range(8))
    place = placement(threads, cpus=cpus)
    assert place.intra_op == len(place.cpus) <= len(cpus)
    assert place.inter_op <= len(place.cpus)


def test_threads_values_are_checked_against_this_machine():
    assert parse_threads(1) == "1" and parse_threads("ALL") == "all"
    for bad in (0, -1, "most", True, 10**9):
        with pytest.raises(UsageError):
            parse_threads(bad)
    with pytest.raises(UsageError, match="may use only"):
        parse_threads(len(available_cpus()) + 1)


def test_load_meter_sees_our_own_work_as_ours():
    meter = LoadMeter(tuple(available_cpus()))
    meter.start()
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:
        pass
    meter.stop()
    load = meter.result()
    assert load["window_s"] >= 0.3
    assert 0 <= load.get("other_cores", 0) <= len(available_cpus())


def test_slowdown_spec_is_parsed_and_checked():
    planted = parse_slowdowns("function:infer:0.10, xla:0.05")
    assert slowdown_for("function", "infer", planted) == 0.10
    assert slowdown_for("function", "train", planted) == 0.0
    assert slowdown_for("xla", "train", planted) == 0.05
    for bad in ("function", "nope:0.1", "function:infer:x", "function:0", "eager:walk:0.1"):
        with pytest.raises(UsageError, match="BENCH_INJECT_SLOWDOWN"):
            parse_slowdowns(bad)


def test_slowdown_adds_busy_work_worth_the_asked_fraction(monkeypatch):
    """The arithmetic and the wiring on a fake clock (no timing here: how much slower a real
    step gets is what `bench gate-check` measures). A step takes 10 ms of fake time, each clock
    read 1 ms, so the busy loop runs CALIBRATION_ITERATIONS per ms and the median step is 11 ms."""
    from bench.engine import inject

    now = [0.0]

    def clock():
        now[0] += 0.001
        return now[0]

    def step():
        now[0] += 0.010
        return "result"

    busy: list[int] = []
    monkeypatch.setattr(inject, "busy_work", lambda n: busy.append(n) or 0)
    slowed, iterations = inject.slow_down(step, 0.5, clock=clock)
    per_second = inject.CALIBRATION_ITERATIONS / 0.001
    assert iterations == round(0.5 * 0.011 * per_second)
    assert busy == [inject.CALIBRATION_ITERATIONS] * 3  # the calibration, best of three
    assert slowed() == "result" and busy[-1] == iterations  # the step, then the busy work


def test_busy_work_is_deterministic():
    assert busy_work(1000) == busy_work(1000) and busy_work(0) == 0


def test_paired_timing_alternates_and_stops_on_budget():
    calls = []
    a, b = measure_paired(lambda: calls.append("a"), lambda: calls.append("b"), min_pairs=6,
                          budget_s=0.0)
    assert len(a) == len(b) == 6
    assert calls[:4] == ["a", "b", "b", "a"]  # the order flips every pair


def test_a_worker_is_pinned_and_sized(tmp_path):
    """A real worker process: pinned to the last CPU, TF's pools sized to it, load recorded."""
    pytest.importorskip("tensorflow")
    from bench.engine.runner import run_in_worker, worker_context
    from bench.engine.worker import CellOptions, run_cell
    from bench.store.record import Cell

    cpus = available_cpus()
    place = placement("1", cpus=cpus)
    workload_case, config = SMALL_CNN.split(":")
    cell = Cell(workload_case, config, "function", "infer", batch=2, threads="1")
    options = CellOptions(warmup=1, min_samples=3, budget_s=0.05, cpus=place.cpus,
                          intra_op=place.intra_op, inter_op=place.inter_op)
    ctx = worker_context(tmp_path / "forkserver.log")
    got = run_in_worker(ctx, run_cell, (cell, options), tmp_path / "cell.log", timeout_s=120)
    assert got.status == "ok", got.value
    record = got.value
    assert record.cpus == list(place.cpus) and len(record.cpus) == 1
    assert record.threads == {"intra_op": 1, "inter_op": 1}
    assert "other_cores" in record.load or not os.path.exists("/proc/stat")
    assert record.paired_s and len(record.paired_s) == len(record.paired_eager_s)
    assert record.equivalent


def test_noise_command_reports_the_machine_spread():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    ok = subprocess.run([sys.executable, "-m", "bench", "noise", "--seconds", "1.5",
                         "--window", "0.5"], cwd=root, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "CV" in ok.stdout and "slowest/fastest" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "bench", "noise", "--window", "0"], cwd=root,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
