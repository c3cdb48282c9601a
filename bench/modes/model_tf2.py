"""eager, function, xla and function_epoch over a user's model file (cases.model).

As for the built-in cases (bench.modes.tf2), the three modes run the same Python step and
differ only in the wrapper: called directly (a Keras model op by op; a SavedModel's restored
signature function, the reference), `tf.function`, or `tf.function(jit_compile=True)`.
Training is a GradientTape step on the model's own loss with plain SGD at the suite's rate,
the same update `Model.fit` makes in the keras mode.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from bench.modes import model_io as io
from bench.modes.base import NotApplicable, Prepared, Request
from bench.modes.data import epoch_result
from bench.modes.runtime import configure_threads, device_name, stage
from bench.record import InputStyle, Phase, SetupStage


def infer_fn(loaded) -> Callable:
    def infer(inputs):
        return io.pack(loaded.call(inputs))

    return infer


def train_fn(loaded, learning_rate: float) -> Callable:
    if loaded.loss_fn is None or loaded.train_call is None:
        raise NotApplicable("not applicable: this model has no loss or training call")
    trainable = list(loaded.trainable)

    def train(inputs, targets):
        with tf.GradientTape() as tape:
            prediction = loaded.train_call(inputs)[0]
            loss = tf.reduce_mean(loaded.loss_fn(targets, prediction))  # a per-example function too
            extra = loaded.extra_losses()
            if extra:
                loss = loss + tf.add_n(extra)
        grads = tape.gradient(loss, trainable)
        for var, grad in zip(trainable, grads, strict=True):
            if grad is not None:
                var.assign_sub(learning_rate * grad)
        return loss

    return train


def prepare(request: Request, mode: str, wrap: Callable | None) -> Prepared:
    from cases.loaded import load

    configure_threads(request.threads)
    device = device_name(request.device)
    training = request.phase == Phase.TRAIN
    timings: dict[str, float] = {}
    handles: dict = {}
    graph_nodes: dict[str, int] = {}
    with tf.device(device):
        with stage(timings, SetupStage.BUILD):
            loaded = load(request.workload)
            fn = train_fn(loaded, request.learning_rate) if training else infer_fn(loaded)
            args = io.resident(request, training) if request.input == InputStyle.RESIDENT else ()
            dataset = io.epoch_dataset(request) if request.input == InputStyle.DATASET else None
        if wrap is not None:
            with stage(timings, SetupStage.TRACE):
                fn = wrap(fn)
                concrete = fn.get_concrete_function(*io.specs(request, training))
            handles["concrete_function"] = concrete
            graph_nodes["traced"] = len(concrete.graph.as_graph_def().node)

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
                converted = [io.tensors(a) if isinstance(a, dict) else tf.convert_to_tensor(a)
                             for a in host]
                return fn(*converted).numpy()

    handles.update(function=fn, variables=dict(zip(loaded.names, loaded.variables,
                                                    strict=True)), loaded=loaded)
    return Prepared(step=step, setup_s=timings, graph_nodes=graph_nodes,
                    read_weights=loaded.read_weights if training else None, handles=handles,
                    batches_per_call=request.epoch_batches if dataset is not None else 1,
                    extra=io.describe(request, mode))


def prepare_epoch(request: Request, mode: str) -> Prepared:
    """function_epoch: the epoch's loop inside one tf.function (bench.modes.function_epoch)."""
    from bench.modes.function_epoch import epoch_fn
    from bench.modes.graph import count_nodes
    from cases.loaded import load

    configure_threads(request.threads)
    device = device_name(request.device)
    training = request.phase == Phase.TRAIN
    timings: dict[str, float] = {}
    with tf.device(device):
        with stage(timings, SetupStage.BUILD):
            loaded = load(request.workload)
            step = train_fn(loaded, request.learning_rate) if training else infer_fn(loaded)
            dataset = io.epoch_dataset(request)
        with stage(timings, SetupStage.TRACE):
            fn = tf.function(epoch_fn(step, training))
            concrete = fn.get_concrete_function(dataset)

    def run_epoch():
        with tf.device(device):
            return fn(dataset).numpy()

    return Prepared(
        step=run_epoch, setup_s=timings,
        graph_nodes={"traced": count_nodes(concrete.graph.as_graph_def())},
        read_weights=loaded.read_weights if training else None,
        batches_per_call=request.epoch_batches,
        extra=io.describe(request, mode),
        handles={"concrete_function": concrete, "function": fn,
                 "function_input": InputStyle.DATASET, "dataset": dataset, "loaded": loaded,
                 "variables": dict(zip(loaded.names, loaded.variables, strict=True))})
