"""Run files for the report tests, built from a real recorded run where possible.

A recorded run kept as test data (`tests/data/quick-cpu-xeon.jsonl`: the quick suite on a 2-core
Xeon, every mode, probes once per cell; the CI baseline in baselines/ was this file until it was
re-recorded on another machine, and the tests expect this one's machine) supplies the records
and the header: real step times, setup stages, graph node counts and probe facts. What a clean
run cannot show is added by hand, and says so: one failing cell (`ERROR_REASON`) and hand-made
records for edge cases.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from bench.store.record import Record, Status
from bench.store.runfiles import RunHeader, RunWriter, load_run

ROOT = Path(__file__).resolve().parents[1]
BASELINE_RUN = ROOT / "tests" / "data" / "quick-cpu-xeon.jsonl"

# The failure a clean recorded run lacks: planted on the recorded XLA training cell.
ERROR_MODE, ERROR_PHASE = "xla", "train"
ERROR_REASON = ("InternalError: XLA compilation failed: ran out of memory allocating 2.1GiB "
                "for the fused depthwise-conv backward pass")


def recorded_records(run_id: str, device: str = "cpu", case: str = "cnn") -> list[Record]:
    """The baseline's records of one case, relabelled with `run_id` and `device`, and the XLA
    training cell turned into a failure."""
    records = []
    for record in load_run(BASELINE_RUN).records:
        if record.cell.case != case:
            continue
        cell = dataclasses.replace(record.cell, device=device)
        record = dataclasses.replace(record, cell=cell, run_id=run_id)
        if (cell.mode, cell.phase) == (ERROR_MODE, ERROR_PHASE):
            record = Record(cell=cell, status=Status.ERROR, reason=ERROR_REASON, run_id=run_id,
                            round=record.round, images_per_step=record.images_per_step)
        records.append(record)
    return records


def recorded_header(run_id: str, hostname: str) -> RunHeader:
    """The baseline's header (machine, options, calibrated peak) under another run id and host."""
    header = load_run(BASELINE_RUN).header
    machine = {**header.machine, "hostname": hostname}
    return dataclasses.replace(header, run_id=run_id, machine=machine)


def write_run(path: str | os.PathLike, records: list[Record], run_id: str = "test-run",
              hostname: str = "bench-box", complete: bool = True,
              peak_flops: dict[str, float] | None = None) -> Path:
    """Write records as a run file with the recorded run's header."""
    header = recorded_header(run_id, hostname)
    header.peak_flops = dict(peak_flops or {})
    writer = RunWriter(path, header)
    for record in records:
        writer.append(record)
    if complete:
        writer.close(True)
    return Path(path)


def fake_samples(median_s: float, n: int = 30, seed: int = 0, spread: float = 0.02) -> list[float]:
    """Step times scattered around a median, reproducibly."""
    rng = np.random.default_rng(seed)
    return [float(s) for s in median_s * rng.lognormal(0.0, spread, size=n)]
