"""Inputs and outputs of a user's model (cases.model), the same in every mode.

Inputs are a dict of arrays by input name (`request.images`); the training targets are
`request.labels`. Outputs are packed into one float32 tensor per call (`pack`): a single
float32 output as it is, several outputs flattened per example and concatenated in the
model's output order. So a step returns one host array like a built-in case's logits, the
dataset epoch concatenates batches as usual, and the worker's max |diff| over the packed array
is the maximum of the tensor-by-tensor differences (`unpack` splits it back, for tests and
reports that want each tensor).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bench.modes.base import Request
from bench.modes.data import PREFETCH
from bench.store.record import Phase


def is_model(request: Request) -> bool:
    """Whether the request's workload is a model file rather than tf-op case code."""
    from cases.model import ModelWorkload

    return isinstance(request.workload, ModelWorkload)


MACS_SOURCE = "estimated: TF's profiler over the frozen batch-1 inference graph's ops"


def describe(request: Request, how: str) -> dict:
    """The record's extra facts of a model-file cell: how the mode ran it, where MACs came from."""
    return {"mode_impl": f"{how} ({request.workload.kind} model)", "macs_source": MACS_SOURCE}


def pack(outputs: list) -> tf.Tensor:
    if len(outputs) == 1 and outputs[0].dtype == tf.float32:
        return outputs[0]
    flat = [tf.reshape(tf.cast(o, tf.float32), (tf.shape(o)[0], -1)) for o in outputs]
    return tf.concat(flat, axis=1)


def unpack(packed: np.ndarray, workload) -> list[np.ndarray]:
    """The packed outputs tensor by tensor again (the inverse of `pack` for one call)."""
    outs = workload.model_outputs
    if len(outs) == 1 and outs[0].dtype == "float32":
        return [packed]
    result, start = [], 0
    for out in outs:
        size = int(np.prod(out.shape)) if out.shape else 1
        result.append(packed[:, start:start + size].reshape((-1, *out.shape)))
        start += size
    return result


def tensors(arrays: dict) -> dict:
    return {k: tf.convert_to_tensor(v) for k, v in arrays.items()}


def resident(request: Request, training: bool) -> tuple:
    """The batch (and targets) materialised on the current device, as step arguments."""
    inputs = {k: tf.identity(tf.constant(v)) for k, v in request.images.items()}
    if not training:
        return (inputs,)
    return (inputs, tf.identity(tf.constant(request.labels)))


def specs(request: Request, training: bool) -> tuple:
    from cases.loaded import input_specs

    inputs = input_specs(request.workload, request.batch)
    if not training:
        return (inputs,)
    return (inputs, tf.TensorSpec(request.labels.shape, tf.as_dtype(request.labels.dtype)))


def epoch_arrays(request: Request) -> tuple[dict, np.ndarray]:
    """The epoch's batches stacked per input name: (n, batch, ...), and targets (n, batch...)."""
    batches = [(request.images, request.labels)]
    for index in range(1, request.epoch_batches):
        batches.append(request.workload.inputs(request.batch, request.seed, index))
    images = {k: np.stack([b[0][k] for b in batches]) for k in request.images}
    return images, np.stack([b[1] for b in batches])


def epoch_dataset(request: Request, repeat: bool = False, structure=None) -> tf.data.Dataset:
    """As bench.modes.data.epoch_dataset, over the model's inputs: an element is the dict of
    inputs (or `structure(dict)`, Keras' calling structure), plus the targets when training."""
    images, labels = epoch_arrays(request)
    training = request.phase == Phase.TRAIN
    dataset = tf.data.Dataset.from_tensor_slices((images, labels) if training else images)
    if structure is not None:
        dataset = dataset.map((lambda x, y: (structure(x), y)) if training else structure)
    if repeat:
        dataset = dataset.repeat()
    options = tf.data.Options()
    options.autotune.enabled = False  # as bench.modes.data: no autotune thread in the epoch
    return dataset.prefetch(PREFETCH).with_options(options)
