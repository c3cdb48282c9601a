"""`python -m bench compare BASELINE CURRENT`: the regression gate for CI.

Prints one row per cell and metric, then what regressed. Exit code 0 when nothing regressed,
1 when something did, 2 for unusable input (including two runs with no cell in common).
BASELINE and CURRENT are run files (.jsonl), directories of them, or (BASELINE only) the name of
a recorded baseline in ./baselines.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from bench import options
from bench.errors import UsageError
from bench.store.paths import BASELINE_DIR
from bench.store.runfiles import Run, load_runs, run_warnings
from reports.compare import (
    FAILING_VERDICTS,
    SPEED_METRICS,
    CompareResult,
    CompareVerdict,
    compare_runs,
    format_value,
)
from reports.table import format_table

ABSOLUTE = {"auto": None, "always": True, "never": False}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare a run with a baseline; exit 1 on a regression",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("baseline", metavar="BASELINE",
                        help="run file, directory of run files, or recorded baseline name")
    parser.add_argument("current", metavar="CURRENT", help="run file or directory of run files")
    parser.add_argument("--threshold", type=options.fraction, default=0.05,
                        help="smallest relative change that counts (default: 0.05 = 5%%)")
    parser.add_argument("--alpha", type=options.fraction, default=0.01,
                        help="significance level of the tests (default: 0.01)")
    parser.add_argument("--absolute", choices=list(ABSOLUTE), default="auto",
                        help="gate absolute throughput: auto = only when the machine "
                             "fingerprints match (default)")
    parser.add_argument("--format", choices=("text", "markdown"), default="text",
                        help="table format (default: text; markdown for PR comments)")
    parser.add_argument("--all", action="store_true",
                        help="also list exact metrics that did not change")
    parser.add_argument("--baselines", type=Path, default=BASELINE_DIR, metavar="DIR",
                        help="where recorded baselines are looked up by name")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.threshold < 1:
        raise UsageError(f"--threshold must be between 0 and 1 (0.05 = 5%), got {args.threshold}")
    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {args.alpha}")
    baseline = load_runs([resolve_baseline(args.baseline, args.baselines)])
    current = load_runs([args.current])
    for side, runs in (("baseline", baseline), ("current", current)):
        for line in run_warnings(runs):
            print(f"warning: {side}: {line}", file=sys.stderr)
        if not any(run.records for run in runs):
            raise UsageError(f"{side} {getattr(args, side)}: no records to compare")
    check_comparable(baseline, current)
    result = compare_runs(baseline, current, args.threshold, args.alpha, ABSOLUTE[args.absolute])
    sys.stdout.write(render(result, args.format, args.all))
    return 1 if result.regressed else 0


def check_comparable(baseline: list[Run], current: list[Run]) -> None:
    """UsageError when no cell is in both: every cell would be 'new' or 'missing', and a gate
    must not call two unrelated runs a regression (or a pass)."""
    keys = [{r.cell.key for run in runs for r in run.records} for runs in (baseline, current)]
    if not keys[0] & keys[1]:
        raise UsageError(
            f"nothing to compare: the baseline ({len(keys[0])} cells, e.g. {min(keys[0])}) and "
            f"the current run ({len(keys[1])} cells, e.g. {min(keys[1])}) have no cell in "
            "common; compare runs of the same suite and cases")


def resolve_baseline(name: str, folder: Path) -> str:
    """A path as given, or a recorded baseline's file when only its name was given."""
    recorded = Path(folder) / f"{name}.jsonl"
    if not Path(name).exists() and recorded.is_file():
        return str(recorded)
    return name


def render(result: CompareResult, fmt: str = "text", show_all: bool = False) -> str:
    """The table (speed rows always, exact metrics when they differ) and the summary."""
    rows = result.rows
    if not show_all:
        rows = rows[rows["metric"].isin(SPEED_METRICS) | (rows["verdict"] != CompareVerdict.SAME)]
    table = format_table(display_frame(rows), fmt)
    summary = result.summary()
    if fmt == "markdown":
        return f"{table}\n```text\n{summary}```\n"
    return f"{table}\n{summary}"


def display_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Strings for people: signed percentages, short p-values, failing verdicts in capitals."""
    return pd.DataFrame({
        "cell": rows["key"],
        "metric": rows["metric"],
        "baseline": [format_value(v) for v in rows["baseline"]],
        "current": [format_value(v) for v in rows["current"]],
        "change": [_percent(v) for v in rows["change"]],
        "p": [_p_value(v) for v in rows["p_value"]],
        "verdict": [_verdict(v, g) for v, g in zip(rows["verdict"], rows["gated"], strict=True)],
    })


def _percent(value: float) -> str:
    return f"{value:+.1%}" if isinstance(value, float) and math.isfinite(value) else ""


def _p_value(value: float) -> str:
    if not (isinstance(value, float) and math.isfinite(value)):
        return ""
    return f"{value:.2g}" if value >= 1e-3 else "<0.001"


def _verdict(verdict: str, gated: bool) -> str:
    if verdict in FAILING_VERDICTS:
        return verdict.upper() if gated else f"{verdict} (not gated)"
    return verdict
