"""What runs on a Ray node: one comparison group's cells, through the local isolated worker path.

`run_group` is the body of the Ray task that bench.cluster.driver submits, one per comparison group
(case, configuration, phase, device, input, batch, threads; every round of it). The task holds
its node's single benchmark slot for the whole group, so no other cell shares the machine and
every mode of the group is measured on the same node. Inside, each cell runs exactly as in a
local run (bench.engine.runner.measure_placed): a fresh worker from a forkserver that has imported
TensorFlow, pinned to its CPUs, with the timeout and memory limit, a crash recorded as a
status. A cell that kills its worker therefore costs the cell, never the Ray worker.

The task is a generator: it yields a `NodeInfo` first (the node's machine facts, fingerprint
and peak calibration, which the driver puts in the header of that node's run file), then one
`Record` per cell as soon as it is measured, so records reach the driver's files while the
group is still running; each record says which node measured it (`Record.node`) and when it
held the slot (`Record.slot_held`, Unix seconds). Calibration is done once per Ray worker
process and run (cached here), not once per group. The forkserver a task starts lives in its
Ray worker, which Ray ends with the job (the driver's run), so nothing outlives the run.
This module imports neither Ray nor TensorFlow at import time.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.store.record import Cell, Record

# (run id, node id) -> NodeInfo: the calibration of this Ray worker process's node for a run.
_CALIBRATED: dict[tuple[str, str], NodeInfo] = {}


@dataclass
class NodeInfo:
    """Who measured: the node's id, host, machine facts (with fingerprint) and peak FLOP/s."""

    node_id: str
    hostname: str
    machine: dict = field(default_factory=dict)
    peak_flops: dict[str, float] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """A short, file-name-safe name for the node: host plus the start of its Ray id."""
        host = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.hostname)
        return f"{host}-{self.node_id[:6]}"


@dataclass
class GroupJob:
    """Everything a node needs to measure one group: the cells in order and the settings."""

    run_id: str
    group: str  # Cell.group_key
    cells: list[tuple[int, Cell]]  # (round, cell), in the driver's rotated order
    probe: set[tuple[int, Cell]]
    options: object  # bench.engine.worker.CellOptions (kept loose: no worker import here)
    profiles: list[tuple[str, str]]  # every (device, threads) profile of the run
    log_dir: str  # the driver's log folder; used on the node when it can be created
    timeout_s: float
    memory_limit_mb: float | None
    threads_inter: int
    slowdown: dict | None
    remeasure: int = 0
    rounds: int = 1
    omp_num_threads: str | None = None  # the driver's OMP_NUM_THREADS (None: unset)


def run_group(job: GroupJob) -> Iterator[NodeInfo | Record]:
    """Yield this node's NodeInfo, then a Record per (round, cell) of the group as it is done."""
    import ray

    from bench.engine.placement import available_cpus, pin
    from bench.engine.runner import measure_placed, worker_context
    from bench.engine.schedule import visits
    from bench.stats.replicates import remeasure_needed

    node_id = ray.get_runtime_context().get_node_id()
    # Ray sets OMP_NUM_THREADS=1 in workers of tasks that reserve no CPUs; a local run has no
    # such limit, so cell workers (forked after this) get the driver's setting instead.
    if job.omp_num_threads is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = job.omp_num_threads
    log_dir = _log_dir(Path(job.log_dir), job.run_id)
    ctx = worker_context(log_dir / "forkserver.log")
    machine_cpus = available_cpus()
    info = _calibrated(job, node_id, ctx, machine_cpus, log_dir)
    yield info
    records: list[Record] = []
    def more(cell: Cell) -> str | None:
        return remeasure_needed([r for r in records if r.cell == cell], job.rounds)

    try:
        for visit in visits(job.cells, more, job.remeasure):
            started = time.time()
            record = measure_placed(ctx, visit.cell, visit.round, job.options,
                                    probes=not visit.note and (visit.round, visit.cell)
                                    in job.probe, log_dir=log_dir,
                                    timeout_s=job.timeout_s,
                                    memory_limit_mb=job.memory_limit_mb,
                                    threads_inter=job.threads_inter,
                                    machine_cpus=machine_cpus, slowdown=job.slowdown)
            record.node, record.slot_held = info.tag, [started, time.time()]
            record.extra_visit = visit.note
            records.append(record)
            yield record
    finally:
        pin(machine_cpus)


def _calibrated(job: GroupJob, node_id: str, ctx, machine_cpus: list[int],
                log_dir: Path) -> NodeInfo:
    """The node's facts and peak FLOP/s for every profile of the run, measured once per run."""
    from bench.engine.machine import fingerprint, machine_facts
    from bench.engine.runner import calibrate_profiles

    key = (job.run_id, node_id)
    if key not in _CALIBRATED:
        facts = machine_facts()
        peak = calibrate_profiles(ctx, job.profiles, job.threads_inter, machine_cpus, log_dir,
                                  "start", facts)
        facts["fingerprint"] = fingerprint(facts, ",".join(sorted({d for d, _ in job.profiles})))
        facts["ray_node_id"] = node_id
        _CALIBRATED[key] = NodeInfo(node_id, socket.gethostname(), facts, peak)
    return _CALIBRATED[key]


def _log_dir(wanted: Path, run_id: str) -> Path:
    """The driver's log folder when this node can write there (same machine or a shared file
    system), else one under the node's temporary directory; records name the path either way."""
    try:
        wanted.mkdir(parents=True, exist_ok=True)
        probe = wanted / f".probe-{socket.gethostname()}"
        probe.touch()
        probe.unlink()
        return wanted
    except OSError:
        fallback = Path(tempfile.gettempdir()) / "bench-ray" / run_id
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback
