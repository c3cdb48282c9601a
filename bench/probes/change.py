"""Probe 5: what does a change cost? A cold start, then a second batch size.

A fresh instance of the mode is built by its own module and stepped once: the time to that
first result is the cold start (build + trace/compile + first step; TensorFlow itself is
already imported and initialised in the process, so this is the model's cost, not TF's).

Then the same instance is asked for a batch twice the size, twice, the way a user of that mode
would ask: a TF1 graph is fed the new batch in place of its input; a tf.function or eager step
function is called with it; Keras gets `predict_on_batch` / `fit`. A graph whose input has a
fixed batch dimension refuses the feed, and is then rebuilt by the mode module for the new size.

Traces are counted, not guessed: the case's forward is wrapped by a counter that notes each
run on symbolic tensors (a trace, or a graph build); for Keras, which builds from its own
layers, the `call` of the model's output layer is wrapped the same way. Eager code runs the forward
on concrete tensors every step, which is not a trace.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import tensorflow as tf

from bench.modes.handles import GraphHandles, KerasHandles
from bench.probes.context import ProbeContext, patched_call
from cases.base import no_tap


def cost_of_change(ctx: ProbeContext) -> dict[str, Any]:
    traces: list[Any] = []  # one entry per symbolic run of the model's Python
    workload = _counting_workload(ctx, traces)
    with _keras_trace_counter(ctx, traces):
        start = time.perf_counter()
        fresh = ctx.build(workload)
        try:
            fresh.step()
            cold_s = time.perf_counter() - start
            first = len(traces)
            images, labels = ctx.workload.inputs(2 * ctx.request.batch)
            accepted, new_s = _serve(ctx, fresh, workload, images, labels)
            retraces = len(traces) - first
        finally:
            fresh.close()
    return {"dbg_cold_start_s": round(cold_s, 4), "dbg_traces_to_first_result": first,
            "dbg_new_batch_accepted": accepted, "dbg_retraces_new_batch": retraces,
            "dbg_new_shape_s": round(new_s, 4)}


def _counting_workload(ctx: ProbeContext, traces: list[Any]):
    inner = ctx.workload.forward

    def forward(params, images, training=False, tap=no_tap):
        if not tf.executing_eagerly():
            traces.append(True)
        return inner(params, images, training, tap)

    return dataclasses.replace(ctx.workload, forward=forward)


@contextmanager
def _keras_trace_counter(ctx: ProbeContext, traces: list[Any]) -> Iterator[None]:
    """Keras: note each run of the model's output layer outside eager execution (a trace)."""
    if not ctx.keras:
        yield
        return
    last = ctx.handles.model.layers[-1]  # layers[0] may be the InputLayer
    name = last.name

    def wrap(original):
        def call(self, *args, **kwargs):
            if self.name == name and not tf.executing_eagerly():
                traces.append(True)
            return original(self, *args, **kwargs)

        return call

    with patched_call(type(last), wrap):
        yield


def _serve(ctx: ProbeContext, fresh, workload, images: np.ndarray, labels: np.ndarray):
    """Run the new batch size twice: (accepted without a manual rebuild, s to first result)."""
    handles = fresh.handles
    start = time.perf_counter()
    if isinstance(handles, GraphHandles):
        if _feed_graph(ctx, handles, images):
            return True, time.perf_counter() - start
        rebuilt = ctx.build(workload, images, labels)
        try:
            rebuilt.step()
            seconds = time.perf_counter() - start
            rebuilt.step()
        finally:
            rebuilt.close()
        return False, seconds
    if isinstance(handles, KerasHandles):
        run = _keras_runner(ctx, handles.model, images, labels)
    else:  # eager or traced: call the step function with the new batch
        function, args = handles.function, ctx.step_inputs(images, labels)

        def run():
            with tf.device(ctx.device):
                return np.asarray(function(*args))

    run()
    seconds = time.perf_counter() - start
    run()
    return True, seconds


def _feed_graph(ctx: ProbeContext, handles: GraphHandles, images: np.ndarray) -> bool:
    """Feed the new batch in place of the network's input; False if the graph refuses it."""
    from bench.modes import graph as g

    graph, session = handles.graph, handles.session
    logits = graph.get_tensor_by_name(f"{g.LOGITS_NAME}:0")
    source = network_input(logits, (ctx.request.batch, *ctx.workload.input_shape))
    if source is None:
        return False
    try:
        for _ in range(2):
            out = session.run(logits, feed_dict={source: images})
    except (ValueError, tf.errors.OpError):
        return False
    return out.shape[0] == images.shape[0]


def network_input(output, shape: tuple[int, ...]):
    """The placeholder or variable read that feeds the network's images into `output`."""
    seen, stack = set(), [output.op]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type in ("Placeholder", "ReadVariableOp") and op.outputs \
                and tuple(op.outputs[0].shape.as_list() or ()) == shape:
            return op.outputs[0]
        stack.extend(t.op for t in op.inputs)
    return None


def _keras_runner(ctx: ProbeContext, model, images: np.ndarray, labels: np.ndarray):
    batch = int(images.shape[0])

    def run():
        with tf.device(ctx.device):
            if ctx.training:
                return model.fit(images, labels, batch_size=batch, epochs=1, verbose=0,
                                 shuffle=False).history["loss"][-1]
            return model.predict_on_batch(images)

    return run
