"""What every probe needs: the cell, its mode's handles, the eager truth and where code lives.

A mode's *family* is the type of its `Prepared.handles` (bench.modes.handles), never its name:
GraphHandles for a TF1 graph (session, frozen, optimized), TracedHandles for a traced
`tf.function` (function, function_epoch, xla), KerasHandles for Keras and EagerHandles for
plain eager code. Probes dispatch on that type.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import CodeType, ModuleType
from typing import Any

import numpy as np
import tensorflow as tf

from bench.modes import load_mode
from bench.modes.base import Prepared, Request
from bench.modes.handles import Handles, KerasHandles, TracedHandles
from bench.modes.runtime import device_name
from bench.store.record import Phase
from cases.base import Workload

# Relative agreement for "this array is that layer's output": graph modes match eager to
# 1e-6, but XLA and the batch-norm-folded graph reorder float32 arithmetic.
MATCH_RTOL = 1e-3


@dataclass
class ProbeContext:
    cell: Any  # bench.store.record.Cell
    workload: Workload
    request: Request
    prepared: Prepared
    mode: ModuleType

    @property
    def handles(self) -> Handles:
        """What the probes can look into; its type is the mode's family."""
        return self.prepared.handles

    @property
    def keras(self) -> bool:
        """Keras runs its own layers, not the case's forward code (no tap hook)."""
        return isinstance(self.handles, KerasHandles)

    @property
    def training(self) -> bool:
        return self.request.phase == Phase.TRAIN

    @property
    def device(self) -> str:
        return device_name(self.request.device)

    @property
    def case_file(self) -> str:
        """The file the case's forward code is written in (cases/cnn.py, ...)."""
        return self.workload.forward.__code__.co_filename

    @property
    def fault_layer(self) -> str:
        """Faults go into the middle named layer: deep enough that layers run before it."""
        names = self.workload.layer_names
        return names[len(names) // 2]

    def build(self, workload: Workload | None = None, images: np.ndarray | None = None,
              labels: np.ndarray | None = None) -> Prepared:
        """A fresh instance of this mode, built by the mode module itself."""
        request = dataclasses.replace(
            self.request, workload=workload or self.workload,
            images=self.request.images if images is None else images,
            labels=self.request.labels if labels is None else labels)
        return self.mode.prepare(request)

    def current_weights(self) -> dict[str, np.ndarray]:
        """Weights in force now: training steps move them away from the request's."""
        if self.training and self.prepared.read_weights is not None:
            return self.prepared.read_weights()
        return self.request.weights

    def layer_values(self, weights: dict[str, np.ndarray], training: bool) -> dict[str, Any]:
        """The eager truth: every named layer output, via the tap hook, on these weights."""
        values: dict[str, np.ndarray] = {}

        def record(name, tensor):
            values[name] = np.asarray(tensor.numpy())
            return tensor

        with tf.device(self.device):
            params = {k: tf.constant(v) for k, v in weights.items()}
            self.workload.forward(params, tf.constant(self.request.images), training=training,
                                  tap=record)
        return values

    def fault_source_line(self) -> int | None:
        """The line in the case file that produces the fault layer's output.

        Found by running the forward code eagerly with a tap that looks up its own call stack:
        the innermost frame in the case file is the layer's line.
        """
        found: list[int] = []
        target, case_file = self.fault_layer, self.case_file

        def locate(name, tensor):
            if name == target and not found:
                frame = sys._getframe(1)
                while frame is not None and frame.f_code.co_filename != case_file:
                    frame = frame.f_back
                if frame is not None:
                    found.append(frame.f_lineno)
            return tensor

        with tf.device(self.device):
            params = {k: tf.constant(v) for k, v in self.request.weights.items()}
            self.workload.forward(params, tf.constant(self.request.images),
                                  training=self.training, tap=locate)
        return found[0] if found else None

    def model_code(self) -> tuple[set[str], set[CodeType]]:
        """What counts as the model's Python: the case package's files, plus, for Keras, the
        `call` methods of the model's layers (Keras does not run the case's forward code)."""
        case_dir = os.path.dirname(self.case_file)
        files = {os.path.join(case_dir, f) for f in os.listdir(case_dir) if f.endswith(".py")}
        codes: set[CodeType] = set()
        if isinstance(self.handles, KerasHandles):
            for layer in self.handles.model.layers:
                call = getattr(type(layer), "call", None)
                if call is not None and hasattr(call, "__code__"):
                    codes.add(call.__code__)
        return files, codes

    def step_inputs(self, images: np.ndarray | None = None,
                    labels: np.ndarray | None = None) -> tuple:
        """The arguments the eager/function step functions take, as device tensors (or, for a
        function that runs a whole epoch, the epoch's dataset starting with these bytes)."""
        images = self.request.images if images is None else images
        labels = self.request.labels if labels is None else labels
        handles = self.handles
        if isinstance(handles, TracedHandles) and handles.takes_dataset:
            from bench.modes.data import epoch_dataset

            request = dataclasses.replace(self.request, images=images, labels=labels)
            return (epoch_dataset(request),)
        with tf.device(self.device):
            if isinstance(images, dict):  # a model file's inputs by name (cases.model)
                args = ({k: tf.identity(tf.constant(v)) for k, v in images.items()},)
            else:
                args = (tf.identity(tf.constant(images)),)
            if self.training:
                args += (tf.identity(tf.constant(labels)),)
        return args


def matches(value: Any, reference: np.ndarray) -> bool:
    """Whether `value` is `reference` (same shape, equal to float32 reordering noise)."""
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        return False
    if array.shape != reference.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(reference)))) if reference.size else 1.0
    return bool(np.allclose(array, reference, rtol=MATCH_RTOL, atol=MATCH_RTOL * scale))


@contextmanager
def profiling(hook: Callable) -> Iterator[None]:
    """sys.setprofile for the duration: the mechanism debuggers and profilers use."""
    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        yield
    finally:
        sys.setprofile(previous)


def make_context(cell: Any, workload: Workload, request: Request,
                 prepared: Prepared) -> ProbeContext:
    return ProbeContext(cell, workload, request, prepared, load_mode(cell.mode))


@contextmanager
def patched_call(cls: type, wrap: Callable[[Callable], Callable]) -> Iterator[None]:
    """Replace a Keras layer class's `call` with `wrap(original)` for the duration.

    Keras builds and traces a model from its layers' `call`, looked up on the class at call
    time, so this reaches layers created later (inside a mode's prepare). The signature is
    kept (Keras inspects it); the class is restored exactly, inherited `call` included.
    """
    own = cls.__dict__.get("call")
    original = cls.call
    cls.call = functools.wraps(original)(wrap(original))
    try:
        yield
    finally:
        if own is not None:
            cls.call = own
        else:
            del cls.call


def keras_step_graph(model: Any, training: bool):
    """GraphDef of the trace in which Keras ran the model's layers for predict/fit.

    Keras keeps its tf.functions in `predict_function` / `train_function`, possibly wrapped in
    a plain Python function; the model's ops live in the trace with the most top-level nodes
    (outer traces only loop over an iterator and call it).
    """
    root = getattr(model, "train_function" if training else "predict_function", None)
    graphs = [cf.graph.as_graph_def() for fn in _tf_functions(root)
              for cf in fn._list_all_concrete_functions()]
    return max(graphs, key=lambda gd: len(gd.node)) if graphs else None


def _tf_functions(obj: Any, depth: int = 3) -> list[Any]:
    """tf.function objects reachable from `obj` through closures."""
    if obj is None or depth < 0:
        return []
    if hasattr(obj, "_list_all_concrete_functions"):
        return [obj]
    found = []
    for cell in getattr(obj, "__closure__", None) or ():
        try:
            found += _tf_functions(cell.cell_contents, depth - 1)
        except ValueError:  # an empty cell
            continue
    return found
