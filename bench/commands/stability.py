"""`python -m bench stability RUN_A RUN_B`: is the measurement engine itself trustworthy?

Answers three questions about two back-to-back runs of the same suite on one machine: how
long each run took, what share of ok cells reached the CI target (the rest ran out of budget),
and on what share of cells the two runs' median throughputs agree within a tolerance (5%).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys

from bench import options
from bench.errors import UsageError
from bench.store.record import Status
from bench.store.runfiles import Run


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stability", help="run time, CI-target hit rate and run-to-run agreement",
                       description=__doc__.splitlines()[0])
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--tolerance", type=options.fraction, default=0.05,
                   help="relative throughput difference counted as agreement (default 0.05)")
    p.set_defaults(func=main)


def _duration_s(run: Run) -> float | None:
    try:
        start = dt.datetime.fromisoformat(run.header.started)
        end = dt.datetime.fromisoformat(run.finished)
    except ValueError:
        return None
    return (end - start).total_seconds()


def _target_share(frame, run: Run) -> tuple[int, int, int, float]:
    """Cells whose CI is within the run's target half-width: (within one worker, between
    workers, ok cells, target). The first is what one process resolves; the second, from the
    spread of the cell's workers, is what a rerun can expect (bench.stats.replicates)."""
    target = float(run.header.options.get("target_ci", 0.02))
    ok = frame[frame.status == Status.OK]
    between = ok["ci_between"] if "ci_between" in ok else ok["ci_rel_halfwidth"] * math.nan
    return (int((ok.ci_rel_halfwidth <= target).sum()), int((between <= target).sum()),
            len(ok), target)


def _agreement(a, b, tolerance: float, what: str) -> str:
    both = a.dropna().index.intersection(b.dropna().index)
    if both.empty:
        return f"{what}: no cell measured in both runs"
    change = (b[both] / a[both] - 1).abs()
    agree = int((change <= tolerance).sum())
    return (f"{what}: {agree}/{len(both)} cells ({100 * agree / len(both):.0f}%) agree within "
            f"{100 * tolerance:.0f}%; median |change| {100 * change.median():.1f}%, worst "
            f"{100 * change.max():.1f}% ({change.idxmax()})")


def main(args: argparse.Namespace) -> int:
    from bench.store.runfiles import load_runs, run_warnings
    from reports.speedup import PAIRED
    from reports.table import records_frame

    if args.tolerance <= 0:
        raise UsageError("--tolerance must be positive")
    run_a, run_b = (load_runs([p])[0] for p in (args.run_a, args.run_b))
    for line in run_warnings([run_a, run_b]):
        print(f"warning: {line}", file=sys.stderr)
    frames = [records_frame([run]).set_index("key") for run in (run_a, run_b)]
    for name, run, frame in (("A", run_a, frames[0]), ("B", run_b, frames[1])):
        within, between, ok, target = _target_share(frame, run)
        took = _duration_s(run)
        took_text = f"{took:.0f} s" if took is not None else "unknown (incomplete)"
        rounds = run.header.options.get("rounds", 1)
        print(f"run {name}: {run.path}: {took_text}, {ok} ok cells x {rounds} worker(s); "
              f"CI within the {100 * target:g}% target: {within}/{ok} inside one worker "
              f"(pooled samples), {between}/{ok} between workers (what a rerun sees)")
    a, b = (f[f.status == Status.OK] for f in frames)
    if a.index.intersection(b.index).empty:
        raise UsageError("the two runs have no ok cell in common")
    print(_agreement(a["images_per_s"], b["images_per_s"], args.tolerance, "throughput"))
    paired = [f.loc[f.speedup_source == PAIRED, "speedup"] for f in (a, b)]
    print(_agreement(*paired, args.tolerance, "paired speed-up over eager"))
    return 0
