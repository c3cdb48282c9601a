"""`function_epoch`: a whole epoch inside one `tf.function`, the loop over the dataset traced.

The same per-batch step as `function` (bench.modes.tf2), but the `for` over the dataset is in
the traced function: AutoGraph turns it into a graph loop over the dataset's iterator, so an
epoch is one call from Python instead of one per batch. Against `function` with dataset input
this measures per-batch dispatch from Python versus an in-graph loop. Dataset input only: the
loop has nothing to iterate over with a resident or fed single batch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bench.modes.base import NotApplicable, Prepared, Request
from bench.modes.data import epoch_dataset
from bench.modes.graph import count_nodes
from bench.modes.runtime import configure_threads, device_name, stage
from bench.modes.tf2 import infer_fn, make_variables, train_fn


def epoch_fn(step, training: bool):
    """One epoch as a function of the dataset: the mean loss, or every batch's logits."""

    def train_epoch(dataset):
        total, count = tf.constant(0.0), tf.constant(0)
        for images, labels in dataset:
            total += step(images, labels)
            count += 1
        return total / tf.cast(count, tf.float32)

    def infer_epoch(dataset):
        logits = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        index = tf.constant(0)
        for images in dataset:
            logits = logits.write(index, step(images))
            index += 1
        return logits.concat()

    return train_epoch if training else infer_epoch


def prepare(request: Request) -> Prepared:
    if request.input != "dataset":
        raise NotApplicable(f"not applicable: function_epoch loops over a dataset; input "
                            f"{request.input!r} has no epoch to loop over")
    configure_threads(request.threads)
    device = device_name(request.device)
    training = request.phase == "train"
    timings: dict[str, float] = {}
    with tf.device(device):
        with stage(timings, "build"):
            variables = make_variables(request)
            step = train_fn(request, variables) if training else infer_fn(request, variables)
            dataset = epoch_dataset(request)
        with stage(timings, "trace"):
            fn = tf.function(epoch_fn(step, training))
            concrete = fn.get_concrete_function(dataset)

    def run_epoch():
        with tf.device(device):
            return fn(dataset).numpy()

    def read_weights() -> dict[str, np.ndarray]:
        return {name: v.numpy() for name, v in variables.items()}

    return Prepared(
        step=run_epoch, setup_s=timings,
        # The loop body is a function of the graph's library: count its nodes too.
        graph_nodes={"traced": count_nodes(concrete.graph.as_graph_def())},
        read_weights=read_weights if training else None,
        batches_per_call=request.epoch_batches,
        extra={"mode_impl": "function_epoch"},
        handles={"concrete_function": concrete, "epoch_function": fn, "dataset": dataset,
                 "variables": variables},
    )
