"""`python -m bench ab A B`: two builds side by side, worker pairs taking turns on one CPU.

A side is `.` (the working tree), `git:REV`, `python:PATH` (another interpreter or venv) or
`env:NAME=VALUE[,...]`, combined with `+` (bench.ab.sides). For every cell of the matrix (the
options narrow the suite as for `run`; default suite: quick) worker pairs take turns step by
step on the same CPU (bench.ab.driver), and the B/A ratio of step time gets a sequential verdict per
cell (bench.stats.ab): slower, faster, no change or undecided. Each side leaves an ordinary run
file in --out; the comparison is printed (`--format` for csv or markdown rows) and, with
--report, drawn as a forest plot in the HTML report. Exit codes: 0 no cell slower or failed,
1 some cell slower (or failed), 2 bad usage (a side that cannot be set up included), 130/143
interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.commands.matrix import (
    add_matrix_options,
    add_measurement_options,
    add_output_options,
    selection,
)
from bench.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ab", help="compare two builds in lockstep on one CPU (A/B)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("a", metavar="A", help="side A (the baseline): ., git:REV, python:PATH, "
                                          "env:NAME=VALUE, joined with +")
    p.add_argument("b", metavar="B", nargs="?", default=".",
                   help="side B (the candidate; default: the working tree)")
    add_matrix_options(p, default_suite="quick")
    add_measurement_options(p)
    add_lockstep_options(p)
    add_output_options(p, out_help="directory for the two run files",
                       format_help="print one row per cell (key, B/A ratio, interval, verdict) "
                                   "in this format instead of the summary",
                       quiet_help="no progress lines")
    p.set_defaults(func=main)


def add_lockstep_options(p: argparse.ArgumentParser, threshold: float = 0.03) -> None:
    from bench.stats.ab import Rule

    rule = Rule()
    p.add_argument("--threshold", type=float, default=threshold,
                   help=f"the change that must be caught (default {threshold:g})")
    p.add_argument("--alpha", type=float, default=rule.alpha,
                   help=f"error rate per cell over all its looks (default {rule.alpha:g})")
    p.add_argument("--min-pairs", type=int, default=rule.min_pairs,
                   help=f"worker pairs per cell before the first look (default {rule.min_pairs})")
    p.add_argument("--max-pairs", type=int, default=rule.max_pairs,
                   help=f"most worker pairs per cell (default {rule.max_pairs})")
    p.add_argument("--look-every", type=int, default=rule.look_every,
                   help="pairs between the verdict's looks after the first; the last look is at "
                        f"--max-pairs (default {rule.look_every})")
    p.add_argument("--pair-budget", type=float, default=1.0, dest="pair_budget_s",
                   help="seconds each pair takes turns (default 1.0)")
    p.add_argument("--min-steps", type=int, default=10,
                   help="timed steps per side and pair, whatever the budget (default 10)")
    p.add_argument("--time-budget", type=float, dest="time_budget_s",
                   help="seconds after which cells get no more pairs (default: no limit)")


def lockstep_settings(args: argparse.Namespace):
    import math

    from bench.ab.driver import LockstepSettings
    from bench.stats.ab import Rule

    rule = Rule(args.threshold, args.alpha, args.min_pairs, args.max_pairs,
                look_every=args.look_every).check()
    if not (math.isfinite(args.pair_budget_s) and 0 < args.pair_budget_s <= 600):
        raise UsageError("--pair-budget: expected seconds in (0, 600]")
    if not 1 <= args.min_steps <= 100_000:
        raise UsageError("--min-steps: expected an integer from 1 to 100000")
    if args.time_budget_s is not None and not (math.isfinite(args.time_budget_s)
                                               and 0 < args.time_budget_s <= 86_400):
        raise UsageError("--time-budget: expected seconds in (0, 86400]")
    return LockstepSettings(rule=rule, pair_budget_s=args.pair_budget_s,
                            min_steps=args.min_steps, time_budget_s=args.time_budget_s)


def main(args: argparse.Namespace) -> int:
    from bench.ab.sides import parse_side
    from bench.store.paths import writable_dir, writable_file

    specs = [parse_side(args.a), parse_side(args.b)]
    suite, cells, settings = selection(args)
    lockstep = lockstep_settings(args)
    if args.report and not args.report.lower().endswith((".html", ".htm")):
        raise UsageError(f"--report {args.report}: give an .html file")
    if args.report:
        writable_file(args.report, "--report")
    out_dir = writable_dir(args.out, "--out")
    try:
        pair, table = measure(specs, cells, suite.name, settings, lockstep, out_dir,
                              show_progress=not args.quiet)
    except KeyboardInterrupt as exc:
        from bench.engine import signals

        kept = ", ".join(str(p) for p in getattr(exc, "run_paths", []))
        print(f"{signals.reason(exc)}: " + (f"finished pairs are kept in {kept} (marked "
              "incomplete)" if kept else "nothing was recorded"), file=sys.stderr)
        return signals.exit_code(exc)
    print_comparison(pair, table, args.format)
    if args.report:
        from bench.commands.report import write_report

        written = write_report([pair.a, pair.b], Path(args.report))
        print(f"report: {written[0]}", file=sys.stderr)
    from bench.stats.ab import Verdict

    slower_or_failed = table["verdict"].isin([Verdict.SLOWER, Verdict.FAILED]).any()
    return 1 if slower_or_failed else 0


def measure(specs, cells, suite: str, settings, lockstep, out_dir: Path,
            show_progress: bool = True):
    """Resolve both sides (one clear line and exit 2 on any problem), run them in lockstep
    and return (the loaded AbPair, its comparison table)."""
    from bench.ab.driver import run_ab
    from bench.ab.sides import prepare_side
    from bench.store.runfiles import load_runs
    from reports.ab import ab_table, the_pair

    sides = [prepare_side(spec, label) for spec, label in zip(specs, "AB", strict=True)]
    print(f"A/B in lockstep: {len(cells)} cells of suite '{suite}', "
          f"{lockstep.rule.min_pairs}-{lockstep.rule.max_pairs} worker pairs each; "
          + "; ".join(side.describe for side in sides), file=sys.stderr)
    result = run_ab(cells, sides, suite=suite, settings=settings, lockstep=lockstep,
                    out_dir=out_dir, show_progress=show_progress)
    pair = the_pair(load_runs(list(result.paths.values())))
    print(f"run files: {', '.join(str(p) for p in result.paths.values())}", file=sys.stderr)
    return pair, ab_table(pair)


def print_comparison(pair, table, fmt: str | None) -> None:
    from reports.ab import verdict_lines
    from reports.table import format_table

    if fmt:
        columns = ["key", "ratio", "low", "high", "verdict", "pairs", "excluded", "exact"]
        sys.stdout.write(format_table(table[columns], fmt))
    else:
        print("\n".join(verdict_lines(table, pair)))
