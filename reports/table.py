"""Run files -> one flat pandas table: one row per (run, machine, cell), rounds pooled.

Every report, CSV and terminal table starts from this frame, so it is the one place where
raw records become numbers. Rounds of the same run are pooled (samples concatenated) because a
round is only a way to interleave modes against drift, not a separate experiment; different
runs (machines, CPU vs GPU) stay separate rows so they are never averaged into each other.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import UsageError
from bench.stats.replicates import THROUGHPUT_OUTLIER, summarize_replicates
from bench.stats.samples import summarize
from bench.store.record import OTHER_LOAD_WARN, SETUP_STAGES, TIME_STAGES, InputStyle, Record
from bench.store.runfiles import Run, peak_for
from reports.csvfile import to_csv
from reports.format import format_value
from reports.pool import PooledCell, pool
from reports.speedup import Speedup, eager_key, speedup_over_eager

# Status severity: a pooled cell takes the worst status of its rounds.

# The flat columns, in order; per-stage and debug columns follow, then run identity.
BASE_COLUMNS = [
    "case", "config", "mode", "phase", "device", "input", "batch", "threads", "status",
    "reason", "images_per_s", "ci_low", "ci_high", "workers", "excluded_workers", "worker_cv",
    "speedup", "speedup_low", "speedup_high", "speedup_source", "cv", "p50_ms", "p90_ms",
    "p99_ms", "samples", "outliers", "setup_s", "first_result_s", "peak_rss_mb",
    "peak_device_mb", "gflops", "peak_fraction", "graph_nodes", "max_abs_diff", "tolerance",
    "equivalent", "macs", "params", "other_load", "epoch_batches", "epoch_s",
]
TAIL_COLUMNS = [
    "run_id", "machine", "suite", "key", "rounds", "median_s", "mean_s", "ci_rel_halfwidth",
    "ci_between", "peak_share_raw", "cpus", "images_per_step", "flops_per_image", "wall_s",
    "path",
]
# Raw per-cell data kept for plots and bootstrap CIs; never printed or written to CSV.
RAW_COLUMNS = ["samples_s"]

# What a terminal shows by default: enough to choose a mode, narrow enough for 120 columns.
DEFAULT_COLUMNS = [
    "case", "config", "mode", "phase", "device", "batch", "threads", "status", "images_per_s",
    "ci_low", "ci_high", "workers", "speedup", "speedup_source", "p50_ms", "p99_ms", "setup_s",
    "peak_rss_mb", "equivalent", "reason",
]

# Graph stages in order of preference: the graph the mode actually runs is the last one made.
_GRAPH_PREFERENCE = ("optimized", "frozen", "built")

# --------------------------------------------------------------------------- machine label


def machine_label(run: Run) -> str:
    """A short machine name for grouping and legends: host plus a short CPU (and GPU) model."""
    facts = run.header.machine or {}
    parts = []
    host = _first_fact(facts, ("hostname", "host", "node"))
    if host:
        parts.append(host)
    cpu = _first_fact(facts, ("cpu_model", "cpu", "processor", "cpu_brand"))
    if cpu:
        parts.append(short_cpu_name(cpu))
    return " ".join(parts) or run.header.run_id or Path(run.path).stem or "unknown machine"


def _first_fact(facts: dict[str, Any], keys: Sequence[str]) -> str:
    for key in keys:
        value = facts.get(key)
        if isinstance(value, dict):  # e.g. {"cpu": {"model": ...}}
            value = value.get("model") or value.get("name") or value.get("brand")
        if value:
            return str(value)
    return ""


def short_cpu_name(name: str) -> str:
    """'Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz' -> 'Xeon E5-2680 v4'."""
    name = re.sub(r"\((R|TM|r|tm)\)", "", name)
    name = re.sub(r"@.*$", "", name)
    name = re.sub(r"\b(Intel|AMD|CPU|Processor|[0-9]+-Core)\b", "", name)
    return " ".join(name.split())[:32]


def records_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per (run, machine, cell) with every column a table, plot or CSV needs.

    Failed and skipped cells are rows too, with NaN measurements and their reason: a report
    that silently drops a crashed mode would make that mode look like it was never tried.
    """
    cells: list[tuple[Run, str, str, PooledCell]] = []
    for run in runs:
        machine = machine_label(run)
        groups: dict[tuple[str, str], list[tuple[int, Record]]] = {}
        for record in run.records:
            run_id = record.run_id or run.header.run_id
            groups.setdefault((run_id, record.cell.key), []).append((0, record))
        cells.extend((run, machine, run_id, pool(items)) for (run_id, _), items in groups.items())
    # A cell's eager partner: same machine and run, only the mode replaced (the first ok one).
    partners: dict[tuple[str, str, str], PooledCell] = {}
    for _, machine, run_id, pooled in cells:
        if pooled.ok:
            partners.setdefault((machine, run_id, pooled.cell.key), pooled)
    rows: list[dict[str, Any]] = []
    for run, machine, run_id, pooled in cells:
        row = _row(pooled, run)
        eager = partners.get((machine, run_id, eager_key(pooled.cell)))
        row.update(_speedup_columns(speedup_over_eager(pooled, eager)))
        row.update(run_id=run_id, machine=machine, suite=run.header.suite, path=run.path)
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=_column_order(frame))


def _column_order(frame: pd.DataFrame) -> list[str]:
    extra = [c for c in frame.columns if c not in BASE_COLUMNS + TAIL_COLUMNS + RAW_COLUMNS]
    setup = sorted((c for c in extra if c.startswith("setup_")), key=_stage_rank)
    nodes = [c for c in extra if c.startswith("graph_nodes_")]
    debug = sorted(c for c in extra if c.startswith("dbg_"))
    timing = [f"time_{stage}_s" for stage in TIME_STAGES if f"time_{stage}_s" in extra]
    return BASE_COLUMNS + setup + nodes + debug + timing + TAIL_COLUMNS + RAW_COLUMNS


def _stage_rank(column: str) -> tuple[int, str]:
    stage = column.removeprefix("setup_").removesuffix("_s")
    # In the order a mode goes through them (SETUP_STAGES); unknown stages after these.
    rank = SETUP_STAGES.index(stage) if stage in SETUP_STAGES else len(SETUP_STAGES)
    return rank, stage


def _row(pooled: PooledCell, run: Run) -> dict[str, Any]:
    cell = pooled.cell
    ok = pooled.ok
    row: dict[str, Any] = {
        "key": cell.key, "case": cell.case, "config": cell.config, "mode": cell.mode,
        "phase": cell.phase,
        "device": cell.device, "input": cell.input, "batch": cell.batch,
        "status": pooled.status, "reason": pooled.reason, "rounds": pooled.rounds,
        "images_per_step": pooled.images_per_step,
    }
    row.update(_sample_columns(list(pooled.samples) if ok else [], pooled.images_per_step))
    row.update(_replicate_columns(list(pooled.worker_ips.values()) if ok else []))
    # Dataset input: one measured call is an epoch; samples are per batch (the worker divides).
    epoch = cell.input == InputStyle.DATASET
    row["epoch_batches"] = pooled.batches_per_call if epoch else math.nan
    row["epoch_s"] = (row["epoch_batches"] * row["images_per_step"] / row["images_per_s"]
                      if epoch and row["images_per_s"] > 0 else math.nan)
    row["threads"] = cell.threads
    row["cpus"] = ",".join(map(str, pooled.cpus))
    row["other_load"] = _num(pooled.other_load)
    stages = pooled.setup_stages if ok else {}
    row["setup_s"] = sum(stages.values()) if stages else math.nan
    for stage, seconds in pooled.setup_stages.items():
        row[f"setup_{stage}_s"] = seconds if ok else math.nan
    for name in ("first_result_s", "peak_rss_mb", "peak_device_mb", "max_abs_diff"):
        row[name] = _num(getattr(pooled, name)) if ok else math.nan
    row["wall_s"] = _num(pooled.wall_s)
    # Where the cell's time went (bench.store.record.TIME_STAGES), summed over its rounds.
    for stage, seconds in pooled.time_s.items():
        row[f"time_{stage}_s"] = seconds
    nodes = pooled.graph_nodes
    row["graph_nodes"] = _num(_graph_size(nodes))
    for stage, count in nodes.items():
        row[f"graph_nodes_{stage}"] = _num(count)
    row["tolerance"] = _num(pooled.tolerance)
    row["equivalent"] = pooled.equivalent if ok else None
    row["macs"] = _num(pooled.macs)
    row["params"] = _num(pooled.params)
    flops = _num(pooled.flops_per_image)
    row["flops_per_image"] = flops
    row["gflops"] = flops * row["images_per_s"] / 1e9
    peak = peak_for(run.header.peak_flops or {}, cell.device, cell.threads)
    share = row["gflops"] * 1e9 / peak if peak else math.nan
    # Above 100% of a measured peak is a calibration problem (a busy moment during it), not a
    # result: kept in peak_share_raw for the warning, never shown as a share.
    row["peak_share_raw"] = share
    row["peak_fraction"] = share if share <= 1.0 else math.nan
    for key, value in pooled.debug.items():
        row[key if key.startswith("dbg_") else f"dbg_{key}"] = _compact(value)
    return row


def _sample_columns(samples: list[float], images_per_step: int) -> dict[str, Any]:
    """Throughput and latency statistics; NaN when there is nothing measured."""
    if not samples:
        names = ("images_per_s", "ci_low", "ci_high", "cv", "p50_ms", "p90_ms", "p99_ms",
                 "median_s", "mean_s", "ci_rel_halfwidth")
        return {**dict.fromkeys(names, math.nan), "samples": 0, "outliers": math.nan,
                "samples_s": np.array([], dtype=float)}
    s = summarize(samples, images_per_step)
    return {
        "images_per_s": s.images_per_s, "ci_low": s.ips_ci_low, "ci_high": s.ips_ci_high,
        "cv": s.cv, "p50_ms": s.p50_ms, "p90_ms": s.p90_ms, "p99_ms": s.p99_ms,
        "samples": s.n, "outliers": s.outliers, "median_s": s.median_s, "mean_s": s.mean_s,
        "ci_rel_halfwidth": s.ci_rel_halfwidth, "samples_s": np.asarray(samples, dtype=float),
    }


def _replicate_columns(worker_ips: list[float]) -> dict[str, Any]:
    """Throughput and its CI from the spread *between* workers.

    With two or more workers the headline images/s is the geometric mean of the workers'
    own medians (outliers left out, bench.stats.replicates) and its CI a t-interval across them;
    with one worker the pooled-sample columns (a CI within one process) stand.
    """
    out: dict[str, Any] = {"workers": len(worker_ips), "excluded_workers": 0,
                           "worker_cv": math.nan, "ci_between": math.nan}
    ips = summarize_replicates(worker_ips, THROUGHPUT_OUTLIER)
    if ips.n >= 2:
        out.update(images_per_s=ips.center, ci_low=ips.low, ci_high=ips.high, workers=ips.n,
                   excluded_workers=ips.excluded, worker_cv=ips.cv,
                   ci_between=ips.rel_halfwidth)
    return out


def _speedup_columns(speedup: Speedup | None) -> dict[str, Any]:
    """Speed-up over eager (reports.speedup), its CI and which measurement gave it."""
    if speedup is None:
        return {"speedup": math.nan, "speedup_low": math.nan, "speedup_high": math.nan,
                "speedup_source": ""}
    return {"speedup": speedup.value, "speedup_low": speedup.low,
            "speedup_high": speedup.high, "speedup_source": speedup.source}


def load_warnings(frame: pd.DataFrame) -> list[str]:
    """Cells measured while other processes used their CPUs, and impossible shares of peak."""
    lines = []
    if "other_load" in frame.columns:
        busy = frame[frame["other_load"] >= OTHER_LOAD_WARN]
        if len(busy):
            worst = busy.loc[busy["other_load"].idxmax()]
            lines.append(f"{len(busy)} cell(s) were measured while other processes used "
                         f">= {OTHER_LOAD_WARN:.0%} of a core on their CPUs (worst: "
                         f"{worst['key']}, {worst['other_load']:.0%}); rerun on a quiet machine")
    if "peak_share_raw" in frame.columns:
        over = frame[frame["peak_share_raw"] > 1.0]
        if len(over):
            lines.append(f"{len(over)} cell(s) exceed 100% of the measured FLOP/s peak: the "
                         "peak calibration ran slow (a busy machine?); share of peak not shown")
    return lines


def _graph_size(nodes: dict[str, int]) -> int | None:
    """The node count of the graph the mode runs: the most processed one available."""
    for stage in _GRAPH_PREFERENCE:
        if stage in nodes:
            return nodes[stage]
    return next(iter(nodes.values()), None)


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _compact(value: Any) -> Any:
    """Lists and dicts in debug probes become short JSON strings so a cell stays one value."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return value


# --------------------------------------------------------------------------- formatting


def printable_columns(frame: pd.DataFrame) -> list[str]:
    """All columns except raw sample arrays (which would flood a terminal or CSV)."""
    return [c for c in frame.columns if c not in RAW_COLUMNS]


def default_columns(frame: pd.DataFrame) -> list[str]:
    """The concise terminal selection; adds machine when a table mixes several machines, the
    input style when it mixes several, and seconds per epoch when it has dataset cells."""
    columns = [c for c in DEFAULT_COLUMNS if c in frame.columns]
    if "machine" in frame.columns and frame["machine"].nunique() > 1:
        columns.insert(0, "machine")
    if "input" in frame.columns and frame["input"].nunique() > 1:
        columns.insert(columns.index("batch"), "input")
    if "epoch_s" in frame.columns and frame["epoch_s"].notna().any():
        columns.insert(columns.index("p50_ms"), "epoch_s")
    return columns


def select_columns(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Columns by name, with a UsageError listing what exists when a name is unknown."""
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        known = ", ".join(printable_columns(frame))
        raise UsageError(f"unknown column(s) {', '.join(unknown)}; available: {known}")
    return frame.loc[:, list(columns)]


FORMATS = ("text", "csv", "markdown")


def format_table(frame: pd.DataFrame, fmt: str = "text") -> str:
    """The frame as text (aligned, rounded), CSV (full precision) or a GitHub markdown table."""
    frame = frame.loc[:, [c for c in frame.columns if c not in RAW_COLUMNS]]
    if fmt == "csv":
        return to_csv(frame)
    cells = [[format_value(v) for v in row] for row in frame.itertuples(index=False)]
    header = [str(c) for c in frame.columns]
    if fmt == "markdown":
        return _markdown(header, cells)
    if fmt == "text":
        return _aligned(header, cells)
    raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


TEXT_CELL_WIDTH = 60  # long error messages are cut in the terminal view (CSV keeps them)


def _aligned(header: list[str], cells: list[list[str]]) -> str:
    cells = [[_cut(v, TEXT_CELL_WIDTH) for v in row] for row in cells]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _markdown(header: list[str], cells: list[list[str]]) -> str:
    """A small GitHub markdown table writer, so markdown output needs no 'tabulate'."""
    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    out = [line(header), "|" + "|".join("---" for _ in header) + "|"]
    out.extend(line(row) for row in cells)
    return "\n".join(out) + "\n"
