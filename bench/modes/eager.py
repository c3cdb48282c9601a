"""`eager`: op-by-op execution; training is a plain GradientTape loop. The reference mode."""

from __future__ import annotations

from bench.modes.base import Prepared, Request
from bench.modes.tf2 import prepare_tf2


def prepare(request: Request) -> Prepared:
    return prepare_tf2(request, __name__.rpartition(".")[2], wrap=None)
