"""`xla`: the same step as `tf.function(jit_compile=True)`; XLA compiles on the first call."""

from __future__ import annotations

import tensorflow as tf

from bench.modes.base import Prepared, Request
from bench.modes.tf2 import prepare_tf2


def prepare(request: Request) -> Prepared:
    return prepare_tf2(request, __name__.rpartition(".")[2],
                       wrap=lambda fn: tf.function(fn, jit_compile=True))
