"""A user's own model as a workload: the spec syntax, the case keys and what a mode needs to know.

Two of the three ways in name a model file rather than a case written in tf ops:

- `keras:PATH[:KEYS]` a Keras model file (`.keras`, or `.h5` where Keras still reads it);
- `savedmodel:PATH[:SIGNATURE][:KEYS]` a SavedModel directory (signature `serving_default`).

(The third, `module:PACKAGE.MODULE:FUNCTION`, is a case like the built-in ones: cases.plugins.)
KEYS are `k=v,...` as for every case (ModelConfig). Their weights live in the file, so every
mode loads the file itself and the same bytes give the same weights everywhere; inputs come
from the model's input signature, filled deterministically from the seed.

This module is TensorFlow-free; the loaders (cases.keras_model, cases.saved_model) are not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cases.base import ConfigError, Workload

KERAS, SAVEDMODEL = "keras", "savedmodel"
MODEL_KINDS = (KERAS, SAVEDMODEL)
DEFAULT_SIGNATURE = "serving_default"
DTYPES = ("float32", "float16", "float64", "int32", "int64")
# Losses named by `loss=`: integer class targets for the sparse one, float targets otherwise.
SPARSE_LOSSES = ("sparse_categorical_crossentropy",)


@dataclass(frozen=True)
class ModelConfig:
    """Case keys of a user model: what the file does not say about its inputs, and the loss."""

    input_shape: tuple[int, ...] = ()  # per example, for inputs with unknown dimensions
    dtype: str = ""  # "" = the dtype the model declares
    low: float = 0.0  # inputs are uniform in [low, high) (integers: [low, high))
    high: float = 1.0
    seed: int = 0  # added to the run's seed for the inputs
    loss: str = ""  # a Keras loss name, for a model not compiled with one
    custom_objects: str = ""  # PACKAGE.MODULE defining the model's custom layers/functions


def validate(config: ModelConfig, where: str) -> None:
    if config.dtype and config.dtype not in DTYPES:
        raise ConfigError(f"{where}: dtype {config.dtype!r} is not accepted; accepted: "
                          f"{', '.join(DTYPES)}")
    if not config.low < config.high:
        raise ConfigError(f"{where}: low={config.low} must be below high={config.high}")
    if any(d < 1 for d in config.input_shape):
        raise ConfigError(f"{where}: input_shape: every dimension must be at least 1, got "
                          f"{'/'.join(map(str, config.input_shape))}")


@dataclass(frozen=True)
class ModelSpec:
    """`keras:PATH` / `savedmodel:PATH[:SIGNATURE]` parsed: the case part and its keys."""

    kind: str
    path: str
    signature: str = ""
    keys: str = ""  # "k=v,..."

    @property
    def case(self) -> str:
        """The case name of the cell: the kind, the path and a non-default signature."""
        if self.kind == SAVEDMODEL and self.signature != DEFAULT_SIGNATURE:
            return f"{self.kind}:{self.path}:{self.signature}"
        return f"{self.kind}:{self.path}"


def parse_model_spec(spec: str) -> ModelSpec | None:
    """A ModelSpec, or None when `spec` names no model file. The last `:` part holding `=`
    is the keys (a cell's case_spec is `case:config`, so keys always come last)."""
    kind, sep, rest = spec.strip().partition(":")
    if kind not in MODEL_KINDS:
        return None
    parts = rest.split(":") if sep else []
    keys = parts.pop() if parts and "=" in parts[-1] else ""
    if not parts or not parts[0]:
        raise ConfigError(f"{spec!r}: expected {kind}:PATH"
                          + ("[:SIGNATURE]" if kind == SAVEDMODEL else "") + "[:key=value,...]")
    if kind == KERAS:
        if len(parts) > 1:
            raise ConfigError(f"{spec!r}: expected keras:PATH[:key=value,...]")
        return ModelSpec(kind, parts[0], keys=keys)
    if len(parts) > 2:
        raise ConfigError(f"{spec!r}: expected savedmodel:PATH[:SIGNATURE][:key=value,...]")
    signature = parts[1] if len(parts) == 2 and parts[1] else DEFAULT_SIGNATURE
    return ModelSpec(kind, parts[0], signature, keys)


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of the model: its name, per-example shape and dtype."""

    name: str
    shape: tuple[int, ...]  # without the batch dimension
    dtype: str


@dataclass(frozen=True)
class ModelWorkload(Workload):
    """A Workload whose network is a file: modes load it (bench.modes.usermodel) instead of
    running `forward`. `inputs()` gives a dict of arrays by input name plus the targets."""

    kind: str = KERAS
    path: str = ""
    signature: str = ""
    model_inputs: tuple[TensorInfo, ...] = ()
    model_outputs: tuple[TensorInfo, ...] = ()
    loss: str = ""  # "" = the model cannot be trained here (no loss)
    low: float = 0.0
    high: float = 1.0
    input_seed: int = 0
    custom_objects: str = ""
    # What the file cannot do, as facts; bench.modes.model_file_reason says which cells
    # they rule out. "" = it can.
    train_reason: str = ""  # why the model cannot be trained at all
    graph_only: bool = False  # graphs only (a SavedModel): no op-by-op execution of it

    def weights(self, seed: int = 0) -> dict[str, np.ndarray]:
        return {}  # the weights are the file's: every mode loads them from it

    def inputs(self, batch: int, seed: int = 0, index: int = 0) -> tuple[dict, np.ndarray]:
        """Deterministic inputs from the signature (a dict by input name) and targets: class
        ids for a sparse loss, else floats shaped like the (single) output."""
        rng = np.random.default_rng((20_000 + seed + self.input_seed, index))
        arrays = {t.name: random_array(rng, (batch, *t.shape), t.dtype, self.low, self.high)
                  for t in self.model_inputs}
        out = self.model_outputs[0] if self.model_outputs else TensorInfo("", (1,), "float32")
        if self.loss in SPARSE_LOSSES:
            classes = out.shape[-1] if out.shape else 1
            targets = rng.integers(0, classes, size=(batch,), dtype=np.int32)
        else:
            targets = rng.random((batch, *out.shape), dtype=np.float32)
        return arrays, targets


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, low: float,
                 high: float) -> np.ndarray:
    if dtype.startswith("int"):
        return rng.integers(int(low), max(int(high), int(low) + 1), size=shape).astype(dtype)
    return (low + (high - low) * rng.random(shape, dtype=np.float64)).astype(dtype)


def resolve_shape(name: str, declared: tuple, config: ModelConfig, where: str) -> tuple[int, ...]:
    """The per-example shape of one input: the declared one, or `input_shape` where the
    declaration has unknown dimensions."""
    if config.input_shape:
        if len(config.input_shape) != len(declared) or any(
                d is not None and d != c for d, c in zip(declared, config.input_shape,
                                                         strict=True)):
            shown = "x".join("?" if d is None else str(d) for d in declared)
            raise ConfigError(f"{where}: input_shape={'/'.join(map(str, config.input_shape))} "
                              f"does not fit input {name!r} of shape {shown}")
        return tuple(config.input_shape)
    if any(d is None for d in declared):
        shown = "x".join("?" if d is None else str(d) for d in declared)
        example = "/".join("8" if d is None else str(d) for d in declared)
        raise ConfigError(f"{where}: input {name!r} has unknown dimensions ({shown} per "
                          f"example); give them with input_shape=D1/D2/..., e.g. "
                          f"{where}:input_shape={example}")
    return tuple(int(d) for d in declared)
