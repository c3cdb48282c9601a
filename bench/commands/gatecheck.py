"""`python -m bench gate-check`: how good is the A/B gate? Measure it on planted slowdowns.

For identical code (A = B = the working tree) and for each planted slowdown on side B only
(`env:BENCH_INJECT_SLOWDOWN`, every mode of the matrix slowed by the fraction; bench.engine.inject),
one long A/B run measures a fixed number of worker pairs per cell (`--pairs`, no early stop).
Then the gate's own decision (reports.gate.gate_decision, the function `bench gate` calls) is
replayed `--decisions` times on those pairs: each replay shuffles every cell's pairs, the first
run consumes them with the sequential rule until it decides (or reaches --max-pairs), and a
flagged cell's confirmation consumes the pairs the first run did not use (or, when fewer than
min_pairs are left, a new shuffle of the whole pool). So a decision's confirmation mostly sees
pairs its first run did not, as the real gate's does, but the replays share the measured
pool: they are resamples, not independent gate runs, and the output says how many pairs per
cell they rest on.

Printed per condition: the share of replayed gate runs that fail (for identical code this is
the whole run's false-alarm rate, every cell tested at once), the share of planted cells
caught, the mean pairs per cell, and the share of cells whose B/A interval lies within ±1%
(at the rule's look confidence, over as many pairs as the gate takes at most: the pool's
first max_pairs). `--reuse DIR` replays on A/B run files measured before.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.commands.matrix import add_matrix_options, selection
from bench.errors import UsageError

WITHIN = 0.01  # "the interval of identical code within ±1%"


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers like 0.03,0.05, got {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    from bench.commands.ab import add_lockstep_options

    p = sub.add_parser("gate-check", help="measure the A/B gate's false-alarm and detection rates",
                       description=__doc__.splitlines()[0])
    add_matrix_options(p, default_suite="quick")
    add_lockstep_options(p)
    p.add_argument("--pairs", type=int, default=16,
                   help="worker pairs measured per cell and condition (default 16: more than "
                        "the gate's most, so a confirmation draws on pairs its first run left)")
    p.add_argument("--fractions", type=_floats, default=[0.03, 0.05, 0.10],
                   help="slowdowns planted on side B (default: 0.03,0.05,0.10)")
    p.add_argument("--decisions", type=int, default=200,
                   help="gate decisions replayed per condition (default 200)")
    p.add_argument("--seed", type=int, default=0, help="of the replays' shuffles")
    p.add_argument("--out", help="directory for the run files (default: a temporary one)")
    p.add_argument("--reuse", metavar="DIR", help="replay on the A/B run files under DIR")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from bench.commands.ab import lockstep_settings

    if not args.fractions or not all(0 < f < 1 for f in args.fractions):
        raise UsageError("--fractions: expected numbers between 0 and 1")
    if not 2 <= args.pairs <= 200:
        raise UsageError("--pairs: expected an integer from 2 to 200")
    if not 1 <= args.decisions <= 100_000:
        raise UsageError("--decisions: expected an integer from 1 to 100000")
    lockstep = lockstep_settings(args)
    pools = reused_pools(Path(args.reuse)) if args.reuse else measure_pools(args, lockstep)
    table = replay_rates(pools, lockstep.rule, args.decisions, args.seed)
    print(format_rates(table, lockstep.rule))
    return 0


def planted_env(modes: list[str], fraction: float) -> str:
    return "BENCH_INJECT_SLOWDOWN=" + ",".join(f"{m}:{fraction:g}" for m in modes)


def measure_pools(args, lockstep) -> dict[float, dict[str, list[float]]]:
    """One fixed-size A/B run per condition; returns condition -> cell key -> pair ratios."""
    import dataclasses

    from bench.ab.sides import parse_side
    from bench.commands.ab import measure
    from bench.stats.ab import Rule

    suite, cells, settings = selection(args)
    fixed = dataclasses.replace(lockstep, rule=Rule(lockstep.rule.threshold, lockstep.rule.alpha,
                                                    args.pairs, args.pairs, look_every=1))
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-gatecheck-"))
    modes = sorted({c.mode for c in cells})
    pools = {}
    for fraction in [0.0, *args.fractions]:
        b = "." if not fraction else f".+env:{planted_env(modes, fraction)}"
        print(f"gate-check: {'identical code' if not fraction else f'{fraction:.0%} planted on B'}"
              f", {args.pairs} pairs per cell", file=sys.stderr)
        pair, _ = measure([parse_side("."), parse_side(b)], cells, suite.name, settings, fixed,
                          out, show_progress=not args.quiet)
        pools[fraction] = pair_ratios(pair)
    print(f"run files: {out}", file=sys.stderr)
    return pools


def pair_ratios(pair) -> dict[str, list[float]]:
    """Every cell's pair ratios in the order measured (cells with a failed pair left out)."""
    from bench.stats.ab import pair_ratio
    from bench.store.record import Status
    from reports.ab import rounds_by_cell

    a_rounds, b_rounds = rounds_by_cell(pair.a), rounds_by_cell(pair.b)
    pools = {}
    for key, a in a_rounds.items():
        b = b_rounds.get(key, {})
        ratios = [pair_ratio(a[i].samples_s, b[i].samples_s) for i in sorted(set(a) & set(b))
                  if a[i].status == b[i].status == Status.OK]
        if ratios and all(ratios):
            pools[key] = ratios
    return pools


def reused_pools(directory: Path) -> dict[float, dict[str, list[float]]]:
    from bench.engine.inject import parse_slowdowns
    from bench.store.runfiles import load_runs
    from reports.ab import find_pairs

    files = sorted(directory.rglob("*.jsonl"))
    if not files:
        raise UsageError(f"--reuse {directory}: no run files")
    pools: dict[float, dict[str, list[float]]] = {}
    for pair in find_pairs(load_runs(files)):
        env = pair.b.header.options["ab"].get("env") or {}
        planted = set(parse_slowdowns(env.get("BENCH_INJECT_SLOWDOWN")).values())
        fraction = planted.pop() if len(planted) == 1 else 0.0
        for key, ratios in pair_ratios(pair).items():
            pools.setdefault(fraction, {}).setdefault(key, []).extend(ratios)
    if 0.0 not in pools:
        raise UsageError(f"--reuse {directory}: no A/B run of identical code")
    return pools


def _rows(judged: dict[str, object]) -> pd.DataFrame:
    from bench.store.record import Status

    return pd.DataFrame([{"key": k, "verdict": str(j.verdict), "ratio": j.ratio, "low": j.low,
                          "high": j.high, "status_b": Status.OK} for k, j in judged.items()])


def replay(pool: dict[str, list[float]], rule, rng: np.random.Generator):
    """One replayed gate run: (decision, pairs used per cell)."""
    from bench.stats.ab import Verdict, sequential
    from reports.gate import gate_decision

    first, confirm, used = {}, {}, []
    for key, ratios in pool.items():
        order = list(rng.permutation(ratios))
        judgement, n = sequential(order[:rule.max_pairs], rule)
        first[key] = judgement
        used.append(n)
        if judgement.verdict == Verdict.SLOWER:
            rest = order[n:]
            if len(rest) < rule.min_pairs:  # a small pool: reshuffle all of it (stated)
                rest = list(rng.permutation(ratios))
            confirm[key], extra = sequential(rest[:rule.max_pairs], rule)
            used[-1] += extra
    decision = gate_decision(_rows(first), _rows(confirm) if confirm else None, rule)
    return decision, used


def replay_rates(pools: dict[float, dict[str, list[float]]], rule, decisions: int,
                 seed: int = 0) -> pd.DataFrame:
    """Per condition: gate runs failed, planted cells caught, pairs used, tight intervals."""
    from bench.stats.ab import interval

    rng = np.random.default_rng(seed)
    rows = []
    for fraction, pool in sorted(pools.items()):
        failed = caught = cells = 0
        pairs: list[int] = []
        for _ in range(decisions):
            decision, used = replay(pool, rule, rng)
            failed += not decision.passed
            caught += len(decision.failed)
            cells += len(pool)
            pairs.extend(used)
        tight = [abs(math.log(lo)) <= math.log1p(WITHIN) and abs(math.log(hi)) <= math.log1p(WITHIN)
                 for lo, hi in (interval(np.log(r[:rule.max_pairs]),
                                         1 - rule.alpha / rule.looks)[1:]
                                for r in pool.values()) if math.isfinite(lo)]
        rows.append({"planted": fraction, "decisions": decisions, "cells": len(pool),
                     "pairs_per_cell": min(len(r) for r in pool.values()) if pool else 0,
                     "gate_failed": failed / decisions, "cells_caught": caught / cells
                     if cells else math.nan, "mean_pairs": float(np.mean(pairs)),
                     "within_1pct": float(np.mean(tight)) if tight else math.nan})
    return pd.DataFrame(rows)


def format_rates(table: pd.DataFrame, rule) -> str:
    lines = [f"A/B gate replayed with its own rule (threshold {rule.threshold:.0%}, "
             f"slower from {rule.effect:.1%}, alpha {rule.alpha:g}, {rule.min_pairs}-"
             f"{rule.max_pairs} pairs, looks at {', '.join(map(str, rule.look_at))}, "
             "confirmation on the pairs the first run left):",
             "condition       decisions  cells  pairs/cell  gate failed  cells caught  "
             "mean pairs  B/A interval within ±1%"]
    for row in table.to_dict("records"):
        name = "identical code" if not row["planted"] else f"{row['planted']:.0%} on B"
        lines.append(f"{name:<15} {row['decisions']:>9}  {row['cells']:>5}  "
                     f"{row['pairs_per_cell']:>10}  {row['gate_failed']:>11.1%}  "
                     f"{row['cells_caught']:>12.1%}  {row['mean_pairs']:>10.1f}  "
                     f"{row['within_1pct']:>10.0%}")
    return "\n".join(lines)
