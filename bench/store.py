"""Append-only JSON-lines result files: one file per run, written as the run goes.

Layout of a run file (one JSON object per line):

    {"kind": "header", "schema": 1, "run_id": ..., "suite": ..., "machine": {...}, ...}
    {"kind": "record", ...}           one per measured cell and round, flushed at once
    {"kind": "footer", "complete": true|false, "finished": ..., "reason": ...}

A run killed hard has no footer and loads as incomplete. Nothing is ever rewritten in place:
a writer refuses an existing file. Loading is forgiving where it can be: a corrupt or truncated
line is reported with file and line number and every readable record is still returned.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.record import SCHEMA_VERSION, Record, SchemaError


class StoreError(ValueError):
    """A results file that cannot be used at all (missing, empty, not a run)."""


@dataclass
class RunHeader:
    run_id: str
    suite: str
    started: str  # ISO 8601, UTC
    machine: dict[str, Any] = field(default_factory=dict)  # bench.machine facts
    options: dict[str, Any] = field(default_factory=dict)  # the run's settings
    # peak_key(device, threads) -> measured FLOP/s; a footer may hold a second measurement
    # (taken at the end of the run) and loading keeps the better of the two.
    peak_flops: dict[str, float] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION


def peak_key(device: str, threads: str) -> str:
    """Where a (device, threads) profile's peak FLOP/s is kept: 'cpu/t1', 'cpu/tall'."""
    return f"{device}/t{threads}"


def peak_for(peaks: dict[str, float], device: str, threads: str) -> float | None:
    """The peak a cell is divided by: its own profile's, or (older runs) the device's."""
    return peaks.get(peak_key(device, threads)) or peaks.get(device)


@dataclass
class Run:
    header: RunHeader
    records: list[Record]
    complete: bool
    path: str = ""
    end_reason: str = ""
    problems: list[str] = field(default_factory=list)  # "file:line: what is wrong"
    finished: str = ""  # ISO 8601 from the footer; "" when the run never finished


class RunWriter:
    """Writes one run file, flushing and fsyncing after every line."""

    def __init__(self, path: str | os.PathLike, header: RunHeader):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # "x": never overwrite an earlier run.
        self._file = open(self.path, "x", encoding="utf-8")  # noqa: SIM115
        self._write({"kind": "header", **header.__dict__})
        self._closed = False

    def _write(self, obj: dict[str, Any]) -> None:
        self._file.write(json.dumps(obj, allow_nan=False, default=_jsonable) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def append(self, record: Record) -> None:
        self._write(record.to_json())

    def close(self, complete: bool, reason: str = "", finished: str = "",
              peak_flops: dict[str, float] | None = None) -> None:
        if self._closed:
            return
        footer = {"kind": "footer", "complete": complete, "reason": reason, "finished": finished}
        if peak_flops:
            footer["peak_flops"] = peak_flops
        self._write(footer)
        self._file.close()
        self._closed = True


def _jsonable(value: Any) -> Any:
    """Numpy scalars and the like sneak into records; store them as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_run(path: str | os.PathLike) -> Run:
    """Load a run file; raise StoreError only when nothing usable is in it."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such results file")
    header: RunHeader | None = None
    records: list[Record] = []
    problems: list[str] = []
    complete, end_reason = False, "no footer: the run was interrupted or is still running"
    finished = ""
    end_peaks: dict[str, float] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{number}: not valid JSON ({exc.msg}); line skipped")
                continue
            kind = obj.get("kind") if isinstance(obj, dict) else None
            try:
                if kind == "header" and number == 1:
                    header = _parse_header(obj)
                elif kind == "record":
                    records.append(Record.from_json(obj))
                elif kind == "footer":
                    complete = bool(obj.get("complete"))
                    end_reason = str(obj.get("reason", ""))
                    finished = str(obj.get("finished", ""))
                    end_peaks = obj.get("peak_flops") or {}
                else:
                    raise SchemaError(f"unexpected line kind {kind!r}")
            except (SchemaError, TypeError, KeyError) as exc:
                problems.append(f"{path}:{number}: {exc}; line skipped")
    if header is None:
        raise StoreError(f"{path}:1: not a results file (no valid header line)"
                         + (f"; {problems[0]}" if problems else ""))
    for key, value in end_peaks.items() if isinstance(end_peaks, dict) else ():
        if isinstance(value, (int, float)) and value > header.peak_flops.get(key, 0):
            header.peak_flops[key] = float(value)  # the better of the start and end calibration
    return Run(header, records, complete, str(path), end_reason, problems, finished)


def _parse_header(obj: dict[str, Any]) -> RunHeader:
    if obj.get("schema") != SCHEMA_VERSION:
        raise SchemaError(f"unsupported schema version {obj.get('schema')!r}")
    fields = set(RunHeader.__dataclass_fields__)
    try:
        return RunHeader(**{k: v for k, v in obj.items() if k in fields})
    except TypeError as exc:
        raise SchemaError(f"bad header: {exc}") from exc
