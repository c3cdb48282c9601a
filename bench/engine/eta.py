"""How long the rest of a run will take: a cost model of each cell, corrected by the cells
already measured in this run.

A run's cells differ by two orders of magnitude (a CNN inference cell takes a second, XLA
training of a MobileNet half a minute), and the matrix runs case by case, so extrapolating the
average of the cells done so far is wrong for most of a run. Instead every pending cell gets a
prior estimate from what it is, split into the three parts of its time that behave differently:

- `fixed`: start, inputs, setup stages, first call, equivalence steps, eager reference and
  teardown. Grows with the number of layers (tracing, compiling, graph building) per mode;
- `measure`: warm-up, sampling and the paired measurement. Set by the budgets, or by the
  minimum sample counts times the step time when steps are slow;
- `probes`: the debuggability probes, on the cells that run them.

The step time comes from a log-linear model of the case's layers and FLOPs over the profile's
calibrated peak; the constants (PRIOR, from eta_prior.json) were fitted with `fit_prior` on a
standard-suite run on this project's 2-vCPU reference machine. Each part is then scaled by what
this run measured: actual over predicted seconds of the cells done (Record.time_s), shrunk
toward 1 while few cells are done, and per mode for the fixed part (a compiler that is slow on
this machine is slow for every case). Pure functions and plain data: no TensorFlow.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from bench.modes import REFERENCE_MODE, TRAIN, mode_info
from bench.store.record import (
    MEASURING_STAGES,
    TIME_STAGES,
    Cell,
    InputStyle,
    Phase,
    Record,
    Status,
    TimeStage,
)

FIXED_STAGES = tuple(s for s in TIME_STAGES if s not in (*MEASURING_STAGES, TimeStage.PROBES))
PARTS = ("fixed", "budget", "steps", "probes")
# Seconds of evidence before a correction factor moves far from 1 (shrinkage).
PRIOR_WEIGHT_S = 10.0


@dataclass(frozen=True)
class ModeCost:
    """Prior constants of one (mode, phase): fixed = a + b * layers; log(step) = c + d *
    log(layers) + e * log(flops / peak); probes = p + q * layers."""

    fixed: tuple[float, float]
    step: tuple[float, float, float]
    probes: tuple[float, float]


@dataclass(frozen=True)
class CellShape:
    """What the model needs to know about a cell before it runs."""

    cell: Cell
    layers: int
    flops_per_step: float  # forward (x3 for training) FLOPs of one batch
    peak_flops: float | None  # calibrated peak of the cell's profile
    probes: bool
    applicable: bool = True


@dataclass(frozen=True)
class Budget:
    """The measurement settings that bound a cell's sampling time."""

    warmup: int
    min_samples: int
    budget_s: float
    paired_budget_s: float
    paired: bool
    epoch_batches: int = 8  # dataset input: batches in one measured call

    @classmethod
    def of(cls, options) -> Budget:
        """From the worker's CellOptions."""
        return cls(options.warmup, options.min_samples, options.budget_s,
                   options.paired_budget_s or options.budget_s, options.paired,
                   options.epoch_batches)


@dataclass(frozen=True)
class Estimate:
    """A cell's seconds in the parts the correction scales separately. Measuring is split in
    two because the two err differently: time bounded by a budget (fast steps: the sampler
    stops at the CI target or the budget) and time bounded by the minimum sample count (slow
    steps: the step-time model's error)."""

    fixed_s: float = 0.0
    budget_s: float = 0.0
    steps_s: float = 0.0
    probes_s: float = 0.0

    @property
    def measure_s(self) -> float:
        return self.budget_s + self.steps_s

    @property
    def total_s(self) -> float:
        return self.fixed_s + self.measure_s + self.probes_s


# Fraction of a budget a measurement uses when its steps are fast: it stops as soon as the
# median's CI reaches the target, often well before the budget.
BUDGET_USE = 0.55
DEFAULT_COST = ModeCost((1.0, 0.1), (-6.0, 1.0, 1.0), (2.0, 0.2))
# The fitted constants live in eta_prior.json (written by
# `python -m bench.engine.eta RUN... --write`),
# keyed by mode and phase; a mode without a row is costed like `ModeInfo.costed_like`.
PRIOR_FILE = Path(__file__).with_name("eta_prior.json")


def load_prior(path: Path = PRIOR_FILE) -> dict[tuple[str, str], ModeCost]:
    data = json.loads(path.read_text())
    return {(row["mode"], row["phase"]): ModeCost(tuple(row["fixed"]), tuple(row["step"]),
                                                  tuple(row["probes"]))
            for row in data["costs"]}


PRIOR = load_prior()


def step_s(cost: ModeCost, shape: CellShape) -> float:
    """Predicted seconds of one batch."""
    c, d, e = cost.step
    work = max(shape.flops_per_step / (shape.peak_flops or 1e11), 1e-9)
    return math.exp(c + d * math.log(max(shape.layers, 1)) + e * math.log(work))


def estimate(shape: CellShape, budget: Budget,
             prior: dict[tuple[str, str], ModeCost] | None = None) -> Estimate:
    """The prior estimate of one cell, before any correction."""
    if not shape.applicable:
        return Estimate()
    cell = shape.cell
    table = PRIOR if prior is None else prior
    info = mode_info(cell.mode)
    cost = table.get((cell.mode, cell.phase)) or table.get((info.costed_like, cell.phase),
                                                           DEFAULT_COST)
    step = step_s(cost, shape)
    # With dataset input a measured call is an epoch; Model.fit runs several batches per call.
    batches = (budget.epoch_batches if cell.input == InputStyle.DATASET
               else info.train_batches_per_call if cell.phase == TRAIN else 1)
    call = step * batches
    by_budget, by_steps = 0.0, budget.warmup * call
    loops = [(call, budget.budget_s)]
    if budget.paired and cell.mode != REFERENCE_MODE:
        eager = table.get((REFERENCE_MODE, cell.phase), DEFAULT_COST)
        eager_batches = batches if cell.input == InputStyle.DATASET else 1
        loops.append((call + step_s(eager, shape) * eager_batches, budget.paired_budget_s))
    for one, seconds in loops:
        if budget.min_samples * one > BUDGET_USE * seconds:
            by_steps += budget.min_samples * one
        else:
            by_budget += BUDGET_USE * seconds
    fixed = cost.fixed[0] + cost.fixed[1] * shape.layers + 2 * call
    probes = cost.probes[0] + cost.probes[1] * shape.layers if shape.probes else 0.0
    return Estimate(fixed, by_budget, by_steps, probes)


def actual(record: Record) -> Estimate:
    """What a finished cell actually spent, in the model's three parts."""
    stages = record.time_s
    return Estimate(fixed_s=sum(stages.get(s, 0.0) for s in FIXED_STAGES),
                    budget_s=sum(stages.get(s, 0.0) for s in MEASURING_STAGES),
                    probes_s=stages.get(TimeStage.PROBES, 0.0))


@dataclass
class Corrector:
    """Scales prior estimates by what this run measured so far (shrunk toward 1)."""

    predicted: dict[str, float]
    measured: dict[str, float]

    @classmethod
    def empty(cls) -> Corrector:
        return cls({}, {})

    def add(self, mode: str, predicted: Estimate, measured: Estimate) -> None:
        """Learn from one cell. Its measuring time is shared between the budget-bound and
        step-bound parts in the proportion the prior gave them."""
        share = predicted.budget_s / predicted.measure_s if predicted.measure_s else 1.0
        got = {"fixed": measured.fixed_s, "probes": measured.probes_s,
               "budget": measured.measure_s * share, "steps": measured.measure_s * (1 - share)}
        for part in PARTS:
            for key in (part, f"{part}:{mode}"):
                self.predicted[key] = self.predicted.get(key, 0.0) + getattr(predicted,
                                                                             part + "_s")
                self.measured[key] = self.measured.get(key, 0.0) + got[part]

    def factor(self, part: str, mode: str = "") -> float:
        """Global factor for the part; for `fixed`, a per-mode factor shrunk toward it."""
        overall = ((self.measured.get(part, 0.0) + PRIOR_WEIGHT_S)
                   / (self.predicted.get(part, 0.0) + PRIOR_WEIGHT_S))
        if part != "fixed" or not mode:
            return overall
        key = f"{part}:{mode}"
        return ((self.measured.get(key, 0.0) + PRIOR_WEIGHT_S * overall)
                / (self.predicted.get(key, 0.0) + PRIOR_WEIGHT_S))

    def corrected(self, mode: str, prior: Estimate) -> float:
        return sum(getattr(prior, part + "_s") * self.factor(part, mode if part == "fixed"
                                                             else "") for part in PARTS)


def remaining_s(pending: list[tuple[str, Estimate]], corrector: Corrector) -> float:
    """Corrected seconds left for the pending cells, given as (mode, prior estimate)."""
    return sum(corrector.corrected(mode, prior) for mode, prior in pending)


def cell_shape(cell: Cell, peak_flops: dict[str, float], probes: bool) -> CellShape:
    """A cell's shape from its case (layers, MACs; no TensorFlow) and its profile's peak."""
    from bench.modes import not_applicable_reason
    from bench.store.runfiles import peak_key

    layers, macs_per_image = _case_shape(cell.case_spec)
    flops = 2.0 * macs_per_image * cell.batch * (3.0 if cell.phase == Phase.TRAIN else 1.0)
    return CellShape(cell, layers, flops,
                     peak_flops.get(peak_key(cell.device, cell.threads)), probes,
                     applicable=not not_applicable_reason(cell.mode, cell.phase))


@functools.lru_cache(maxsize=1024)
def _case_shape(case_spec: str) -> tuple[int, float]:
    """(layers, MACs per image) of a case: built once per spec, not once per cell and round
    (a large plan has tens of thousands of cells of a few cases)."""
    from cases import get_workload

    workload = get_workload(case_spec)
    return len(workload.layer_names), workload.macs_per_image


class Forecast:
    """The live estimate of a run: prior estimates of pending cells, corrected as cells end."""

    def __init__(self, priors: list[tuple[Cell, Estimate]], tail_s: float = 0.0):
        self.pending = list(priors)
        self.corrector = Corrector.empty()
        self.tail_s = tail_s  # work after the last cell (the closing calibration)

    def done(self, record: Record) -> None:
        """Take the finished cell off the pending list and learn from its actual time."""
        for index, (cell, prior) in enumerate(self.pending):
            if cell == record.cell:
                del self.pending[index]
                if prior.total_s:
                    self.corrector.add(cell.mode, prior, actual(record))
                return

    def remaining_s(self) -> float:
        return self.tail_s + remaining_s([(cell.mode, prior) for cell, prior in self.pending],
                                         self.corrector)


# The calibrated peaks of the machine PRIOR was fitted on, for estimates made before any
# calibration on this machine (`bench run --estimate` without an earlier run to read).
REFERENCE_PEAK = {"cpu/t1": 1.48e11, "cpu/tall": 2.32e11}


def estimate_run(order: list[tuple[int, Cell]], probed: set[tuple[int, Cell]], budget: Budget,
                 peak: dict[str, float]) -> float:
    """Prior seconds for a whole plan (cells only; calibration adds a few seconds)."""
    return sum(estimate(cell_shape(cell, peak, (r, cell) in probed), budget).total_s
               for r, cell in order)


RIDGE = 0.5
TYPICAL_STEP = (0.0, 0.7, 0.5)  # log(step) slopes on log(layers) and log(flops / peak)


def fit_prior(rows: list[tuple[CellShape, Record]]) -> dict[tuple[str, str], ModeCost]:
    """Least-squares constants per (mode, phase) from measured records (with time_s) and
    their shapes. Used to derive PRIOR; kept so the next machine's constants can be refit."""
    import numpy as np

    groups: dict[tuple[str, str], list[tuple[CellShape, Record]]] = {}
    for shape, record in rows:
        if record.status == Status.OK and record.samples_s:
            groups.setdefault((shape.cell.mode, shape.cell.phase), []).append((shape, record))
    fitted: dict[tuple[str, str], ModeCost] = {}
    for key, items in groups.items():
        layers = np.array([max(s.layers, 1) for s, _ in items], dtype=float)
        work = np.array([max(s.flops_per_step / (s.peak_flops or 1e11), 1e-9)
                         for s, _ in items])
        steps = np.array([float(np.median(r.samples_s)) for _, r in items])
        design = np.column_stack([np.ones_like(layers), np.log(layers), np.log(work)])
        # A little ridge toward typical slopes: with one case in the runs, log(layers) has no
        # spread and a plain least-squares slope would be anything.
        pull = np.sqrt(RIDGE) * np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        step = np.linalg.lstsq(np.vstack([design, pull]),
                               np.concatenate([np.log(steps), pull @ np.array(TYPICAL_STEP)]),
                               rcond=None)[0]
        lin = np.column_stack([np.ones_like(layers), layers])
        fixed = np.array([actual(r).fixed_s for _, r in items])
        fixed_coef = _non_negative_fit(lin, fixed)
        probed = [(s, r) for s, r in items if s.probes]
        probes_coef = (0.0, 0.0)
        if probed:
            plin = np.column_stack([np.ones(len(probed)), [s.layers for s, _ in probed]])
            probes_coef = _non_negative_fit(plin, np.array([actual(r).probes_s
                                                            for _, r in probed]))
        fitted[key] = ModeCost(fixed=fixed_coef, step=tuple(round(float(v), 3) for v in step),
                               probes=probes_coef)
    return fitted


def _non_negative_fit(design, target) -> tuple[float, float]:
    from scipy.optimize import nnls

    coef, _ = nnls(design, target)
    return (round(float(coef[0]), 3), round(float(coef[1]), 4))


def refit(paths: list[str]) -> str:
    """eta_prior.json's content fitted on recorded runs (with time_s)."""
    from bench.store.runfiles import load_run

    rows = []
    for path in paths:
        run = load_run(path)
        probed = {(r.cell, r.round) for r in run.records if r.debug}
        rows += [(cell_shape(r.cell, run.header.peak_flops, (r.cell, r.round) in probed), r)
                 for r in run.records if r.time_s]
    fitted = fit_prior(rows)
    costs = [{"mode": mode, "phase": phase, "fixed": list(cost.fixed), "step": list(cost.step),
              "probes": list(cost.probes)} for (mode, phase), cost in sorted(fitted.items())]
    return json.dumps({"fitted_on": ", ".join(paths), "costs": costs}, indent=1) + "\n"


# python -m bench.engine.eta RUN.jsonl ... [--write]: refit on this machine
if __name__ == "__main__":
    import sys

    text = refit([a for a in sys.argv[1:] if a != "--write"])
    if "--write" in sys.argv:
        from bench.store.atomic import write_atomically

        write_atomically(PRIOR_FILE, text)  # all or nothing, like every output
    else:
        print(text, end="")
