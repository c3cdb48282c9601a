"""The suite as pytest-benchmark benchmarks: one per case x configuration x mode x phase cell.

    pytest bench/ --benchmark-only [--bench-suite quick] [-k "cnn and infer"]
                  [--benchmark-json out.json | --benchmark-autosave] [--benchmark-compare]

Per cell, in one process (pytest-benchmark's model, unlike `python -m bench run`'s worker per
cell), with the worker's own code around the timing, so every number means the same thing:
1. `bench.engine.worker.open_cell`: the workload, weights and input batch from the suite's seed,
   `mode.prepare` (its setup stages), the first call (stage `first_call`: tracing and
   compile-on-first-call land here), the equivalence steps;
2. the timing, the only part that is pytest-benchmark's: one calibration call sizes the
   rounds to the suite's budget, then `benchmark.pedantic(step, warmup_rounds=W, rounds=R,
   iterations=1)`: warm-up is explicit, so tracing and compilation never count as
   steady-state time;
3. `bench.engine.worker.close_cell` (without the paired measurement): peak memory above the cell's
   start, the probes (with --bench-probes), the eager reference on the same weights and
   bytes, close. A result outside the mode's tolerance fails the test and is left out of
   the saved JSON (a wrong answer has no speed).

A round is one call of the mode's step. Keras training's call is one Model.fit over several
batches, and with dataset input every mode's call is one epoch (`batches_per_call` in
extra_info): pytest-benchmark's own table shows per-call times,
while images_per_s (and `bench table`, which divides the raw times) count every batch.

Everything pytest-benchmark has no field for goes to `extra_info` (see `cell_info`), which
`bench.store.pytest_benchmark_json` reads back so `python -m bench table/report` accept the
JSON files.
pytest-benchmark's --benchmark-min-rounds/max-time/warmup do not apply (rounds are pedantic):
use the suite's settings or --bench-rounds/--bench-warmup.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest

from bench.engine.machine import machine_facts
from bench.engine.placement import pin, placement
from bench.engine.plan import Settings
from bench.engine.timing import Measurement
from bench.engine.worker import CellOptions, OpenCell, close_cell, open_cell
from bench.modes import DeviceUnavailable, Threads
from bench.stats.samples import summarize
from bench.store.record import Cell, Record

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
    settings = bench_selection.suite.settings
    probes, probes_status = _probes(bench_selection.probes)
    # The worker's own code before and after the timing (bench.engine.worker.open_cell, close_cell):
    # only the timing is pytest-benchmark's. No paired measurement (pytest-benchmark has no
    # field for it); the CPUs were pinned once for the session (bench_runtime).
    options = CellOptions.from_settings(settings, probes=probes, paired=False,
                                        intra_op=bench_runtime.threads.intra_op,
                                        inter_op=bench_runtime.threads.inter_op)
    try:
        opened = open_cell(cell, options)
    except DeviceUnavailable as exc:
        pytest.skip(str(exc))
    if isinstance(opened, Record):  # skipped: the mode cannot run this cell
        pytest.skip(opened.reason)
    benchmark.group = group_name(cell)
    try:
        measurement, measured = _measure(benchmark, opened, settings, bench_selection)
    except BaseException:
        opened.ready.close()
        raise
    record = close_cell(opened, measurement)  # memory, probes, eager reference, close
    _release_tf_state()
    measured["probes"] = probes_status
    benchmark.extra_info.update(cell_info(
        cell, bench_selection.suite.name, record, opened.ready.prepared.extra, measured,
        getattr(benchmark, "stats", None), bench_runtime.machine))
    if not record.equivalent:
        benchmark.has_error = True  # keeps the timing out of --benchmark-json/-save files
        pytest.fail(f"{cell.key}: not equivalent to eager: max |diff| "
                    f"{record.max_abs_diff:.3g} > tolerance {record.tolerance:g}; a wrong "
                    "answer has no speed")


def group_name(cell: Cell) -> str:
    """Cells that differ only by mode share a group, so pytest-benchmark's table compares them."""
    case = f"{cell.case}[{cell.config}]" if cell.config else cell.case
    return f"{case} {cell.phase} {cell.device} {cell.input} b{cell.batch}"


def _measure(benchmark, opened: OpenCell, settings: Settings,
             selection) -> tuple[Measurement, dict[str, Any]]:
    """The timed rounds between the worker's open_cell and close_cell (see the module
    docstring): the samples as the worker's Measurement, and what only this adapter knows."""
    step = opened.step
    t2 = time.perf_counter()
    step()  # the first call of the timed step: also an untimed warm-up
    calibration_s = time.perf_counter() - t2
    rounds = selection.rounds or rounds_for_budget(calibration_s, settings)
    benchmark.pedantic(step, warmup_rounds=selection.warmup, rounds=rounds, iterations=1)
    stats = getattr(benchmark, "stats", None)  # None with --benchmark-disable
    samples = list(stats.stats.data) if stats else []
    measurement = Measurement(samples_s=samples, warmup_s=[], reached_target=False,
                              stopped_by="max_samples" if selection.rounds else "budget")
    return measurement, {"batches_per_call": opened.ready.prepared.batches_per_call,
                         "calibration_step_s": calibration_s, "rounds": rounds,
                         "warmup_rounds": selection.warmup}


def rounds_for_budget(step_s: float, settings: Settings) -> int:
    """Enough rounds to fill the suite's per-cell budget, never fewer than its min_samples."""
    wanted = math.ceil(settings.budget_s / step_s) if step_s > 0 else MAX_ROUNDS
    return max(settings.min_samples, min(wanted, MAX_ROUNDS))


def _probes(wanted: bool) -> tuple[bool, str]:
    """(run them, what happened): only with --bench-probes and bench.probes present."""
    if not wanted:
        return False, "not requested (--bench-probes)"
    if importlib.util.find_spec("bench.probes") is None:
        return False, "unavailable: bench.probes is not part of this checkout"
    return True, "ran"


def _release_tf_state() -> None:
    """One process runs every cell: drop what the last cell left in Keras' global state."""
    keras = sys.modules.get("keras")  # imported by the keras mode only; never import it here
    if keras is not None:
        keras.backend.clear_session()
    gc.collect()


def cell_info(cell: Cell, suite: str, record: Record, mode_extra: dict[str, Any],
              measured: dict[str, Any], stats, machine: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's extra_info: what pytest-benchmark has no field for, JSON-ready.

    `record` is the worker's Record of the cell (bench.engine.worker.close_cell). `stats` is
    pytest-benchmark's Metadata (None with --benchmark-disable): images/s is derived from its
    median step time, with the median's 95% confidence interval from bench.stats.samples.
    """
    info: dict[str, Any] = {
        "bench_extra_info": EXTRA_INFO_VERSION, "suite": suite, "key": cell.key,
        "case": cell.case, "config": cell.config, "mode": cell.mode, "phase": cell.phase,
        "device": cell.device, "input": cell.input, "batch": cell.batch,
        "images_per_s": None, "images_per_s_ci95": None,
        "setup_s": record.setup_s, "setup_total_s": sum(record.setup_s.values()),
        "first_result_s": record.first_result_s, "graph_nodes": record.graph_nodes,
        "max_abs_diff": record.max_abs_diff, "tolerance": record.tolerance,
        "equivalent": bool(record.equivalent),
        "macs": record.macs_per_image, "params": record.params,
        "flops_per_image": record.flops_per_image,
        "peak_rss_mb": record.peak_rss_mb, "warmup_rounds": measured["warmup_rounds"],
        "rounds": measured["rounds"], "calibration_step_s": measured["calibration_step_s"],
        "batches_per_call": measured["batches_per_call"],
        "debug": record.debug, "probes": measured["probes"],
        "mode_extra": mode_extra, "machine": machine,
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
