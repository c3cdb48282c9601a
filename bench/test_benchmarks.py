"""The suite as pytest-benchmark benchmarks: one per case x configuration x mode x phase cell.

    pytest bench/ --benchmark-only [--bench-suite quick] [-k "cnn and infer"]
                  [--benchmark-json out.json | --benchmark-autosave] [--benchmark-compare]

Per cell, in one process (pytest-benchmark's model, unlike `python -m bench run`'s worker per
cell), in the order bench/worker.py uses so every number means the same thing:
1. build the workload, weights and input batch from the suite's seed;
2. `mode.prepare` (its setup stages) and the first call (stage `first_call`: tracing and
   compile-on-first-call land here), giving time to first result;
3. the equivalence steps (the first call, plus two more when training; one epoch with
   dataset input);
4. one calibration call sizes the rounds to the suite's budget, then
   `benchmark.pedantic(step, warmup_rounds=W, rounds=R, iterations=1)`: warm-up is explicit,
   so tracing and compilation never count as steady-state time;
5. peak memory above the cell's start, the probes (with --bench-probes), close;
6. the eager reference on the same weights and bytes: a result outside the mode's tolerance
   fails the test and is left out of the saved JSON (a wrong answer has no speed).

A round is one call of the mode's step. Keras training's call is one Model.fit over several
batches, and with dataset input every mode's call is one epoch (`batches_per_call` in
extra_info): pytest-benchmark's own table shows per-call times,
while images_per_s (and `bench table`, which divides the raw times) count every batch.

Everything pytest-benchmark has no field for goes to `extra_info` (see `cell_info`), which
`bench.pytest_benchmark_json` reads back so `python -m bench table/report` accept the JSON files.
pytest-benchmark's --benchmark-min-rounds/max-time/warmup do not apply (rounds are pedantic):
use the suite's settings or --bench-rounds/--bench-warmup.
"""

from __future__ import annotations

import gc
import json
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest

from bench.lifecycle import PreparedCell, make_request, prepare_cell
from bench.machine import machine_facts
from bench.modes import (
    REFERENCE_MODE,
    DeviceUnavailable,
    NotApplicable,
    Request,
    Threads,
    load_mode,
    not_applicable_reason,
    tolerance,
)
from bench.modes.base import Prepared
from bench.placement import pin, placement
from bench.plan import Settings
from bench.record import Cell, Phase
from bench.stats import summarize
from bench.worker import _peak_rss_mb, _reset_peak_rss, reference_diff
from cases.base import Workload

MAX_ROUNDS = 100_000  # a guard against a calibration call that was absurdly fast
EXTRA_INFO_VERSION = 1  # bump when an extra_info key changes meaning (reports read it)


@dataclass(frozen=True)
class Runtime:
    """Per-session TensorFlow set-up: thread pools (fixed once per process) and machine facts."""

    threads: Threads
    machine: dict[str, Any]


@pytest.fixture(scope="session")
def bench_runtime(bench_selection) -> Runtime:
    from bench.modes.runtime import configure_threads, tf_facts  # imports TF

    # TensorFlow's pools are fixed once per process, so one pytest session is one threads
    # profile (conftest keeps only its cells): pin and size them before TF starts its pools.
    place = placement(bench_selection.threads, bench_selection.suite.settings.threads_inter)
    pin(place.cpus)
    threads = configure_threads(Threads(place.intra_op, place.inter_op))
    return Runtime(threads, {**machine_facts(), **tf_facts(), "threads": threads.as_dict(),
                             "cpus": list(place.cpus)})


def test_bench(benchmark, bench_cell: Cell, bench_selection, bench_runtime: Runtime) -> None:
    cell = bench_cell
    reason = not_applicable_reason(cell.mode, cell.phase)
    if reason:
        pytest.skip(reason)
    benchmark.group = group_name(cell)
    settings = bench_selection.suite.settings
    request = make_request(cell, settings.seed, bench_runtime.threads, settings.epoch_batches)
    workload = request.workload

    baseline_mb = _reset_peak_rss()
    try:
        ready = prepare_cell(load_mode(cell.mode), request)
    except (NotApplicable, DeviceUnavailable) as exc:
        pytest.skip(str(exc))
    prepared = ready.prepared
    try:
        measured = _measure(benchmark, ready, settings, bench_selection)
        measured["peak_rss_mb"] = _peak_rss_mb() - baseline_mb
        measured["debug"], measured["probes"] = _probes(bench_selection.probes, cell, workload,
                                                        request, prepared)
    finally:
        prepared.close()
        _release_tf_state()

    reference = load_mode(REFERENCE_MODE).prepare(request)
    try:
        diff = reference_diff(request, reference, ready.outputs, ready.trained)
    finally:
        reference.close()
    tol = tolerance(cell.mode, cell.phase)
    benchmark.extra_info.update(cell_info(
        cell, bench_selection.suite.name, workload, prepared, measured, diff, tol,
        getattr(benchmark, "stats", None), bench_runtime.machine))
    _release_tf_state()
    if not diff <= tol:
        benchmark.has_error = True  # keeps the timing out of --benchmark-json/-save files
        pytest.fail(f"{cell.key}: not equivalent to eager: max |diff| {diff:.3g} > tolerance "
                    f"{tol:g}; a wrong answer has no speed")


def group_name(cell: Cell) -> str:
    """Cells that differ only by mode share a group, so pytest-benchmark's table compares them."""
    case = f"{cell.case}[{cell.config}]" if cell.config else cell.case
    return f"{case} {cell.phase} {cell.device} {cell.input} b{cell.batch}"


def _measure(benchmark, ready: PreparedCell, settings: Settings, selection) -> dict[str, Any]:
    """The timed rounds after bench.lifecycle's first call and equivalence steps; see the
    module docstring."""
    prepared = ready.prepared
    t2 = time.perf_counter()
    prepared.step()  # the first call of the timed step: also an untimed warm-up
    calibration_s = time.perf_counter() - t2
    rounds = selection.rounds or rounds_for_budget(calibration_s, settings)
    benchmark.pedantic(prepared.step, warmup_rounds=selection.warmup, rounds=rounds,
                       iterations=1)
    return {"setup_s": ready.setup_s,
            "batches_per_call": getattr(prepared, "batches_per_call", 1),
            "first_result_s": ready.first_result_s, "calibration_step_s": calibration_s,
            "rounds": rounds, "warmup_rounds": selection.warmup}


def rounds_for_budget(step_s: float, settings: Settings) -> int:
    """Enough rounds to fill the suite's per-cell budget, never fewer than its min_samples."""
    wanted = math.ceil(settings.budget_s / step_s) if step_s > 0 else MAX_ROUNDS
    return max(settings.min_samples, min(wanted, MAX_ROUNDS))


def _probes(wanted: bool, cell: Cell, workload: Workload, request: Request,
            prepared: Prepared) -> tuple[dict[str, Any], str]:
    """(probe values, what happened): values only with --bench-probes and bench.probes present."""
    if not wanted:
        return {}, "not requested (--bench-probes)"
    try:
        from bench.probes import run_probes
    except ModuleNotFoundError as exc:
        if exc.name != "bench.probes":
            raise
        return {}, "unavailable: bench.probes is not part of this checkout"
    return run_probes(cell, workload, request, prepared), "ran"


def _release_tf_state() -> None:
    """One process runs every cell: drop what the last cell left in Keras' global state."""
    keras = sys.modules.get("keras")  # imported by the keras mode only; never import it here
    if keras is not None:
        keras.backend.clear_session()
    gc.collect()


def cell_info(cell: Cell, suite: str, workload: Workload, prepared: Prepared,
              measured: dict[str, Any], diff: float, tol: float, stats,
              machine: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's extra_info: what pytest-benchmark has no field for, JSON-ready.

    `stats` is pytest-benchmark's Metadata (None with --benchmark-disable): images/s is derived
    from its median step time, with the median's 95% confidence interval from bench.stats.
    """
    training = cell.phase == Phase.TRAIN
    info: dict[str, Any] = {
        "bench_extra_info": EXTRA_INFO_VERSION, "suite": suite, "key": cell.key,
        "case": cell.case, "config": cell.config, "mode": cell.mode, "phase": cell.phase,
        "device": cell.device, "input": cell.input, "batch": cell.batch,
        "images_per_s": None, "images_per_s_ci95": None,
        "setup_s": measured["setup_s"], "setup_total_s": sum(measured["setup_s"].values()),
        "first_result_s": measured["first_result_s"], "graph_nodes": prepared.graph_nodes,
        "max_abs_diff": diff, "tolerance": tol, "equivalent": bool(diff <= tol),
        "macs": workload.macs_per_image, "params": workload.params,
        "flops_per_image": 2.0 * workload.macs_per_image * (3.0 if training else 1.0),
        "peak_rss_mb": measured["peak_rss_mb"], "warmup_rounds": measured["warmup_rounds"],
        "rounds": measured["rounds"], "calibration_step_s": measured["calibration_step_s"],
        "batches_per_call": measured["batches_per_call"],
        "debug": measured["debug"], "probes": measured["probes"],
        "mode_extra": prepared.extra, "machine": machine,
    }
    samples = list(stats.stats.data) if stats else []
    if samples:  # pytest-benchmark times calls; a call may cover several batches
        summary = summarize(samples, cell.batch * measured["batches_per_call"])
        info["images_per_s"] = summary.images_per_s
        info["images_per_s_ci95"] = [summary.ips_ci_low, summary.ips_ci_high]
    return _jsonable(info)


def _jsonable(value: Any) -> Any:
    """Plain JSON types only (numpy scalars and odd probe values become numbers or strings)."""
    def convert(obj: Any) -> Any:
        if hasattr(obj, "item"):
            return obj.item()
        if hasattr(obj, "tolist"):
            return obj.tolist()
        return str(obj)

    text = json.dumps(value, default=convert, allow_nan=True)
    return json.loads(text)
