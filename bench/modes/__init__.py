"""Execution modes: one module per mode, all behind `prepare(request) -> Prepared`, and the one
table that says what each mode is (`MODE_TABLE`, a `ModeInfo` row per mode).

Every other place that needs to know something about a mode (the plan, the worker, the
probes, the reports' order and colours, tolerances) reads it from the table, so adding a mode
is one module in this package plus one row here.

This package's `__init__` is TensorFlow-free so that plans, suite files and reports can use
the table without importing TF; `load_mode(name)` imports a mode module (and TF) on demand.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from bench.modes.base import (
    DeviceUnavailable,
    NotApplicable,
    Prepared,
    Request,
    Threads,
)
from bench.store.record import INPUT_STYLES, PHASES, InputStyle, Phase

INFER, TRAIN = Phase.INFER, Phase.TRAIN

_INFERENCE_ONLY = ("not applicable: {mode} graphs are inference-only (their variables are "
                   "constants, so there is nothing to train)")


@dataclass(frozen=True)
class ModeInfo:
    """Everything the suite knows about a mode, besides its module's `prepare`.

    Its family (which probes apply) is not a column: it is the type of the handles its
    `prepare` returns (bench.modes.handles)."""

    name: str  # also the module name: bench.modes.<name>, unless `module` says otherwise
    description: str
    # Inference: max |logits - eager logits| a mode may show and still compute "the same
    # thing". Training: max of |loss diff| and max |weight diff| after the equivalence steps.
    tolerance: float
    train_tolerance: float | None  # None: the mode cannot train
    order: int  # display order in reports and plots
    color: str  # one fixed colour in every plot
    phases: tuple[str, ...] = PHASES
    inputs: tuple[str, ...] = INPUT_STYLES  # bench.store.record.INPUT_STYLES it takes
    not_applicable: str = _INFERENCE_ONLY  # why a phase outside `phases` is not applicable
    module: str = ""  # import path of the module; "" = bench.modes.<name>
    # Batches one measured training call runs on resident/fed input (Model.fit runs several
    # per call so its per-call overhead is amortised as in real use).
    train_batches_per_call: int = 1
    # The ETA (bench.engine.eta) costs a mode without fitted constants of its own like this one.
    costed_like: str = ""
    # It runs Keras: a worker's parent imports Keras before forking its cells (needs_keras).
    uses_keras: bool = False

    def reason(self, phase: str) -> str | None:
        return None if phase in self.phases else self.not_applicable.format(mode=self.name,
                                                                             phase=phase)

    @property
    def module_path(self) -> str:
        return self.module or f"bench.modes.{self.name}"


# The reference every mode is checked and timed against.
EAGER = "eager"
REFERENCE_MODE = EAGER

# Rows in the order plans run them (TF1-style graph modes, then TF2 modes, then Keras);
# `order` is the display order of reports and plots: eager first (the reference), then the TF2
# graph modes, then the TF1-style graph modes. Tolerances, float32 throughout: graph modes run
# the same kernels as eager; XLA fuses and reorders reductions; the optimised graph folds batch
# norm into convolution weights. Training: a randomly initialised deep net with batch norm has
# exploding gradients toward its input, so float32 rounding differences grow from step to
# step; XLA's fused batch-norm reductions round differently enough to need a looser bound.
# Graph-mode training is bounded at 5e-4, not 1e-4: on an AMD EPYC (oneDNN picks other
# kernels there than on the Xeon these bounds were first set on) eager's depthwise-conv
# gradients differ from the graph modes' by 3.0e-4 after a 3-batch dataset epoch of MobileNet
# 0.25-64, 6% of the 5e-3 the weights moved; a missing or wrong update differs by all of it.
# Colours: Okabe-Ito (colour-blind safe), assigned so related modes are still told apart.
MODE_TABLE: dict[str, ModeInfo] = {info.name: info for info in (
    ModeInfo("session", "tf.compat.v1 graph run by Session.run",
             tolerance=1e-4, train_tolerance=5e-4, order=5, color="#CC79A7"),
    ModeInfo("frozen", "variables folded into constants, re-imported, Session.run",
             tolerance=1e-4, train_tolerance=None, order=6, color="#56B4E9", phases=(INFER,)),
    ModeInfo("optimized", "frozen graph after optimize_for_inference + grappler",
             tolerance=1e-3, train_tolerance=None, order=7, color="#E69F00", phases=(INFER,)),
    ModeInfo(EAGER, "op-by-op eager execution, GradientTape loop",
             tolerance=0.0, train_tolerance=0.0, order=0, color="#4d4d4d"),
    ModeInfo("function", "tf.function traced graph",
             tolerance=1e-4, train_tolerance=5e-4, order=1, color="#0072B2"),
    ModeInfo("function_epoch", "a whole dataset epoch inside one tf.function",
             tolerance=1e-4, train_tolerance=5e-4, order=2, color="#332288",
             inputs=(InputStyle.DATASET,), costed_like="function"),
    ModeInfo("xla", "tf.function(jit_compile=True)",
             tolerance=1e-3, train_tolerance=2e-2, order=3, color="#D55E00"),
    ModeInfo("keras", "Keras layers: predict_on_batch / Model.fit",
             tolerance=1e-3, train_tolerance=5e-4, order=4, color="#009E73",
             train_batches_per_call=8, uses_keras=True),
)}


def mode_info(name: str) -> ModeInfo:
    try:
        return MODE_TABLE[name]
    except KeyError:
        raise ValueError(f"unknown mode {name!r}; accepted modes: {', '.join(MODE_TABLE)}") \
            from None


def display_order() -> tuple[str, ...]:
    """Mode names in the reports' order (ModeInfo.order, then name)."""
    return tuple(sorted(MODE_TABLE, key=lambda m: (MODE_TABLE[m].order, m)))


def accepts_input(mode: str, input_style: str) -> bool:
    return input_style in MODE_TABLE[mode].inputs


def mode_inputs(mode: str) -> tuple[str, ...]:
    return MODE_TABLE[mode].inputs


def not_applicable_reason(mode: str, phase: str) -> str | None:
    """Why a (mode, phase) cell cannot exist, or None when it can."""
    return MODE_TABLE[mode].reason(phase)


GRAPH_ONLY = ("not applicable: a SavedModel holds graphs only; its signature runs as one graph "
              "function, so there is no op-by-op execution to measure (the restored signature "
              "function is still the reference)")
KERAS_SESSION_TRAIN = ("not applicable: the Session graph of a Keras model is its exported "
                       "inference signature; training in a Session needs the model as tf-op "
                       "case code (module:)")


def model_file_reason(workload, mode: str, phase: str) -> str | None:
    """Why a user's model file (cases.model.ModelWorkload) cannot run a cell its mode could
    run; None for tf-op case code (the built-in and plug-in cases) and for cells it can."""
    if not hasattr(workload, "graph_only"):
        return None
    if workload.graph_only and mode == EAGER:
        return GRAPH_ONLY
    if phase == TRAIN and workload.train_reason:
        return workload.train_reason
    if phase == TRAIN and mode == "session":
        return KERAS_SESSION_TRAIN
    return None


KERAS_PRELOAD = ("keras",)  # the module a worker's parent imports when needs_keras()


def needs_keras(cells) -> bool:
    """Do these cells use Keras? The keras modes do, and so may any case but the built-in ones
    (a Keras file, a SavedModel exported from Keras, a user's module). A worker's parent
    process imports Keras before forking only then (bench.modes.runtime: TensorFlow is
    imported without it, 2 of its 7 s here), so no cell pays the import in its setup time."""
    from cases import CASES

    return any(MODE_TABLE[cell.mode].uses_keras or cell.case not in CASES for cell in cells)


def tolerance(mode: str, phase: str) -> float:
    """The stated tolerance of a mode's equivalence check, recorded with every result."""
    info = MODE_TABLE[mode]
    value = info.train_tolerance if phase == TRAIN else info.tolerance
    if value is None:
        raise KeyError(f"{mode} has no {phase} tolerance")
    return value


def load_mode(name: str) -> ModuleType:
    return importlib.import_module(mode_info(name).module_path)


__all__ = ["EAGER", "MODE_TABLE", "REFERENCE_MODE", "DeviceUnavailable",
           "ModeInfo", "NotApplicable", "Prepared", "Request", "Threads", "accepts_input",
           "display_order", "load_mode", "mode_info", "mode_inputs", "model_file_reason",
           "not_applicable_reason",
           "tolerance"]
