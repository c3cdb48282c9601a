"""Eager-side building blocks shared by the eager, function and xla modes.

The three modes run literally the same Python step functions; they differ only in whether the
step is called directly, wrapped in `tf.function`, or in `tf.function(jit_compile=True)`.
Inputs are passed as arguments (never captured as constants), so a traced graph cannot fold
the network away. With dataset input the step is a Python `for` over the epoch's dataset that
calls the (possibly traced) per-batch function once per batch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from bench.modes.base import Prepared, Request
from bench.modes.data import epoch_dataset, epoch_result
from bench.modes.runtime import configure_threads, device_name, stage
from bench.record import InputStyle, Phase, SetupStage
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


def prepare_tf2(request: Request, mode: str,
                wrap: Callable[[Callable], Callable] | None) -> Prepared:
    """Build variables and the step; with `wrap`, trace it once as a setup stage."""
    from bench.modes.model_io import is_model

    if is_model(request):  # a user's model file: bench.modes.model_tf2
        from bench.modes import model_tf2

        return model_tf2.prepare(request, mode, wrap)
    configure_threads(request.threads)
    device = device_name(request.device)
    training = request.phase == Phase.TRAIN
    timings: dict[str, float] = {}
    handles: dict = {}
    graph_nodes: dict[str, int] = {}
    with tf.device(device):
        with stage(timings, SetupStage.BUILD):
            variables = make_variables(request)
            fn = train_fn(request, variables) if training else infer_fn(request, variables)
            resident = request.input == InputStyle.RESIDENT
            args = _inputs(request, training, resident)
            dataset = epoch_dataset(request) if request.input == InputStyle.DATASET else None
        if wrap is not None:
            with stage(timings, SetupStage.TRACE):
                fn = wrap(fn)
                concrete = fn.get_concrete_function(*_specs(request, training))
            handles["concrete_function"] = concrete
            graph_nodes["traced"] = len(concrete.graph.as_graph_def().node)

    if dataset is not None:
        def step():
            with tf.device(device):
                outputs = [fn(*batch) if training else fn(batch) for batch in dataset]
            return epoch_result(outputs, training)
    elif resident:
        def step():
            with tf.device(device):
                return fn(*args).numpy()
    else:
        host = (request.images, request.labels) if training else (request.images,)

        def step():
            with tf.device(device):
                return fn(*(tf.convert_to_tensor(a) for a in host)).numpy()

    def read_weights() -> dict[str, np.ndarray]:
        return {name: v.numpy() for name, v in variables.items()}

    handles.update(function=fn, variables=variables)
    return Prepared(step=step, setup_s=timings, graph_nodes=graph_nodes,
                    read_weights=read_weights if training else None, handles=handles,
                    batches_per_call=request.epoch_batches if dataset is not None else 1,
                    extra={"mode_impl": mode})


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
