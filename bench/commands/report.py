"""`python -m bench report RUN [RUN ...] [--baseline RUN] [-o report.html]`.

Writes one self-contained HTML file (open it anywhere, no network needed) and the tables
behind it as CSV next to it, named `<stem>_<table>.csv`, so numbers can be re-used without
scraping the page.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.commands import add_runs_argument
from bench.errors import UsageError
from bench.paths import writable_file
from bench.store import Run, load_runs, run_warnings
from reports.history import HistoryError, check_history_file

TABLES = ("cells", "modes", "break_even", "scorecard", "baseline", "time", "ab")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write a self-contained HTML report (plus CSV tables) from run files",
        description=__doc__.splitlines()[0],
    )
    add_runs_argument(parser)
    parser.add_argument("--baseline", action="append", metavar="RUN", default=[],
                        help="baseline run file or directory to compare against (repeatable)")
    parser.add_argument("-o", "--output", default="report.html", metavar="FILE",
                        help="HTML file to write (default: report.html in this directory)")
    parser.add_argument("--history", metavar="FILE",
                        help="history file (bench history append): also write a trends page "
                             "'<stem>_trends.html' next to the report and link it")
    parser.set_defaults(func=run)


def csv_paths(output: Path) -> dict[str, Path]:
    """Where each table goes: next to the HTML, '<stem>_<table>.csv'."""
    return {name: output.with_name(f"{output.stem}_{name}.csv") for name in TABLES}


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"{output}: the report is HTML; give an output name ending in .html")
    writable_file(output, "-o")
    for path in csv_paths(output).values():
        writable_file(path, "-o")
    if args.history and not Path(args.history).is_file():
        raise UsageError(f"--history {args.history}: no such history file")
    if args.history:
        try:
            check_history_file(args.history)
        except HistoryError as exc:
            raise UsageError(f"--history {exc}") from None
    runs = load_runs(args.runs)
    baseline = load_runs(args.baseline) if args.baseline else None
    for line in run_warnings(runs + (baseline or [])):
        print(f"warning: {line}", file=sys.stderr)
    print(write_report(runs, output, baseline, history=args.history))
    return 0


def write_report(runs: Sequence[Run], output: Path, baseline: Sequence[Run] | None = None,
                 history: str | None = None) -> Path:
    """Write the HTML report and its CSV tables (and trends page); return the HTML path."""
    from reports.report import build_report  # matplotlib is slow to import; only when needed

    paths = csv_paths(output)
    from reports.ab import find_pairs

    wanted = {"baseline": bool(baseline), "ab": bool(find_pairs(runs))}
    names = [p.name for n, p in paths.items() if wanted.get(n, True)]
    trends_name = None
    if history:
        from reports.trends import write_trends

        trends_name = write_trends(history, output.with_name(f"{output.stem}_trends.html")).name
    report = build_report(runs, baseline, names, trends_name)
    output.write_text(report.html, encoding="utf-8")
    for name, table in report.tables.items():
        table.to_csv(paths[name], index=False)
    return output
