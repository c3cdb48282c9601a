"""One cell's life up to its measurement, written once: the request, `mode.prepare`, the timed
first call and the equivalence steps.

Used by the worker (`bench.engine.worker.run_cell`, `measure_overhead`), the probes-only records of
`bench debug` (`bench.probes.core.probe_record`) and the pytest-benchmark cells
(`bench/test_benchmarks.py`), so that a setup time, a time to first result and an equivalence
check mean the same thing wherever they are recorded.

The stage boundaries are charged to a `Laps` (the worker's Record.time_s): `setup` ends when
`mode.prepare` returns, `first_call` when the first result is back, `equivalence` when the
equivalence outputs (and trained weights) are kept aside. Callers that do not account for
time pass none and get a throwaway one.

This module imports no TensorFlow itself; the modes it loads do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from bench.modes.base import EPOCH_BATCHES, Prepared, Request, Threads, equivalence_calls
from bench.store.record import Cell, Phase, SetupStage, TimeStage


class Laps:
    """Consecutive stage times: each lap charges the time since the previous one to a stage,
    so the stages of a cell add up to its wall time (Record.time_s)."""

    def __init__(self, started: float):
        self.last = started
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> float:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + (now - self.last)
        self.last = now
        return now

    def split(self, first: str, rest: str, first_s: float) -> None:
        """One lap shared by two stages: `first_s` of it to `first`, the remainder to `rest`."""
        now = time.perf_counter()
        first_s = min(max(first_s, 0.0), now - self.last)
        self.stages[first] = self.stages.get(first, 0.0) + first_s
        self.last += first_s
        self.lap(rest)


@dataclass
class PreparedCell:
    """A prepared cell after its first call and equivalence steps."""

    request: Request
    prepared: Prepared
    setup_s: dict[str, float]  # the mode's setup stages, then `first_call`
    first_result_s: float  # from the start of `mode.prepare` to the first result back
    # What the equivalence check compares with the eager reference
    # (bench.engine.worker.reference_diff):
    # the first call's output, plus the losses of the further training steps...
    outputs: list[np.ndarray]
    # ...and, when training, every weight after those steps.
    trained: dict[str, np.ndarray] | None

    @property
    def workload(self):
        return self.request.workload

    def close(self) -> None:
        self.prepared.close()


def make_request(cell: Cell, seed: int, threads: Threads,
                 epoch_batches: int = EPOCH_BATCHES) -> Request:
    """The workload, its weights and input batch (deterministic from the seed), as a Request."""
    from cases import get_workload

    workload = get_workload(cell.case_spec)
    images, labels = workload.inputs(cell.batch, seed)
    return Request(workload, workload.weights(seed), images, labels, cell.phase, cell.device,
                   cell.input, threads, epoch_batches=epoch_batches, seed=seed)


def prepare_cell(mode: ModuleType, request: Request, laps: Laps | None = None) -> PreparedCell:
    """`mode.prepare(request)`, the first call (trace and compile-on-first-call land in it) and
    the equivalence steps: the first call plus two more single-batch SGD steps when training
    (one epoch, the first call, with dataset input), then the trained weights.

    The clock starts at `laps.last` (the end of the caller's previous stage). Raises what
    `mode.prepare` raises (NotApplicable, DeviceUnavailable...).
    """
    from bench.modes import model_file_reason
    from bench.modes.base import NotApplicable

    laps = laps or Laps(time.perf_counter())
    started = laps.last
    # A user's model file may rule out cells its mode could otherwise run (a SavedModel has
    # no op-by-op eager execution, a model without a loss no training): cases.model.
    reason = model_file_reason(request.workload, mode.__name__.rpartition(".")[2],
                               request.phase)
    if reason:
        raise NotApplicable(reason)
    prepared = mode.prepare(request)
    # Exactly one batch (Keras training's timed call runs several), or one dataset epoch.
    one_batch = prepared.single_step or prepared.step
    setup_done = laps.lap(TimeStage.SETUP)
    try:
        first = one_batch()
        first_result_s = time.perf_counter() - started
        setup = {**prepared.setup_s,
                 SetupStage.FIRST_CALL: laps.lap(TimeStage.FIRST_CALL) - setup_done}
        outputs = [np.asarray(first)]
        trained = None
        if request.phase == Phase.TRAIN:
            calls = equivalence_calls(request.input, request.phase)
            outputs += [np.asarray(one_batch()) for _ in range(calls - 1)]
            trained = prepared.read_weights()
    except BaseException:
        prepared.close()
        raise
    laps.lap(TimeStage.EQUIVALENCE)
    return PreparedCell(request, prepared, setup, first_result_s, outputs, trained)

