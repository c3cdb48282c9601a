"""A plug-in case: a two-layer perceptron written against the suite's own case interface.

Run it in every mode, Session training included:

    python -m bench run --case module:examples.tiny_mlp:case --suite smoke
    python -m bench run --case module:examples.tiny_mlp:case:hidden=64,features=32

The contract (cases/plugins.py): a function of no arguments returns a `cases.CaseInfo`, whose
`make(config)` returns a `cases.base.Workload`: deterministic weights described by
`ParamSpec`s, and `forward(params, inputs, training, tap) -> (logits, updates)` written in
`tf.nn` / `tf.math` ops only, so the same Python runs in a `tf.compat.v1` graph, eagerly and
under `tf.function`. `params` holds variables, constants or placeholders depending on the
mode; `tap(name, tensor)` must wrap every layer output named in `layer_names`; `updates`
maps non-trainable state to its new value after a training step (none here). `keras_model`
builds the same network from Keras layers with the given weights, for the keras mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from cases import CaseInfo
from cases.base import ConfigError, ParamSpec, Workload, no_tap, set_keras_weights
from cases.spec import config_string


@dataclass(frozen=True)
class TinyMlpConfig:
    """The case keys: `module:examples.tiny_mlp:case:features=32,hidden=64`."""

    features: int = 16
    hidden: int = 32
    classes: int = 4


def make(c: TinyMlpConfig) -> Workload:
    for key in ("features", "hidden", "classes"):
        if not 1 <= getattr(c, key) <= 4096:
            raise ConfigError(f"tiny_mlp: {key}={getattr(c, key)} must be in 1..4096")
    specs = {
        "hidden/kernel": ParamSpec((c.features, c.hidden)),
        "hidden/bias": ParamSpec((c.hidden,), init="zeros"),
        "logits/kernel": ParamSpec((c.hidden, c.classes)),
        "logits/bias": ParamSpec((c.classes,), init="zeros"),
    }

    def forward(params, inputs, training: bool = False, tap=no_tap):
        import tensorflow as tf

        from cases.layers import dense

        x = tap("hidden", tf.nn.relu(dense(inputs, params, "hidden")))
        return tap("logits", dense(x, params, "logits")), {}

    def keras_model(weights):
        import keras

        model = keras.Sequential([keras.Input((c.features,)),
                                  keras.layers.Dense(c.hidden, activation="relu", name="hidden"),
                                  keras.layers.Dense(c.classes, name="logits")])
        set_keras_weights(model, weights)
        return model

    return Workload(
        case="tiny_mlp", config=c, config_string=config_string(c), input_shape=(c.features,),
        classes=c.classes, param_specs=specs, layer_names=("hidden", "logits"),
        macs_per_image=c.features * c.hidden + c.hidden * c.classes, forward=forward,
        keras_model=keras_model)


def case() -> CaseInfo:
    return CaseInfo("tiny_mlp", "two-layer perceptron (an example plug-in case)", TinyMlpConfig,
                    make)
