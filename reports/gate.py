"""The CI gate's decision, in one function that `bench gate` and `bench gate-check` both call.

Inputs are comparison tables in the form reports.ab.ab_table gives (one row per cell: key,
verdict, ratio, low, high), for the first A/B run and for the confirmation run that
re-measured its flagged cells with fresh worker pairs, plus the exact failures (equivalence,
graph nodes, probe facts against the committed baseline), which do not depend on speed.

- A cell is *flagged* when the first run finds B slower, or B's worker failed (a crash can be
  a fluke of the machine too).
- A flagged cell *fails* the gate when the confirmation finds it slower again, or undecided
  with its ratio beyond the rule's margin (the confirmation leans the same way but ran out of
  pairs), or B's worker failed again. Without a confirmation every flagged cell fails.
- Exact failures always fail. Undecided cells never fail; the gate names them.
Pure pandas; no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from bench.stats.ab import Rule, Verdict
from bench.store.record import is_failed


@dataclass(frozen=True)
class GateDecision:
    flagged: list[str]  # cell keys the first run found slower or failing on B
    failed: list[str]  # of those, the ones the confirmation found so again
    undecided: list[str]  # cells the first run could not decide (not failures)
    exact: list[str] = field(default_factory=list)  # exact failures, one line each

    @property
    def passed(self) -> bool:
        return not self.failed and not self.exact


def flagged_cells(first: pd.DataFrame) -> list[str]:
    """Cells worth re-measuring: slower on B, or B's worker failed."""
    mask = (first["verdict"] == str(Verdict.SLOWER)) | first["status_b"].map(is_failed)
    return list(first.loc[mask, "key"])


def still_failing(row: dict, rule: Rule) -> bool:
    """Does the confirmation's row for a flagged cell stand the failure?"""
    if is_failed(row.get("status_b", "")):
        return True
    if row["verdict"] == str(Verdict.SLOWER):
        return True
    return row["verdict"] == str(Verdict.UNDECIDED) and row["ratio"] > 1.0 + rule.effect


def gate_decision(first: pd.DataFrame, confirmation: pd.DataFrame | None, rule: Rule,
                  exact: Sequence[str] = ()) -> GateDecision:
    flagged = flagged_cells(first)
    if confirmation is None:
        failed = flagged
    else:
        again = {row["key"]: row for row in confirmation.to_dict("records")}
        failed = [key for key in flagged if key not in again or still_failing(again[key], rule)]
    undecided = list(first.loc[first["verdict"] == str(Verdict.UNDECIDED), "key"])
    return GateDecision(flagged, failed, undecided, list(exact))
