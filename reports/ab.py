"""The comparison of an A/B lockstep run: two side run files -> one row per cell.

Each side of `bench ab` is an ordinary run file whose header carries `options.ab` (the A/B
run's id, the side's label and spec, the sequential rule). Round i of a cell in A and round i
in B are the two workers of pair i, so everything here is recomputed from the stored step
times: the pair ratios (B's median over A's), the sequential verdict replayed on them in the
order they were measured (bench.stats.ab.sequential, the rule the run itself stopped on), and
the exact facts of the first pair (status, equivalence, graph node counts) compared once.
Pure pandas; no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bench.errors import UsageError
from bench.stats.ab import Rule, Verdict, pair_ratio, sequential
from bench.store.record import Record, Status
from bench.store.runfiles import Run

COLUMNS = ["key", "case", "mode", "phase", "batch", "threads", "verdict", "ratio", "low",
           "high", "pairs", "excluded", "status_a", "status_b", "exact"]
LISTED = 8  # largest changes named in the terminal verdict


@dataclass(frozen=True)
class AbPair:
    """The two sides of one A/B run, and the rule it was measured with."""

    a: Run
    b: Run
    rule: Rule

    @property
    def specs(self) -> tuple[str, str]:
        def name(run: Run) -> str:
            spec = run.header.options["ab"]["spec"]
            return "the working tree" if spec in (".", "") else spec

        return name(self.a), name(self.b)


def ab_info(run: Run) -> dict | None:
    info = run.header.options.get("ab")
    return info if isinstance(info, dict) and info.get("side") in ("A", "B") else None


def find_pairs(runs: Sequence[Run]) -> list[AbPair]:
    """The A/B runs among `runs`, matched by their A/B id (sides given in any order)."""
    by_id: dict[str, dict[str, Run]] = {}
    for run in runs:
        info = ab_info(run)
        if info:
            by_id.setdefault(str(info.get("id")), {})[info["side"]] = run
    pairs = []
    for sides in by_id.values():
        if set(sides) == {"A", "B"}:
            pairs.append(AbPair(sides["A"], sides["B"], Rule.from_dict(ab_info(sides["A"]))))
    return pairs


def the_pair(runs: Sequence[Run]) -> AbPair:
    pairs = find_pairs(runs)
    if len(pairs) != 1:
        raise UsageError("give the two run files of one `bench ab` run (side A and side B)"
                         if not pairs else "these files hold several A/B runs; give one")
    return pairs[0]


def rounds_by_cell(run: Run) -> dict[str, dict[int, Record]]:
    out: dict[str, dict[int, Record]] = {}
    for record in run.records:
        out.setdefault(record.cell.key, {})[record.round] = record
    return out


def ab_table(pair: AbPair) -> pd.DataFrame:
    """One row per cell: the B/A ratio of step time with its interval, and the verdict."""
    a_rounds, b_rounds = rounds_by_cell(pair.a), rounds_by_cell(pair.b)
    rows = []
    for key in list(a_rounds) + [k for k in b_rounds if k not in a_rounds]:
        a, b = a_rounds.get(key, {}), b_rounds.get(key, {})
        cell = next(iter((a or b).values())).cell
        ratios, statuses = [], []
        for index in sorted(set(a) & set(b)):
            statuses.append((a[index].status, b[index].status))
            if a[index].status == b[index].status == Status.OK:
                ratio = pair_ratio(a[index].samples_s, b[index].samples_s)
                if ratio:
                    ratios.append(ratio)
        judgement, _ = sequential(ratios, pair.rule)
        verdict = judgement.verdict
        if any(x == y == Status.SKIPPED for x, y in statuses):
            verdict = Verdict.SKIPPED
        elif not statuses or any(x != Status.OK or y != Status.OK for x, y in statuses):
            verdict = Verdict.FAILED
        first_a, first_b = a.get(min(a)) if a else None, b.get(min(b)) if b else None
        rows.append({"key": key, "case": cell.case_spec, "mode": cell.mode, "phase": cell.phase,
                     "batch": cell.batch, "threads": cell.threads, "verdict": str(verdict),
                     "ratio": judgement.ratio, "low": judgement.low, "high": judgement.high,
                     "pairs": judgement.pairs, "excluded": judgement.excluded,
                     "status_a": _worst(s for s, _ in statuses), "status_b":
                     _worst(s for _, s in statuses), "exact": exact_changes(first_a, first_b)})
    return pd.DataFrame(rows, columns=COLUMNS)


def _worst(statuses) -> str:
    from bench.store.record import worst_status

    statuses = list(statuses)
    return worst_status(statuses) if statuses else "missing"


def exact_changes(a: Record | None, b: Record | None) -> str:
    """What differs between the sides' first workers in facts that do not depend on speed."""
    if a is None or b is None:
        return "missing on side " + ("A" if a is None else "B")
    changes = []  # statuses have their own columns (and the gate confirms them)
    if a.equivalent is not None and b.equivalent is not None and a.equivalent != b.equivalent:
        changes.append(f"equivalent {a.equivalent} -> {b.equivalent}")
    for name in dict.fromkeys([*a.graph_nodes, *b.graph_nodes]):
        old, new = a.graph_nodes.get(name), b.graph_nodes.get(name)
        if old != new:
            changes.append(f"graph_nodes.{name} {old} -> {new}")
    return "; ".join(changes)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    return {str(v): int((table["verdict"] == str(v)).sum()) for v in Verdict}


def verdict_lines(table: pd.DataFrame, pair: AbPair) -> list[str]:
    """The terminal summary: counts per verdict, the largest changes, the undecided cells."""
    counts = verdict_counts(table)
    a, b = pair.specs
    rule = pair.rule
    lines = [f"A/B in lockstep: B = {b} against A = {a} (B/A step time; threshold "
             f"{rule.threshold:.0%}, slower/faster from {rule.effect:.1%}, alpha {rule.alpha:g}, "
             f"{rule.min_pairs}-{rule.max_pairs} worker pairs per cell):",
             "  " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + f" of {len(table)} "
             "cells"]
    measured = table[table["ratio"].map(lambda v: isinstance(v, float) and math.isfinite(v))]
    ranked = measured.assign(size=(measured["ratio"].astype(float)).map(lambda r: abs(math.log(r))))
    for row in ranked.sort_values("size", ascending=False).head(LISTED).to_dict("records"):
        lines.append(f"  {row['verdict']:>9}  {row['key']}: {describe_ratio(row)}")
    for row in table[table["verdict"] == str(Verdict.FAILED)].to_dict("records"):
        lines.append(f"     failed  {row['key']}: A {row['status_a']}, B {row['status_b']}")
    for row in table[table["exact"] != ""].to_dict("records"):
        lines.append(f"      exact  {row['key']}: {row['exact']}")
    return lines


def describe_ratio(row: dict) -> str:
    ratio, low, high = row["ratio"], row["low"], row["high"]
    interval = (f" [{low:.3f}-{high:.3f}]" if math.isfinite(low) and math.isfinite(high)
                else "")
    return (f"B/A {ratio:.3f}{interval} ({ratio - 1:+.1%}), {row['pairs']} pairs"
            + (f" ({row['excluded']} left out)" if row["excluded"] else ""))
