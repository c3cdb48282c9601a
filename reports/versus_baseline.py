"""The report's view of a baseline: the regression-tracking verdicts, or a plain fallback.

The statistics belong to bench.compare (threshold plus significance test); the report only
shows them. That module is imported lazily so a report still builds where it is absent or
broken, with a median-ratio table clearly marked as having no significance test.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bench.store import Run
from reports.table import records_frame

THRESHOLD = 0.05
NO_TEST_NOTE = ("no significance test available (bench.compare not installed): "
                "verdicts are a bare median ratio against a 5% threshold")


@dataclass
class BaselineView:
    rows: pd.DataFrame  # key, metric, baseline, current, change, p_value, verdict, ...
    note: str  # how the verdicts were reached, shown above the table
    summary: str = ""  # the comparison module's own summary, when it gives one


def baseline_view(baseline: Sequence[Run], current: Sequence[Run],
                  threshold: float = THRESHOLD) -> BaselineView:
    """Compare current runs with baseline runs, preferring bench.compare's statistics."""
    compare_runs = _compare_runs()
    if compare_runs is None:
        return BaselineView(median_ratio_table(baseline, current, threshold), NO_TEST_NOTE)
    result = compare_runs(list(baseline), list(current), threshold=threshold)
    rows = result if isinstance(result, pd.DataFrame) else result.rows
    summary = result.summary() if hasattr(result, "summary") else ""
    note = (f"verdicts from bench.compare: a change counts only when it exceeds "
            f"{threshold:.0%} and is statistically significant")
    return BaselineView(rows.reset_index(drop=True), note, summary)


def _compare_runs():
    try:
        module = importlib.import_module("bench.compare")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.compare":
            raise
        return None
    return getattr(module, "compare_runs", None)


def median_ratio_table(baseline: Sequence[Run], current: Sequence[Run],
                       threshold: float = THRESHOLD) -> pd.DataFrame:
    """images_per_s of each cell key, current over baseline; no test, so 'changed' not 'worse'.

    Cells are matched by cell key (the key includes device and batch); when a key occurs in
    several runs on one side, the first is used.
    """
    base = records_frame(list(baseline)).drop_duplicates("key").set_index("key")
    cur = records_frame(list(current)).drop_duplicates("key").set_index("key")
    rows = []
    for key in list(cur.index) + [k for k in base.index if k not in cur.index]:
        b = base["images_per_s"].get(key, math.nan)
        c = cur["images_per_s"].get(key, math.nan)
        if key not in base.index or key not in cur.index or math.isnan(b) or math.isnan(c):
            verdict, change = "missing", math.nan
        else:
            change = c / b - 1.0
            verdict = "changed" if abs(change) > threshold else "same"
        rows.append({"key": key, "metric": "images_per_s", "baseline": b, "current": c,
                     "change": change, "p_value": math.nan, "verdict": verdict})
    return pd.DataFrame(rows, columns=["key", "metric", "baseline", "current", "change",
                                       "p_value", "verdict"])
