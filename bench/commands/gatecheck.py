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

`--reuse DIR` replays the decisions on run files already measured (e.g. the runs of a series
of `bench gate` calls, clean and with BENCH_INJECT_SLOWDOWN), sorted into clean and planted by
the slowdown their headers record, and `--baseline` makes a recorded baseline the baseline of
every decision, as in CI, instead of each clean run in turn.
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

from bench import options
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
    p.add_argument("--runs", type=options.runs, default=4, help="runs of each kind (default 4)")
    p.add_argument("--rounds", type=options.setting("rounds"),
                   help="workers per cell (default: the suite's)")
    p.add_argument("--alpha", type=options.fraction, default=0.01)
    p.add_argument("--shared-threshold", type=options.fraction_or_off,
                   default=0.15,
                   help="as in `bench gate` (default 0.15; 0 = judge raw speed-up changes)")
    p.add_argument("--out", help="directory for the run files (default: a temporary one)")
    p.add_argument("--reuse", metavar="DIR",
                   help="replay on the run files under DIR instead of measuring")
    p.add_argument("--baseline", metavar="RUN",
                   help="baseline run file or name for every decision (default: each clean "
                        "run in turn)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from bench.store import load_runs

    if not args.fractions or not all(0 < f < 1 for f in args.fractions):
        raise UsageError("--fractions must be numbers between 0 and 1")
    baselines = None
    if args.baseline:
        from bench.commands.compare import resolve_baseline
        from bench.paths import BASELINE_DIR

        baselines = [load_runs([resolve_baseline(args.baseline, BASELINE_DIR)])]
    runs = reused_runs(Path(args.reuse), args.plant) if args.reuse else measure_runs(args)
    planted_keys = {r.cell.key for kind in runs if kind for run in runs[kind] for part in run
                    for r in part.records if r.cell.mode == args.plant}
    if not runs.get(0.0) or not any(kind for kind in runs):
        raise UsageError("need clean runs and runs with a planted slowdown")
    table = gate_rates(runs, planted_keys, args.alpha, baselines=baselines,
                       shared=args.shared_threshold or None)
    counts = {kind: len(v) for kind, v in runs.items()}
    print(format_rates(table, counts, sorted(k for k in runs if k), baselines is not None))
    if not args.reuse:
        print(f"run files: {args.out}")
    return 0


def measure_runs(args: argparse.Namespace) -> dict[float, list]:
    """Clean and planted runs of the small matrix, interleaved; returns them loaded by kind."""
    from bench import plan
    from bench.commands.run import execute
    from bench.inject import SLOWDOWN_ENV
    from bench.modes import REFERENCE_MODE
    from bench.store import load_runs

    if args.runs < 3:
        raise UsageError("--runs must be >= 3 (a baseline, a current and a confirmation run)")
    suite = plan.load_suite(args.suite)
    cases = args.cases or [suite.entries[-1].case]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.plant not in modes or REFERENCE_MODE not in modes:
        raise UsageError("--modes must include eager and the --plant mode")
    cells = plan.expand(suite, cases=cases, modes=modes, phases=[args.phase])
    settings = plan.make_settings({**dataclasses.asdict(suite.settings),
                                   **({"rounds": args.rounds} if args.rounds else {})},
                                  "gate-check")
    args.out = args.out or tempfile.mkdtemp(prefix="bench-gatecheck-")
    kinds = [0.0, *args.fractions]
    runs: dict[float, list] = {k: [] for k in kinds}
    saved = os.environ.get(SLOWDOWN_ENV)
    try:
        for index in range(args.runs):
            for kind in kinds:
                if kind:
                    os.environ[SLOWDOWN_ENV] = f"{args.plant}:{args.phase}:{kind:g}"
                else:
                    os.environ.pop(SLOWDOWN_ENV, None)
                name = f"gatecheck-{'clean' if not kind else f'slow{kind:g}'}-{index}"
                path, _ = execute(cells, name, settings, Path(args.out), probes="none",
                                  show_progress=not args.quiet)
                runs[kind].append(load_runs([path]))
    finally:
        if saved is None:
            os.environ.pop(SLOWDOWN_ENV, None)
        else:
            os.environ[SLOWDOWN_ENV] = saved
    return runs


def reused_runs(directory: Path, plant: str) -> dict[float, list]:
    """Complete run files under `directory` (confirmation runs left out), by their planted
    slowdown; an interrupted run is skipped (its missing cells would read as regressions)."""
    from bench.inject import parse_slowdowns
    from bench.store import load_runs

    files = sorted(p for p in directory.rglob("*.jsonl") if "confirm" not in p.name)
    if not files:
        raise UsageError(f"--reuse {directory}: no run files")
    runs: dict[float, list] = {0.0: []}
    for path in files:
        loaded = load_runs([path])
        if not loaded[0].complete:
            continue
        planted = parse_slowdowns(loaded[0].header.options.get("injected_slowdown") or "")
        fractions = {f for (mode, _), f in planted.items() if mode == plant}
        kind = fractions.pop() if fractions else (0.0 if not planted else None)
        if kind is not None:
            runs.setdefault(kind, []).append(loaded)
    return runs


def _flags(baseline, current, threshold: float, alpha: float,
           shared: float | None) -> set[tuple[str, str]]:
    """(key, metric) pairs the gate fails at this threshold, exactly as `bench gate` decides."""
    from reports.compare import compare_runs

    result = compare_runs(baseline, current, threshold=threshold, alpha=alpha,
                          gate_absolute=False, shared_threshold=shared)
    return {(k, m) for k, m in result.failures()[["key", "metric"]].itertuples(index=False)}


def gate_rates(runs: dict[float, list], planted_keys: set[str], alpha: float,
               thresholds: tuple[float, ...] = THRESHOLDS,
               baselines: list | None = None, shared: float | None = None) -> pd.DataFrame:
    """False-alarm rate on clean triples and detection rate per planted size, per threshold.

    `runs` maps a planted fraction (0.0 = clean) to a list of loaded runs (lists of Run).
    A gate decision on (baseline, current, confirmation) fails when a (cell, metric) is flagged
    in both comparisons; detection counts a planted cell's speed-up only. With `baselines`,
    those are the baselines of every decision; otherwise each clean run is, in turn.
    """
    clean = runs[0.0]
    bases = baselines if baselines is not None else clean
    cache: dict[tuple[int, float, int, float], set[tuple[str, str]]] = {}

    def flags(b: int, kind: float, c: int, threshold: float) -> set[tuple[str, str]]:
        if (b, kind, c, threshold) not in cache:
            cache[(b, kind, c, threshold)] = _flags(bases[b], runs[kind][c], threshold, alpha,
                                                    shared)
        return cache[(b, kind, c, threshold)]

    def decisions(kind: float):
        """(baseline, current, confirmation) index triples, never a run against itself."""
        for b in range(len(bases)):
            for c, k in itertools.permutations(range(len(runs[kind])), 2):
                if baselines is None and kind == 0.0 and b in (c, k):
                    continue
                yield b, c, k

    planted = {(key, "speedup_vs_eager") for key in planted_keys}
    out = []
    for threshold in thresholds:
        row: dict[str, float] = {"threshold": threshold}
        for kind in runs:
            hits = trials = 0
            for b, c, k in decisions(kind):
                trials += 1
                both = flags(b, kind, c, threshold) & flags(b, kind, k, threshold)
                hits += bool(both if kind == 0.0 else both & planted)
            name = "false_alarm" if kind == 0.0 else f"caught_{kind:g}"
            row[name] = hits / trials if trials else np.nan
        out.append(row)
    return pd.DataFrame(out)


def supported_threshold(table: pd.DataFrame, fraction: float) -> float | None:
    """The tightest threshold with no false alarm that catches `fraction` >= 90% of the time."""
    column = f"caught_{fraction:g}"
    good = table[(table["false_alarm"] == 0) & (table[column] >= DETECTION_GOAL)]
    return float(good["threshold"].min()) if len(good) else None


def format_rates(table: pd.DataFrame, counts: dict[float, int], fractions: list[float],
                 fixed_baseline: bool = False) -> str:
    planted = ", ".join(f"{counts[f]} with {f:.0%} planted" for f in fractions)
    base = "the recorded baseline" if fixed_baseline else "each clean run in turn"
    lines = [f"gate decisions (current run, confirmation run) replayed on {counts[0.0]} clean "
             f"run(s), {planted}; baseline: {base}:",
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
