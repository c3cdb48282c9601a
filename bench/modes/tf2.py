"""Eager-side building blocks shared by the eager, function and xla modes.

The three modes run literally the same Python step functions; they differ only in whether the
step is called directly, wrapped in `tf.function`, or in `tf.function(jit_compile=True)`.
Inputs are passed as arguments (never captured as constants), so a traced graph cannot fold
the network away. With dataset input the step is a Python `for` over the epoch's dataset that
calls the (possibly traced) per-batch function once per batch.

What differs between tf-op case code and a user's model file (bench.modes.model_tf2) is only
the per-batch `StepFunction` (bench.modes.base); `prepare_step` (here) and function_epoch's
in-graph epoch loop take either.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from bench.modes import model_tf2
from bench.modes.base import Prepared, Request, StepFunction
from bench.modes.data import epoch_dataset, epoch_result
from bench.modes.handles import EagerHandles, TracedHandles
from bench.modes.model_io import describe, is_model
from bench.modes.runtime import configure_threads, device_name, stage
from bench.store.record import InputStyle, Phase, SetupStage
from cases.layers import softmax_cross_entropy


def make_variables(request: Request) -> dict[str, tf.Variable]:
    return {
        name: tf.Variable(value, name=name.replace("/", "_"),
                          trainable=request.workload.param_specs[name].trainable)
        for name, value in request.weights.items()
    }


def infer_fn(request: Request, variables: dict[str, tf.Variable]) -> Callable:
    forward = request.workload.forward

    def infer(images):
        logits, _ = forward(variables, images, training=False)
        return logits

    return infer


def train_fn(request: Request, variables: dict[str, tf.Variable]) -> Callable:
    """One SGD step with GradientTape, batch norm in training mode, moving averages updated."""
    forward = request.workload.forward
    trainable = [variables[n] for n in request.workload.trainable_names]
    lr = request.learning_rate

    def train(images, labels):
        with tf.GradientTape() as tape:
            logits, updates = forward(variables, images, training=True)
            loss = softmax_cross_entropy(logits, labels)
        grads = tape.gradient(loss, trainable)
        for var, grad in zip(trainable, grads, strict=True):
            var.assign_sub(lr * grad)
        for name, value in updates.items():
            variables[name].assign(value)
        return loss

    return train


def case_step(request: Request) -> StepFunction:
    """The step of tf-op case code: its forward on tf.Variables made from the weights."""
    training = request.phase == Phase.TRAIN
    variables = make_variables(request)

    def read_weights() -> dict[str, np.ndarray]:
        return {name: v.numpy() for name, v in variables.items()}

    return StepFunction(
        fn=train_fn(request, variables) if training else infer_fn(request, variables),
        variables=variables, read_weights=read_weights,
        args=_inputs(request, training, request.input == InputStyle.RESIDENT),
        specs=_specs(request, training),
        dataset=epoch_dataset(request) if request.input == InputStyle.DATASET else None)


def prepare_tf2(request: Request, mode: str,
                wrap: Callable[[Callable], Callable] | None) -> Prepared:
    """Build variables and the step; with `wrap`, trace it once as a setup stage."""
    if is_model(request):  # a user's model file: its step is bench.modes.model_tf2's
        return prepare_step(request, model_tf2.model_step, wrap, extra=describe(request, mode))
    return prepare_step(request, case_step, wrap, extra={"mode_impl": mode})


def prepare_step(request: Request, build: Callable[[Request], StepFunction],
                 wrap: Callable[[Callable], Callable] | None, extra: dict) -> Prepared:
    """`build` the step (stage build), `wrap` and trace it (stage trace), and run it one batch
    a call, or one dataset epoch a call with a Python loop over the batches."""
    configure_threads(request.threads)
    device = device_name(request.device)
    training = request.phase == Phase.TRAIN
    timings: dict[str, float] = {}
    graph_nodes: dict[str, int] = {}
    concrete = None
    with tf.device(device):
        with stage(timings, SetupStage.BUILD):
            built = build(request)
        fn = built.fn
        if wrap is not None:
            with stage(timings, SetupStage.TRACE):
                fn = wrap(fn)
                concrete = fn.get_concrete_function(*built.specs)
            graph_nodes["traced"] = len(concrete.graph.as_graph_def().node)
    dataset, args = built.dataset, built.args

    if dataset is not None:
        def step():
            with tf.device(device):
                outputs = [fn(*batch) if training else fn(batch) for batch in dataset]
            return epoch_result(outputs, training)
    elif args:
        def step():
            with tf.device(device):
                return fn(*args).numpy()
    else:
        host = (request.images, request.labels) if training else (request.images,)

        def step():
            with tf.device(device):
                return fn(*(_tensor(a) for a in host)).numpy()

    handles = (EagerHandles(fn, built.variables, built.loaded) if concrete is None
               else TracedHandles(fn, concrete, built.variables, built.loaded))
    return Prepared(step=step, setup_s=timings, graph_nodes=graph_nodes,
                    read_weights=built.read_weights if training else None, handles=handles,
                    batches_per_call=request.epoch_batches if dataset is not None else 1,
                    extra=extra)


def _tensor(array):
    """Host bytes to a tensor on the current device (a model file's inputs: a dict of them)."""
    if isinstance(array, dict):
        return {k: tf.convert_to_tensor(v) for k, v in array.items()}
    return tf.convert_to_tensor(array)


def _inputs(request: Request, training: bool, resident: bool) -> tuple:
    if not resident:
        return ()
    images = tf.identity(tf.constant(request.images))  # materialised on the current device
    if not training:
        return (images,)
    return (images, tf.identity(tf.constant(request.labels)))


def _specs(request: Request, training: bool) -> tuple:
    images = tf.TensorSpec((request.batch, *request.workload.input_shape), tf.float32)
    if not training:
        return (images,)
    return (images, tf.TensorSpec((request.batch,), tf.int32))
