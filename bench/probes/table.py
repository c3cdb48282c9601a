"""The probe vocabulary: one row per debuggability probe, read by the probes, reports and docs.

Each row says which `dbg_*` key a probe writes, what question it answers, what its value
means, which way is better for a debugging user and whether it counts in the debuggability
score. Before, these were three parallel tables (keys, better directions, aids) that had to
be kept in step by hand; now a probe is added with one row, and docs/probes.md's table is
generated from the rows (bench.probes.doc).

Plain Python, no TensorFlow: reports built on a laptop read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BETTER_DIRECTIONS = ("higher", "lower", "yes", "")


@dataclass(frozen=True)
class Probe:
    """One probe key. `better`: "higher"/"lower" for numbers, "yes" for facts where true is
    the working debugging aid, "" for values that describe rather than rank (counts, names,
    lists: reports show them without colour). `aid`: the debuggability score counts it."""

    key: str
    question: str  # what it answers: the numbered question of docs/probes.md
    meaning: str  # what the value says
    better: str = ""
    aid: bool = False

    def __post_init__(self) -> None:
        if self.better not in BETTER_DIRECTIONS:
            raise ValueError(f"probe {self.key}: better must be one of {BETTER_DIRECTIONS}")


PYTHON = "1. Does the model's Python run during steady-state steps?"
INTERMEDIATES = "2. Can intermediate values be read?"
ERRORS = "3. Do errors point to the source?"
NAN = "4. Is a NaN found and localised?"
CHANGE = "5. What does a change cost?"
GRAPH = "6. How much of the graph is visible?"
PIPELINE = "7. Is the input batch visible in Python? (dataset input only; None otherwise)"

# In scorecard order. Keys ending in `_s` are timings; everything else is deterministic for a
# given mode, case and phase (so the regression gate compares it exactly).
PROBE_TABLE: tuple[Probe, ...] = (
    Probe("dbg_python_calls_per_step", PYTHON,
          "calls into the model's Python code per steady-state step (profile hook); 0 means a "
          "breakpoint or print in a layer never fires after warm-up",
          "higher", aid=True),  # a breakpoint in the model fires every step
    Probe("dbg_intermediates_fraction", INTERMEDIATES,
          "share of the named layer outputs readable as numbers after a step without changing "
          "the model code", "higher", aid=True),
    Probe("dbg_intermediates_via", INTERMEDIATES,
          "how they were read: debugger hook, fetch by name, keras sub-model, step output"),
    Probe("dbg_intermediates_missing", INTERMEDIATES,
          "named layer outputs that could not be read"),
    Probe("dbg_fault_layer", ERRORS, "the layer the shape and NaN faults are injected at"),
    Probe("dbg_shape_error_stage", ERRORS,
          "when the shape bug surfaced: build, first step or none"),
    Probe("dbg_shape_error_names_source", ERRORS,
          "the shape error names the case file and the faulty layer's line", "yes", aid=True),
    Probe("dbg_shape_error_names_layer", ERRORS, "the shape error names the faulty layer",
          "yes", aid=True),
    Probe("dbg_nan_error_names_source", ERRORS,
          "the NaN error (numeric checking on) names the case file and the faulty layer's line",
          "yes", aid=True),
    Probe("dbg_nan_error_names_layer", ERRORS, "the NaN error names the faulty layer", "yes",
          aid=True),
    Probe("dbg_nan_check", NAN,
          "numeric checking the mode could run: enable_check_numerics, check_numerics ops, or "
          "none"),
    Probe("dbg_nan_check_failure", NAN,
          "why enable_check_numerics could not be used (the error it raised instead of a NaN "
          "report)"),
    Probe("dbg_nan_detected", NAN, "numeric checking reported the NaN", "yes", aid=True),
    Probe("dbg_nan_localised", NAN, "the report blames the op that first produced the NaN",
          "yes", aid=True),
    Probe("dbg_cold_start_s", CHANGE,
          "seconds from a fresh build to the first result (build, trace, compile, first step)",
          "lower"),
    Probe("dbg_traces_to_first_result", CHANGE,
          "times the model's Python was traced or built before the first result", "lower"),
    Probe("dbg_new_batch_accepted", CHANGE,
          "the built model ran a second batch size without being rebuilt by hand", "yes",
          aid=True),
    Probe("dbg_retraces_new_batch", CHANGE,
          "traces or rebuilds of the model's Python needed for the second batch size (two "
          "calls)", "lower"),
    Probe("dbg_new_shape_s", CHANGE, "seconds to the first result at the second batch size",
          "lower"),
    Probe("dbg_graph_nodes_built", GRAPH,
          "nodes of the graph as built or traced from the model's Python"),
    Probe("dbg_graph_nodes", GRAPH,
          "nodes of the graph the mode runs (XLA: HLO instructions of the compiled entry "
          "computation)"),
    Probe("dbg_layer_ops_surviving", GRAPH,
          "named layers that still have an op carrying their name in the graph the mode runs"),
    Probe("dbg_fused_op_types", GRAPH,
          "model op types that no longer run as ops of their own (folded, fused)"),
    Probe("dbg_new_op_types", GRAPH,
          "op types that exist only in the graph the mode runs (fused kernels)"),
    Probe("dbg_batch_norm_folded", GRAPH,
          "batch norm no longer runs as an op of its own (None: no batch norm in the model)"),
    Probe("dbg_batch_in_python", PIPELINE,
          "with a tf.data pipeline, each step's input batch is a value in the user's own loop "
          "code, where a breakpoint or print can show it"),
)

PROBES_BY_KEY: dict[str, Probe] = {p.key: p for p in PROBE_TABLE}
KEYS: tuple[str, ...] = tuple(PROBES_BY_KEY)  # every key a probe writes, in scorecard order
BETTER: dict[str, str] = {p.key: p.better for p in PROBE_TABLE if p.better}
AIDS: tuple[str, ...] = tuple(p.key for p in PROBE_TABLE if p.aid)


def debuggability_score(debug: dict[str, Any]) -> tuple[float, int]:
    """(aids that work, aids probed) over AIDS: a breakpoint that fires, readable
    intermediates (their fraction), errors and NaN reports that name the source, a new batch
    size accepted. Timings are left out: they are speed, not whether a debugging aid works."""
    score, probed = 0.0, 0
    for key in AIDS:
        value = debug.get(key)
        if value is None or isinstance(value, str):
            continue
        probed += 1
        if key == "dbg_python_calls_per_step":
            score += float(value > 0)
        elif key == "dbg_intermediates_fraction":
            score += min(max(float(value), 0.0), 1.0)
        else:
            score += float(bool(value))
    return score, probed
