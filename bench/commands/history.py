"""`python -m bench history append RUN` and `history report`: trends over commits.

`append` adds one run's per-cell summary (a run file, or pytest-benchmark JSON) to the
append-only history file (a run already there is skipped, so re-running a CI step is harmless;
a file that is not a history is refused, see reports/history.py); `report` writes the trends page.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import options
from bench.errors import UsageError
from bench.store.atomic import check_replaceable
from bench.store.paths import DEFAULT_HISTORY, writable_file
from bench.store.runfiles import StoreError, load_run
from reports.history import HistoryError, append_run, check_history_file


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history", help="append runs to the history and draw trends over commits",
        description=__doc__.splitlines()[0],
    )
    parser.set_defaults(func=lambda args: _usage(parser))
    actions = parser.add_subparsers(dest="action")

    append = actions.add_parser("append", help="append a run's per-cell summary")
    append.add_argument("run", metavar="RUN",
                        help="the run file (.jsonl) or pytest-benchmark JSON")
    append.add_argument("--history", type=Path, default=DEFAULT_HISTORY,
                        help=f"history file (default: {DEFAULT_HISTORY})")
    append.add_argument("--commit", help="commit the run measured (default: from its header)")
    append.set_defaults(func=run_append)

    report = actions.add_parser("report", help="write the trends HTML page")
    report.add_argument("--history", type=Path, default=DEFAULT_HISTORY,
                        help=f"history file (default: {DEFAULT_HISTORY})")
    report.add_argument("-o", "--output", type=Path, default=Path("trends.html"),
                        help="page to write (default: trends.html)")
    report.add_argument("--threshold", type=options.fraction, default=0.05,
                        help="smallest relative shift that is a step (default: 0.05)")
    report.add_argument("--alpha", type=options.fraction, default=0.05,
                        help="significance level of a step (default: 0.05)")
    report.set_defaults(func=run_report)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_append(args: argparse.Namespace) -> int:
    writable_file(args.history, "--history")
    if args.history.is_symlink():
        raise UsageError(f"--history {args.history}: is a symbolic link; give the history "
                         "file itself")
    try:
        check_history_file(args.history)  # before anything: never append to a non-history
    except HistoryError as exc:
        raise UsageError(str(exc)) from exc
    from bench.store.pytest_benchmark_json import is_pytest_benchmark_json, load_pytest_benchmark

    try:
        if is_pytest_benchmark_json(args.run):  # `pytest bench/ --benchmark-json`: a run too
            run = load_pytest_benchmark(args.run)
        else:
            run = load_run(args.run)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{args.run}: cannot read run file ({exc})") from exc
    for line in run.problems:
        print(f"warning: {line}", file=sys.stderr)
    if not run.records:
        raise UsageError(f"{args.run}: the run has no records")
    try:
        added = append_run(run, args.history, args.commit)
    except HistoryError as exc:
        raise UsageError(str(exc)) from exc
    if added:
        print(f"appended {added} cells of run {run.header.run_id} to {args.history}")
    else:
        print(f"run {run.header.run_id} is already in {args.history}; nothing appended")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from reports.trends import write_trends  # lazy: matplotlib only when a page is drawn

    if not 0 < args.threshold < 1 or not 0 < args.alpha < 1:
        raise UsageError("--threshold and --alpha must be between 0 and 1")
    if args.output.suffix.lower() not in (".html", ".htm"):  # never over a run or history file
        raise UsageError(f"-o {args.output}: the trends page is HTML; give a name ending in .html")
    writable_file(args.output, "-o")
    check_replaceable(args.output, "-o")
    try:
        out = write_trends(args.history, args.output, args.threshold, args.alpha)
    except HistoryError as exc:
        raise UsageError(str(exc)) from exc
    print(f"wrote {out}")
    return 0
