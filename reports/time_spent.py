"""Where a run's time went, and how good its ETA was: pure functions over stored runs.

Every record carries `time_s` (bench.store.record.TIME_STAGES: the runner's start share, inputs,
setup, first call, equivalence, warm-up, sampling, probes, eager reference, paired
measurement, teardown; `lost` for a failed cell), so a run's wall time splits into what
measuring costs (warm-up, sampling, paired) and what it costs to get there. That tells a user
what a longer budget would buy: doubling the budgets doubles only the measuring share.

Each record also keeps what the progress display promised when the cell started
(`Record.eta_elapsed_s` and `eta_left_s`: elapsed and estimated seconds left); with the
footer's `elapsed_s` that gives the ETA's real error at every point of the run.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bench.store.record import MEASURING_STAGES, TIME_STAGES, TimeStage
from bench.store.runfiles import Run
from bench.units import clock


def stage_seconds(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per record: its cell's fields and seconds per stage (0 where absent)."""
    rows = []
    for run in runs:
        for record in run.records:
            cell = record.cell
            row = {"run_id": record.run_id or run.header.run_id, "key": cell.key,
                   "case": cell.case, "config": cell.config, "mode": cell.mode,
                   "phase": cell.phase, "batch": cell.batch, "threads": cell.threads,
                   "status": record.status}
            row.update({stage: float(record.time_s.get(stage, 0.0)) for stage in TIME_STAGES})
            rows.append(row)
    frame = pd.DataFrame(rows, columns=["run_id", "key", "case", "config", "mode", "phase",
                                        "batch", "threads", "status", *TIME_STAGES])
    frame["total"] = frame[list(TIME_STAGES)].sum(axis=1)
    return frame


def by_stage(runs: Sequence[Run]) -> pd.DataFrame:
    """Seconds and share of the cells' time per stage (stages never used are left out)."""
    frame = stage_seconds(runs)
    seconds = frame[list(TIME_STAGES)].sum()
    seconds = seconds[seconds > 0]
    total = float(seconds.sum())
    return pd.DataFrame({"stage": seconds.index, "seconds": seconds.values,
                         "share": seconds.values / total if total else 0.0})


def by_mode(runs: Sequence[Run]) -> pd.DataFrame:
    """Seconds per mode and phase, split into getting ready, measuring and probes."""
    frame = stage_seconds(runs)
    frame["measuring"] = frame[list(MEASURING_STAGES)].sum(axis=1)
    frame["probing"] = frame[TimeStage.PROBES]
    frame["getting ready"] = frame["total"] - frame["measuring"] - frame["probing"]
    table = frame.groupby(["mode", "phase"], sort=False)[
        ["getting ready", "measuring", "probing", "total"]].sum()
    return table.sort_values("total", ascending=False).reset_index()


def time_line(runs: Sequence[Run]) -> str:
    """One line for the terminal: the run's time and its largest stages."""
    stages = by_stage(runs)
    if stages.empty:
        return "time: no cell reported where its time went"
    total = float(stages["seconds"].sum())
    top = stages.sort_values("seconds", ascending=False).head(4)
    parts = ", ".join(f"{row.stage} {row.share:.0%}" for row in top.itertuples())
    measuring = float(stages.loc[stages["stage"].isin(MEASURING_STAGES), "share"].sum())
    return (f"time: {clock(total)} in cells ({parts}); measuring took {measuring:.0%}, "
            "the rest is what a longer budget does not change")


def eta_accuracy(run: Run) -> pd.DataFrame:
    """What the progress display promised at each cell's start against what was left.

    Columns: cells_done, fraction_done, elapsed_s, promised_left_s, actual_left_s, error
    (promised / actual - 1). Empty when the run has no promises or no footer time.
    """
    if run.elapsed_s is None:
        return pd.DataFrame()
    rows = []
    total = len(run.records)
    for done, record in enumerate(run.records):
        elapsed, left = record.eta_elapsed_s, record.eta_left_s
        if elapsed is None or left is None:
            continue
        actual = run.elapsed_s - elapsed
        rows.append({"cells_done": done, "fraction_done": done / total, "elapsed_s": elapsed,
                     "promised_left_s": left, "actual_left_s": actual,
                     "error": left / actual - 1 if actual > 0 else float("nan")})
    return pd.DataFrame(rows)


def eta_error_at(run: Run, fraction: float) -> float | None:
    """The ETA's relative error at the first cell started after `fraction` of the cells."""
    table = eta_accuracy(run)
    if table.empty:
        return None
    after = table[table["fraction_done"] >= fraction]
    return None if after.empty else float(after["error"].iloc[0])
