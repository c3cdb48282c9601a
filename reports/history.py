"""History over commits: one JSON line per cell per run, appended, never rewritten.

Run files are kept or thrown away; the history keeps only what a trend needs: per cell the
throughput with its CI and the speed-up over eager with its CI and source (reports.speedup),
plus the per-round (per-worker) values so a step between commits can be tested on more than
one number per run. Each line also carries the commit, the run's date and the machine
fingerprint (absolute throughput is only comparable within one machine, so trends are series
per (machine, cell)).

A history file is recognised by its lines: every line is a JSON object with
`"kind": "history"`. A file whose first line is anything else (a run file, a report, any text)
is refused by both `append_run` and `load_history`, so appending never writes into a file that
is not a history. A line cut short at the end (an interrupted append) is skipped, not refused.
Appends are serialised by a lock on the file, and loading keeps one entry per (run, cell), so
a run is never counted twice.

Step detection (`detect_steps`) is deliberately simple and documented there.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.stats.samples import mann_whitney_u, summarize
from bench.store.paths import DEFAULT_HISTORY
from bench.store.runfiles import Run, append_whole
from reports.pool import PooledCell, pool_cells
from reports.speedup import REFERENCE, UNPAIRED, eager_key, speedup_over_eager

HISTORY_SCHEMA = 1
UNKNOWN_COMMIT = "unknown"


class HistoryError(ValueError):
    """A history file that cannot be used (missing, or not a history file at all)."""


@dataclass
class HistoryEntry:
    """One cell of one run, as the trends page needs it. None where the cell had no timing."""

    commit: str
    date: str  # when the run started, ISO 8601
    fingerprint: str  # opaque machine fingerprint, "" when the run had none
    run_id: str
    suite: str
    key: str
    mode: str
    status: str
    images_per_s: float | None = None
    ips_ci_low: float | None = None
    ips_ci_high: float | None = None
    speedup: float | None = None  # over eager, same run (reports.speedup); None for eager
    speedup_ci_low: float | None = None
    speedup_ci_high: float | None = None
    speedup_source: str = ""  # paired | separate workers (reports.speedup); "" without one
    round_ips: list[float] = field(default_factory=list)
    # One speed-up per worker (paired) or per round (separate workers): the step tests' points.
    round_speedups: list[float] = field(default_factory=list)
    schema: int = HISTORY_SCHEMA

    def to_json(self) -> dict[str, Any]:
        # JSON has no inf/NaN (a zero step time gives an infinite throughput): store null.
        data = {k: _json_safe(v) for k, v in asdict(self).items()}
        return {"kind": "history", **data}

    @classmethod
    def from_json(cls, data: Any) -> HistoryEntry:
        if not isinstance(data, dict) or data.get("kind") != "history":
            raise HistoryError("not a history line")
        if data.get("schema") != HISTORY_SCHEMA:
            raise HistoryError(f"unsupported history schema {data.get('schema')!r}")
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as exc:
            raise HistoryError(f"bad history line: {exc}") from exc


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [v for v in value if not (isinstance(v, float) and not math.isfinite(v))]
    return value


@dataclass
class History:
    entries: list[HistoryEntry]
    problems: list[str] = field(default_factory=list)  # "file:line: what is wrong"


# --------------------------------------------------------------------------- run -> entries


def run_commit(run: Run) -> str:
    """The commit a run measured, wherever the header keeps it; 'unknown' when it does not."""
    for facts in (run.header.machine or {}, run.header.options or {}):
        for name in ("git", "commit", "git_commit", "revision"):
            value = facts.get(name)
            if isinstance(value, dict):
                value = value.get("commit") or value.get("sha") or value.get("revision")
            if isinstance(value, str) and value:
                return value
    return UNKNOWN_COMMIT


def summarize_run(run: Run, commit: str | None = None) -> list[HistoryEntry]:
    """The history entries of one run: one per cell, rounds pooled."""
    commit = commit or run_commit(run)
    fingerprint = str((run.header.machine or {}).get("fingerprint") or "")
    cells = pool_cells([run])
    return [_entry(cell, cells.get(eager_key(cell.cell)), commit, fingerprint, run)
            for cell in cells.values()]


def _entry(cell: PooledCell, eager: PooledCell | None, commit: str, fingerprint: str,
           run: Run) -> HistoryEntry:
    entry = HistoryEntry(commit=commit, date=run.header.started, fingerprint=fingerprint,
                         run_id=run.header.run_id, suite=run.header.suite, key=cell.cell.key,
                         mode=cell.cell.mode, status=cell.status)
    samples = cell.samples
    if not cell.ok or not len(samples):
        return entry
    stats = summarize(samples, cell.images_per_step)
    entry.images_per_s, entry.ips_ci_low, entry.ips_ci_high = (
        stats.images_per_s, stats.ips_ci_low, stats.ips_ci_high)
    entry.round_ips = [cell.images_per_s(cell.round_samples[r])
                       for r in sorted(cell.round_samples)]
    speedup = speedup_over_eager(cell, eager)
    if speedup is None or speedup.source == REFERENCE:
        return entry
    entry.speedup, entry.speedup_source = speedup.value, speedup.source
    entry.speedup_ci_low, entry.speedup_ci_high = _finite_or_none(speedup.low, speedup.high)
    entry.round_speedups = list(speedup.samples)
    return entry


def _finite_or_none(*values: float) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


# --------------------------------------------------------------------------- the file


def append_run(run: Run, path: str | os.PathLike = DEFAULT_HISTORY,
               commit: str | None = None) -> int:
    """Append a run's entries; returns how many. A run already in the history is not added
    twice (0 is returned), so re-running a CI step is harmless.

    The check and the append happen under an exclusive lock on the file (fcntl.flock), so two
    appends of the same run at once (two CI jobs) add it once; the file is opened without
    following a symbolic link.
    """
    path = Path(path)
    check_history_file(path)
    entries = summarize_run(run, commit)
    lines = "".join(json.dumps(e.to_json(), allow_nan=False, default=_plain) + "\n"
                    for e in entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes
        check_history_file(path)  # again, under the lock: what is there now
        run_id = run.header.run_id
        if run_id and any(e.run_id == run_id for e in load_history(path).entries):
            return 0
        # One write, or none: a full disk leaves the history as it was.
        append_whole(fd, lines.encode("utf-8"), os.fstat(fd).st_size, path)
    finally:
        os.close(fd)
    return len(entries)


def check_history_file(path: str | os.PathLike) -> None:
    """Raise HistoryError unless `path` is missing, empty, or starts with a history line."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise HistoryError(f"{path}: is not a file; give a history file (.jsonl)")
    if not path.is_file():
        return
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            first = next((line for line in f if line.strip()), "")
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read the history file ({exc.strerror})") from exc
    if not first:
        return
    try:
        data = json.loads(first)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("kind") != "history":
        what = "a run file" if isinstance(data, dict) and data.get("kind") == "header" else \
            "not a history file"
        raise HistoryError(f"{path}: {what} (its first line is not a history line); give a "
                           "history file written by `bench history append` or a new path")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_history(path: str | os.PathLike = DEFAULT_HISTORY) -> History:
    """Read a history file; unreadable lines (e.g. a write cut short) are skipped and listed."""
    path = Path(path)
    if not path.is_file():
        raise HistoryError(f"{path}: no such history file")
    check_history_file(path)
    entries: list[HistoryEntry] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}  # (run id, cell) -> line first holding it
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                entry = HistoryEntry.from_json(json.loads(line))
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{number}: not valid JSON ({exc.msg}); line skipped")
                continue
            except HistoryError as exc:
                problems.append(f"{path}:{number}: {exc}; line skipped")
                continue
            key = (entry.run_id, entry.key)
            if entry.run_id and key in seen:  # an older suite appended a run twice
                problems.append(f"{path}:{number}: run {entry.run_id} cell {entry.key} is "
                                f"already on line {seen[key]}; duplicate skipped")
                continue
            seen[key] = number
            entries.append(entry)
    return History(entries, problems)


def history_frame(entries: Sequence[HistoryEntry]) -> pd.DataFrame:
    """Entries as a table, oldest run first (stable for runs with the same date)."""
    frame = pd.DataFrame([asdict(e) for e in entries],
                         columns=[f.name for f in fields(HistoryEntry)])
    return frame.sort_values("date", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Step:
    """A detected shift: the series moved from `before` to `after` at point `index`."""

    index: int  # first point after the step
    before: float  # median of the window before
    after: float  # median of the window after
    change: float  # after / before - 1
    p_value: float


def detect_steps(points: Sequence[Sequence[float]], threshold: float = 0.05,
                 alpha: float = 0.05, window: int = 4) -> list[Step]:
    """Steps in a series whose points are each a few values (one run's per-round numbers).

    The rule: at every boundary between point i-1 and i, pool the values of up to `window`
    points on each side. It is a step when the medians differ by more than `threshold`
    (relative to the side before) *and* Mann-Whitney says the two windows differ (p < alpha):
    the same threshold-plus-significance rule as the regression gate, so one noisy run is not
    a step. A real step also shifts the windows of its neighbouring boundaries (the median is
    robust, so by almost as much), so of candidates closer than `window` points only the one
    whose windows are best separated (smallest p, then largest shift) is kept. A step at the very
    end needs enough points after it to be significant: 4 single-value runs at the default
    alpha, fewer when runs have several rounds.
    """
    candidates: list[Step] = []
    for i in range(1, len(points)):
        before = _pooled(points[max(0, i - window):i])
        after = _pooled(points[i:i + window])
        if not len(before) or not len(after):
            continue
        low, high = float(np.median(before)), float(np.median(after))
        if not low > 0:
            continue
        change = high / low - 1.0
        if abs(change) <= threshold:
            continue
        p_value = mann_whitney_u(before, after)
        if p_value < alpha:
            candidates.append(Step(i, low, high, change, p_value))
    steps: list[Step] = []
    for step in candidates:
        if steps and step.index - steps[-1].index < window:
            if _strength(step) > _strength(steps[-1]):
                steps[-1] = step
            continue
        steps.append(step)
    return steps


def _pooled(points: Sequence[Sequence[float]]) -> np.ndarray:
    values = [v for point in points for v in point if v is not None and math.isfinite(v)]
    return np.asarray(values, dtype=float)


def _strength(step: Step) -> tuple[float, float]:
    return -step.p_value, abs(math.log1p(step.change))


@dataclass
class Series:
    """One metric of one cell on one machine, oldest first, with the steps found in it."""

    key: str
    fingerprint: str
    metric: str  # "images_per_s" | "speedup"
    entries: list[HistoryEntry]
    steps: list[Step]
    source: str = ""  # speed-up series: the measurement (reports.speedup), one per series

    @property
    def values(self) -> list[float]:
        return [getattr(e, self.metric) for e in self.entries]


METRIC_ROUNDS = {"images_per_s": "round_ips", "speedup": "round_speedups"}


def series(entries: Sequence[HistoryEntry], metric: str = "images_per_s",
           threshold: float = 0.05, alpha: float = 0.05, window: int = 4) -> list[Series]:
    """Split the history into per-(cell, machine) series of one metric and find their steps.

    Entries without the metric (failed cells, eager's speed-up) are left out of the series.
    Speed-ups are also split by their source: paired and separate-workers speed-ups of one
    cell differ by the machine's drift between workers, so a switch between them is not a step.
    """
    if metric not in METRIC_ROUNDS:
        raise ValueError(f"metric must be one of {', '.join(METRIC_ROUNDS)}, got {metric!r}")
    ordered = sorted(entries, key=lambda e: e.date)  # stable: append order breaks ties
    grouped: dict[tuple[str, str, str], list[HistoryEntry]] = {}
    for entry in ordered:
        if getattr(entry, metric) is not None:
            source = _speedup_source(entry) if metric == "speedup" else ""
            grouped.setdefault((entry.key, entry.fingerprint, source), []).append(entry)
    out = []
    for (key, fingerprint, source), items in grouped.items():
        points = [getattr(e, METRIC_ROUNDS[metric]) or [getattr(e, metric)] for e in items]
        out.append(Series(key, fingerprint, metric, items,
                          detect_steps(points, threshold, alpha, window), source))
    return out


def _speedup_source(entry: HistoryEntry) -> str:
    """Lines written before the source was recorded held the separate-workers ratio."""
    return entry.speedup_source or UNPAIRED
