"""`python -m bench gate-check`: how good is the gate? Measure it on planted regressions.

Runs a small matrix several times as it is ("clean") and with a planted slowdown of one mode
(BENCH_INJECT_SLOWDOWN, bench.inject) of each asked size, interleaving the kinds so drift
hits them alike. Then it replays the gate's decision (`bench gate`: compare with a baseline,
re-measure what is flagged, fail only if the confirmation fails too) on every combination of
runs: a clean run as the baseline, another as the current run and a third as the
confirmation gives the false-alarm rate; a clean baseline with two planted runs gives the
detection rate. It prints both for a range of thresholds and the tightest threshold with no
false alarm that catches the largest planted slowdown at least 90% of the time.

The combinations share runs, so they are not independent trials: the run count bounds how
much the rates can be trusted, and the output says how many runs each rate rests on.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import UsageError

THRESHOLDS = (0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.10, 0.15, 0.20)
DETECTION_GOAL = 0.9


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers like 0.05,0.10, got {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gate-check", help="measure the gate's false-alarm and detection rates",
                       description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="quick", help="suite whose cells are narrowed (quick)")
    p.add_argument("--case", action="append", dest="cases", metavar="SPEC",
                   help="case spec (default: the suite's last case)")
    p.add_argument("--modes", default="eager,function,session", help="modes to run")
    p.add_argument("--phase", default="infer", choices=("infer", "train"))
    p.add_argument("--plant", default="function",
                   help="the mode slowed down (default: function), in --phase")
    p.add_argument("--fractions", type=_floats, default=[0.05, 0.10],
                   help="planted slowdowns (default: 0.05,0.10)")
    p.add_argument("--runs", type=int, default=4, help="runs of each kind (default 4)")
    p.add_argument("--rounds", type=int, help="workers per cell (default: the suite's)")
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--out", help="directory for the run files (default: a temporary one)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from bench import plan
    from bench.commands.run import execute
    from bench.inject import SLOWDOWN_ENV
    from reports.table import load_runs

    if args.runs < 3:
        raise UsageError("--runs must be >= 3 (a baseline, a current and a confirmation run)")
    if not args.fractions or not all(0 < f < 1 for f in args.fractions):
        raise UsageError("--fractions must be numbers between 0 and 1")
    suite = plan.load_suite(args.suite)
    cases = args.cases or [suite.entries[-1].case]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.plant not in modes or "eager" not in modes:
        raise UsageError("--modes must include eager and the --plant mode")
    cells = plan.expand(suite, cases=cases, modes=modes, phases=[args.phase])
    settings = plan.make_settings({**dataclasses.asdict(suite.settings),
                                   **({"rounds": args.rounds} if args.rounds else {})},
                                  "gate-check")
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="bench-gatecheck-"))
    kinds = [0.0, *args.fractions]
    paths: dict[float, list[Path]] = {k: [] for k in kinds}
    saved = os.environ.get(SLOWDOWN_ENV)
    try:
        for index in range(args.runs):
            for kind in kinds:
                if kind:
                    os.environ[SLOWDOWN_ENV] = f"{args.plant}:{args.phase}:{kind:g}"
                else:
                    os.environ.pop(SLOWDOWN_ENV, None)
                name = f"gatecheck-{'clean' if not kind else f'slow{kind:g}'}-{index}"
                path, _ = execute(cells, name, settings, out_dir, probes="none",
                                  show_progress=not args.quiet)
                paths[kind].append(path)
    finally:
        if saved is None:
            os.environ.pop(SLOWDOWN_ENV, None)
        else:
            os.environ[SLOWDOWN_ENV] = saved
    runs = {k: [load_runs([p]) for p in v] for k, v in paths.items()}
    planted_key = next(c.key for c in cells if c.mode == args.plant)
    table = gate_rates(runs, planted_key, args.alpha)
    print(format_rates(table, args.runs, args.fractions))
    print(f"run files: {out_dir}")
    return 0


def _speed_failures(baseline, current, alpha: float) -> pd.DataFrame:
    """Per (key, metric): change and p of the speed rows, plus exact failures (threshold-free)."""
    from bench.compare import compare_runs

    result = compare_runs(baseline, current, threshold=0.5, alpha=alpha, gate_absolute=False)
    return result.rows


def _flags(rows: pd.DataFrame, threshold: float, alpha: float) -> set[tuple[str, str]]:
    """(key, metric) pairs the gate fails at this threshold: slower beyond it and significant,
    any gated exact-metric failure, or a lost status."""
    speed = rows[rows["metric"] == "speedup_vs_eager"]
    slow = speed[(speed["change"] < -threshold) & (speed["p_value"] < alpha)]
    exact = rows[rows["gated"] & rows["verdict"].isin(("regression", "changed"))
                 & ~rows["metric"].isin(("speedup_vs_eager", "images_per_s"))]
    return {(k, m) for k, m in pd.concat([slow, exact])[["key", "metric"]]
            .itertuples(index=False)}


def gate_rates(runs: dict[float, list], planted_key: str, alpha: float,
               thresholds: tuple[float, ...] = THRESHOLDS) -> pd.DataFrame:
    """False-alarm rate on clean triples and detection rate per planted size, per threshold.

    `runs` maps a planted fraction (0.0 = clean) to a list of loaded runs (lists of Run).
    A gate decision on (baseline, current, confirmation) fails when a (cell, metric) is flagged
    in both comparisons; detection counts only the planted cell's speed-up.
    """
    clean = runs[0.0]
    cache: dict[tuple[int, float, int], pd.DataFrame] = {}

    def rows(b: int, kind: float, c: int) -> pd.DataFrame:
        if (b, kind, c) not in cache:
            cache[(b, kind, c)] = _speed_failures(clean[b], runs[kind][c], alpha)
        return cache[(b, kind, c)]

    out = []
    n = len(clean)
    for threshold in thresholds:
        row: dict[str, float] = {"threshold": threshold}
        alarms = trials = 0
        for b, c, k in itertools.permutations(range(n), 3):
            trials += 1
            both = _flags(rows(b, 0.0, c), threshold, alpha) & _flags(rows(b, 0.0, k),
                                                                      threshold, alpha)
            alarms += bool(both)
        row["false_alarm"] = alarms / trials if trials else np.nan
        for kind in runs:
            if not kind:
                continue
            caught = trials = 0
            for b in range(n):
                for c, k in itertools.permutations(range(len(runs[kind])), 2):
                    trials += 1
                    planted = (planted_key, "speedup_vs_eager")
                    caught += (planted in _flags(rows(b, kind, c), threshold, alpha)
                               and planted in _flags(rows(b, kind, k), threshold, alpha))
            row[f"caught_{kind:g}"] = caught / trials if trials else np.nan
        out.append(row)
    return pd.DataFrame(out)


def supported_threshold(table: pd.DataFrame, fraction: float) -> float | None:
    """The tightest threshold with no false alarm that catches `fraction` >= 90% of the time."""
    column = f"caught_{fraction:g}"
    good = table[(table["false_alarm"] == 0) & (table[column] >= DETECTION_GOAL)]
    return float(good["threshold"].min()) if len(good) else None


def format_rates(table: pd.DataFrame, runs: int, fractions: list[float]) -> str:
    lines = [f"gate decisions replayed on {runs} clean run(s) and {runs} run(s) per planted "
             "slowdown (baseline, current, confirmation):",
             "threshold  identical code passes  " + "  ".join(
                 f"{f:.0%} slowdown caught" for f in fractions)]
    for row in table.to_dict("records"):
        caught = "  ".join(f"{row[f'caught_{f:g}']:>19.0%}" for f in fractions)
        lines.append(f"{row['threshold']:>9.0%}  {1 - row['false_alarm']:>21.0%}  {caught}")
    best = supported_threshold(table, max(fractions))
    lines.append(
        f"supported threshold: {best:.0%} (no false alarm, {max(fractions):.0%} caught "
        f">= {DETECTION_GOAL:.0%})" if best is not None else
        "supported threshold: none of the tried thresholds has both no false alarm and "
        f">= {DETECTION_GOAL:.0%} detection of {max(fractions):.0%}")
    return "\n".join(lines) + "\n"
