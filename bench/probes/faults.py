"""Probes 3 and 4: when a layer goes wrong, does the error lead the user to it?

Two faults are injected at one named layer (the middle one, `ProbeContext.fault_layer`):

- a shape bug: the layer's output is added to a vector one channel too long, which no
  broadcasting rule accepts;
- a NaN: the layer's output goes through `log` of a negative number (op type `Log`).

For the modes built from the case's forward code the fault goes in through the case's `tap`
hook, and the mode is then built by its own module (`mode.prepare`) from that workload, exactly
as it is measured. Keras builds the network from its own layers, so there the fault wraps the
`call` of the Keras layer with that name. The mode is built and stepped once; the exception it
raises (at build or at the first step) is read like a user would read it: message, traceback
and chained exceptions.

"Names the source" means the text names the case file *and* the line that produces the faulty
layer's output, found by running the forward code with a tap that records its caller's line
(for Keras: the line that constructs the layer). "Names the layer" means the layer's name
appears (Keras spelling and `_1` scope suffixes included).

A NaN raises nothing by itself, so the NaN fault runs with numeric checking on: first
`tf.debugging.enable_check_numerics()` (every op built afterwards is checked, in eager code,
tf.function and TF1 graphs alike); if the mode cannot run it (the error is not a NaN report),
then a `tf.debugging.check_numerics` op on each named layer output, through the tap hook, with
the layer's name as its message. "Localised" means the report blames the op that first produced
the NaN (the fault's `Log`), or with per-layer checks, the faulty layer.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from bench.probes.context import ProbeContext, patched_call, profiling
from bench.probes.messages import (
    is_numerics_report,
    names_layer,
    names_source,
    reported_op,
    short_error,
)
from bench.store.record import SetupStage
from cases.base import keras_layer_name, no_tap

NAN_OP = "Log"
GLOBAL, PER_LAYER, NONE = "enable_check_numerics", "check_numerics ops", "none"


def shape_fault(tensor):
    return tensor + tf.zeros([tensor.shape[-1] + 1], dtype=tensor.dtype)


def nan_fault(tensor):
    return tf.math.log(-tf.math.abs(tensor) - 1.0)


def faults(ctx: ProbeContext) -> dict[str, Any]:
    layer = ctx.fault_layer
    names = (layer, keras_layer_name(layer))
    line = _keras_layer_line(ctx) if ctx.keras else ctx.fault_source_line()

    def points_to_source(text: str) -> bool:
        return line is not None and names_source(text, ctx.case_file, line)

    result: dict[str, Any] = {"dbg_fault_layer": layer}
    stage, exc = _run_faulty(ctx, shape_fault, checks=None)
    text = _text(exc)
    result.update(dbg_shape_error_stage=stage,
                  dbg_shape_error_names_source=points_to_source(text),
                  dbg_shape_error_names_layer=names_layer(text, names))

    method, failure = GLOBAL, None
    _, exc = _run_faulty(ctx, nan_fault, checks=GLOBAL)
    if not is_numerics_report(_text(exc)):
        failure = short_error(exc) if exc is not None else "no error: the NaN went unreported"
        method = NONE
        if not ctx.keras:  # per-layer checks go in through the tap hook
            _, exc_ops = _run_faulty(ctx, nan_fault, checks=PER_LAYER)
            if is_numerics_report(_text(exc_ops)):
                method, exc = PER_LAYER, exc_ops
    text = _text(exc)
    detected = method != NONE
    if method == GLOBAL:
        localised = reported_op(text) == NAN_OP
    else:
        localised = detected and names_layer(str(exc), names)
    result.update(dbg_nan_check=method, dbg_nan_check_failure=failure,
                  dbg_nan_detected=detected, dbg_nan_localised=bool(localised),
                  dbg_nan_error_names_source=points_to_source(text),
                  dbg_nan_error_names_layer=names_layer(text, names))
    return result


def _text(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    return "".join(traceback.format_exception(exc))


def _run_faulty(ctx: ProbeContext, fault: Callable, checks: str | None):
    """Build and step the mode with the fault in place: (stage, exception or None)."""
    if ctx.keras:
        return _run_keras_faulty(ctx, fault, checks)
    target, inner = ctx.fault_layer, ctx.workload.forward
    per_layer = checks == PER_LAYER

    def forward(params, images, training=False, tap=no_tap):
        def faulty_tap(name, tensor):
            if name == target:
                tensor = fault(tensor)
            if per_layer:
                tensor = tf.debugging.check_numerics(tensor, f"layer {name}")
            return tap(name, tensor)

        return inner(params, images, training, tap=faulty_tap)

    workload = dataclasses.replace(ctx.workload, forward=forward)
    return _attempt(lambda: ctx.build(workload), numerics=checks == GLOBAL)


def _run_keras_faulty(ctx: ProbeContext, fault: Callable, checks: str | None):
    target = keras_layer_name(ctx.fault_layer)
    try:
        cls = type(ctx.handles.model.get_layer(target))
    except ValueError:
        return "none", None  # the Keras model has no layer of that name

    def wrap(original):
        def call(self, *args, **kwargs):
            out = original(self, *args, **kwargs)
            return fault(out) if self.name == target else out

        return call

    with patched_call(cls, wrap):
        return _attempt(ctx.build, numerics=checks == GLOBAL)


def _attempt(build: Callable, numerics: bool):
    prepared = None
    if numerics:
        tf.debugging.enable_check_numerics()
    try:
        try:
            prepared = build()
        except Exception as exc:  # noqa: BLE001 - the fault's error is the measurement
            return SetupStage.BUILD, exc
        try:
            prepared.step()
        except Exception as exc:  # noqa: BLE001
            return "step", exc
        return "none", None
    finally:
        if numerics:
            tf.debugging.disable_check_numerics()
        if prepared is not None:
            prepared.close()


def _keras_layer_line(ctx: ProbeContext) -> int | None:
    """The case-file line that constructs the Keras layer named like the fault layer.

    A profile hook watches Layer.__init__ calls while the case builds its Keras model and
    walks each one's stack back to the case file.
    """
    import keras

    case_file, lines = ctx.case_file, {}

    def hook(frame, event, arg):
        if event != "call" or frame.f_code.co_name != "__init__":
            return
        obj = frame.f_locals.get("self")
        if isinstance(obj, keras.layers.Layer) and id(obj) not in lines:
            caller = frame.f_back
            while caller is not None and caller.f_code.co_filename != case_file:
                caller = caller.f_back
            lines[id(obj)] = caller.f_lineno if caller is not None else None

    with profiling(hook):
        model = ctx.workload.keras_model(ctx.request.weights)
    try:
        layer = model.get_layer(keras_layer_name(ctx.fault_layer))
    except ValueError:
        return None
    return lines.get(id(layer))

