"""What a case is: a configuration, deterministic numpy weights, and forward code in tf ops.

A case knows nothing about execution modes. Its forward function is written with
`tf.nn` / `tf.math` ops only, so the very same Python runs inside a `tf.compat.v1` graph, eagerly
and under `tf.function`. Modes differ only in what they pass as `params` (variables, constants
or placeholders) and as `tap`.

`tap(name, tensor) -> tensor` is called on every named layer output. Modes use it to give layer
outputs fetchable names in a graph; probes use it to inject faults; the default does nothing and
adds no op, so eager code pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


def no_tap(name: str, tensor: Any) -> Any:
    return tensor


class ConfigError(ValueError):
    """An invalid case name, configuration key or value; the message says what is accepted."""


@dataclass(frozen=True)
class ParamSpec:
    """One weight array: its shape, whether SGD trains it, and how it is initialised."""

    shape: tuple[int, ...]
    trainable: bool = True
    init: str = "he"  # "he" (fan-in scaled normal), "zeros", "ones", "bn_mean", "bn_var"


@dataclass(frozen=True)
class Workload:
    """A case bound to one validated configuration: everything a mode needs to run it.

    `forward(params, images, training, tap)` returns `(logits, updates)`, where `updates` maps
    the names of non-trainable state (batch-norm moving statistics) to their new values after
    a training step, and is empty when `training` is False.
    """

    case: str
    config: Any  # the case's frozen config dataclass
    config_string: str  # canonical "k=v,..." of the non-default keys ("" = all defaults)
    input_shape: tuple[int, int, int]  # H, W, C
    classes: int
    param_specs: Mapping[str, ParamSpec]
    layer_names: tuple[str, ...]  # names passed to `tap`, in order
    macs_per_image: int
    forward: Callable[..., Any]
    keras_model: Callable[[Mapping[str, np.ndarray]], Any]  # builds the same net in Keras

    @property
    def spec(self) -> str:
        return f"{self.case}:{self.config_string}" if self.config_string else self.case

    @property
    def params(self) -> int:
        """Trainable parameter count (batch-norm moving statistics are state, not parameters)."""
        return sum(int(np.prod(s.shape)) for s in self.param_specs.values() if s.trainable)

    @property
    def trainable_names(self) -> tuple[str, ...]:
        return tuple(n for n, s in self.param_specs.items() if s.trainable)

    def weights(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Deterministic float32 weights: the same seed gives the same bytes in every mode."""
        rng = np.random.default_rng(seed)
        out = {}
        for name, spec in self.param_specs.items():
            out[name] = _init(spec, rng)
        return out

    def inputs(self, batch: int, seed: int = 0, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """A deterministic batch of images in [0, 1) and integer labels.

        `index` numbers the distinct batches of an epoch; batch 0 is the one every
        single-batch input style uses, so an epoch starts with the same bytes.
        """
        rng = np.random.default_rng(10_000 + seed if index == 0 else (10_000 + seed, index))
        images = rng.random((batch, *self.input_shape), dtype=np.float32)
        labels = rng.integers(0, self.classes, size=(batch,), dtype=np.int32)
        return images, labels


def _init(spec: ParamSpec, rng: np.random.Generator) -> np.ndarray:
    if spec.init == "zeros":
        return np.zeros(spec.shape, np.float32)
    if spec.init == "ones":
        return np.ones(spec.shape, np.float32)
    if spec.init == "bn_mean":  # non-trivial statistics so folding batch norm changes numbers
        return rng.normal(0.0, 0.1, spec.shape).astype(np.float32)
    if spec.init == "bn_var":
        return rng.uniform(0.5, 1.5, spec.shape).astype(np.float32)
    if spec.init == "bn_scale":
        return rng.uniform(0.8, 1.2, spec.shape).astype(np.float32)
    fan_in = int(np.prod(spec.shape[:-1])) if len(spec.shape) > 1 else spec.shape[0]
    if len(spec.shape) == 4 and spec.init == "he_depthwise":
        fan_in = spec.shape[0] * spec.shape[1]
    return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), spec.shape).astype(np.float32)


def conv_output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """TensorFlow's output size rule for SAME / VALID padding."""
    if padding == "SAME":
        return -(-size // stride)
    return (size - kernel) // stride + 1 if size >= kernel else 0


def keras_layer_name(prefix: str) -> str:
    """Keras 3 forbids '/' in layer names; `block1/depthwise` becomes `block1__depthwise`."""
    return prefix.replace("/", "__")


def set_keras_weights(model: Any, weights: Mapping[str, np.ndarray]) -> None:
    """Load case weights into a Keras model whose layer names follow `keras_layer_name`."""
    for layer in model.layers:
        if layer.weights:
            prefix = layer.name.replace("__", "/")
            layer.set_weights([weights[f"{prefix}/{w.name}"] for w in layer.weights])


def get_keras_weights(model: Any) -> dict[str, np.ndarray]:
    """The inverse of `set_keras_weights`: case weight names -> current values."""
    out = {}
    for layer in model.layers:
        prefix = layer.name.replace("__", "/")
        for w in layer.weights:
            out[f"{prefix}/{w.name}"] = np.asarray(w.numpy())
    return out
