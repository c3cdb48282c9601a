"""`frozen`: the inference graph with variables converted to constants, re-imported, run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.modes import graph as g
from bench.modes import not_applicable_reason
from bench.modes.base import NotApplicable, Prepared, Request
from bench.modes.data import batches_per_call
from bench.modes.handles import GraphHandles
from bench.modes.runtime import device_name, session_config, stage
from bench.store.record import Phase, SetupStage

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
    return prepare_frozen(request, NAME)


def prepare_frozen(request: Request, name: str,
                   optimize: Callable[[Any, Any], dict[str, Any]] | None = None) -> Prepared:
    """Freeze the inference graph, `optimize` it (stage optimize; bench.modes.optimized),
    re-import it and run it by Session.run: frozen and optimized differ only in `optimize`,
    which maps (frozen GraphDef, ConfigProto) to its GraphDefs by stage, the last one run."""
    if request.phase != Phase.INFER:
        raise NotApplicable(not_applicable_reason(name, request.phase))
    from bench.modes.model_io import is_model

    if is_model(request):  # a user's model file: bench.modes.model_graph
        from bench.modes import model_graph

        return model_graph.prepare_frozen(request, name, optimize=optimize is not None)
    device = device_name(request.device)
    config = session_config(request.threads, request.device)
    timings: dict[str, float] = {}
    frozen, built_nodes = frozen_graph_def(request, device, config, timings)
    graph_defs = {"frozen": frozen}
    extra = {}
    if optimize is not None:
        with stage(timings, SetupStage.OPTIMIZE):
            graph_defs.update(optimize(frozen, config))
    run = list(graph_defs.values())[-1]
    if optimize is not None:
        extra = {"op_types_frozen": g.op_types(frozen), "op_types_optimized": g.op_types(run)}
    step, session, graph = g.run_frozen(run, request, device, config, timings)
    return Prepared(
        step=step, setup_s=timings,
        graph_nodes={"built": built_nodes, **{k: g.count_nodes(v) for k, v in graph_defs.items()}},
        close=session.close, batches_per_call=batches_per_call(request), extra=extra,
        handles=GraphHandles(graph, session, run, frozen_graph_def=frozen,
                             folded_graph_def=graph_defs.get("folded")),
    )
