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
from bench.modes.base import Prepared, Request
from bench.modes.frozen import prepare_frozen

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


def optimize_frozen(frozen, config) -> dict:
    """The graphs after each optimisation: `folded` (optimize_for_inference), `optimized`
    (then grappler), the one the session runs."""
    folded = optimize(frozen)
    return {"folded": folded, "optimized": grappler(folded, config)}


def prepare(request: Request) -> Prepared:
    return prepare_frozen(request, NAME, optimize=optimize_frozen)
