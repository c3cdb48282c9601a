"""`keras`: the network from standard Keras layers with the case's weights.

Inference is `Model.predict_on_batch`; training is `Model.fit` with the same loss (mean sparse
softmax cross-entropy on logits) and optimiser (plain SGD, same learning rate). One call of
the step is one `fit` epoch over `FIT_BATCHES` copies of the batch, so fit's per-call
overhead (callbacks, data adapter) is amortised as it is over a real epoch, and the worker
reports per-batch times. The first call and the equivalence steps use single-batch `fit`
calls, so they are exactly three SGD steps like every other mode's.

With dataset input a call is `Model.predict(dataset)` / `Model.fit(dataset, epochs=1)` over
the epoch's dataset (bench.modes.data), the way Keras is fed in real training.

Keras' default `jit_compile="auto"` is left alone (it is what users get: off on CPU-only
machines, on with a GPU); the resolved value is recorded in `Record.mode_facts`. This mode is
also the independent check that the raw-op workloads are the standard networks.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from bench.modes import mode_info
from bench.modes.base import Prepared, Request
from bench.modes.data import batches_per_call, epoch_dataset
from bench.modes.handles import KerasHandles
from bench.modes.runtime import configure_threads, device_name, stage
from bench.store.record import InputStyle, Phase, SetupStage
from cases.base import get_keras_weights

NAME = __name__.rpartition(".")[2]  # the mode is named after its module (MODE_TABLE)
FIT_BATCHES = mode_info(NAME).train_batches_per_call  # batches per Model.fit call


def prepare(request: Request) -> Prepared:
    from bench.modes.model_io import is_model

    if is_model(request):  # a user's model file: bench.modes.model_keras
        from bench.modes import model_keras

        return model_keras.prepare(request, NAME, FIT_BATCHES)
    configure_threads(request.threads)
    device = device_name(request.device)
    training = request.phase == Phase.TRAIN
    timings: dict[str, float] = {}
    with tf.device(device), stage(timings, SetupStage.BUILD):
        model = request.workload.keras_model(request.weights)
        if training:
            model.compile(
                optimizer=keras.optimizers.SGD(learning_rate=request.learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
        repeat = FIT_BATCHES if training else 1
        images = np.concatenate([request.images] * repeat)
        labels = np.concatenate([request.labels] * repeat)
        if request.input == InputStyle.RESIDENT:
            images = tf.identity(tf.constant(images))
            labels = tf.identity(tf.constant(labels))
    batch = request.batch

    def fit(x, y):
        with tf.device(device):
            history = model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        return history.history["loss"][-1]

    single_step = None
    if request.input == InputStyle.DATASET:
        with tf.device(device), stage(timings, SetupStage.BUILD):
            dataset = epoch_dataset(request)

        def step():
            with tf.device(device):
                if training:
                    return model.fit(dataset, epochs=1, verbose=0,
                                     shuffle=False).history["loss"][-1]
                return model.predict(dataset, verbose=0)
    elif training:
        def step():
            return fit(images, labels)

        def single_step():
            return fit(images[:batch], labels[:batch])
    else:
        def step():
            with tf.device(device):
                return model.predict_on_batch(images)

    return Prepared(
        step=step, setup_s=timings,
        read_weights=(lambda: get_keras_weights(model)) if training else None,
        batches_per_call=(batches_per_call(request) if request.input == InputStyle.DATASET
                          else FIT_BATCHES if training else 1),
        single_step=single_step,
        extra={"keras_version": keras.__version__,
               "jit_compile": str(getattr(model, "jit_compile", "n/a"))},
        handles=KerasHandles(model),
    )
