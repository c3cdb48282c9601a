"""`function_epoch`: a whole epoch inside one `tf.function`, the loop over the dataset traced.

The same per-batch step as `function` (bench.modes.tf2), but the loop over the dataset is in
the traced function: a graph `while` loop over an iterator made in the graph, so an epoch is
one call from Python instead of one per batch. Against `function` with dataset input
this measures per-batch dispatch from Python versus an in-graph loop. Dataset input only: the
loop has nothing to iterate over with a resident or fed single batch.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from bench.modes import model_tf2
from bench.modes.base import NotApplicable, Prepared, Request, StepFunction
from bench.modes.graph import count_nodes
from bench.modes.handles import TracedHandles
from bench.modes.model_io import describe, is_model
from bench.modes.runtime import configure_threads, device_name, stage
from bench.modes.tf2 import case_step
from bench.store.record import InputStyle, Phase, SetupStage


def epoch_fn(step, training: bool):
    """One epoch as a function of the dataset: the mean loss, or every batch's logits.

    The loop is a `while` on `get_next_as_optional()` of an iterator made inside the function,
    not `for batch in dataset`: AutoGraph lowers the latter to `dataset.reduce`, which
    instantiates the loop body (the whole step) again on every call: about 50 ms a call for a
    two-batch epoch of a tiny CNN, against 5 ms for this loop (2 busy CPUs).
    """

    def train_epoch(dataset):
        iterator = iter(dataset)
        total, count = tf.constant(0.0), tf.constant(0)
        batch = iterator.get_next_as_optional()
        while batch.has_value():
            images, labels = batch.get_value()
            total += step(images, labels)
            count += 1
            batch = iterator.get_next_as_optional()
        return total / tf.cast(count, tf.float32)

    def infer_epoch(dataset):
        iterator = iter(dataset)
        logits = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        index = tf.constant(0)
        batch = iterator.get_next_as_optional()
        while batch.has_value():
            logits = logits.write(index, step(batch.get_value()))
            index += 1
            batch = iterator.get_next_as_optional()
        return logits.concat()

    return train_epoch if training else infer_epoch


def prepare(request: Request) -> Prepared:
    if request.input != InputStyle.DATASET:
        raise NotApplicable(f"not applicable: function_epoch loops over a dataset; input "
                            f"{str(request.input)!r} has no epoch to loop over")
    mode = __name__.rpartition(".")[2]
    if is_model(request):  # a user's model file: its step is bench.modes.model_tf2's
        return prepare_epoch_step(request, model_tf2.model_step, extra=describe(request, mode))
    return prepare_epoch_step(request, case_step, extra={"mode_impl": mode})


def prepare_epoch_step(request: Request, build: Callable[[Request], StepFunction],
                       extra: dict) -> Prepared:
    """`build` the per-batch step (stage build), then trace the epoch's loop around it."""
    configure_threads(request.threads)
    device = device_name(request.device)
    training = request.phase == Phase.TRAIN
    timings: dict[str, float] = {}
    with tf.device(device):
        with stage(timings, SetupStage.BUILD):
            built = build(request)
        with stage(timings, SetupStage.TRACE):
            fn = tf.function(epoch_fn(built.fn, training))
            concrete = fn.get_concrete_function(built.dataset)
    dataset = built.dataset

    def run_epoch():
        with tf.device(device):
            return fn(dataset).numpy()

    return Prepared(
        step=run_epoch, setup_s=timings,
        # The loop body is a function of the graph's library: count its nodes too.
        graph_nodes={"traced": count_nodes(concrete.graph.as_graph_def())},
        read_weights=built.read_weights if training else None,
        batches_per_call=request.epoch_batches, extra=extra,
        # `function` takes a dataset here, not a batch (bench.probes.context.step_inputs).
        handles=TracedHandles(fn, concrete, built.variables, built.loaded, takes_dataset=True),
    )
