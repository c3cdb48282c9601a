"""eager, function, xla and function_epoch over a user's model file (cases.model).

As for the built-in cases (bench.modes.tf2), the three modes run the same Python step and
differ only in the wrapper: called directly (a Keras model op by op; a SavedModel's restored
signature function, the reference), `tf.function`, or `tf.function(jit_compile=True)`.
Training is a GradientTape step on the model's own loss with plain SGD at the suite's rate,
the same update `Model.fit` makes in the keras mode. This module gives the per-batch step
(`model_step`); bench.modes.tf2 and bench.modes.function_epoch run it as they run a case's.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from bench.modes import model_io as io
from bench.modes.base import NotApplicable, Request, StepFunction
from bench.store.record import InputStyle, Phase


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


def model_step(request: Request) -> StepFunction:
    """The step of a user's model file: its own call (or loss) on its own variables."""
    from cases.loading import load

    training = request.phase == Phase.TRAIN
    loaded = load(request.workload)
    return StepFunction(
        fn=train_fn(loaded, request.learning_rate) if training else infer_fn(loaded),
        variables=dict(zip(loaded.names, loaded.variables, strict=True)),
        read_weights=loaded.read_weights,
        args=io.resident(request, training) if request.input == InputStyle.RESIDENT else (),
        specs=io.specs(request, training),
        dataset=io.epoch_dataset(request) if request.input == InputStyle.DATASET else None,
        loaded=loaded)

