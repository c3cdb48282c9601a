"""`frozen`: the inference graph with variables converted to constants, re-imported, run."""

from __future__ import annotations

from bench.modes import graph as g
from bench.modes import not_applicable_reason
from bench.modes.base import NotApplicable, Prepared, Request
from bench.modes.data import batches_per_call
from bench.modes.runtime import device_name, session_config, stage
from bench.record import Phase, SetupStage

NAME = __name__.rpartition(".")[2]  # the mode is named after its module (MODE_TABLE)


def frozen_graph_def(request: Request, device: str, config, timings: dict[str, float]):
    """Build, initialise and freeze the inference graph; times `build` and `freeze`."""
    with stage(timings, SetupStage.BUILD):
        built, session = g.inference_graph_def(request, device, config)
        built_nodes = g.count_nodes(built.graph.as_graph_def())
    with stage(timings, SetupStage.FREEZE):
        frozen = g.freeze(session, built)
    session.close()
    return frozen, built_nodes


def prepare(request: Request) -> Prepared:
    if request.phase != Phase.INFER:
        raise NotApplicable(not_applicable_reason(NAME, request.phase))
    from bench.modes.model_io import is_model

    if is_model(request):  # a user's model file: bench.modes.model_graph
        from bench.modes import model_graph

        return model_graph.prepare_frozen(request, NAME, optimize=False)
    device = device_name(request.device)
    config = session_config(request.threads, request.device)
    timings: dict[str, float] = {}
    frozen, built_nodes = frozen_graph_def(request, device, config, timings)
    step, session, graph = g.run_frozen(frozen, request, device, config, timings)
    return Prepared(
        step=step, setup_s=timings,
        graph_nodes={"built": built_nodes, "frozen": g.count_nodes(frozen)},
        close=session.close, batches_per_call=batches_per_call(request),
        handles={"graph": graph, "session": session, "graph_def": frozen},
    )
