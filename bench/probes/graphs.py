"""Probe 6: what can a user see of the graph the mode runs?

Two graphs per mode: the one built (or traced) from the model's Python, and the one the mode
actually hands to the runtime:

- TF1 graphs: the built graph versus the graph the session runs (the same for `session`, the
  frozen GraphDef, the optimised GraphDef after optimize_for_inference and offline grappler);
- tf.function: the traced graph (the runtime's own grappler pass is not visible to the user,
  so what can be inspected is the trace);
- XLA: the traced graph versus the compiled program (`experimental_get_compiler_ir`, stage
  optimized_hlo): its entry computation's instructions, and which TensorFlow op types (from the
  HLO metadata) only survive inside fusions;
- Keras: the graph of the traced predict/train function;
- eager: no graph at all (all keys None): every op runs as written.

"Model op types" are the op types of the built graph minus bookkeeping (constants,
placeholders, identities, variable reads). A model op type that no longer appears in the run
graph was folded or fused away; an op type that appears only in the run graph is a fused
kernel. A layer "survives by name" if a non-bookkeeping node of the run graph carries its name
as a scope (`layer/conv1`, `cnn_1/conv1_1/Relu`).
"""

from __future__ import annotations

import re
from typing import Any

from bench.modes.handles import EagerHandles, GraphHandles, KerasHandles, TracedHandles
from bench.probes.context import ProbeContext, keras_step_graph
from bench.probes.messages import names_layer
from bench.store.record import InputStyle

BOOKKEEPING = frozenset({
    "Const", "Placeholder", "PlaceholderWithDefault", "Identity", "IdentityN", "NoOp",
    "ReadVariableOp", "VarHandleOp", "AssignVariableOp", "AssignSubVariableOp",
    "AssignAddVariableOp", "VarIsInitializedOp", "StopGradient",
})
EMPTY = {"dbg_graph_nodes_built": None, "dbg_graph_nodes": None, "dbg_layer_ops_surviving": None,
         "dbg_fused_op_types": None, "dbg_new_op_types": None, "dbg_batch_norm_folded": None}


def graph_visibility(ctx: ProbeContext) -> dict[str, Any]:
    match ctx.handles:
        case EagerHandles():
            return dict(EMPTY)
        case GraphHandles() as handles:
            return _compare(ctx, _built_graph_def(ctx, handles), handles.graph_def)
        case TracedHandles() as handles:
            traced = handles.concrete_function.graph.as_graph_def()
            if _jit_compiled(handles.concrete_function):
                return _compare_hlo(ctx, handles, traced)
            return _compare(ctx, traced, traced)
        case KerasHandles() as handles:
            traced = keras_step_graph(handles.model, ctx.training)
            return _compare(ctx, traced, traced) if traced is not None else dict(EMPTY)
    raise TypeError(f"{ctx.cell.mode}: no graph probe for handles {type(ctx.handles).__name__}")


# --------------------------------------------------------------------------- TF graphs


def nodes(graph_def) -> list:
    """Every NodeDef, function bodies included."""
    return list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]


def is_batch_norm(op_type: str, name: str) -> bool:
    """Fused batch-norm ops, or the `batchnorm` scope tf.nn.batch_normalization and Keras use."""
    return "BatchNorm" in op_type or "batchnorm" in name.lower().split("/")


def layers_surviving(names: tuple[str, ...], node_names: list[str]) -> int:
    from cases.base import keras_layer_name

    text = "\n".join(node_names)
    return sum(names_layer(text, (n, keras_layer_name(n))) for n in names)


def _compare(ctx: ProbeContext, built, run) -> dict[str, Any]:
    built_nodes, run_nodes = nodes(built), nodes(run)
    model_types = {n.op for n in built_nodes} - BOOKKEEPING
    run_types = {n.op for n in run_nodes}
    had_bn = any(is_batch_norm(n.op, n.name) for n in built_nodes)
    return {
        # The record's own count when the mode made one (it includes the initialiser op).
        "dbg_graph_nodes_built": ctx.prepared.graph_nodes.get("built", len(built_nodes)),
        "dbg_graph_nodes": len(run_nodes),
        "dbg_layer_ops_surviving": _surviving(ctx, run_nodes),
        "dbg_fused_op_types": sorted(model_types - run_types),
        "dbg_new_op_types": sorted(run_types - {n.op for n in built_nodes} - BOOKKEEPING),
        "dbg_batch_norm_folded": (not any(is_batch_norm(n.op, n.name) for n in run_nodes)
                                  if had_bn else None),
    }


def _surviving(ctx: ProbeContext, run_nodes: list) -> int:
    """Named layers with an op of their own in the run graph (identities count: named_tap's
    output is how a TF1 graph names a layer; weight constants do not)."""
    ops = [n.name for n in run_nodes if n.op not in BOOKKEEPING or n.op == "Identity"]
    return layers_surviving(ctx.workload.layer_names, ops)


def _built_graph_def(ctx: ProbeContext, handles: GraphHandles):
    """The graph as built from Python. Session mode keeps it; frozen and optimized keep only
    what they run, so it is built again the way they build it (bench.modes.graph)."""
    if handles.built is not None:
        return handles.built.graph.as_graph_def()
    if handles.built_graph_def is not None:  # a model file's graph as loaded or traced
        return handles.built_graph_def
    from bench.modes import graph as g

    built = g.build(ctx.request, ctx.device, training=ctx.training, source=InputStyle.FEED)
    return built.graph.as_graph_def()


def _jit_compiled(concrete) -> bool:
    """tf.function(jit_compile=True) marks its function `_XlaMustCompile`."""
    attr = concrete.function_def.attr.get("_XlaMustCompile")
    return bool(attr is not None and attr.b)


# --------------------------------------------------------------------------- XLA


def _compare_hlo(ctx: ProbeContext, handles: TracedHandles, traced) -> dict[str, Any]:
    hlo = handles.function.experimental_get_compiler_ir(*ctx.step_inputs())(stage="optimized_hlo")
    module = parse_hlo(hlo)
    entry = module["entry"]
    fused_names = {c for ins in entry if ins["opcode"] == "fusion" for c in ins["calls"]}
    inside = {t for name in fused_names for ins in module["computations"].get(name, [])
              for t in ins["op_types"]}
    standalone_ins = [ins for ins in entry if ins["opcode"] != "fusion"]
    standalone = {t for ins in standalone_ins for t in ins["op_types"]}
    traced_nodes = nodes(traced)
    model_types = {n.op for n in traced_nodes} - BOOKKEEPING
    had_bn = any(is_batch_norm(n.op, n.name) for n in traced_nodes)
    op_names = [name for ins in module["all"] for name in ins["op_names"]]
    return {
        "dbg_graph_nodes_built": len(traced_nodes),
        "dbg_graph_nodes": sum(1 for ins in entry if ins["opcode"] != "parameter"),
        "dbg_layer_ops_surviving": layers_surviving(ctx.workload.layer_names, op_names),
        "dbg_fused_op_types": sorted((model_types & inside) - standalone),
        "dbg_new_op_types": sorted({f"fusion:{ins['kind']}" for ins in entry
                                    if ins["opcode"] == "fusion"}),
        "dbg_batch_norm_folded": (not any(is_batch_norm(t, name) for ins in standalone_ins
                                          for t, name in zip(ins["op_types"], ins["op_names"],
                                                             strict=False))
                                  if had_bn else None),
    }


_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")


def parse_hlo(text: str) -> dict[str, Any]:
    """HLO text -> computations of instructions {opcode, kind, calls, op_types, op_names}."""
    computations: dict[str, list[dict[str, Any]]] = {}
    entry_name, current = None, None
    for line in text.splitlines():
        if current is None:
            match = _COMPUTATION.match(line)
            if match and not line.startswith("HloModule"):
                current = match.group(1)
                computations[current] = []
                if line.startswith("ENTRY"):
                    entry_name = current
            continue
        if line.strip() == "}":
            current = None
            continue
        match = _INSTRUCTION.match(line)
        if match:
            computations[current].append(_instruction(match.group(2)))
    everything = [ins for body in computations.values() for ins in body]
    return {"computations": computations, "entry": computations.get(entry_name, []),
            "all": everything}


def _instruction(rest: str) -> dict[str, Any]:
    # rest: "<shape> <opcode>(<operands>), attr=..., metadata={op_type="X" op_name="Y" ...}"
    shape_end = _skip_shape(rest)
    tail = rest[shape_end:].lstrip()
    opcode = tail.split("(", 1)[0].strip()
    kind = re.search(r"kind=(\w+)", tail)
    return {
        "opcode": opcode,
        "kind": kind.group(1) if kind else "",
        "calls": re.findall(r"calls=%?([\w.\-]+)", tail),
        "op_types": re.findall(r'op_type="([^"]+)"', tail),
        "op_names": re.findall(r'op_name="([^"]+)"', tail),
    }


def _skip_shape(text: str) -> int:
    """Index just past the instruction's shape, which may be a parenthesised tuple."""
    if text.startswith("("):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0:
                return i + 1
    return text.find(" ") if " " in text else len(text)
