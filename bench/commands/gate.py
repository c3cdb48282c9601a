"""`python -m bench gate`: run a suite, compare it with a baseline, confirm before failing.

The CI regression gate. A cell flagged on speed (or status) is re-measured in fresh workers
(`--confirm-rounds`); the failure stands only if the confirmation run fails it again, so a
slow patch of a shared machine does not survive while a real regression does. Exact metrics
(equivalence, graph nodes, probe values) fail at once: they do not depend on speed.

A mode's speed-up change is judged against the change its whole group (same case,
configuration, phase, batch, threads) shares: between a baseline and a later run the machine's
state moves all of a group's speed-ups together by up to 10% here, a regression moves one
mode. `--threshold` applies to a mode's own change, `--shared-threshold` to its raw change.
The thresholds hold on the machine type that recorded the baseline (same machine
fingerprint). On another machine type speed-ups shift for reasons that are not regressions
(another CPU, another vector unit), so the wider `--other-machine-threshold` applies and the
gate says so: record a baseline on that machine to gate it tightly.
Exit codes: 0 pass, 1 regression (or the suite itself failed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

from bench import options, signals
from bench.errors import UsageError

DEFAULT_THRESHOLD = 0.05
SHARED_THRESHOLD = 0.15
OTHER_MACHINE_THRESHOLD = 0.60


def add_parser(sub: argparse._SubParsersAction) -> None:
    from bench.paths import BASELINE_DIR

    p = sub.add_parser("gate", help="run a suite against a baseline; confirm before failing",
                       description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default="quick-cpu",
                   help="baseline name in --baselines, or a run file (default: quick-cpu)")
    p.add_argument("--baselines", type=Path, default=BASELINE_DIR, metavar="DIR")
    p.add_argument("--suite", default="quick", help="suite to run (default: quick)")
    p.add_argument("--threshold", type=options.fraction, default=DEFAULT_THRESHOLD,
                   help=f"relative speed-up change that fails (default {DEFAULT_THRESHOLD})")
    p.add_argument("--other-machine-threshold", type=options.fraction,
                   default=OTHER_MACHINE_THRESHOLD,
                   help="threshold when the baseline was recorded on another machine type "
                        f"(default {OTHER_MACHINE_THRESHOLD})")
    p.add_argument("--shared-threshold", type=options.fraction_or_off, default=SHARED_THRESHOLD,
                   help="threshold for a speed-up shift all modes of a group share (machine "
                        f"drift moves them together; default {SHARED_THRESHOLD}; 0 = judge "
                        "raw changes with --threshold)")
    p.add_argument("--alpha", type=options.fraction, default=0.01, help="significance level (0.01)")
    p.add_argument("--confirm-rounds", type=options.confirm_rounds,
                   default=3,
                   help="fresh workers per flagged cell in the confirmation run (default 3; "
                        "0 = fail without confirming)")
    p.add_argument("--rounds", type=options.setting("rounds"),
                   help="workers per cell (default: the suite's)")
    p.add_argument("--probes", choices=("once", "all", "none"), default="once")
    p.add_argument("--out", help="directory for the run files (default: a temporary one)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from bench import plan
    from bench.commands.compare import render, resolve_baseline
    from bench.commands.run import execute
    from bench.store import load_runs
    from reports.compare import (
        compare_runs,
        confirmed_failures,
        describe,
        machines_match,
        needs_confirmation,
    )

    for name in ("threshold", "other_machine_threshold", "alpha"):
        if not 0 < getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be between 0 and 1")
    if not 0 <= args.shared_threshold < 1:
        raise UsageError("--shared-threshold must be between 0 and 1 (0 = off)")
    if args.confirm_rounds < 0:
        raise UsageError("--confirm-rounds must be >= 0")
    baseline = load_runs([resolve_baseline(args.baseline, args.baselines)])
    suite = plan.load_suite(args.suite)
    settings = plan.make_settings({**dataclasses.asdict(suite.settings),
                                   **({"rounds": args.rounds} if args.rounds else {})}, "gate")
    cells = plan.expand(suite)
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="bench-gate-"))

    path, run_result = execute(cells, suite.name, settings, out_dir, probes=args.probes,
                               show_progress=not args.quiet)
    if run_result.failed:
        print(f"gate: {len(run_result.failed)} cell(s) of the suite failed; see {path}")
    current = load_runs([path])
    same, why = machines_match(baseline, current)
    threshold = args.threshold if same else args.other_machine_threshold
    shared = (max(args.shared_threshold, threshold) if args.shared_threshold else None)
    if not same:
        print(f"gate: the baseline was recorded on another machine type ({why}): speed-ups "
              f"are gated at {threshold:.0%} instead of {args.threshold:.0%}; record a "
              "baseline on this machine to gate it tightly", file=sys.stderr)
    first = compare_runs(baseline, current, threshold, args.alpha, gate_absolute=False,
                         shared_threshold=shared)
    sys.stdout.write(render(first))

    second = None
    flagged = needs_confirmation(first)
    if flagged and args.confirm_rounds:
        wanted = set(flagged)
        again = [c for c in cells if c.key in wanted]
        print(f"\ngate: confirming {len(again)} flagged cell(s) in fresh workers "
              f"({args.confirm_rounds} each)")
        confirm_path, _ = execute(again, f"{suite.name}-confirm", settings, out_dir,
                                  probes="none", rounds=args.confirm_rounds,
                                  show_progress=not args.quiet)
        # The confirmation run has only the flagged cells: the groups' shared shift is the
        # first run's (the same machine minutes earlier), so the flagged mode is judged alike.
        second = compare_runs(baseline, load_runs([confirm_path]), threshold, args.alpha,
                              gate_absolute=False, shared_threshold=shared,
                              shift_runs=current)
        for row in second.rows[second.rows["key"].isin(flagged)
                               & second.rows["metric"].isin(first.failures()["metric"])
                               ].to_dict("records"):
            print(f"  confirmation: {describe(row)}")
    if flagged and not args.confirm_rounds:
        standing = first.failures()  # confirmation switched off: every failure stands
    else:
        standing = confirmed_failures(first, second)
    verdict = "FAIL" if len(standing) or run_result.failed else "pass"
    print(f"\ngate: {verdict}: {len(standing)} confirmed failure(s) at a {threshold:.0%} "
          f"threshold; run files in {out_dir}")
    for row in standing.to_dict("records"):
        print(f"  {describe(row)}")
    return 1 if verdict == "FAIL" else 0


main = signals.note_on_interrupt(main, "; no verdict was reached (the gate neither passed "
                                       "nor failed)")
