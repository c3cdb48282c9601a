"""`savedmodel:PATH[:SIGNATURE]`: a SavedModel signature as a workload, and its loader.

A SavedModel is graphs only: the signature is a traced function over restored variables.
So its reference is the restored signature function called from eager Python, there is no
op-by-op eager execution of it, and nothing to train (no loss, no training step): those cells
are skipped with that reason. Everything that runs a graph runs it.
"""

from __future__ import annotations

import dataclasses
import os

from cases.base import ConfigError
from cases.model import SAVEDMODEL, ModelConfig, ModelSpec, ModelWorkload, TensorInfo
from cases.model import resolve_shape as _shape
from cases.spec import config_string

GRAPH_ONLY_TRAIN = ("not applicable: a SavedModel signature is an inference graph with no loss "
                    "and no training step (save the Keras model as .keras to train it)")


def open_signature(path: str, signature: str, where: str):
    """(restored object, signature function), with what a user can get wrong as ConfigError."""
    if not os.path.isdir(path):
        raise ConfigError(f"{where}: not a SavedModel directory"
                          + ("" if os.path.exists(path) else " (no such path)"))
    if not any(os.path.exists(os.path.join(path, f))
               for f in ("saved_model.pb", "saved_model.pbtxt")):
        raise ConfigError(f"{where}: not a SavedModel directory (no saved_model.pb in it)")
    import tensorflow as tf

    try:
        restored = tf.saved_model.load(path)
    except Exception as exc:  # noqa: BLE001 - every loading failure is the directory's problem
        raise ConfigError(f"{where}: cannot read the SavedModel: {_short(exc)}") from None
    signatures = dict(getattr(restored, "signatures", {}) or {})
    if signature not in signatures:
        raise ConfigError(f"{where}: no signature {signature!r}; the SavedModel has: "
                          f"{', '.join(signatures) or 'none'}")
    return restored, signatures[signature]


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def workload(spec: ModelSpec, config: ModelConfig) -> ModelWorkload:
    from cases.loaded import sample_run
    from cases.model import validate

    where = spec.case
    validate(config, where)
    restored, fn = open_signature(spec.path, spec.signature, where)
    _, kwargs = fn.structured_input_signature
    inputs = tuple(TensorInfo(name, _shape(name, tuple(s.shape[1:]), config, where),
                              config.dtype or s.dtype.name)
                   for name, s in sorted(kwargs.items()))
    base = ModelWorkload(
        case=spec.case, config=config, config_string=config_string(config),
        input_shape=inputs[0].shape if inputs else (), classes=0, param_specs={},
        layer_names=(), macs_per_image=0, forward=_no_forward, keras_model=_no_forward,
        kind=SAVEDMODEL, path=spec.path, signature=spec.signature, model_inputs=inputs,
        low=config.low, high=config.high, input_seed=config.seed,
        train_reason=GRAPH_ONLY_TRAIN, graph_only=True)
    run = sample_run(load_signature(base, (restored, fn)), base, where)
    names = sorted(fn.structured_outputs)
    model_outputs = tuple(TensorInfo(n, tuple(o.shape[1:]), str(o.dtype))
                          for n, o in zip(names, run.outputs, strict=True))
    first = run.outputs[0]
    return dataclasses.replace(base, model_outputs=model_outputs, param_specs=run.param_specs,
                               macs_per_image=run.macs_per_image,
                               classes=int(first.shape[-1]) if first.ndim > 1 else 1)


def _no_forward(*args, **kwargs):
    raise TypeError("a SavedModel has no tf-op forward code; its modes load the directory")


def load_signature(workload: ModelWorkload, opened=None):
    """A LoadedModel over a fresh restore of the directory (or the one just opened)."""
    import tensorflow as tf

    from cases.loaded import LoadedModel

    restored, fn = opened or open_signature(workload.path, workload.signature, workload.case)

    def call(inputs: dict) -> list:
        return tf.nest.flatten(fn(**inputs))  # a dict: flattened by sorted output name

    variables = list(fn.variables)
    return LoadedModel(call=call, variables=variables, trainable=list(fn.trainable_variables),
                       names=[v.name for v in variables], keep=[restored, fn])

