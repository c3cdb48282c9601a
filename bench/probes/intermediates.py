"""Probe 2: after a step, which named layer outputs can be read as numbers, model unchanged?

A layer output counts as readable when one of these routes yields an array equal to that
layer's eager output (same weights, same batch), without editing the model code and without
rebuilding or retracing the model:

- *debugger hook*: during a normal step, a profile hook watches calls of the case's tap hook
  (`tap(name, tensor)`, called on every named layer output) and reads the tensor argument, as a
  breakpoint in the layer would. Only concrete (eager) tensors can be read; during a trace they
  are symbolic and during a graph step the Python does not run at all.
- *fetch by name*: for TF1 graphs, `Session.run` on the tensor the build named for the layer
  (`layer/<name>` via bench.modes.graph.named_tap) in the graph the mode actually runs.
  Freezing keeps these nodes; inference optimisation strips them.
- *keras sub-model*: `keras.Model(model.inputs, [layer.output ...])` over the model's own
  layers, evaluated in inference mode (training mode would update batch-norm statistics).
  A case layer is readable if some Keras layer's output equals it.
- *step output*: what the step returns (the logits when inferring).

A traced tf.function (function, xla) exposes only its outputs: its graph's inner tensors are
unnamed and a ConcreteFunction cannot return another tensor without being traced again.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from bench.modes.handles import GraphHandles, KerasHandles
from bench.probes.context import ProbeContext, matches, profiling
from bench.store.record import InputStyle

DEBUGGER, FETCH, KERAS, OUTPUT = "debugger hook", "fetch by name", "keras sub-model", "step output"


def intermediates(ctx: ProbeContext) -> dict[str, Any]:
    names = list(ctx.workload.layer_names)
    readable: dict[str, str] = {}  # layer -> first route that gave it

    def accept(route: str, truth: dict[str, np.ndarray], named: dict[str, Any] | None = None,
               anonymous: list[Any] | None = None) -> None:
        for name in names:
            values = ([named[name]] if named and name in named else []) + (anonymous or [])
            if name not in readable and any(matches(v, truth[name]) for v in values):
                readable[name] = route

    truth = ctx.layer_values(ctx.current_weights(), ctx.training)  # before the step
    seen, output = _step_with_debugger(ctx, names)
    accept(DEBUGGER, truth, named=seen)

    handles = ctx.handles
    if isinstance(handles, GraphHandles):
        truth_now = ctx.layer_values(ctx.current_weights(), ctx.training) if ctx.training \
            else truth
        accept(FETCH, truth_now, named=_fetch_by_name(ctx, handles, names))
    if isinstance(handles, KerasHandles):
        truth_inference = ctx.layer_values(ctx.current_weights(), training=False)
        accept(KERAS, truth_inference, anonymous=_keras_outputs(ctx, handles.model))
    accept(OUTPUT, truth, anonymous=[output])

    routes = [r for r in (DEBUGGER, FETCH, KERAS, OUTPUT) if r in readable.values()]
    return {
        "dbg_intermediates_fraction": round(len(readable) / len(names), 3),
        "dbg_intermediates_via": ", ".join(routes) if routes else "none",
        "dbg_intermediates_missing": [n for n in names if n not in readable],
    }


def _step_with_debugger(ctx: ProbeContext, names: list[str]) -> tuple[dict[str, Any], Any]:
    """One normal step with a hook reading the tap's tensor argument whenever it is called."""
    wanted = set(names)
    seen: dict[str, Any] = {}

    def hook(frame, event, arg):
        if event != "call" or frame.f_code.co_varnames[:2] != ("name", "tensor"):
            return
        local = frame.f_locals
        name, tensor = local.get("name"), local.get("tensor")
        if name in wanted and name not in seen:
            # A symbolic tensor (a trace, a graph build) has no number to read.
            with contextlib.suppress(AttributeError, NotImplementedError, TypeError, ValueError):
                seen[name] = np.asarray(tensor.numpy())

    with profiling(hook):
        output = ctx.prepared.step()
    return seen, output


def _fetch_by_name(ctx: ProbeContext, handles: GraphHandles,
                   names: list[str]) -> dict[str, Any]:
    import tensorflow as tf

    from bench.modes import graph as g

    graph, session = handles.graph, handles.session
    prefix = _tap_prefix()
    feed = {}
    if ctx.request.input == InputStyle.FEED:
        feed[graph.get_tensor_by_name(f"{g.INPUT_NAME}:0")] = ctx.request.images
    tensors = {}
    for name in names:
        try:
            tensors[name] = graph.get_tensor_by_name(f"{prefix}{name}:0")
        except (KeyError, ValueError):
            continue  # the node is gone from the graph the mode runs
    if not tensors:
        return {}
    try:
        values = session.run(list(tensors.values()), feed_dict=feed or None)
    except tf.errors.OpError:
        return {}
    return dict(zip(tensors, values, strict=True))


def _tap_prefix() -> str:
    """The prefix named_tap gives layer outputs, read off a node it creates (`layer/`)."""
    import tensorflow as tf

    from bench.modes.graph import named_tap

    with tf.Graph().as_default():
        op_name = named_tap("x", tf.constant(0.0)).op.name
    return op_name[: -len("x")]


def _keras_outputs(ctx: ProbeContext, model) -> list[Any]:
    import keras
    import tensorflow as tf

    layers = [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    with tf.device(ctx.device):
        outputs = probe(tf.constant(ctx.request.images), training=False)
    return [np.asarray(o) for o in outputs]
