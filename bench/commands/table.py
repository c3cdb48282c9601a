"""`python -m bench table RUN [RUN ...]`: the flat per-cell table, in a terminal or as CSV.

The quickest look at a run without building the HTML report. Problems in the run files
(skipped lines, interrupted runs) go to stderr so stdout stays a clean table to pipe.
"""

from __future__ import annotations

import argparse
import sys

from bench.commands import add_runs_argument
from bench.store.runfiles import load_runs, run_warnings
from reports.table import (
    FORMATS,
    default_columns,
    format_table,
    load_warnings,
    printable_columns,
    records_frame,
    select_columns,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "table", help="print one row per cell (rounds pooled) from run files",
        description=__doc__.splitlines()[0],
    )
    add_runs_argument(parser)
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="output format (default: text)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--columns", metavar="A,B,C",
                       help="comma-separated columns to print, in this order")
    which.add_argument("--all-columns", action="store_true",
                       help="print every column (default: a concise selection)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    runs = load_runs(args.runs)
    for line in run_warnings(runs):
        print(f"warning: {line}", file=sys.stderr)
    frame = records_frame(runs)
    for line in load_warnings(frame):
        print(f"warning: {line}", file=sys.stderr)
    if args.columns:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    elif args.all_columns:
        columns = printable_columns(frame)
    else:
        columns = default_columns(frame)
    sys.stdout.write(format_table(select_columns(frame, columns), args.format))
    return 0
