"""`python -m bench report RUN [RUN ...] [--baseline RUN] [-o report.html]`.

Writes one self-contained HTML file (open it anywhere, no network needed) and the tables
behind it as CSV next to it, named `<stem>_<table>.csv`, so numbers can be re-used without
scraping the page. The report names those files in its last line; a later report to the same
name replaces them, and refuses to replace a CSV there that no report to that name wrote.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.commands import add_runs_argument
from bench.errors import UsageError
from bench.store.atomic import check_replaceable, write_atomically
from bench.store.paths import printable, writable_file
from bench.store.runfiles import Run, load_runs, run_warnings
from reports.csvfile import to_csv
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


def trends_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}_trends.html")


# The last line of every report names the files written beside it, so a later report to the
# same name knows which of the files there are its own to replace.
MARKER = "<!-- bench report; files beside it: "


def own_files(output: Path) -> set[str]:
    """Names of the side files an existing report at `output` says it wrote (none if no report)."""
    try:
        with open(output, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return set()
    line = tail[tail.rfind(MARKER):] if MARKER in tail else ""
    return set(line[len(MARKER):].removesuffix("\n").removesuffix(" -->").split())


def check_outputs(output: Path, what: str, history: bool = False) -> list[Path]:
    """Before any work: the report and every file beside it can be written and are ours to
    replace (not a link, not a run or history, not a CSV some other report or person wrote).
    Returns the side files."""
    side = list(csv_paths(output).values()) + ([trends_path(output)] if history else [])
    writable_file(output, what)
    check_replaceable(output, what)
    own = own_files(output)
    for path in side:
        writable_file(path, what)
        check_replaceable(path, what)
        if (path.exists() or path.is_symlink()) and path.name not in own:
            raise UsageError(f"{what} {output}: {path} exists and was not written by a report "
                             f"to {output.name}; refusing to replace it (move it away or "
                             "choose another name)")
    return side


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"{output}: the report is HTML; give an output name ending in .html")
    check_outputs(output, "-o", history=bool(args.history))
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
    written = write_report(runs, output, baseline, history=args.history)
    print(printable(written[0]))
    print("  beside it: " + ", ".join(printable(p.name) for p in written[1:]))
    return 0


def write_report(runs: Sequence[Run], output: Path, baseline: Sequence[Run] | None = None,
                 history: str | None = None) -> list[Path]:
    """Write the HTML report, then its CSV tables (and trends page), each atomically; return
    the paths written, the HTML first. The HTML's last line names the side files."""
    from reports.report import build_report  # matplotlib is slow to import; only when needed

    paths = csv_paths(output)
    from reports.ab import find_pairs

    wanted = {"baseline": bool(baseline), "ab": bool(find_pairs(runs))}
    names = [p.name for n, p in paths.items() if wanted.get(n, True)]
    trends_html = None
    if history:
        from reports.trends import render_history

        trends_html = render_history(history)
    report = build_report(runs, baseline, names, trends_path(output).name if history else None)
    side = [paths[name] for name in report.tables] + ([trends_path(output)] if history else [])
    marker = MARKER + " ".join(p.name for p in side) + " -->\n"
    written = [write_atomically(output, report.html + "\n" + marker)]
    for name, table in report.tables.items():
        written.append(write_atomically(paths[name], to_csv(table)))
    if trends_html is not None:
        written.append(write_atomically(trends_path(output), trends_html))
    return written


def write_run_report(runs: Sequence[Run], output: Path) -> Path | None:
    """`run --report`: the report of a finished run, or None and one line on stderr when it
    cannot be written: the run itself is kept and its exit code is the run's, not the report's."""
    try:
        return write_report(runs, output)[0]
    except (OSError, UnicodeError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = getattr(exc, "filename", None) or output
        print(f"warning: the report could not be written ({printable(where)}: {why}); the run "
              "itself is complete and kept", file=sys.stderr)
        return None
