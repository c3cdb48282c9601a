"""`python -m bench baseline record RUN [--name N]` and `baseline list`: baselines in ./baselines.

A baseline is a verbatim copy of a run file in baselines/<name>.jsonl (under the working
directory), committed with the code, so `compare` gates against numbers anyone can inspect.
Recording again under the same name refreshes it (only a run file is ever replaced, and only by
a run file without unreadable lines); the file is replaced atomically (temp file, then
os.replace), so an interrupted refresh leaves the old baseline intact and never a half-written
one.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench.store.atomic import write_atomically
from bench.store.paths import BASELINE_DIR, writable_dir
from bench.store.record import Device
from bench.store.runfiles import Run, StoreError, load_run
from reports.compare import run_fingerprint
from reports.table import format_table

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baseline", help="record, refresh or list the baselines `compare` gates against",
        description=__doc__.splitlines()[0],
    )
    parser.set_defaults(func=lambda args: _usage(parser))
    actions = parser.add_subparsers(dest="action")

    record = actions.add_parser("record", help="copy a run file into the baselines folder")
    record.add_argument("run", metavar="RUN", help="the run file (.jsonl) to record")
    record.add_argument("--name", help="baseline name (default: <suite>-<device>, e.g. quick-cpu)")
    record.add_argument("--dir", type=Path, default=BASELINE_DIR,
                        help=f"baselines folder (default: {BASELINE_DIR})")
    record.add_argument("--allow-incomplete", action="store_true",
                        help="record a run that was interrupted (its missing cells become 'new')")
    record.set_defaults(func=run_record)

    listing = actions.add_parser("list", help="list recorded baselines")
    listing.add_argument("--dir", type=Path, default=BASELINE_DIR,
                         help=f"baselines folder (default: {BASELINE_DIR})")
    listing.set_defaults(func=run_list)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_record(args: argparse.Namespace) -> int:
    source = Path(args.run)
    if not source.is_file():
        raise UsageError(f"{source}: no such run file (baseline record takes one .jsonl file)")
    from bench.store.pytest_benchmark_json import is_pytest_benchmark_json

    if is_pytest_benchmark_json(source):
        raise UsageError(f"{source}: is a pytest-benchmark JSON file; a baseline is a copy of a "
                         "run file (.jsonl) written by `python -m bench run`; record one of "
                         "those, or give this file to `bench compare` directly as BASELINE")
    run = _load(source)
    for line in run.problems:
        print(f"warning: {line}", file=sys.stderr)
    if run.problems:
        raise UsageError(f"{source}: {len(run.problems)} unreadable line(s) (above); a baseline "
                         "must be a clean run file")
    if not run.records:
        raise UsageError(f"{source}: the run has no records; nothing to use as a baseline")
    if not run.complete and not args.allow_incomplete:
        raise UsageError(f"{source}: the run is incomplete ({run.end_reason}); "
                         "use --allow-incomplete to record it anyway")
    name = args.name or default_name(run)
    if not _NAME.match(name):
        raise UsageError(f"baseline name {name!r}: use letters, digits, '.', '_' and '-' only")
    target = writable_dir(args.dir, "--dir") / f"{name}.jsonl"
    existed = target.exists()
    if existed:
        _check_replaceable(target)
    write_atomically(target, source.read_bytes())
    cells = len({record.cell.key for record in run.records})
    verb = "refreshed" if existed else "recorded"
    print(f"{verb} baseline {name}: {target} ({cells} cells, {len(run.records)} records, "
          f"run {run.header.run_id})")
    return 0


def _check_replaceable(target: Path) -> None:
    """Refresh only what is a run file: anything else at that name is someone's data."""
    try:
        load_run(target)
    except (StoreError, OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{target}: exists and is not a run file ({exc}); refusing to replace "
                         "it; choose another --name or move the file away") from None
    if target.is_symlink() or not target.is_file():
        raise UsageError(f"{target}: exists and is not a regular file; refusing to replace it")


def default_name(run: Run) -> str:
    """'<suite>-<devices>', e.g. 'quick-cpu': one baseline per suite and kind of machine."""
    devices = sorted({record.cell.device for record in run.records}) or [Device.CPU]
    suite = re.sub(r"[^A-Za-z0-9._-]+", "-", run.header.suite or "run").strip("-.") or "run"
    return f"{suite}-{'-'.join(devices)}"


def run_list(args: argparse.Namespace) -> int:
    files = sorted(Path(args.dir).glob("*.jsonl"))
    if not files:
        print(f"no baselines in {args.dir}")
        return 0
    rows = []
    for path in files:
        try:
            run = load_run(path)
        except (StoreError, OSError) as exc:
            rows.append({"name": path.stem, "suite": "", "run_id": "", "started": "",
                         "cells": None, "machine": "", "note": f"unreadable: {exc}"})
            continue
        rows.append({
            "name": path.stem,
            "suite": run.header.suite,
            "run_id": run.header.run_id,
            "started": run.header.started,
            "cells": len({record.cell.key for record in run.records}),
            "machine": (run_fingerprint(run) or "")[:12],
            "note": "" if run.complete else "incomplete",
        })
    print(format_table(pd.DataFrame(rows), "text"), end="")
    return 0


def _load(path: Path) -> Run:
    try:
        return load_run(path)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read run file ({exc})") from exc
