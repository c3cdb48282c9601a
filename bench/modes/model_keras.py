"""keras over a user's model file (cases.model): `predict_on_batch` / `Model.fit` as in
bench.modes.keras.

A Keras model file is the Keras model itself; training recompiles it with plain SGD at the
suite's rate and the model's own loss, `FIT_BATCHES` copies of the batch per measured call. A
SavedModel signature serves Keras through a `TFSMLayer` (inference only) in a functional
model over named inputs.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from bench.modes import model_io as io
from bench.modes.base import Prepared, Request
from bench.modes.data import batches_per_call
from bench.modes.handles import KerasHandles
from bench.modes.runtime import configure_threads, device_name, stage
from bench.store.record import InputStyle, Phase, SetupStage


class SignatureLayer(keras.layers.TFSMLayer):
    """TFSMLayer calls its endpoint with one positional argument; a signature function takes
    its inputs by keyword, so a dict of inputs is passed as keywords."""

    def call(self, inputs, training=False):
        return self.call_endpoint_fn(**inputs)


def _model(request: Request):
    """(model, structure): the Keras model and how a dict of inputs becomes its input."""
    wl = request.workload
    if wl.kind == "savedmodel":
        inputs = {t.name: keras.Input(t.shape, dtype=t.dtype, name=t.name)
                  for t in wl.model_inputs}
        outputs = SignatureLayer(wl.path, call_endpoint=wl.signature)(inputs)
        return keras.Model(inputs, outputs), lambda x: x, None
    from cases.loading import load

    loaded = load(wl)
    names = [t.name for t in wl.model_inputs]

    def structure(inputs):
        return inputs[names[0]] if len(names) == 1 else [inputs[n] for n in names]

    return loaded.keras_model, structure, loaded


def _packed(outputs) -> np.ndarray:
    return np.asarray(io.pack([tf.convert_to_tensor(o) for o in tf.nest.flatten(outputs)]))


def prepare(request: Request, mode: str, fit_batches: int) -> Prepared:
    configure_threads(request.threads)
    device = device_name(request.device)
    training = request.phase == Phase.TRAIN
    timings: dict[str, float] = {}
    with tf.device(device), stage(timings, SetupStage.BUILD):
        model, structure, loaded = _model(request)
        if training:
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=request.learning_rate),
                          loss=loaded.loss_fn)
        repeat = fit_batches if training else 1
        x = {k: np.concatenate([v] * repeat) for k, v in request.images.items()}
        y = np.concatenate([request.labels] * repeat)
        if request.input == InputStyle.RESIDENT:
            x = {k: tf.identity(tf.constant(v)) for k, v in x.items()}
            y = tf.identity(tf.constant(y))
        x = structure(x)
        dataset = (io.epoch_dataset(request, structure=structure)
                   if request.input == InputStyle.DATASET else None)
    batch = request.batch

    def fit(inputs, targets):
        with tf.device(device):
            history = model.fit(inputs, targets, batch_size=batch, epochs=1, verbose=0,
                                shuffle=False)
        return history.history["loss"][-1]

    single_step = None
    if dataset is not None:
        def step():
            with tf.device(device):
                if training:
                    return model.fit(dataset, epochs=1, verbose=0,
                                     shuffle=False).history["loss"][-1]
                return _packed(model.predict(dataset, verbose=0))
    elif training:
        first = tf.nest.map_structure(lambda a: a[:batch], x)

        def step():
            return fit(x, y)

        def single_step():
            return fit(first, y[:batch])
    else:
        def step():
            with tf.device(device):
                return _packed(model.predict_on_batch(x))

    return Prepared(
        step=step, setup_s=timings,
        read_weights=loaded.read_weights if training else None,
        batches_per_call=(batches_per_call(request) if dataset is not None
                          else fit_batches if training else 1),
        single_step=single_step,
        extra={"keras_version": keras.__version__,
               "jit_compile": str(getattr(model, "jit_compile", "n/a")),
               **io.describe(request, f"{mode}, TFSMLayer"
                             if request.workload.kind == "savedmodel" else mode)},
        handles=KerasHandles(model),
    )
