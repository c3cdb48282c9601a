"""A user's model loaded in this process: one calling convention for Keras models and SavedModel
signatures, plus the graph facts both need (a frozen graph of the inference function, MACs).

`LoadedModel.call(inputs)` takes a dict of tensors by input name and returns the outputs as a
flat list in a fixed order (dicts by sorted key, as `tf.nest` flattens them), so every mode and
the equivalence check see the outputs tensor by tensor in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from cases.base import ConfigError, ParamSpec
from cases.model import ModelWorkload


@dataclass
class LoadedModel:
    call: Callable[[dict], list]  # inputs by name -> flat list of output tensors
    train_call: Callable[[dict], list] | None = None  # the same in training mode (Keras)
    variables: list = field(default_factory=list)  # every variable the call reads
    trainable: list = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # a stable name per variable
    keras_model: Any = None  # the Keras model, when the file is one
    loss_fn: Callable | None = None  # (targets, prediction) -> scalar; None: not trainable
    extra_losses: Callable[[], list] = list  # regularisation losses added to the loss
    keep: list = field(default_factory=list)  # objects that must outlive the call

    def read_weights(self) -> dict[str, np.ndarray]:
        return {n: v.numpy() for n, v in zip(self.names, self.variables, strict=True)}


def input_specs(workload: ModelWorkload, batch: int | None) -> dict[str, tf.TensorSpec]:
    return {t.name: tf.TensorSpec((batch, *t.shape), tf.as_dtype(t.dtype), name=t.name)
            for t in workload.model_inputs}


def inference_function(loaded: LoadedModel, workload: ModelWorkload, batch: int):
    """The traced inference function at a fixed batch: what frozen graphs are made from."""
    fn = tf.function(lambda inputs: loaded.call(inputs))
    return fn.get_concrete_function(input_specs(workload, batch))


@dataclass
class FrozenGraph:
    graph_def: Any  # tf.compat.v1.GraphDef, variables folded to constants, calls inlined
    inputs: dict[str, str]  # input name -> tensor name in graph_def
    outputs: list[str]  # tensor names, in the model's output order


def freeze(concrete) -> FrozenGraph:
    """Variables to constants and function calls inlined (convert_variables_to_constants_v2),
    so the graph's own ops are the model's and a Session can run it."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    frozen = convert_variables_to_constants_v2(concrete)
    names = [s.name for s in tf.nest.flatten(concrete.structured_input_signature,
                                             expand_composites=True)]
    placeholders = [t.name for t in frozen.inputs if t.dtype != tf.resource]
    return FrozenGraph(frozen.graph.as_graph_def(), dict(zip(names, placeholders, strict=True)),
                       [t.name for t in frozen.outputs])


def estimated_macs(graph_def) -> int:
    """Multiply-accumulates per example, estimated by TF's profiler over the frozen batch-1
    graph's ops (its FLOP count over two); 0 when the profiler cannot count them."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
        builder = tf.compat.v1.profiler.ProfileOptionBuilder
        options = builder(builder.float_operation()).with_empty_output().build()
        try:
            profile = tf.compat.v1.profiler.profile(graph=graph, options=options)
        except Exception:  # noqa: BLE001 - an estimate: no count is better than no run
            return 0
    return int(profile.total_float_ops // 2) if profile is not None else 0


def flat_numpy(outputs) -> list[np.ndarray]:
    return [np.asarray(o) for o in tf.nest.flatten(outputs)]


def check_deterministic(loaded: LoadedModel, arrays: dict[str, np.ndarray], where: str) -> list:
    """Two eager calls on the same input must agree exactly, or no mode can be checked
    against the reference. Returns the first call's outputs."""
    first = flat_numpy(loaded.call({k: tf.constant(v) for k, v in arrays.items()}))
    second = flat_numpy(loaded.call({k: tf.constant(v) for k, v in arrays.items()}))
    for index, (a, b) in enumerate(zip(first, second, strict=True)):
        if not np.array_equal(a, b, equal_nan=True):
            raise ConfigError(
                f"{where}: output {index} differs between two eager calls on the same input "
                f"(max |diff| {float(np.max(np.abs(a.astype(np.float64) - b))):.3g}): random "
                "ops or dropout active at inference; no mode could be checked against it")
    return first


@dataclass
class SampleRun:
    """What a model file shows when run once on sample inputs, for its workload's fields."""

    outputs: list[np.ndarray]  # on a batch of two generated inputs, checked deterministic
    macs_per_image: int  # estimated; 0 when it cannot be
    param_specs: dict[str, ParamSpec]


def sample_run(loaded: LoadedModel, workload: ModelWorkload, where: str) -> SampleRun:
    """Run a Keras model or SavedModel signature (`workload` knows its inputs) the same way for
    both: deterministic sample outputs, the MACs estimate, the parameters' shapes."""
    arrays, _ = workload.inputs(2)
    outputs = check_deterministic(loaded, arrays, where)
    try:
        macs = estimated_macs(freeze(inference_function(loaded, workload, 1)).graph_def)
    except Exception:  # noqa: BLE001 - an estimate; the frozen mode records its own failure
        macs = 0
    params = {n: ParamSpec(tuple(v.shape), trainable=bool(v.trainable))
              for n, v in zip(loaded.names, loaded.variables, strict=True)}
    return SampleRun(outputs, macs, params)
