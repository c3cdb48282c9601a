"""session, frozen and optimized over a user's model file (cases.model).

- `session`: the model as a SavedModel (a Keras model is exported to one first, its
  `serving_default` signature) loaded into a `tf.compat.v1` graph by the v1 loader, variables
  restored, run by `Session.run`.
- `frozen`: the traced inference function at the cell's batch, variables folded to constants
  and function calls inlined (`convert_variables_to_constants_v2`), imported, `Session.run`.
- `optimized`: that frozen graph after `optimize_for_inference` and offline grappler.

Inputs are never constants, as for the built-in cases (bench.modes.graph): each input
placeholder is fed, or mapped at import (`input_map`) to a resident non-trainable variable or
to the dataset iterator's `get_next()`.
"""

from __future__ import annotations

import shutil
import tempfile

import tensorflow as tf

from bench.modes import graph as g
from bench.modes import model_io as io
from bench.modes.base import Prepared, Request
from bench.modes.handles import GraphHandles
from bench.modes.runtime import device_name, session_config, stage
from bench.store.record import InputStyle, SetupStage

SERVE = "serve"
SCOPE = "model"  # frozen graphs are imported under this name scope


def _sources(request: Request, device: str, names: list[str]):
    """Per input name, the tensor the graph reads (None: a placeholder to feed), plus the
    initialiser feed for resident variables. Call inside the target graph."""
    init_feed: dict = {}
    sources: dict = {n: None for n in names}
    if request.input == InputStyle.DATASET:
        with tf.device("/CPU:0"):  # input pipelines run on the host
            iterator = tf.compat.v1.data.make_one_shot_iterator(
                io.epoch_dataset(request, repeat=True))
            element = iterator.get_next(name="next_batch")
        sources = {n: element[n] for n in names}
    elif request.input == InputStyle.RESIDENT:
        with tf.device(device):
            for n in names:
                value = request.images[n]
                initial = tf.compat.v1.placeholder(value.dtype, value.shape, name=f"init/{n}")
                init_feed[initial] = value
                holder = tf.compat.v1.Variable(initial, name=f"resident/{n}", trainable=False,
                                               use_resource=True)
                sources[n] = holder.read_value()
    return sources, init_feed


def _step(session, fetch, feeds: list, request: Request, names: list[str]):
    if request.input == InputStyle.DATASET:
        return g.epoch_step(session.make_callable(fetch), request.epoch_batches, False)
    if request.input == InputStyle.RESIDENT:
        return session.make_callable(fetch)
    run = session.make_callable(fetch, feed_list=feeds)
    values = [request.images[n] for n in names]

    def step():
        return run(*values)

    return step


def _saved_model_dir(request: Request, timings: dict) -> tuple[str, str, object]:
    """(directory, signature, cleanup): the SavedModel itself, or a Keras model exported."""
    wl = request.workload
    if wl.kind == "savedmodel":
        return wl.path, wl.signature, lambda: None
    from cases.loading import load

    directory = tempfile.mkdtemp(prefix="bench-export-")
    with stage(timings, SetupStage.BUILD):  # export: part of building the Session graph
        model = load(wl).keras_model
        model.export(directory, format="tf_saved_model", verbose=False)
    return directory, "serving_default", lambda: shutil.rmtree(directory, ignore_errors=True)


def prepare_session(request: Request) -> Prepared:
    from tensorflow.python.saved_model.loader_impl import SavedModelLoader

    device = device_name(request.device)
    config = session_config(request.threads, request.device)
    timings: dict[str, float] = {}
    directory, signature, cleanup = _saved_model_dir(request, timings)
    names = [t.name for t in request.workload.model_inputs]
    try:
        with stage(timings, SetupStage.BUILD):
            meta = SavedModelLoader(directory).get_meta_graph_def_from_tags([SERVE])
            sig = meta.signature_def[signature]
            graph = tf.Graph()
            with graph.as_default():
                sources, init_feed = _sources(request, device, names)
                input_map = {sig.inputs[n].name: sources[n] for n in names
                             if sources[n] is not None}
                init = tf.compat.v1.global_variables_initializer()  # the resident inputs
                session = tf.compat.v1.Session(graph=graph, config=config)
                tf.compat.v1.saved_model.loader.load(session, [SERVE], directory,
                                                     input_map=input_map or None)
                outputs = [graph.get_tensor_by_name(sig.outputs[k].name)
                           for k in sorted(sig.outputs)]
                packed = io.pack(outputs)
                session.run(init, feed_dict=init_feed)
            graph.finalize()  # nothing may be added to the graph while it is measured
    finally:
        cleanup()
    feeds = [graph.get_tensor_by_name(sig.inputs[n].name) for n in names]
    step = _step(session, packed, feeds, request, names)
    graph_def = graph.as_graph_def()
    return Prepared(step=step, setup_s=timings, graph_nodes={"built": g.count_nodes(graph_def)},
                    close=session.close, batches_per_call=_batches(request),
                    extra=io.describe(request, "session, SavedModel v1 loader"),
                    handles=GraphHandles(graph, session, graph_def, built_graph_def=graph_def))


def _batches(request: Request) -> int:
    return request.epoch_batches if request.input == InputStyle.DATASET else 1


def prepare_frozen(request: Request, mode: str, optimize: bool) -> Prepared:
    from cases.loaded import freeze, inference_function
    from cases.loading import load

    device = device_name(request.device)
    config = session_config(request.threads, request.device)
    timings: dict[str, float] = {}
    with stage(timings, SetupStage.BUILD):
        loaded = load(request.workload)
        concrete = inference_function(loaded, request.workload, request.batch)
        built_graph_def = concrete.graph.as_graph_def()
        built_nodes = g.count_nodes(built_graph_def)
    with stage(timings, SetupStage.FREEZE):
        frozen = freeze(concrete)
    graph_def, nodes = frozen.graph_def, {"built": built_nodes,
                                          "frozen": g.count_nodes(frozen.graph_def)}
    extra: dict = {}
    if optimize:
        with stage(timings, SetupStage.OPTIMIZE):
            folded = _optimize_for_inference(frozen)
            graph_def = _grappler(folded, frozen.outputs, config)
        nodes.update(folded=g.count_nodes(folded), optimized=g.count_nodes(graph_def))
        extra = {"op_types_frozen": g.op_types(frozen.graph_def),
                 "op_types_optimized": g.op_types(graph_def)}
    names = list(frozen.inputs)
    graph_def = _without_control_inputs(graph_def, [_node(frozen.inputs[n]) for n in names])
    with stage(timings, SetupStage.IMPORT):
        graph = tf.Graph()
        with graph.as_default():
            sources, init_feed = _sources(request, device, names)
            input_map = {frozen.inputs[n]: sources[n] for n in names if sources[n] is not None}
            with tf.device(device):  # its own scope: the resident inputs' names cannot clash
                tf.compat.v1.import_graph_def(graph_def, input_map=input_map or None,
                                              name=SCOPE)
                packed = io.pack([graph.get_tensor_by_name(f"{SCOPE}/{t}")
                                  for t in frozen.outputs])
            init = tf.compat.v1.global_variables_initializer()
        session = tf.compat.v1.Session(graph=graph, config=config)
        session.run(init, feed_dict=init_feed)
    feeds = [graph.get_tensor_by_name(f"{SCOPE}/{frozen.inputs[n]}") for n in names]
    step = _step(session, packed, feeds, request, names)
    return Prepared(step=step, setup_s=timings, graph_nodes=nodes, close=session.close,
                    batches_per_call=_batches(request),
                    extra={**extra, **io.describe(request, mode)},
                    handles=GraphHandles(graph, session, graph_def,
                                         frozen_graph_def=frozen.graph_def,
                                         built_graph_def=built_graph_def))


def _node(tensor_name: str) -> str:
    return tensor_name.partition(":")[0]


def _without_control_inputs(graph_def, placeholders: list[str]):
    """Grappler may leave control dependencies on an input placeholder (`^b`); `input_map`
    remaps data inputs only, so such a placeholder would still demand a feed. A control edge
    from a placeholder orders nothing once its value is mapped, so it is dropped."""
    drop = {f"^{p}" for p in placeholders}
    if not any(i in drop for n in graph_def.node for i in n.input):
        return graph_def
    out = type(graph_def)()
    out.CopyFrom(graph_def)
    for node in out.node:
        kept = [i for i in node.input if i not in drop]
        del node.input[:]
        node.input.extend(kept)
    return out


def _optimize_for_inference(frozen):
    from tensorflow.python.tools import optimize_for_inference_lib

    names = list(frozen.inputs)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(frozen.graph_def, name="")
    dtypes = [graph.get_tensor_by_name(frozen.inputs[n]).dtype.as_datatype_enum for n in names]
    return optimize_for_inference_lib.optimize_for_inference(
        frozen.graph_def, [_node(frozen.inputs[n]) for n in names],
        [_node(t) for t in frozen.outputs], dtypes)


def _grappler(graph_def, outputs: list[str], config):
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
        meta = tf.compat.v1.train.export_meta_graph(graph=graph)
    fetch = meta_graph_pb2.CollectionDef()
    for name in outputs:
        fetch.node_list.value.append(_node(name))
    meta.collection_def["train_op"].CopyFrom(fetch)
    return tf_optimizer.OptimizeGraph(config, meta)
