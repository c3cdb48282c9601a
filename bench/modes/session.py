"""`session`: the TF1-compat graph run by `Session.run` (inference and SGD training)."""

from __future__ import annotations

import numpy as np

from bench.modes import graph as g
from bench.modes.base import Prepared, Request
from bench.modes.handles import GraphHandles
from bench.modes.runtime import device_name, session_config, stage
from bench.store.record import InputStyle, Phase, SetupStage


def prepare(request: Request) -> Prepared:
    from bench.modes.model_io import is_model

    if is_model(request):  # a user's model file: bench.modes.model_graph
        from bench.modes import model_graph

        return model_graph.prepare_session(request)
    device = device_name(request.device)
    training = request.phase == Phase.TRAIN
    feeding = request.input == InputStyle.FEED
    timings: dict[str, float] = {}
    with stage(timings, SetupStage.BUILD):
        built = g.build(request, device, training=training, source=request.input)
        session = g.new_session(built.graph, session_config(request.threads, request.device))
        g.initialize(session, built)
        built.graph.finalize()  # nothing may be added to the graph while it is measured
    fetch = [built.loss, built.train_op] if training else built.logits
    feeds = [built.feed_images] + ([built.labels] if training else []) if feeding else []
    run = session.make_callable(fetch, feed_list=feeds or None)
    values = [request.images] + ([request.labels] if training else []) if feeding else []

    batches = 1
    # Dataset input: each run reads the iterator's next batch, no feed_dict.
    if request.input == InputStyle.DATASET:
        batches = request.epoch_batches
        step = g.epoch_step((lambda: run()[0]) if training else run, batches, training)
    elif training:
        def step():
            return run(*values)[0]
    else:
        def step():
            return run(*values)

    def read_weights() -> dict[str, np.ndarray]:
        # One Session.run for all variables: each distinct fetch list costs a pruned executor
        # of its own (about 50 ms each for MobileNet's ~140 variables, one by one).
        names = list(built.variables)
        values = session.run([built.variables[n] for n in names])
        return dict(zip(names, values, strict=True))

    graph_def = built.graph.as_graph_def()
    return Prepared(
        step=step, setup_s=timings,
        graph_nodes={"built": g.count_nodes(graph_def)},
        read_weights=read_weights if training else None, close=session.close,
        batches_per_call=batches,
        handles=GraphHandles(built.graph, session, graph_def, built=built),
    )
