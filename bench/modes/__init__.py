"""Execution modes: one module per mode, all behind `prepare(request) -> Prepared`.

This package's `__init__` is TensorFlow-free so that plans and suite files can be validated
without importing TF; `load_mode(name)` imports a mode module (and TF) on demand.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from bench.modes.base import (
    DeviceUnavailable,
    NotApplicable,
    Prepared,
    Request,
    Threads,
)

# Mode name -> (phases it supports, one-line description).
MODES: dict[str, tuple[tuple[str, ...], str]] = {
    "session": (("infer", "train"), "tf.compat.v1 graph run by Session.run"),
    "frozen": (("infer",), "variables folded into constants, re-imported, Session.run"),
    "optimized": (("infer",), "frozen graph after optimize_for_inference + grappler"),
    "eager": (("infer", "train"), "op-by-op eager execution, GradientTape loop"),
    "function": (("infer", "train"), "tf.function traced graph"),
    "function_epoch": (("infer", "train"), "a whole dataset epoch inside one tf.function"),
    "xla": (("infer", "train"), "tf.function(jit_compile=True)"),
    "keras": (("infer", "train"), "Keras layers: predict_on_batch / Model.fit"),
}


# Modes that take only some input styles (bench.record.INPUT_STYLES); every other mode takes all.
MODE_INPUTS: dict[str, tuple[str, ...]] = {
    "function_epoch": ("dataset",),
}


def accepts_input(mode: str, input_style: str) -> bool:
    return input_style in MODE_INPUTS.get(mode, (input_style,))


def not_applicable_reason(mode: str, phase: str) -> str | None:
    """Why a (mode, phase) cell cannot exist, or None when it can."""
    phases = MODES[mode][0]
    if phase in phases:
        return None
    return (f"not applicable: {mode} graphs are inference-only (their variables are constants, "
            "so there is nothing to train)")


def load_mode(name: str) -> ModuleType:
    if name not in MODES:
        raise ValueError(f"unknown mode {name!r}; accepted modes: {', '.join(MODES)}")
    return importlib.import_module(f"bench.modes.{name}")


__all__ = ["MODES", "MODE_INPUTS", "DeviceUnavailable", "NotApplicable", "Prepared", "Request",
           "Threads", "accepts_input", "load_mode", "not_applicable_reason"]
