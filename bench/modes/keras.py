"""`keras`: the network from standard Keras layers with the case's weights.

Inference is `Model.predict_on_batch`; training is `Model.fit` with the same loss (mean sparse
softmax cross-entropy on logits) and optimiser (plain SGD, same learning rate). One step is
one `fit` call over one batch, so the step includes Model.fit's per-call overhead (callbacks,
data adapter): that is what calling fit costs, and the report shows it as such. Keras'
default `jit_compile="auto"` is left alone (it is what users get); the resolved value is
recorded in `extra`. This mode is also the independent check that the raw-op workloads are
the standard networks.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from bench.modes.base import Prepared, Request
from bench.modes.runtime import configure_threads, device_name, stage
from cases.base import get_keras_weights


def prepare(request: Request) -> Prepared:
    configure_threads(request.threads)
    device = device_name(request.device)
    training = request.phase == "train"
    timings: dict[str, float] = {}
    with tf.device(device), stage(timings, "build"):
        model = request.workload.keras_model(request.weights)
        if training:
            model.compile(
                optimizer=keras.optimizers.SGD(learning_rate=request.learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
        if request.input == "resident":
            images = tf.identity(tf.constant(request.images))
            labels = tf.identity(tf.constant(request.labels))
        else:
            images, labels = request.images, request.labels
    batch = request.batch

    if training:
        def step():
            with tf.device(device):
                history = model.fit(images, labels, batch_size=batch, epochs=1, verbose=0,
                                    shuffle=False)
            return history.history["loss"][-1]
    else:
        def step():
            with tf.device(device):
                return model.predict_on_batch(images)

    return Prepared(
        step=step, setup_s=timings,
        read_weights=(lambda: get_keras_weights(model)) if training else None,
        extra={"keras_version": keras.__version__,
               "jit_compile": str(getattr(model, "jit_compile", "n/a"))},
        handles={"model": model},
    )
