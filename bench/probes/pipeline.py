"""Input pipeline: does the batch a step works on pass through the user's own Python?

With resident or fed input the user hands every batch over, so it always does (the probe says
None there). With a tf.data pipeline it depends on who runs the loop: a Python `for` over the
dataset (eager, a tf.function called per batch) holds each batch in a local variable of the
loop, where a breakpoint or a print shows it; an iterator read inside the graph (a Session's
`get_next`, the epoch in one tf.function) or inside `Model.fit` never hands it to user code,
so seeing the input means changing the pipeline or the graph.

Measured, not declared: one epoch runs under a profile hook, and every frame of the mode's own
code (bench/modes, the code a user would have written) is searched for a local holding a batch
of the epoch's image shape.
"""

from __future__ import annotations

import os
from typing import Any

from bench.probes.context import ProbeContext, profiling
from bench.store.record import InputStyle


def input_pipeline(ctx: ProbeContext) -> dict[str, Any]:
    if ctx.request.input != InputStyle.DATASET:
        return {"dbg_batch_in_python": None}
    import bench.modes

    user_dir = os.path.dirname(bench.modes.__file__)
    shape = (ctx.request.batch, *ctx.workload.input_shape)
    found: list[bool] = []

    def holds_batch(value: Any) -> bool:
        if isinstance(value, tuple):
            return any(holds_batch(v) for v in value)
        return tuple(getattr(value, "shape", ()) or ()) == shape

    def hook(frame, event, arg):
        caller = frame.f_back
        if found or event != "call" or caller is None:
            return
        if os.path.dirname(caller.f_code.co_filename) == user_dir and any(
                holds_batch(v) for v in caller.f_locals.values()):
            found.append(True)

    with profiling(hook):
        ctx.prepared.step()
    return {"dbg_batch_in_python": bool(found)}
