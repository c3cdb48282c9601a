"""`python -m bench gate`: the CI regression gate, A/B in lockstep against the baseline's commit.

A baseline recorded in the past cannot gate speed on the VMs this runs on: their speed moves
10-20% between minutes, more than the regressions worth catching. So the gate measures both
builds now, side by side: side A is the commit recorded in the committed baseline's header
(`git:<commit>`, a worktree made once and reused), side B the working tree, and their workers
take turns step by step on one CPU (bench.ab.driver) over the quick suite. Every cell gets a
sequential B/A verdict (bench.stats.ab); cells found slower (or whose B worker failed) are
re-measured with fresh worker pairs, and the gate fails only on what that confirmation finds
slower too (reports.gate.gate_decision, the rule `gate-check` measures). Exact facts
(equivalence, graph node counts) are checked between the sides, and against the
committed baseline when it comes from this machine type; they fail at once. Cells the gate
could not decide are named, not failed.
Exit codes: 0 pass, 1 regression (or exact failure), 2 bad usage (a side that cannot be set
up, a baseline without a commit).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.engine import signals
from bench.errors import UsageError

DEFAULT_THRESHOLD = 0.03


def add_parser(sub: argparse._SubParsersAction) -> None:
    from bench.commands.ab import add_lockstep_options
    from bench.store.paths import BASELINE_DIR

    p = sub.add_parser("gate", help="A/B gate: the working tree against the baseline's commit",
                       description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default="quick-cpu",
                   help="baseline name in --baselines, or a run file (default: quick-cpu)")
    p.add_argument("--baselines", type=Path, default=BASELINE_DIR, metavar="DIR")
    p.add_argument("--suite", default="quick", help="suite to run (default: quick)")
    p.add_argument("--against", metavar="SIDE",
                   help="side A (default: git:<the commit in the baseline's header>)")
    p.add_argument("--candidate", default=".", metavar="SIDE",
                   help="side B (default: the working tree; e.g. '.+env:NAME=VALUE')")
    add_lockstep_options(p, threshold=DEFAULT_THRESHOLD)
    p.add_argument("--no-confirm", dest="confirm", action="store_false",
                   help="fail on the first run's findings without re-measuring them")
    p.add_argument("--out", help="directory for the run files (default: a temporary one)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=main)


def baseline_side(baseline_runs) -> str:
    """`git:<commit>` of the baseline's header; a UsageError when it records none."""
    git = baseline_runs[0].header.machine.get("git") or {}
    commit = git.get("commit")
    if not commit:
        raise UsageError("the baseline records no git commit to run as side A; record it with "
                         "`bench baseline record` from a checkout, or give --against SIDE")
    if git.get("dirty"):
        print(f"gate: warning: the baseline was recorded with uncommitted changes on top of "
              f"{commit[:12]}; side A runs {commit[:12]} as committed", file=sys.stderr)
    return f"git:{commit}"


def main(args: argparse.Namespace) -> int:
    from bench.ab.sides import parse_side
    from bench.commands.ab import lockstep_settings, measure, print_comparison
    from bench.commands.compare import resolve_baseline
    from bench.engine import plan
    from bench.store.runfiles import load_runs
    from reports.gate import gate_decision

    lockstep = lockstep_settings(args)
    baseline = load_runs([resolve_baseline(args.baseline, args.baselines)])
    specs = [parse_side(args.against or baseline_side(baseline)), parse_side(args.candidate)]
    suite = plan.load_suite(args.suite)
    settings = suite.settings
    cells = plan.expand(suite)
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="bench-gate-"))
    out_dir.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    pair, first = measure(specs, cells, suite.name, settings, lockstep, out_dir,
                          show_progress=not args.quiet)
    print_comparison(pair, first, None)
    exact = exact_failures(baseline, pair, first)
    confirmation = None
    decision = gate_decision(first, None, lockstep.rule, exact)
    if decision.flagged and args.confirm:
        again = [c for c in cells if c.key in set(decision.flagged)]
        print(f"\ngate: confirming {len(again)} flagged cell(s) with fresh worker pairs")
        _, confirmation = measure(specs, again, f"{suite.name}-confirm", settings,
                                  confirmation_settings(lockstep, time.monotonic() - started),
                                  out_dir, show_progress=not args.quiet)
        for row in confirmation.to_dict("records"):
            from reports.ab import describe_ratio

            print(f"  confirmation: {row['key']}: {row['verdict']}, {describe_ratio(row)}")
        decision = gate_decision(first, confirmation, lockstep.rule, exact)
    print_decision(decision, lockstep.rule, out_dir, lockstep.time_budget_s)
    return 0 if decision.passed else 1


def confirmation_settings(lockstep, spent_s: float):
    """The confirmation's lockstep settings: `--time-budget` is the whole gate's, so the
    confirmation's extra pairs get what the first run left (every flagged cell still gets its
    min_pairs). Without this a gate on a broad regression ran its budget twice (measured:
    12 min 8 s with every mode 3% slower and a 420 s budget; 11 min 20 s with it shared)."""
    import dataclasses

    if not lockstep.time_budget_s:
        return lockstep
    return dataclasses.replace(lockstep, time_budget_s=max(1.0, lockstep.time_budget_s - spent_s))


def exact_failures(baseline, pair, first) -> list[str]:
    """Facts that do not depend on speed: side B against side A (the same machine, now), and
    against the committed baseline when it was recorded on this machine type (graph rewrites
    such as oneDNN fusions differ between CPU types, so another type's node counts are not
    this code's to match)."""
    from reports.compare import CONFIRMED_METRICS, compare_runs, describe, machines_match

    lines = [f"{row['key']}: {row['exact']} (side B against side A)"
             for row in first.to_dict("records") if row["exact"]]
    same, why = machines_match(baseline, [pair.b])
    if not same:
        print(f"gate: the baseline was recorded on another machine type ({why}): exact facts "
              "are checked against side A only", file=sys.stderr)
        return lines
    failures = compare_runs(baseline, [pair.b], gate_absolute=False).failures()
    exact = failures[~failures["metric"].isin(CONFIRMED_METRICS)]
    return lines + [f"{describe(row)} (against the baseline)"
                    for row in exact.to_dict("records")]


def print_decision(decision, rule, out_dir: Path, time_budget_s: float | None = None) -> None:
    verdict = "pass" if decision.passed else "FAIL"
    print(f"\ngate: {verdict}: {len(decision.failed)} confirmed slower or failing cell(s) at a "
          f"{rule.threshold:.0%} threshold, {len(decision.exact)} exact failure(s); run files "
          f"in {out_dir}")
    for key in decision.failed:
        print(f"  failed: {key}")
    for line in decision.exact:
        print(f"  exact: {line}")
    if decision.undecided:
        limit = f" or the {time_budget_s:g} s time budget" if time_budget_s else ""
        print(f"  could not decide {len(decision.undecided)} cell(s) within "
              f"{rule.max_pairs} pairs{limit} (not failed): " + ", ".join(decision.undecided))


main = signals.note_on_interrupt(main, "; no verdict was reached (the gate neither passed "
                                       "nor failed)")
