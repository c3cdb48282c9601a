"""Probe 1: does the model's Python run during steady-state steps?

A profile hook (sys.setprofile, the mechanism behind debuggers and profilers) counts every
Python function call into the model's code during a few steps taken after warm-up. Eager code
calls the case's forward, its layer helpers and the tap hook on every step, so a breakpoint or
a print there fires each time; a traced, compiled or graph mode runs none of it.
"""

from __future__ import annotations

from typing import Any

from bench.probes.context import ProbeContext, profiling

STEPS = 3


def python_calls(ctx: ProbeContext) -> dict[str, Any]:
    files, codes = ctx.model_code()
    ctx.prepared.step()  # steady state: whatever the first calls trace is done before counting
    count = 0

    def hook(frame, event, arg):
        nonlocal count
        if event == "call":
            code = frame.f_code
            if code in codes or code.co_filename in files:
                count += 1

    with profiling(hook):
        for _ in range(STEPS):
            ctx.prepared.step()
    per_step = count / STEPS
    return {"dbg_python_calls_per_step": int(per_step) if per_step.is_integer()
            else round(per_step, 2)}
