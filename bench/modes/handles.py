"""What a prepared cell exposes to the probes, one dataclass per mode family.

A mode's family (how it runs the model, and so what the probes can look into) is the type of
its `Prepared.handles`: the probes dispatch on that type (isinstance / match), never on the
mode's name or a family string. A new mode that returns one of these types gets that family's
probes without any other change. No TensorFlow here: the fields hold TF objects, typed `Any`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class GraphHandles:
    """A tf.compat.v1 Graph run by Session.run (session, frozen, optimized)."""

    graph: Any  # tf.Graph the session runs
    session: Any  # tf.compat.v1.Session
    graph_def: Any  # GraphDef of the graph the session runs
    # The graph as built from Python, when the mode kept it: `built` (bench.modes.graph.Built,
    # session mode) or its GraphDef (a model file's graph as loaded or traced).
    built: Any = None
    built_graph_def: Any = None
    frozen_graph_def: Any = None  # frozen and optimized: before optimisation
    folded_graph_def: Any = None  # optimized: after optimize_for_inference, before grappler


@dataclass
class EagerHandles:
    """Op by op: the step function called directly, on these variables."""

    function: Callable
    variables: dict[str, Any] = field(default_factory=dict)  # name -> tf.Variable
    loaded: Any = None  # a user's model file as loaded (cases.loaded), or None


@dataclass
class TracedHandles:
    """A tf.function trace (function, xla, function_epoch)."""

    function: Any  # the tf.function
    concrete_function: Any
    variables: dict[str, Any] = field(default_factory=dict)
    loaded: Any = None
    # The function takes a whole epoch's tf.data.Dataset, not a batch (function_epoch).
    takes_dataset: bool = False


@dataclass
class KerasHandles:
    """Keras layers run by predict_on_batch / Model.fit."""

    model: Any  # keras.Model


Handles = GraphHandles | EagerHandles | TracedHandles | KerasHandles
FAMILIES: tuple[type, ...] = (GraphHandles, TracedHandles, EagerHandles, KerasHandles)
