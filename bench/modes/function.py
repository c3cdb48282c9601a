"""`function`: the same step traced once by `tf.function` and run as a graph."""

from __future__ import annotations

import tensorflow as tf

from bench.modes.base import Prepared, Request
from bench.modes.tf2 import prepare_tf2


def prepare(request: Request) -> Prepared:
    return prepare_tf2(request, __name__.rpartition(".")[2],
                       wrap=lambda fn: tf.function(fn, reduce_retracing=False))
