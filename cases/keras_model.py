"""`keras:PATH`: a Keras model file as a workload, and its loader.

Reading the file here (in the planning process too) is what turns a bad model into one clear
line before anything is timed: a path that is no model, a corrupt file, custom objects not
supplied, inputs of unknown shape, outputs that differ between two calls on the same input.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
from typing import Any

from cases.base import ConfigError
from cases.model import KERAS, ModelConfig, ModelSpec, ModelWorkload, TensorInfo
from cases.model import resolve_shape as _shape
from cases.spec import config_string

SUFFIXES = (".keras", ".h5", ".hdf5")


def custom_objects(module_name: str, where: str) -> dict[str, Any]:
    """`custom_objects=PACKAGE.MODULE`: its CUSTOM_OBJECTS dict, else its public classes and
    functions by name."""
    if not module_name:
        return {}
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: custom_objects={module_name}: {exc}") from None
    table = getattr(module, "CUSTOM_OBJECTS", None)
    if isinstance(table, dict):
        return dict(table)
    return {n: v for n, v in vars(module).items()
            if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))}


def open_model(spec_path: str, module_name: str, where: str):
    """keras.saving.load_model with the errors a user can cause as ConfigError lines."""
    if not os.path.exists(spec_path):
        raise ConfigError(f"{where}: no such file")
    if os.path.isdir(spec_path) or not spec_path.endswith(SUFFIXES):
        raise ConfigError(f"{where}: not a Keras model file (expected a .keras or .h5 file; "
                          "a SavedModel directory is savedmodel:PATH)")
    objects = custom_objects(module_name, where)
    import keras

    try:
        try:
            return keras.saving.load_model(spec_path, custom_objects=objects, compile=True)
        except Exception:  # noqa: BLE001 - e.g. a legacy .h5 whose compile config Keras 3
            # no longer reads: the network without its loss (the key loss=... names one)
            return keras.saving.load_model(spec_path, custom_objects=objects, compile=False)
    except Exception as exc:  # noqa: BLE001 - every loading failure is the file's problem
        text = " ".join(str(exc).split())
        if "Could not locate" in text or "Unknown layer" in text or "custom_objects" in text:
            raise ConfigError(
                f"{where}: the model needs custom objects that were not supplied ({_short(text)}); "
                "supply them with the key custom_objects=PACKAGE.MODULE, a module whose "
                "CUSTOM_OBJECTS dict (or public classes and functions) defines them") from None
        raise ConfigError(f"{where}: cannot read the Keras model: {_short(text)}") from None


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."


def workload(spec: ModelSpec, config: ModelConfig) -> ModelWorkload:
    from cases.loaded import sample_run
    from cases.model import validate

    where = spec.case
    validate(config, where)
    model = open_model(spec.path, config.custom_objects, where)
    if not getattr(model, "inputs", None):
        raise ConfigError(f"{where}: the model has no input signature (a subclassed model "
                          "never called); save it after building it on an input")
    inputs = []
    for tensor in model.inputs:
        shape = _shape(tensor.name, tuple(tensor.shape[1:]), config, where)
        inputs.append(TensorInfo(tensor.name, shape, config.dtype or str(tensor.dtype)))
    loss = config.loss or _loss_name(model)
    base = ModelWorkload(
        case=spec.case, config=config, config_string=config_string(config),
        input_shape=inputs[0].shape, classes=0, param_specs={}, layer_names=(),
        macs_per_image=0, forward=_no_forward, keras_model=_no_forward, kind=KERAS,
        path=spec.path, model_inputs=tuple(inputs), loss=loss, low=config.low,
        high=config.high, input_seed=config.seed, custom_objects=config.custom_objects)
    run = sample_run(load_keras(base, model), base, where)
    model_outputs = tuple(TensorInfo(f"output_{i}", tuple(o.shape[1:]), str(o.dtype))
                          for i, o in enumerate(run.outputs))
    return dataclasses.replace(
        base, model_outputs=model_outputs, param_specs=run.param_specs,
        macs_per_image=run.macs_per_image,
        classes=int(model_outputs[0].shape[-1]) if model_outputs[0].shape else 1,
        train_reason=train_reason(loss, len(model_outputs)))


def train_reason(loss: str, outputs: int) -> str:
    if not loss:
        return ("not applicable: the model has no loss (compile it with one before saving, or "
                "name one with the key loss=...)")
    if outputs != 1:
        return f"not applicable: training takes a model with one output (this one has {outputs})"
    return ""


def _loss_name(model) -> str:
    loss = getattr(model, "loss", None)
    if loss is None:
        return ""
    if isinstance(loss, str):
        return loss
    name = getattr(loss, "name", None) or type(loss).__name__
    return str(name)


def _no_forward(*args, **kwargs):
    raise TypeError("a model file has no tf-op forward code; its modes load the file")


def load_keras(workload: ModelWorkload, model=None):
    """A LoadedModel over a fresh copy of the file (or the model just read)."""
    import keras
    import tensorflow as tf

    from cases.loaded import LoadedModel

    if model is None:
        model = open_model(workload.path, workload.custom_objects, workload.case)
    names = [t.name for t in workload.model_inputs]

    def structure(inputs: dict):
        return inputs[names[0]] if len(names) == 1 else [inputs[n] for n in names]

    def call(inputs: dict) -> list:
        return tf.nest.flatten(model(structure(inputs), training=False))

    def train_call(inputs: dict) -> list:
        return tf.nest.flatten(model(structure(inputs), training=True))

    loss_fn = None
    if workload.loss:
        compiled = getattr(model, "loss", None)
        if compiled is not None and workload.loss == _loss_name(model):
            loss_fn = keras.losses.get(compiled) if isinstance(compiled, str) else compiled
        else:
            loss_fn = keras.losses.get(workload.loss)
    variables = list(model.trainable_variables) + list(model.non_trainable_variables)
    return LoadedModel(call=call, train_call=train_call, variables=variables,
                       trainable=list(model.trainable_variables),
                       names=[v.path for v in variables], keras_model=model, loss_fn=loss_fn,
                       extra_losses=lambda: list(model.losses), keep=[model])
