"""Runs one cell inside its own worker process and turns what happened into a Record.

Order of work, so that each number means one thing:
0. pin the process to its CPUs and size TensorFlow's pools (bench.engine.placement), before any op;
1. build the workload, weights and input batch (deterministic from the seed);
2. `mode.prepare` (setup stages timed by the mode), then the first call (its own stage:
   trace/compile-on-first-call lands here), which gives time to first result;
3. the equivalence steps (the first call plus two more for training; with dataset input the
   first call is a whole epoch and is the check), outputs kept aside;
4. steady-state measurement of the mode alone (bench.engine.timing.measure; warm-up excluded);
5. peak memory read *before* the eager reference is built, so it is the cell's own;
6. the eager reference and the comparison (a wrong answer has no speed: the record says so);
7. the paired measurement: the mode's step and eager's alternating in this process
   (bench.engine.timing.measure_paired), the speed-up that cancels the process's state.
The CPU time other processes took from this worker's CPUs during 4 and 7 is recorded too.

This module imports no TensorFlow itself; the modes it loads do, inside the worker process.
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.engine.inject import FAULT_ENV, parse_faults
from bench.engine.lifecycle import Laps, PreparedCell, make_request, prepare_cell
from bench.engine.placement import LoadMeter, available_cpus, pin
from bench.engine.timing import Measurement, measure, measure_paired
from bench.modes.base import EPOCH_BATCHES
from bench.store.record import Cell, Device, Phase, Record, Status, TimeStage, mode_fields

# "<mode>:<crash|hang|oom|error>[,...]": deliberate failures for the isolation tests.


@dataclass(frozen=True)
class CellOptions:
    """What the runner tells a worker: the measurement settings plus this cell's placement."""

    warmup: int = 2
    min_samples: int = 10
    target_ci: float = 0.02
    budget_s: float = 10.0
    seed: int = 0
    probes: bool = False
    paired: bool = True  # also alternate this mode's step with eager's (bench.engine.timing)
    paired_budget_s: float = 0.0  # 0 = budget_s
    # Placement (bench.engine.placement): CPUs to pin to (() = leave as is) and TF's pool sizes.
    cpus: tuple[int, ...] = ()
    intra_op: int = 0  # 0 = bench.modes.base.Threads.default()
    inter_op: int = 0
    slowdown: float = 0.0  # planted regression (bench.engine.inject); 0 = none
    epoch_batches: int = EPOCH_BATCHES  # dataset input: batches per epoch (one measured call)

    @classmethod
    def from_settings(cls, settings, **overrides) -> CellOptions:
        """The measurement settings of a suite (bench.engine.plan.Settings) as a worker's options:
        every field the two share by name, except `probes` (a suite says "once"/"all"/"none",
        the runner decides per cell), then `overrides` (placement, slowdown...)."""
        shared = {f.name for f in dataclasses.fields(cls)} - {"probes"}
        values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)
                  if f.name in shared}
        return cls(**{**values, **overrides})


def _threads(options: CellOptions):
    from bench.modes.base import Threads

    default = Threads.default()
    return Threads(options.intra_op or default.intra_op, options.inter_op or default.inter_op)


@dataclass
class OpenCell:
    """A cell prepared in this worker, its (possibly slowed) step ready to be timed.

    `run_cell` times the step with bench.engine.timing.measure; the A/B lockstep worker
    (bench.lockstep) times it one step at a time on its driver's command. Both then close the
    cell with `close_cell`, so a record means the same thing whoever timed its samples.
    """

    cell: Cell
    options: CellOptions
    ready: PreparedCell
    step: Callable[[], Any]
    laps: Laps
    started: float
    baseline_mb: float
    threads: Any  # bench.modes.base.Threads as TensorFlow reports it
    injected_slowdown: float = 0.0  # bench.engine.inject's planted slowdown of `step` (testing aid)
    injected_iterations: int = 0


def open_cell(cell: Cell, options: CellOptions) -> OpenCell | Record:
    """Steps 0-2 of the module docstring: pin, build, prepare, first call, equivalence steps.

    Returns a skipped Record when the mode cannot run the cell. Errors raised here are the
    runner's to record (status `error`).
    """
    from bench.engine.inject import slow_down
    from bench.modes import load_mode, not_applicable_reason
    from bench.modes.base import NotApplicable
    from bench.modes.runtime import configure_threads

    started = time.perf_counter()
    laps = Laps(started)
    if options.cpus:
        pin(options.cpus)  # before TensorFlow starts a thread: its pools inherit the CPU set
    _maybe_inject_fault(cell)
    reason = not_applicable_reason(cell.mode, cell.phase)
    if reason:
        return Record(cell=cell, status=Status.SKIPPED, reason=reason)
    baseline_mb = _reset_peak_rss()
    request = make_request(cell, options.seed, _threads(options), options.epoch_batches)
    # Size TF's eager pools before any op (Sessions get the same sizes through ConfigProto);
    # what TensorFlow reports back is what the record says.
    threads = configure_threads(request.threads)
    mode = load_mode(cell.mode)

    laps.lap(TimeStage.INPUTS)
    try:  # setup, first call and equivalence steps, each its own lap
        ready = prepare_cell(mode, request, laps)
    except NotApplicable as exc:
        return Record(cell=cell, status=Status.SKIPPED, reason=str(exc))
    step, iterations = ready.prepared.step, 0
    if options.slowdown:
        step, iterations = slow_down(step, options.slowdown)
    return OpenCell(cell, options, ready, step, laps, started, baseline_mb, threads,
                    float(options.slowdown or 0.0), iterations)


def run_cell(cell: Cell, options: CellOptions) -> Record:
    """Measure one cell. Errors raised here are the runner's to record (status `error`)."""
    opened = open_cell(cell, options)
    if isinstance(opened, Record):
        return opened
    meter = LoadMeter(tuple(available_cpus()))
    meter.start()
    measurement = measure(opened.step, warmup=options.warmup, min_samples=options.min_samples,
                          target_rel_ci=options.target_ci, budget_s=options.budget_s)
    meter.stop()
    opened.laps.split(TimeStage.WARMUP, TimeStage.SAMPLING, sum(measurement.warmup_s))
    return close_cell(opened, measurement, meter)


def close_cell(opened: OpenCell, measurement: Measurement, meter: LoadMeter | None = None,
               reference_check: bool = True) -> Record:
    """Steps 5-7: peak memory, probes, the eager reference and the paired measurement, then
    the Record. `reference_check=False` leaves equivalence unchecked (None): for the extra
    worker pairs of an A/B cell, whose first pair already checked it."""
    from bench.modes import REFERENCE_MODE, load_mode, tolerance
    from bench.modes.runtime import device_peak_memory_mb

    cell, options, ready, laps = opened.cell, opened.options, opened.ready, opened.laps
    request, prepared, workload = ready.request, ready.prepared, ready.workload
    meter = meter or LoadMeter(tuple(available_cpus()))
    peak_rss_mb = _peak_rss_mb() - opened.baseline_mb
    peak_device_mb = device_peak_memory_mb(cell.device)
    debug = {}
    if options.probes:
        from bench.probes import run_probes

        debug = run_probes(cell, workload, request, prepared)
        laps.lap(TimeStage.PROBES)
    per_call = prepared.batches_per_call
    paired_s: list[float] = []
    paired_eager_s: list[float] = []
    diff = None
    reference = load_mode(REFERENCE_MODE).prepare(request) if reference_check else None
    try:
        if reference is not None:
            diff = reference_diff(request, reference, ready.outputs, ready.trained)
            laps.lap(TimeStage.REFERENCE)
        if reference is not None and options.paired and cell.mode != REFERENCE_MODE:
            meter.start()
            mode_s, eager_s = measure_paired(opened.step, reference.step,
                                             min_pairs=options.min_samples,
                                             target_rel_ci=options.target_ci,
                                             budget_s=options.paired_budget_s
                                             or options.budget_s)
            meter.stop()
            paired_s = [t / per_call for t in mode_s]
            paired_eager_s = [t / reference.batches_per_call for t in eager_s]
            laps.lap(TimeStage.PAIRED)
    finally:
        if reference is not None:
            reference.close()
        prepared.close()
    laps.lap(TimeStage.TEARDOWN)
    tol = tolerance(cell.mode, cell.phase)
    training = cell.phase == Phase.TRAIN
    flops = 2.0 * workload.macs_per_image * (3.0 if training else 1.0)
    return Record(
        cell=cell, status=Status.OK, samples_s=[t / per_call for t in measurement.samples_s],
        warmup_s=[t / per_call for t in measurement.warmup_s], images_per_step=cell.batch,
        setup_s=ready.setup_s,
        first_result_s=ready.first_result_s, peak_rss_mb=peak_rss_mb, peak_device_mb=peak_device_mb,
        graph_nodes=prepared.graph_nodes, max_abs_diff=diff, tolerance=tol,
        equivalent=None if diff is None else bool(diff <= tol),
        macs_per_image=workload.macs_per_image,
        params=workload.params, flops_per_image=flops, threads=opened.threads.as_dict(),
        debug=debug, wall_s=time.perf_counter() - opened.started, paired_s=paired_s,
        paired_eager_s=paired_eager_s, cpus=available_cpus(), load=meter.result(),
        time_s=laps.stages, batches_per_call=per_call, stopped_by=measurement.stopped_by,
        reached_target=measurement.reached_target,
        injected_slowdown=opened.injected_slowdown,
        injected_iterations=opened.injected_iterations, **mode_fields(prepared.extra),
    )


def reference_diff(request, reference, outputs: list[np.ndarray],
                   trained: dict[str, np.ndarray] | None) -> float:
    """Max |difference| from the eager reference on the same weights, bytes and SGD steps.

    `reference` is a fresh eager instance (bench.modes.eager) of the same request. Inference
    compares the first call's logits (every batch's, for a dataset epoch); training compares
    the losses of the first EQUIVALENCE_STEPS single-batch steps, or of one dataset epoch, and
    every weight (moving statistics included) after.
    """
    from bench.modes.base import equivalence_calls

    if request.phase != Phase.TRAIN:
        return float(np.max(np.abs(outputs[0] - np.asarray(reference.step()))))
    calls = equivalence_calls(request.input, request.phase)
    losses = [float(reference.step()) for _ in range(calls)]
    weights = reference.read_weights()
    return max(
        max(abs(float(a) - b) for a, b in zip(outputs, losses, strict=True)),
        max(float(np.max(np.abs(trained[k] - weights[k]))) for k in weights),
    )


def error_record(cell: Cell, exc: BaseException) -> Record:
    """One readable line for the table; the full traceback goes to the cell's log."""
    traceback.print_exception(exc)
    message = " ".join(str(exc).split()) or type(exc).__name__
    if len(message) > 300:
        message = message[:297] + "..."
    return Record(cell=cell, status=Status.ERROR, reason=f"{type(exc).__name__}: {message}")


def _read_status_kb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return 0.0


def _reset_peak_rss() -> float:
    """Reset the kernel's high-water mark (Linux) and return the current RSS in MB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _read_status_kb("VmRSS") / 1024


def _peak_rss_mb() -> float:
    return _read_status_kb("VmHWM") / 1024


def _maybe_inject_fault(cell: Cell) -> None:
    """Deliberate failures so tests can prove one bad cell never takes the run down."""
    faults = parse_faults(os.environ.get(FAULT_ENV))
    kind = faults.get(cell.mode)
    if not kind:
        return
    if kind == "crash":
        os.abort()
    if kind == "hang":
        while True:
            time.sleep(1)
    if kind == "oom":
        hog = []
        while True:
            hog.append(np.ones(64 * 1024 * 1024 // 8))  # 64 MB at a time, touched
    if kind == Status.ERROR:
        raise RuntimeError(f"injected error in {cell.key}")


def calibrate(device: str, cpus: tuple[int, ...] = (), intra_op: int = 0,
              inter_op: int = 0) -> dict:
    """TensorFlow facts and the device's achievable float32 FLOP/s on these CPUs and pools."""
    from bench.modes.runtime import configure_threads, measure_peak_flops, tf_facts

    if cpus:
        pin(cpus)
    options = CellOptions(cpus=cpus, intra_op=intra_op, inter_op=inter_op)
    threads = configure_threads(_threads(options))
    facts = tf_facts()
    facts["threads"] = threads.as_dict()
    if device == Device.GPU and not facts["gpus"]:
        facts["peak_flops"] = None
        return facts
    facts["peak_flops"] = measure_peak_flops(device)
    return facts


def measure_overhead(cell: Cell, options: CellOptions, steps: int) -> dict:
    """Harness versus bare loop on one cell's real step (see
    bench.engine.timing.overhead_benchmark)."""
    from bench.engine.timing import overhead_benchmark
    from bench.modes import load_mode

    if options.cpus:
        pin(options.cpus)
    request = make_request(cell, options.seed, _threads(options), options.epoch_batches)
    prepared = prepare_cell(load_mode(cell.mode), request).prepared
    for _ in range(max(options.warmup, 5)):
        prepared.step()
    result = overhead_benchmark(prepared.step, steps, block=max(steps // 20, 10))
    prepared.close()
    return result
