"""The one interface every mode implements, as plain data (no TensorFlow here)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.modes.handles import Handles
from bench.store.record import Device, InputStyle, Phase
from cases.base import Workload

# Tolerances of the equivalence check: bench.modes.MODE_TABLE (ModeInfo.tolerance).
# Small on purpose: the benchmark measures speed, not learning, and with the exploding
# gradients of a freshly initialised MobileNet a larger rate turns three steps chaotic, which
# would make the equivalence check meaningless. Speed does not depend on the rate.
LEARNING_RATE = 1e-4
EQUIVALENCE_STEPS = 3
# Distinct batches in one epoch of the `dataset` input style (suite setting `epoch_batches`).
EPOCH_BATCHES = 8


def equivalence_calls(input_style: str, phase: str) -> int:
    """Calls of the step the equivalence check compares for training: EQUIVALENCE_STEPS
    single-batch SGD steps, or one whole epoch for dataset input (its step is an epoch)."""
    if phase != Phase.TRAIN:
        return 1
    return 1 if input_style == InputStyle.DATASET else EQUIVALENCE_STEPS


class NotApplicable(Exception):
    """This mode cannot run this phase: the cell is recorded as skipped with this reason."""


class DeviceUnavailable(RuntimeError):
    """The requested device does not exist on this machine."""


@dataclass(frozen=True)
class Threads:
    """Thread pools, set identically for Sessions (ConfigProto) and eager (tf.config)."""

    intra_op: int = 0  # 0 = TensorFlow's default (all cores)
    inter_op: int = 0

    @classmethod
    def default(cls) -> Threads:
        return cls(intra_op=os.cpu_count() or 1, inter_op=2)

    def as_dict(self) -> dict[str, int]:
        return {"intra_op": self.intra_op, "inter_op": self.inter_op}


@dataclass
class Request:
    """Everything a mode needs to build one cell: the same weights and bytes for every mode."""

    workload: Workload
    weights: dict[str, np.ndarray]
    images: np.ndarray
    labels: np.ndarray
    phase: str = Phase.INFER
    device: str = Device.CPU
    input: str = InputStyle.RESIDENT
    threads: Threads = field(default_factory=Threads.default)
    learning_rate: float = LEARNING_RATE
    # Dataset input only: distinct batches per epoch, batch i = workload.inputs(batch, seed, i)
    # (batch 0 is `images`/`labels`); one call of the step is one epoch over them.
    epoch_batches: int = EPOCH_BATCHES
    seed: int = 0

    @property
    def batch(self) -> int:
        if isinstance(self.images, dict):  # a user's model: inputs by name (cases.model)
            return int(next(iter(self.images.values())).shape[0])
        return int(self.images.shape[0])


@dataclass
class Prepared:
    """A ready-to-run cell.

    `step()` runs one batch and returns host values (numpy): logits for inference, the loss
    for training. Returning host values is what synchronises asynchronous devices, so timing
    `step()` with perf_counter measures the real work. With dataset input `step()` runs one
    epoch (`batches_per_call` batches, in the dataset's order) and returns the logits of all
    of them concatenated, or the epoch's mean loss.
    """

    step: Callable[[], Any]
    setup_s: dict[str, float]  # stage -> seconds, in order (build, freeze, optimize, trace...)
    graph_nodes: dict[str, int] = field(default_factory=dict)
    read_weights: Callable[[], dict[str, np.ndarray]] | None = None  # training: current weights
    close: Callable[[], None] = lambda: None
    # Batches one call of `step()` runs (Model.fit runs several per call so its per-call
    # overhead is amortised as in real use); the worker divides step times by it.
    batches_per_call: int = 1
    # Exactly one batch (one SGD step when training), for the first call and the equivalence
    # check; None when `step` already is that.
    single_step: Callable[[], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # What probes may inspect; its type is the mode's family (bench.modes.handles).
    handles: Handles | None = None


@dataclass
class StepFunction:
    """A per-batch step function and what it runs on: the part that differs between tf-op
    case code (variables from the request's weights) and a user's model file (cases.loaded).
    Everything after it (tracing, the step over each input style, the handles) is shared."""

    fn: Callable  # images -> logits, or (images, labels) -> loss
    variables: dict[str, Any]  # tf.Variables by weight name
    read_weights: Callable[[], dict[str, np.ndarray]]
    args: tuple  # resident input: the batch on the device; () otherwise
    specs: tuple  # TensorSpecs of fn's arguments, for tracing
    dataset: Any  # dataset input: the epoch's tf.data.Dataset; None otherwise
    loaded: Any = None  # a model file as loaded (cases.loaded)
