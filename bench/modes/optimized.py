"""`optimized`: the frozen graph after inference optimisation, then grappler at run time.

`optimize_for_inference` strips nodes the logits do not need, removes training-only nodes
(Identity, CheckNumerics...), and folds batch norms into the preceding (depthwise) convolution
weights. Grappler then runs offline on the result (constant folding, arithmetic, remapper
fusions such as Conv2D+BiasAdd+Relu6) and once more inside `Session.run`, as it always does.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow.python.tools import optimize_for_inference_lib

from bench.modes import graph as g
from bench.modes import not_applicable_reason
from bench.modes.base import NotApplicable, Prepared, Request
from bench.modes.data import batches_per_call
from bench.modes.frozen import frozen_graph_def
from bench.modes.runtime import device_name, session_config, stage
from bench.record import Phase, SetupStage

NAME = __name__.rpartition(".")[2]  # the mode is named after its module (MODE_TABLE)


def optimize(frozen_graph_def) -> tf.compat.v1.GraphDef:
    """Inference optimisation of a frozen graph whose input is a placeholder."""
    return optimize_for_inference_lib.optimize_for_inference(
        frozen_graph_def, [g.INPUT_NAME], [g.LOGITS_NAME], tf.float32.as_datatype_enum
    )


def grappler(graph_def, config) -> tf.compat.v1.GraphDef:
    """Run grappler's default rewrites offline, so the graph we count is the one we run."""
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
        meta = tf.compat.v1.train.export_meta_graph(graph=graph)
    fetch = meta_graph_pb2.CollectionDef()
    fetch.node_list.value.append(g.LOGITS_NAME)
    meta.collection_def["train_op"].CopyFrom(fetch)
    return tf_optimizer.OptimizeGraph(config, meta)


def prepare(request: Request) -> Prepared:
    if request.phase != Phase.INFER:
        raise NotApplicable(not_applicable_reason(NAME, request.phase))
    from bench.modes.model_io import is_model

    if is_model(request):  # a user's model file: bench.modes.model_graph
        from bench.modes import model_graph

        return model_graph.prepare_frozen(request, NAME, optimize=True)
    device = device_name(request.device)
    config = session_config(request.threads, request.device)
    timings: dict[str, float] = {}
    frozen, built_nodes = frozen_graph_def(request, device, config, timings)
    with stage(timings, SetupStage.OPTIMIZE):
        folded = optimize(frozen)
        optimized = grappler(folded, config)
    step, session, graph = g.run_frozen(optimized, request, device, config, timings)
    return Prepared(
        step=step, setup_s=timings,
        graph_nodes={"built": built_nodes, "frozen": g.count_nodes(frozen),
                     "folded": g.count_nodes(folded), "optimized": g.count_nodes(optimized)},
        close=session.close, batches_per_call=batches_per_call(request),
        extra={"op_types_frozen": g.op_types(frozen), "op_types_optimized": g.op_types(optimized)},
        handles={"graph": graph, "session": session, "graph_def": optimized,
                 "frozen_graph_def": frozen, "folded_graph_def": folded},
    )
