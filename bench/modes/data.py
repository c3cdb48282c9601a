"""The `dataset` input style: a tf.data pipeline over one epoch of distinct batches.

An epoch is `request.epoch_batches` distinct deterministic batches (batch 0 is the one the
single-batch input styles use), each one element of the dataset, prefetched. Every mode with
dataset input runs them in the same order, so an epoch's logits and the weights after an epoch
can be compared with eager's. How each mode consumes the dataset is its own native way (the
mode modules say which); a measured call is one epoch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bench.modes.base import Request
from bench.store.record import InputStyle, Phase

PREFETCH = 2  # batches the pipeline prepares ahead of the step


def epoch_arrays(request: Request) -> tuple[np.ndarray, np.ndarray]:
    """The epoch's batches stacked: images (n, batch, H, W, C) and labels (n, batch)."""
    images, labels = [request.images], [request.labels]
    for index in range(1, request.epoch_batches):
        x, y = request.workload.inputs(request.batch, request.seed, index)
        images.append(x)
        labels.append(y)
    return np.stack(images), np.stack(labels)


def epoch_dataset(request: Request, repeat: bool = False) -> tf.data.Dataset:
    """One element per batch: images, or (images, labels) when training; prefetched.

    TF2 code iterates the finite dataset once per epoch (a fresh iterator per epoch, as
    `Model.fit` does); a TF1 one-shot iterator cannot be restarted, so Session graphs read
    the repeated dataset and one epoch is the next `epoch_batches` elements.
    """
    images, labels = epoch_arrays(request)
    training = request.phase == Phase.TRAIN
    dataset = tf.data.Dataset.from_tensor_slices((images, labels) if training else images)
    if repeat:
        dataset = dataset.repeat()
    # A fixed prefetch buffer and no autotuning: tf.data's autotune thread intermittently adds
    # ~20 ms to making or dropping an iterator (measured on this 2-CPU VM: 2-3 ms per epoch
    # without it, 2 or 21 ms with it), which over epochs of a few batches would be most of
    # what is measured; over real epochs of thousands of batches it is noise.
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH).with_options(options)


def batches_per_call(request: Request) -> int:
    """Batches one call of the step runs: an epoch for dataset input, else one batch."""
    return request.epoch_batches if request.input == InputStyle.DATASET else 1


def epoch_result(outputs: list, training: bool) -> np.ndarray:
    """An epoch's host result: every batch's logits concatenated, or the mean batch loss."""
    if training:
        return np.float32(np.mean(np.asarray(outputs, dtype=np.float32)))
    return np.concatenate([np.asarray(o) for o in outputs])
