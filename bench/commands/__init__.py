"""Subcommands of `python -m bench`, one module each (see bench.cli)."""

from __future__ import annotations

import argparse


def add_runs_argument(parser: argparse.ArgumentParser) -> None:
    """The run files a reading command takes (bench.store.runfiles.load_runs reads them)."""
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run file (.jsonl), pytest-benchmark JSON, or directory of them")
