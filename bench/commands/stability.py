"""`python -m bench stability RUN_A RUN_B`: is the measurement engine itself trustworthy?

Answers three questions about two back-to-back runs of the same suite on one machine: how
long each run took, what share of ok cells reached the CI target (the rest ran out of budget),
and on what share of cells the two runs' median throughputs agree within a tolerance (5%).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from bench.errors import UsageError
from bench.store import Run


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stability", help="run time, CI-target hit rate and run-to-run agreement",
                       description=__doc__.splitlines()[0])
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--tolerance", type=float, default=0.05,
                   help="relative throughput difference counted as agreement (default 0.05)")
    p.set_defaults(func=main)


def _duration_s(run: Run) -> float | None:
    try:
        start = dt.datetime.fromisoformat(run.header.started)
        end = dt.datetime.fromisoformat(run.finished)
    except ValueError:
        return None
    return (end - start).total_seconds()


def _target_share(frame, run: Run) -> tuple[int, int, float]:
    """Cells whose pooled median CI (all rounds) is within the run's target half-width."""
    target = float(run.header.options.get("target_ci", 0.02))
    ok = frame[frame.status == "ok"]
    return int((ok.ci_rel_halfwidth <= target).sum()), len(ok), target


def main(args: argparse.Namespace) -> int:
    from reports.table import load_runs, records_frame, run_warnings

    if args.tolerance <= 0:
        raise UsageError("--tolerance must be positive")
    run_a, run_b = (load_runs([p])[0] for p in (args.run_a, args.run_b))
    for line in run_warnings([run_a, run_b]):
        print(f"warning: {line}", file=sys.stderr)
    frames = [records_frame([run]).set_index("key") for run in (run_a, run_b)]
    for name, run, frame in (("A", run_a, frames[0]), ("B", run_b, frames[1])):
        hit, ok, target = _target_share(frame, run)
        took = _duration_s(run)
        took_text = f"{took:.0f} s" if took is not None else "unknown (incomplete)"
        rounds = run.header.options.get("rounds", 1)
        print(f"run {name}: {run.path}: {took_text}, {ok} ok cells x {rounds} round(s); "
              f"{hit}/{ok} ({100 * hit / max(ok, 1):.0f}%) reached the {100 * target:g}% "
              "CI target (median CI of the pooled rounds)")
    a, b = (f[f.status == "ok"]["images_per_s"] for f in frames)
    both = a.index.intersection(b.index)
    if both.empty:
        raise UsageError("the two runs have no ok cell in common")
    change = (b[both] / a[both] - 1).abs()
    agree = int((change <= args.tolerance).sum())
    print(f"agreement: {agree}/{len(both)} cells ({100 * agree / len(both):.0f}%) within "
          f"{100 * args.tolerance:.0f}%; median |change| {100 * change.median():.1f}%, "
          f"worst {100 * change.max():.1f}% ({change.idxmax()})")
    return 0
