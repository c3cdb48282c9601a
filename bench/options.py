"""One validation per command-line option, shared by every command that has it.

An option that means the same thing in two commands (a batch size, a worker timeout, a
significance level) is parsed by the same argparse `type` here, so it has the same bounds
everywhere: `overhead --batch` and `debug --batch` stop at 4096 like `run --batch`, `debug
--timeout 0` or `nan` is refused like `run --timeout`. The bounds of the run settings are
bench.engine.plan's (`_SETTING_RULES`, also used for suite files); a bad value is one argparse line
naming the option, the value and what is accepted (exit 2), before any work.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from bench.engine import plan

# `overhead --steps`: steps each way; at a microsecond a step, ten million is a minute.
MIN_STEPS, MAX_STEPS = 100, 10_000_000
MAX_RUNS = 100  # `gate-check --runs`: runs of each kind, like --rounds


def choices(vocabulary: type[StrEnum]) -> list[str]:
    """A vocabulary's values as plain strings, for argparse `choices`: argparse's error quotes
    each choice with repr(), and a member's repr is `<Phase.INFER: 'infer'>`, not 'infer'."""
    return [str(member) for member in vocabulary]


def _checked(kind: type, ok: Callable[[Any], bool], accepted: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
        return value

    parse.__name__ = accepted  # argparse names the type in some messages
    return parse


def setting(key: str) -> Callable[[str], Any]:
    """The type of a run setting's option (`--timeout`, `--rounds`...): bench.engine.plan's rule."""
    kind, ok, accepted = plan._SETTING_RULES[key]
    return _checked(kind, ok, accepted)


batch = _checked(int, lambda v: 1 <= v <= plan.MAX_BATCH,
                 f"an integer from 1 to {plan.MAX_BATCH}")
steps = _checked(int, lambda v: MIN_STEPS <= v <= MAX_STEPS,
                 f"an integer from {MIN_STEPS} to {MAX_STEPS}")
runs = _checked(int, lambda v: 3 <= v <= MAX_RUNS, f"an integer from 3 to {MAX_RUNS}")
confirm_rounds = _checked(int, lambda v: 0 <= v <= plan.MAX_ROUNDS,
                          f"an integer from 0 to {plan.MAX_ROUNDS} (0 = do not confirm)")
# A relative threshold, tolerance or significance level: strictly between 0 and 1.
fraction = _checked(float, lambda v: 0 < v < 1, "a number between 0 and 1 exclusive, e.g. 0.05")
# The same, with 0 meaning "off" (`--shared-threshold`).
fraction_or_off = _checked(float, lambda v: 0 <= v < 1,
                           "a number from 0 (off) to 1 exclusive, e.g. 0.15")
seconds = _checked(float, lambda v: math.isfinite(v) and 0 < v <= plan.MAX_BUDGET_S,
                   f"a positive number of seconds, at most {plan.MAX_BUDGET_S:g}")
cpu = _checked(int, lambda v: 0 <= v <= 4095, "a CPU number from 0 to 4095")
