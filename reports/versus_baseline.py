"""The report's view of a baseline: the regression-tracking verdicts of reports.compare.

The statistics belong to reports.compare (threshold plus significance test); the report only
shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bench.store.runfiles import Run
from reports.compare import compare_runs

THRESHOLD = 0.05


@dataclass
class BaselineView:
    rows: pd.DataFrame  # key, metric, baseline, current, change, p_value, verdict, ...
    note: str  # how the verdicts were reached, shown above the table
    summary: str = ""  # the comparison's own summary


def baseline_view(baseline: Sequence[Run], current: Sequence[Run],
                  threshold: float = THRESHOLD) -> BaselineView:
    """Compare current runs with baseline runs with reports.compare's statistics."""
    result = compare_runs(list(baseline), list(current), threshold=threshold)
    note = (f"verdicts from reports.compare: a change counts only when it exceeds "
            f"{threshold:.0%} and is statistically significant")
    return BaselineView(result.rows.reset_index(drop=True), note, result.summary())
