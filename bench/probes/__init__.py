"""Debuggability, measured: experiments that run a mode and record what a user could debug.

`run_probes(cell, workload, request, prepared)` runs every probe against one prepared cell and
returns the `dbg_*` facts of its Record (see `KEYS`, and docs/probes.md for what they mean
to a user). Every value comes from running the mode: a profile hook during real steps, fetching
tensors from the graph the mode runs, injecting faults through the case's `tap` hook and
reading the exception TensorFlow raises, rebuilding and retracing with a new batch size, and
counting the nodes of the graphs the mode built. Nothing here knows, by name, what a mode can
do; the family of a mode (graph / traced / eager / keras) is the type of its
`Prepared.handles` (bench.modes.handles), and the probes dispatch on that type.

Importing this package does not import TensorFlow (the `bench debug` command and the runner
stay TF-free); the probe modules do, when called inside a worker.
"""

from __future__ import annotations

from typing import Any

# Every key a probe writes, in scorecard order, with what it means. Keys ending in `_s` are
# timings; everything else is deterministic for a given mode, case and phase.
KEYS: dict[str, str] = {
    # 1. Does the model's Python run during steady-state steps?
    "dbg_python_calls_per_step": "calls into the model's Python code per steady-state step "
                                 "(profile hook); 0 means a breakpoint or print in a layer "
                                 "never fires after warm-up",
    # 2. Intermediate values
    "dbg_intermediates_fraction": "share of the named layer outputs readable as numbers after "
                                  "a step without changing the model code",
    "dbg_intermediates_via": "how they were read: debugger hook, fetch by name, keras "
                             "sub-model, step output",
    "dbg_intermediates_missing": "named layer outputs that could not be read",
    # 3. Errors point to source (faults injected at one named layer)
    "dbg_fault_layer": "the layer the shape and NaN faults are injected at",
    "dbg_shape_error_stage": "when the shape bug surfaced: build, first step or none",
    "dbg_shape_error_names_source": "the shape error names the case file and the faulty "
                                    "layer's line",
    "dbg_shape_error_names_layer": "the shape error names the faulty layer",
    "dbg_nan_error_names_source": "the NaN error (numeric checking on) names the case file and "
                                  "the faulty layer's line",
    "dbg_nan_error_names_layer": "the NaN error names the faulty layer",
    # 4. NaN localisation
    "dbg_nan_check": "numeric checking the mode could run: enable_check_numerics, "
                     "check_numerics ops, or none",
    "dbg_nan_check_failure": "why enable_check_numerics could not be used (the error it "
                             "raised instead of a NaN report)",
    "dbg_nan_detected": "numeric checking reported the NaN",
    "dbg_nan_localised": "the report blames the op that first produced the NaN",
    # 5. Cost of change
    "dbg_cold_start_s": "seconds from a fresh build to the first result (build, trace, "
                        "compile, first step)",
    "dbg_traces_to_first_result": "times the model's Python was traced or built before the "
                                  "first result",
    "dbg_new_batch_accepted": "the built model ran a second batch size without being rebuilt "
                              "by hand",
    "dbg_retraces_new_batch": "traces or rebuilds of the model's Python needed for the second "
                              "batch size (two calls)",
    "dbg_new_shape_s": "seconds to the first result at the second batch size",
    # 6. Graph visibility
    "dbg_graph_nodes_built": "nodes of the graph as built or traced from the model's Python",
    "dbg_graph_nodes": "nodes of the graph the mode runs (XLA: HLO instructions of the "
                       "compiled entry computation)",
    "dbg_layer_ops_surviving": "named layers that still have an op carrying their name in "
                               "the graph the mode runs",
    "dbg_fused_op_types": "model op types that no longer run as ops of their own (folded, "
                          "fused)",
    "dbg_new_op_types": "op types that exist only in the graph the mode runs (fused kernels)",
    "dbg_batch_norm_folded": "batch norm no longer runs as an op of its own (None: no batch "
                             "norm in the model)",
    # 7. Input pipeline (dataset input only; None otherwise)
    "dbg_batch_in_python": "with a tf.data pipeline, each step's input batch is a value in the "
                           "user's own loop code, where a breakpoint or print can show it",
}

# Which way is better for a debugging user, per probe: "higher" / "lower" for numbers, True
# for facts where yes is the working debugging aid. Probes not listed (counts such as graph
# nodes, names, lists) describe rather than rank: reports show them without colour.
BETTER: dict[str, str | bool] = {
    "dbg_python_calls_per_step": "higher",  # a breakpoint in the model fires every step
    "dbg_intermediates_fraction": "higher",
    "dbg_shape_error_names_source": True,
    "dbg_shape_error_names_layer": True,
    "dbg_nan_error_names_source": True,
    "dbg_nan_error_names_layer": True,
    "dbg_nan_detected": True,
    "dbg_nan_localised": True,
    "dbg_cold_start_s": "lower",
    "dbg_traces_to_first_result": "lower",
    "dbg_new_batch_accepted": True,
    "dbg_retraces_new_batch": "lower",
    "dbg_new_shape_s": "lower",
}
# The facts that say whether a debugging aid works (the debuggability score counts them).
AIDS = ("dbg_python_calls_per_step", "dbg_intermediates_fraction",
        "dbg_shape_error_names_source", "dbg_shape_error_names_layer",
        "dbg_nan_error_names_source", "dbg_nan_error_names_layer", "dbg_nan_detected",
        "dbg_nan_localised", "dbg_new_batch_accepted")


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


def run_probes(cell: Any, workload: Any, request: Any, prepared: Any) -> dict[str, Any]:
    """All probes for one prepared cell: a dict of `dbg_*` keys (see KEYS)."""
    from bench.probes.core import run_all

    return run_all(cell, workload, request, prepared)


def probe_cell(cell: Any, seed: int = 0) -> Any:
    """Worker target for `bench debug`: prepare the cell as the runner does, then probe it.

    Returns a Record with status ok, `debug` filled and no timing samples, or a skipped
    Record when the mode cannot run the phase.
    """
    from bench.probes.core import probe_record

    return probe_record(cell, seed)


__all__ = ["KEYS", "probe_cell", "run_probes"]
