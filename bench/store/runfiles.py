"""Append-only JSON-lines result files: one file per run, written as the run goes.

Layout of a run file (one JSON object per line):

    {"kind": "header", "schema": 2, "run_id": ..., "suite": ..., "machine": {...}, ...}
    {"kind": "record", ...}           one per measured cell and round, flushed at once
    {"kind": "footer", "complete": true|false, "finished": ..., "reason": ...}

A run killed hard has no footer and loads as incomplete. Nothing is ever rewritten in place:
a run's file is claimed atomically when the run starts (`claim_run_file`), and a writer accepts
only that claimed, still empty file. Each line goes out in one `os.write`; a short or failed
write (disk full) is cut back to the last complete line, so earlier records stay readable.
Loading is forgiving where it can be: a corrupt, truncated or mistyped line is reported with
file and line number and every readable record is still returned. A file of an older schema
version loads through bench.store.record's loaders (RECORD_LOADERS, HEADER_LOADERS).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import math
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.errors import StoreError, UsageError
from bench.store.pytest_benchmark_json import is_pytest_benchmark_json, load_pytest_benchmark
from bench.store.record import HEADER_LOADERS, Record, Run, RunHeader, SchemaError, upgrade

__all__ = ["Run", "RunHeader", "StoreError", "RunWriter", "load_run", "load_runs"]


class StoreWriteError(OSError):
    """A line could not be written (disk full, I/O error); the file ends at the last whole line."""


class RunFileGone(StoreWriteError):
    """The run file or its folder was deleted (or moved) while the run was writing it."""


def run_stem(name: str) -> str:
    """A run file's name without suffix: `<suite or command>-YYYYmmdd-HHMMSS`, local time
    (what the user sees in the folder); `claim_run_file` adds `-2`... on a clash."""
    return f"{name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def new_run_id() -> str:
    """A run's id, recorded in its header and every record: UTC start time and six random
    hex digits, so runs started in the same second on different machines stay apart."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def claim_run_file(directory: str | os.PathLike, stem: str, suffix: str = ".jsonl") -> Path:
    """Create `directory/stem.jsonl` exclusively (O_EXCL) and return it, empty.

    Two runs started in the same second both get a file of their own: on a clash the next
    name `stem-2`, `stem-3`, ... is tried. The claim happens before any work, so nothing a run
    measures can be lost to a name taken meanwhile.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = directory / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{directory}: no free run file name for {stem}")


def release_claim(path: str | os.PathLike) -> bool:
    """Remove a claimed run file that is still empty (nothing measured); True if removed.

    Its log folder (`<stem>_logs/`, see `log_dir`) goes too when it holds nothing but empty
    files; a log with something in it (a failed calibration's traceback) is kept.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            path.unlink()
            _remove_if_empty(log_dir(path))
            return True
    except OSError:
        pass
    return False


def log_dir(run_path: str | os.PathLike) -> Path:
    """Where a run's worker logs go: `<run file stem>_logs/` beside the run file."""
    run_path = Path(run_path)
    return run_path.with_name(run_path.stem + "_logs")


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        files = list(folder.iterdir())
        if all(f.is_file() and not f.is_symlink() and f.stat().st_size == 0 for f in files):
            for f in files:
                f.unlink()
            folder.rmdir()


def peak_key(device: str, threads: str) -> str:
    """Where a (device, threads) profile's peak FLOP/s is kept: 'cpu/t1', 'cpu/tall'."""
    return f"{device}/t{threads}"


def peak_for(peaks: dict[str, float], device: str, threads: str) -> float | None:
    """The peak a cell is divided by: its own profile's, or (older runs) the device's."""
    return peaks.get(peak_key(device, threads)) or peaks.get(device)


class RunWriter:
    """Writes one run file, one `os.write` and fsync per line.

    The file must be new or a claimed, still empty file (`claim_run_file`); anything with
    content is refused, so an earlier run is never overwritten. A failed or short write raises
    StoreWriteError after truncating the file back to its last complete line.
    """

    def __init__(self, path: str | os.PathLike, header: RunHeader):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._closed = False
        if os.fstat(self._fd).st_size:
            os.close(self._fd)
            self._closed = True
            raise FileExistsError(f"{self.path}: already holds data; a run never overwrites one")
        self._size = 0
        try:
            self._write({"kind": "header", **header.__dict__})
        except BaseException:
            os.close(self._fd)
            self._closed = True
            raise

    def _write(self, obj: dict[str, Any]) -> None:
        data = (json.dumps(obj, allow_nan=False, default=_jsonable) + "\n").encode("utf-8")
        append_whole(self._fd, data, self._size, self.path)
        self._size += len(data)

    def append(self, record: Record) -> None:
        self.check_present()
        self._write(record.to_json())

    def check_present(self) -> None:
        """Raise RunFileGone when the run file (or its folder) was deleted or moved: writing on
        into an unlinked file would record every later cell into nothing."""
        try:
            here = os.stat(self.path)
            gone = not os.path.samestat(here, os.fstat(self._fd))
        except OSError:
            gone = True
        if gone:
            what = (f"results folder {self.path.parent}" if not self.path.parent.is_dir()
                    else f"run file {self.path}")
            raise RunFileGone(errno.ENOENT, f"the {what} disappeared during the run; the run "
                                            "stopped (its records went with it)")

    def close(self, complete: bool, reason: str = "", finished: str = "",
              peak_flops: dict[str, float] | None = None, elapsed_s: float | None = None) -> None:
        if self._closed:
            return
        footer = {"kind": "footer", "complete": complete, "reason": reason, "finished": finished}
        if peak_flops:
            footer["peak_flops"] = peak_flops
        if elapsed_s is not None:
            footer["elapsed_s"] = elapsed_s  # from the first cell's start (the ETA's clock)
        try:
            if complete:
                self.check_present()  # a complete footer must not hide a vanished file
            self._write(footer)
        finally:
            os.close(self._fd)
            self._closed = True


def append_whole(fd: int, data: bytes, size: int, path: Path) -> None:
    """Append `data` to a file of `size` bytes in one write, fsynced, or not at all.

    On a failed or short write (disk full, I/O error) the file is cut back to `size`, so it
    still ends with a complete line, and StoreWriteError says what happened.
    """
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")
        os.fsync(fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise StoreWriteError(exc.errno, f"cannot write to {path}: "
                                         f"{exc.strerror or exc}") from exc


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
    elapsed_s: float | None = None
    end_peaks: dict[str, float] = {}
    # utf-8-sig: a byte-order mark (some Windows editors add one) is not part of the header.
    with open(path, encoding="utf-8-sig", errors="replace") as f:
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
                    value = obj.get("elapsed_s")
                    if isinstance(value, (int, float)) and not isinstance(value, bool) \
                            and math.isfinite(value) and value >= 0:
                        elapsed_s = float(value)
                else:
                    raise SchemaError(f"unexpected line kind {kind!r}")
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                problems.append(f"{path}:{number}: {exc}; line skipped")
    if header is None:
        raise StoreError(f"{path}:1: not a results file (no valid header line)"
                         + (f"; {problems[0]}" if problems else ""))
    for key, value in end_peaks.items() if isinstance(end_peaks, dict) else ():
        if isinstance(value, (int, float)) and value > header.peak_flops.get(key, 0):
            header.peak_flops[key] = float(value)  # the better of the start and end calibration
    return Run(header, records, complete, str(path), end_reason, problems, finished, elapsed_s)


_HEADER_TYPES = {"run_id": str, "suite": str, "started": str, "machine": dict,
                 "options": dict, "peak_flops": dict}


def _parse_header(obj: dict[str, Any]) -> RunHeader:
    obj = upgrade(obj, HEADER_LOADERS, "header")  # an older run file reads as the current schema
    for name, kind in _HEADER_TYPES.items():
        if name in obj and not isinstance(obj[name], kind):
            what = "an object" if kind is dict else "a string"
            raise SchemaError(f"bad header: {name} must be {what}, got {obj[name]!r:.60}")
    for device, value in (obj.get("peak_flops") or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise SchemaError(f"bad header: peak_flops[{device!r}] must be a non-negative number")
    fields = set(RunHeader.__dataclass_fields__)
    try:
        return RunHeader(**{k: v for k, v in obj.items() if k in fields})
    except TypeError as exc:
        raise SchemaError(f"bad header: {exc}") from exc


# --------------------------------------------------------------------------- loading


def load_runs(paths: Iterable[str | os.PathLike]) -> list[Run]:
    """Load run files and directories of run files; one clear UsageError for unusable input.

    A file with a few corrupt lines still loads (its `problems` list says which lines were
    skipped, for the caller to print as warnings); only a file with no readable header, a
    missing path or an empty directory is an error.
    """
    runs: list[Run] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = _run_files_in(path)
            if not files:
                raise UsageError(f"{path}: directory contains no run files (*.jsonl)")
        elif path.exists():
            files = [path]
        else:
            raise UsageError(f"{path}: no such file or directory")
        runs.extend(_load_one(file) for file in files)
    if not runs:
        raise UsageError("no run files given")
    return _unique(runs)


def _unique(runs: list[Run]) -> list[Run]:
    """One copy of each run: the same run given twice (or a copy of it, such as a baseline)
    would count every cell twice. The dropped copy is named in the kept run's problems."""
    kept: dict[str, Run] = {}
    unique: list[Run] = []
    for run in runs:
        first = kept.get(run.header.run_id) if run.header.run_id else None
        if first is None:
            kept[run.header.run_id] = run
            unique.append(run)
        else:
            first.problems.append(f"{run.path}: run {run.header.run_id} was already given "
                                  f"({first.path}); loaded once")
    return unique


def _run_files_in(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl")) + [
        p for p in sorted(directory.glob("*.json")) if is_pytest_benchmark_json(p)]


def _load_one(path: Path) -> Run:
    try:
        if is_pytest_benchmark_json(path):
            return load_pytest_benchmark(path)
        return load_run(path)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read results file ({exc})") from exc


def run_warnings(runs: Sequence[Run]) -> list[str]:
    """Load problems and incomplete runs, one line each, for stderr or the report's warning box."""
    lines: list[str] = []
    for run in runs:
        name = run.path or run.header.run_id
        lines.extend(run.problems)
        if not run.complete:
            lines.append(f"{name}: run is incomplete ({run.end_reason or 'no reason given'})")
    return lines
