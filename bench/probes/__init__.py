"""Debuggability, measured: experiments that run a mode and record what a user could debug.

`run_probes(cell, workload, request, prepared)` runs every probe against one prepared cell and
returns the `dbg_*` facts of its Record (see `PROBE_TABLE` in bench.probes.table, and
docs/probes.md for what they mean to a user). Every value comes from running the mode: a
profile hook during real steps, fetching tensors from the graph the mode runs, injecting
faults through the case's `tap` hook and reading the exception TensorFlow raises, rebuilding
and retracing with a new batch size, and counting the nodes of the graphs the mode built.
Nothing here knows, by name, what a mode can do; the family of a mode (graph / traced / eager /
keras) is read from the objects its `Prepared.handles` expose.

Importing this package does not import TensorFlow (the `bench debug` command and the runner
stay TF-free); the probe modules do, when called inside a worker.
"""

from __future__ import annotations

from typing import Any

# The probe vocabulary is one table (bench.probes.table); these names are views of it.
from bench.probes.table import AIDS, BETTER, KEYS, PROBE_TABLE, Probe, debuggability_score


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


__all__ = ["AIDS", "BETTER", "KEYS", "PROBE_TABLE", "Probe", "debuggability_score",
           "probe_cell", "run_probes"]
