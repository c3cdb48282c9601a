"""What a run found, in a dozen lines for the terminal: the answer without opening the HTML.

Per case, phase and batch: the fastest mode and its speed-up over eager with its CI (per
threads profile); per case: the mode with the soonest first result; across the run: the most
debuggable mode by the probes' score (bench.probes.table.debuggability_score), every cell that
failed or disagreed with eager, the noisy cells, and where the report is. Pure: a frame in (from
`records_frame`), lines out.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from bench.probes.table import debuggability_score
from bench.store.record import ALL_THREADS, Status
from reports.pivots import NOISY_CI, REFERENCE_MODE, disagreeing_cells, failed_cells, noisy_cells

MAX_NAMED = 4  # cells named per line before "+N more"


def verdict_lines(frame: pd.DataFrame, report_path: str | None = None) -> list[str]:
    """The terminal summary of a run (frame with speed-ups), one finding per line."""
    if frame.empty:
        return ["No cells were measured."]
    lines = ["What this run found (fastest mode per case, phase, batch and threads: speed-up "
             "over eager, 95% CI; ~ lists modes it is not shown faster than):"]
    # Speed-ups exist only within one machine and device (a cluster run has several).
    places = ["machine", "device"] if frame.groupby(["machine", "device"]).ngroups > 1 else []
    for key, cells in frame.groupby([*places, "case_label", "input", "phase", "batch"],
                                    sort=False):
        where = " · ".join(str(k) for k in key[:len(places)])
        case, input_style, phase, batch = key[len(places):]
        fed = "" if frame["input"].nunique() <= 1 else f" ({input_style} input)"
        lines.append(f"  {where + ': ' if where else ''}{case}{fed} {phase} batch {batch}: "
                     + " | ".join(f"{_threads_text(threads)}: {_fastest(profile)}"
                                  for threads, profile in cells.groupby("threads", sort=False)))
    lines.append("  first result soonest: " + "; ".join(
        _soonest(case, cells) for case, cells in frame.groupby("case_label", sort=False)))
    lines.append("  " + _most_debuggable(frame))
    lines.extend("  " + line for line in problem_lines(frame))
    if report_path:
        lines.append(f"  report: {report_path}")
    return lines


def with_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds `case_label`: the case with its configuration, as a user wrote it."""
    frame = frame.copy()
    frame["case_label"] = [f"{case}[{config}]" if config else case
                           for case, config in zip(frame["case"], frame["config"], strict=True)]
    return frame


def _fastest(cells: pd.DataFrame) -> str:
    """The fastest mode by speed-up over eager (paired where measured so), and the modes whose
    CI overlaps its own: those are not shown slower by this run."""
    ok = cells[(cells["status"] == Status.OK) & cells["speedup"].notna()]
    if ok.empty:
        return "no ok cell with an eager reference"
    best = ok.loc[ok["speedup"].idxmax()]
    if best["mode"] == REFERENCE_MODE:
        return f"{REFERENCE_MODE} itself"
    floor = best["speedup_low"] if _finite(best["speedup_low"]) else best["speedup"]
    tied = [row["mode"] for _, row in ok.sort_values("speedup", ascending=False).iterrows()
            if row["mode"] != best["mode"]
            and (row["speedup_high"] if _finite(row["speedup_high"]) else row["speedup"])
            >= floor]
    return f"{best['mode']} {_ratio_text(best)}" + (f" (~ {', '.join(tied)})" if tied else "")


def _ratio_text(row: pd.Series) -> str:
    value = row.get("speedup", math.nan)
    if not _finite(value):
        return "(no eager cell to compare)"
    low, high = row.get("speedup_low", math.nan), row.get("speedup_high", math.nan)
    ci = f" [{low:.2f}-{high:.2f}]" if _finite(low) and _finite(high) else ""
    return f"{value:.2f}x{ci}"


def _threads_text(threads: str) -> str:
    if threads == ALL_THREADS:
        return "all cores"
    return "1 thread" if threads == "1" else f"{threads} threads"


def _soonest(case: str, cells: pd.DataFrame) -> str:
    ok = cells[(cells["status"] == Status.OK) & cells["first_result_s"].notna()]
    if ok.empty:
        return f"{case}: -"
    by_mode = ok.groupby("mode")["first_result_s"].median().sort_values()
    first, last = by_mode.index[0], by_mode.index[-1]
    return (f"{case}: {first} {by_mode.iloc[0]:.2f} s (slowest {last} "
            f"{by_mode.iloc[-1]:.2f} s)")


def _most_debuggable(frame: pd.DataFrame) -> str:
    columns = [c for c in frame.columns if c.startswith("dbg_")]
    scores: dict[str, list[float]] = {}
    for _, row in frame[frame["status"] == Status.OK].iterrows():
        debug = {c: _value(row[c]) for c in columns}
        got, probed = debuggability_score(debug)
        if probed:
            scores.setdefault(row["mode"], []).append(got / probed)
    if not scores:
        return "most debuggable: no probes in this run"
    ranked = sorted(scores, key=lambda m: -sum(scores[m]) / len(scores[m]))
    mean = {m: sum(v) / len(v) for m, v in scores.items()}
    return (f"most debuggable (share of debugging aids that work): {ranked[0]} "
            f"{mean[ranked[0]]:.0%}; least: {ranked[-1]} {mean[ranked[-1]]:.0%}")


def problem_lines(frame: pd.DataFrame) -> list[str]:
    """Failed cells, cells that disagree with eager and noisy cells, each named (capped)."""
    failed = failed_cells(frame)
    wrong = disagreeing_cells(frame)
    ok = frame[frame["status"] == Status.OK]
    noisy = noisy_cells(frame)
    by_mode = ", ".join(f"{mode} {count}" for mode, count
                        in noisy["mode"].value_counts().items())
    return [
        "failed: " + (_named(failed, lambda r: f"{r['key']} ({r['status']})") or "none"),
        "disagreed with eager: " + (_named(wrong, lambda r: r["key"]) or "none"),
        f"noisy (CI wider than ±{NOISY_CI:.0%}): "
        + (f"{len(noisy)} of {len(ok)} cells ({by_mode}); differences smaller than their CI "
           "are not findings" if len(noisy) else "none"),
    ]


def _named(rows: pd.DataFrame, name) -> str:
    names = [name(r) for _, r in rows.head(MAX_NAMED).iterrows()]
    more = len(rows) - len(names)
    text = ", ".join(names)
    return f"{len(rows)}: {text}" + (f" +{more} more" if more > 0 else "") if names else ""


def _value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
