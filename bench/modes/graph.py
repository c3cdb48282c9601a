"""TF1-compat graphs shared by the session, frozen and optimized modes.

The graph is built from the case's forward code with `tf.compat.v1` placeholders and resource
variables. Variables are initialised from fed values, so the built graph carries no weight
constants; only freezing turns them into constants, on purpose.

Inputs never become constants. `feed` style feeds a placeholder every step. `resident` style
keeps the batch in a non-trainable variable on the device; a frozen graph keeps its input as a
placeholder and is imported with that placeholder mapped to the variable's value. Either way the
graph optimiser cannot constant-fold the network into a lookup of the answer. `dataset` style
reads `make_one_shot_iterator(dataset).get_next()` in the graph (no feed_dict); a frozen graph
is imported with its input placeholder mapped to that `get_next()` through `input_map`, the
same mechanism as the resident variable. The iterator yields a new batch every run, so it
cannot be folded either.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from bench.modes.base import Request
from bench.modes.data import epoch_dataset, epoch_result
from bench.modes.runtime import stage
from bench.store.record import InputStyle, Phase, SetupStage
from cases.layers import softmax_cross_entropy

INPUT_NAME = "images"
LABELS_NAME = "labels"
LOGITS_NAME = "logits_out"
LOSS_NAME = "loss_out"
RESIDENT_NAME = "resident_images"


def named_tap(name: str, tensor):
    """Give each layer output a fetchable graph name (`layer/conv1`, ...)."""
    return tf.identity(tensor, name=f"layer/{name}")


@dataclass
class BuiltGraph:
    graph: tf.Graph
    images: tf.Tensor  # what the network reads (placeholder or resident variable value)
    feed_images: tf.Tensor | None  # the placeholder to feed in `feed` style
    labels: tf.Tensor | None
    logits: tf.Tensor
    loss: tf.Tensor | None
    train_op: tf.Operation | None
    variables: dict[str, tf.Variable]
    init_feed: dict  # placeholder -> value, for the initialiser


def build(request: Request, device: str, training: bool, source: str) -> BuiltGraph:
    """The case's forward (and, for training, SGD update) as a tf.compat.v1 graph.

    `source` is the InputStyle: where the images (and labels) come from.
    """
    resident = source == InputStyle.RESIDENT
    wl, batch = request.workload, request.batch
    graph = tf.Graph()
    init_feed: dict = {}
    with graph.as_default(), tf.device(device):
        variables = {}
        for name, value in request.weights.items():
            initial = tf.compat.v1.placeholder(tf.float32, value.shape, name=f"init/{name}")
            init_feed[initial] = value
            variables[name] = tf.compat.v1.Variable(
                initial, name=name, trainable=wl.param_specs[name].trainable, use_resource=True
            )
        image_shape = (batch, *wl.input_shape)
        feed_images = tf.compat.v1.placeholder(tf.float32, image_shape, name=INPUT_NAME)
        labels = None
        if source == InputStyle.DATASET:
            images, labels = _next_batch(request)
            feed_images = None
        elif resident:
            initial = tf.compat.v1.placeholder(tf.float32, image_shape, name="init/images")
            init_feed[initial] = request.images
            holder = tf.compat.v1.Variable(initial, name=RESIDENT_NAME, trainable=False,
                                           use_resource=True)
            images, feed_images = holder.read_value(), None
        else:
            images = feed_images
        if training and source != InputStyle.DATASET:
            if resident:
                initial = tf.compat.v1.placeholder(tf.int32, (batch,), name="init/labels")
                init_feed[initial] = request.labels
                labels = tf.compat.v1.Variable(initial, name="resident_labels", trainable=False,
                                               use_resource=True).read_value()
            else:
                labels = tf.compat.v1.placeholder(tf.int32, (batch,), name=LABELS_NAME)
        params = {name: v.read_value() for name, v in variables.items()}
        logits, updates = wl.forward(params, images, training=training, tap=named_tap)
        logits = tf.identity(logits, name=LOGITS_NAME)
        loss = train_op = None
        if training:
            loss = tf.identity(softmax_cross_entropy(logits, labels), name=LOSS_NAME)
            train_op = _sgd_update(variables, wl.trainable_names, loss, updates,
                                   request.learning_rate)
    feed_labels = labels if training and source == InputStyle.FEED else None
    return BuiltGraph(graph, images, feed_images, feed_labels, logits, loss, train_op,
                      variables, init_feed)


def _next_batch(request: Request) -> tuple:
    """The repeated epoch dataset's next element, read in the graph: (images, labels or None)."""
    with tf.device("/CPU:0"):  # input pipelines run on the host, as tf.data always does
        iterator = tf.compat.v1.data.make_one_shot_iterator(epoch_dataset(request, repeat=True))
        element = iterator.get_next(name="next_batch")
    if request.phase == Phase.TRAIN:
        return element
    return element, None


def epoch_step(run, batches: int, training: bool):
    """One epoch of a Session graph that reads its input from the dataset iterator."""

    def step():
        return epoch_result([run() for _ in range(batches)], training)

    return step


def _sgd_update(variables, trainable_names, loss, updates, learning_rate):
    """Plain SGD plus batch-norm moving averages, applied after every read of this step."""
    trainable = [variables[n] for n in trainable_names]
    grads = tf.gradients(loss, trainable)
    new_state = {name: value for name, value in updates.items()}
    # Resource reads and writes in one Session.run are unordered unless we order them: every
    # assignment waits for the loss, all gradients and the new statistics.
    with tf.control_dependencies([loss, *grads, *new_state.values()]):
        ops = [v.assign_sub(learning_rate * g) for v, g in zip(trainable, grads, strict=True)]
        ops += [variables[name].assign(value) for name, value in new_state.items()]
    return tf.group(*ops, name="train_op")


def new_session(graph: tf.Graph, config) -> tf.compat.v1.Session:
    return tf.compat.v1.Session(graph=graph, config=config)


def initialize(session: tf.compat.v1.Session, built: BuiltGraph) -> None:
    with built.graph.as_default():
        init = tf.compat.v1.global_variables_initializer()
    session.run(init, feed_dict=built.init_feed)


def count_nodes(graph_def) -> int:
    return len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)


def op_types(graph_def) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph_def.node:
        counts[node.op] = counts.get(node.op, 0) + 1
    return counts


def inference_graph_def(request: Request, device: str, config) -> tuple:
    """Build the inference graph with a placeholder input, initialise it, return the session.

    Used by frozen/optimized: freezing must see the input as a placeholder so the input is
    never folded together with the weights.
    """
    built = build(request, device, training=False, source=InputStyle.FEED)
    session = new_session(built.graph, config)
    initialize(session, built)
    return built, session


def freeze(session, built: BuiltGraph):
    """Variables -> constants, keeping only what computes the logits."""
    graph_def = built.graph.as_graph_def()
    return tf.compat.v1.graph_util.convert_variables_to_constants(
        session, graph_def, [LOGITS_NAME]
    )


def import_for_run(graph_def, request: Request, device: str, source: str):
    """Import a frozen GraphDef into a fresh graph, its input fed, resident or from a dataset."""
    graph = tf.Graph()
    init_feed: dict = {}
    resident = source == InputStyle.RESIDENT
    with graph.as_default():
        input_map = None
        feed = None
        if source == InputStyle.DATASET:
            with tf.device(device):
                input_map = {INPUT_NAME: _next_batch(request)[0]}
        elif resident:
            with tf.device(device):
                initial = tf.compat.v1.placeholder(tf.float32, request.images.shape,
                                                   name="init/images")
                init_feed[initial] = request.images
                holder = tf.compat.v1.Variable(initial, name=RESIDENT_NAME, trainable=False,
                                               use_resource=True)
            input_map = {INPUT_NAME: holder.read_value()}
        with tf.device(device):
            tf.compat.v1.import_graph_def(graph_def, input_map=input_map, name="")
        if source == InputStyle.FEED:
            feed = graph.get_tensor_by_name(f"{INPUT_NAME}:0")
        logits = graph.get_tensor_by_name(f"{LOGITS_NAME}:0")
        init = tf.compat.v1.global_variables_initializer()
    return graph, feed, logits, init, init_feed


def run_frozen(graph_def, request: Request, device: str, config, timings: dict[str, float]):
    """Shared by frozen/optimized: import, initialise the resident input, make the step."""
    with stage(timings, SetupStage.IMPORT):
        graph, feed, logits, init, init_feed = import_for_run(graph_def, request, device,
                                                              request.input)
        session = new_session(graph, config)
        session.run(init, feed_dict=init_feed)
    if request.input == InputStyle.DATASET:
        step = epoch_step(session.make_callable(logits), request.epoch_batches, training=False)
    elif request.input == InputStyle.RESIDENT:
        run = session.make_callable(logits)
        step = run
    else:
        run = session.make_callable(logits, feed_list=[feed])
        images = request.images

        def step():
            return run(images)

    return step, session, graph


