"""Runs the probes against one prepared cell; also the `bench debug` worker's whole job."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from bench.probes import KEYS
from bench.probes.change import cost_of_change
from bench.probes.context import ProbeContext, make_context
from bench.probes.faults import faults
from bench.probes.graphs import graph_visibility
from bench.probes.intermediates import intermediates
from bench.probes.messages import short_error
from bench.probes.pipeline import input_pipeline
from bench.probes.stepping import python_calls

# In order: probes that use the cell's own prepared instance first (python_calls steps it,
# intermediates steps it once more), then the ones that build fresh instances.
PROBES: tuple[tuple[Callable[[ProbeContext], dict[str, Any]], tuple[str, ...]], ...] = (
    (python_calls, ("dbg_python_calls_per_step",)),
    (intermediates, ("dbg_intermediates_fraction", "dbg_intermediates_via",
                     "dbg_intermediates_missing")),
    (graph_visibility, ("dbg_graph_nodes_built", "dbg_graph_nodes", "dbg_layer_ops_surviving",
                        "dbg_fused_op_types", "dbg_new_op_types", "dbg_batch_norm_folded")),
    (faults, ("dbg_fault_layer", "dbg_shape_error_stage", "dbg_shape_error_names_source",
              "dbg_shape_error_names_layer", "dbg_nan_check", "dbg_nan_check_failure",
              "dbg_nan_detected", "dbg_nan_localised", "dbg_nan_error_names_source",
              "dbg_nan_error_names_layer")),
    (cost_of_change, ("dbg_cold_start_s", "dbg_traces_to_first_result",
                      "dbg_new_batch_accepted", "dbg_retraces_new_batch", "dbg_new_shape_s")),
    (input_pipeline, ("dbg_batch_in_python",)),
)


# What a model file (keras:, savedmodel:) lacks for some probes: they work through the case's
# own tf-op code (its `tap` hook, named layer outputs, its forward counted and rebuilt), and a
# model file's network is the file's graph. A module: case is case code and gets them all.
MODEL_FILE_REASONS = {
    "python_calls": "counts calls into the case's own Python; a model file's layers are "
                    "Keras' or a graph's, not case code",
    "intermediates": "reads the case's named layer outputs (its tap hook); a model file has "
                     "no named taps",
    "faults": "injects shape and NaN faults through the case's tap hook; a model file has none",
    "cost_of_change": "counts and rebuilds traces of the case's forward; a model file's graph "
                      "comes from the file",
}


def run_all(cell: Any, workload: Any, request: Any, prepared: Any) -> dict[str, Any]:
    """Every probe; one that fails records None for its keys and a line in dbg_probe_errors
    (its traceback goes to the worker log), so one broken probe never costs the cell. A
    model file skips the probes that need case code, each with its reason in
    dbg_probes_not_applicable."""
    from cases.model import ModelWorkload

    ctx = make_context(cell, workload, request, prepared)
    results: dict[str, Any] = {}
    errors = []
    skipped = []
    for probe, keys in PROBES:
        if isinstance(workload, ModelWorkload) and probe.__name__ in MODEL_FILE_REASONS:
            skipped.append(f"{probe.__name__}: {MODEL_FILE_REASONS[probe.__name__]}")
            results.update(dict.fromkeys(keys))
            continue
        start = time.perf_counter()
        try:
            results.update(probe(ctx))
        except Exception as exc:  # noqa: BLE001 - reported in the record, not raised
            traceback.print_exc()
            errors.append(f"{probe.__name__}: {short_error(exc)}")
            results.update(dict.fromkeys(keys))
        print(f"probe {probe.__name__}: {time.perf_counter() - start:.2f} s", flush=True)
    ordered = {k: results.get(k) for k in KEYS}
    if errors:
        ordered["dbg_probe_errors"] = errors
    if skipped:
        ordered["dbg_probes_not_applicable"] = skipped
    return ordered


def probe_record(cell: Any, seed: int = 0):
    """Prepare the cell as bench.engine.worker does (bench.engine.lifecycle: prepare, first call,
    equivalence steps), warm it up to three calls in all, then probe it."""
    from bench.engine.lifecycle import make_request, prepare_cell
    from bench.engine.placement import pin, placement
    from bench.modes import load_mode, not_applicable_reason
    from bench.modes.base import NotApplicable, Threads
    from bench.store.record import Record, Status, mode_fields

    started = time.perf_counter()
    reason = not_applicable_reason(cell.mode, cell.phase)
    if reason:
        return Record(cell=cell, status=Status.SKIPPED, reason=reason)
    place = placement(cell.threads)
    pin(place.cpus)
    threads = Threads(place.intra_op, place.inter_op)
    request = make_request(cell, seed, threads)
    workload = request.workload
    try:
        ready = prepare_cell(load_mode(cell.mode), request)
    except NotApplicable as exc:
        return Record(cell=cell, status=Status.SKIPPED, reason=str(exc))
    prepared = ready.prepared
    for _ in range(3 - len(ready.outputs)):  # the runner's warm-up
        prepared.step()
    if ready.trained is None and prepared.read_weights is not None:
        prepared.read_weights()  # as the runner does after training steps (a Session pays
        # for its first read of every variable once)
    try:
        debug = run_all(cell, workload, request, prepared)
    finally:
        prepared.close()
    return Record(
        cell=cell, status=Status.OK, images_per_step=cell.batch, setup_s=ready.setup_s,
        first_result_s=ready.first_result_s, graph_nodes=dict(prepared.graph_nodes),
        macs_per_image=workload.macs_per_image, params=workload.params,
        threads=threads.as_dict(), debug=debug, wall_s=time.perf_counter() - started,
        probes_only=True, **mode_fields(prepared.extra),
    )
