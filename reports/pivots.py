"""Decision tables from the flat frame: modes side by side, speed-ups, break-even.

These are the numbers a user chooses a mode by, so the arithmetic lives here as small pure
functions over `reports.table.records_frame` output, testable on hand-made rows, and the HTML
and plots only lay them out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from bench.modes import REFERENCE_MODE, display_order
from bench.store.record import ALL_THREADS, FAILED_STATUSES, InputStyle, Status
from reports.format import format_value

# Everything that identifies a comparable group of cells: only the mode differs inside one.
GROUP_KEYS = ["run_id", "machine", "device", "case", "config", "phase", "input", "batch",
              "threads"]


def mode_order(modes: Iterable[str]) -> list[str]:
    """Known modes in the table's display order (bench.modes.MODE_TABLE), unknown ones
    after them alphabetically."""
    present = set(modes)
    order = display_order()
    known = [m for m in order if m in present]
    return known + sorted(present - set(order))


def sort_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in reading order: machine, device, case, config, phase, batch, then mode order."""
    if frame.empty:
        return frame
    rank = {m: i for i, m in enumerate(mode_order(frame["mode"]))}
    keyed = frame.assign(_mode_rank=frame["mode"].map(rank))
    keys = [k for k in GROUP_KEYS if k in frame.columns] + ["_mode_rank"]
    return keyed.sort_values(keys, kind="stable").drop(columns="_mode_rank")


def groups(frame: pd.DataFrame) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """(group key values, rows of that group in mode order) for every comparable group."""
    frame = sort_cells(frame)
    out = []
    for values, rows in frame.groupby(GROUP_KEYS, sort=False, dropna=False):
        out.append((dict(zip(GROUP_KEYS, values, strict=True)), rows))
    return out


def cell_label(row: pd.Series | dict[str, Any], with_machine: bool = False) -> str:
    """'mobilenet[alpha=0.25] infer b32' (plus machine/device): one line naming a group."""
    case = f"{row['case']}[{row['config']}]" if row["config"] else str(row["case"])
    label = f"{case} {row['phase']} b{row['batch']}"
    if row.get("threads", ALL_THREADS) != ALL_THREADS:
        label += f" t{row['threads']}"
    if row.get("input", InputStyle.RESIDENT) != InputStyle.RESIDENT:
        label += f" {row['input']}"
    if with_machine:
        label = f"{row['machine']} {row['device']}: {label}"
    return label


def pivot_modes(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """One metric with modes as columns and one row per comparable group (NaN where absent)."""
    keys = [k for k in GROUP_KEYS if frame[k].nunique(dropna=False) > 1] or ["case"]
    table = frame.pivot_table(index=keys, columns="mode", values=value, aggfunc="first",
                              dropna=False, sort=False)
    return table.reindex(columns=mode_order(frame["mode"]))


MAIN_COLUMNS = [
    "mode", "status", "reason", "images_per_s", "ci_low", "ci_high", "speedup", "speedup_low",
    "speedup_high", "p50_ms", "p99_ms", "setup_s", "first_result_s", "peak_rss_mb",
    "peak_device_mb", "peak_fraction", "equivalent", "max_abs_diff",
]


def main_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The decision table in long form (group keys, then one row per mode)."""
    columns = GROUP_KEYS + [c for c in MAIN_COLUMNS if c in frame.columns]
    return sort_cells(frame).loc[:, columns].reset_index(drop=True)


# --------------------------------------------------------------------------- break-even


def fixed_cost_s(row: pd.Series | dict[str, Any]) -> float:
    """Seconds before a mode delivers steady-state steps.

    first_result_s (prepare started -> first host result) covers every setup stage plus the
    first call, so it is preferred; the sum of the recorded setup stages is the fallback.
    """
    first = row.get("first_result_s", math.nan)
    if first is not None and not _isnan(first):
        return float(first)
    setup = row.get("setup_s", math.nan)
    return math.nan if setup is None else float(setup)


def cumulative_time_s(fixed_s: float, step_s: float, steps: np.ndarray | int) -> np.ndarray:
    """Wall time of a job of `steps` steady-state steps: time(n) = fixed + n * step.

    n counts steps after the first result (the first call is inside `fixed`), so the model is
    exactly the one break_even_steps solves.
    """
    return fixed_s + np.asarray(steps, dtype=float) * step_s


def break_even_steps(fixed_m: float, step_m: float, fixed_e: float, step_e: float) -> float:
    """Steps after which mode m's setup cost is paid back against eager.

    Solves fixed_m + n * step_m <= fixed_e + n * step_e for the smallest whole n:
    - 0 when m is no dearer to set up and no slower per step (it is never behind);
    - ceil((fixed_m - fixed_e) / (step_e - step_m)) when m is faster per step;
    - inf ("never") when m is not faster per step and dearer to set up.
    A mode cheaper to set up but slower per step wins only *short* jobs: see `wins_below_steps`.
    """
    values = (fixed_m, step_m, fixed_e, step_e)
    if any(_isnan(v) for v in values):
        return math.nan
    extra_setup = fixed_m - fixed_e
    saving_per_step = step_e - step_m
    if extra_setup <= 0 and saving_per_step >= 0:
        return 0.0
    if saving_per_step <= 0:
        return math.inf
    return _whole(math.ceil, extra_setup / saving_per_step)


def wins_below_steps(fixed_m: float, step_m: float, fixed_e: float, step_e: float) -> float:
    """For a mode cheaper to set up but slower per step: the longest job it still wins (steps).

    NaN when the question does not arise (the mode is not cheaper to set up, or not slower).
    """
    extra_setup = fixed_m - fixed_e
    saving_per_step = step_e - step_m
    if any(_isnan(v) for v in (fixed_m, step_m, fixed_e, step_e)):
        return math.nan
    if extra_setup >= 0 or saving_per_step >= 0:
        return math.nan
    return _whole(math.floor, -extra_setup / -saving_per_step)


def _whole(rounding, steps: float) -> float:
    """A step count rounded to a whole number; inf stays inf (a setup time so large, e.g. a
    hand-edited 1e308 s, that the quotient overflows, is paid back never)."""
    return float(rounding(steps)) if math.isfinite(steps) else math.inf


def break_even_verdict(steps: float, wins_below: float) -> str:
    """The break-even number in words, for a table cell."""
    if _isnan(steps):
        return "unknown (no setup or step time)"
    if steps == 0:
        return "always faster"
    if math.isinf(steps):
        if not _isnan(wins_below):
            return f"faster only for jobs up to {wins_below:,.0f} steps"
        return "never (not faster per step)"
    return f"faster after {steps:,.0f} steps"


def break_even(frame: pd.DataFrame) -> pd.DataFrame:
    """Per comparable group, every ok mode against ok eager: setup, step time, break-even.

    Step time is the median step (median_s); fixed cost is `fixed_cost_s`. Groups without an
    ok eager cell are left out (there is nothing to break even against).
    """
    rows = []
    for key, cells in groups(frame):
        eager = cells[(cells["mode"] == REFERENCE_MODE) & (cells["status"] == Status.OK)]
        if eager.empty:
            continue
        ref = eager.iloc[0]
        fixed_e, step_e = fixed_cost_s(ref), float(ref["median_s"])
        for _, row in cells.iterrows():
            if row["status"] != Status.OK:
                continue
            fixed_m, step_m = fixed_cost_s(row), float(row["median_s"])
            steps = break_even_steps(fixed_m, step_m, fixed_e, step_e)
            if row["mode"] == REFERENCE_MODE:
                steps = 0.0
            wins = wins_below_steps(fixed_m, step_m, fixed_e, step_e)
            rows.append({
                **key, "mode": row["mode"], "fixed_s": fixed_m, "step_ms": step_m * 1e3,
                "eager_fixed_s": fixed_e, "eager_step_ms": step_e * 1e3,
                "break_even_steps": steps, "wins_below_steps": wins,
                "verdict": "reference" if row["mode"] == REFERENCE_MODE
                else break_even_verdict(steps, wins),
            })
    columns = GROUP_KEYS + ["mode", "fixed_s", "step_ms", "eager_fixed_s", "eager_step_ms",
                            "break_even_steps", "wins_below_steps", "verdict"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- scorecard


def debug_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("dbg_") and frame[c].notna().any()]


def scorecard(frame: pd.DataFrame) -> pd.DataFrame:
    """Per mode: the typical speed-up next to every debuggability probe (dbg_* columns).

    Speed-up is the geometric mean over the mode's ok cells (ratios average geometrically)
    with its range; a probe that differs between cells shows as 'mixed' (bool) or its median
    (numbers), so a single row per mode stays honest about disagreement.
    """
    dbg = debug_columns(frame)
    rows = []
    for mode in mode_order(frame["mode"]):
        cells = frame[frame["mode"] == mode]
        speedups = cells["speedup"].dropna() if "speedup" in cells else pd.Series(dtype=float)
        speedups = speedups[speedups > 0]
        row: dict[str, Any] = {
            "mode": mode,
            "speedup_geomean": float(np.exp(np.log(speedups).mean())) if len(speedups) else
            math.nan,
            "speedup_min": float(speedups.min()) if len(speedups) else math.nan,
            "speedup_max": float(speedups.max()) if len(speedups) else math.nan,
            "cells_ok": int((cells["status"] == Status.OK).sum()),
            "cells": len(cells),
        }
        for column in dbg:
            row[column] = summarize_probe(cells[column])
            row[f"{column}__varies"] = explain_variation(cells, column)
        rows.append(row)
    return pd.DataFrame(rows)


def summarize_probe(values: pd.Series) -> Any:
    """One value for a probe across a mode's cells: the common value, 'mixed', or a median."""
    present = [v for v in values if v is not None and not _isnan(v)]
    if not present:
        return None
    if all(isinstance(v, (bool, np.bool_)) for v in present):
        return bool(present[0]) if len(set(present)) == 1 else "mixed"
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in present):
        return float(np.median(present))
    distinct = list(dict.fromkeys(str(v) for v in present))
    return distinct[0] if len(distinct) == 1 else "mixed"


# The cell fields a probe's value may depend on, in the order a reader thinks of them.
VARIATION_KEYS = ("phase", "input", "config", "batch", "threads")


def explain_variation(cells: pd.DataFrame, column: str) -> str:
    """Where a probe's value differs between a mode's cells: the first cell field that explains
    it ('phase: infer yes · train no'), or '' when the value is the same everywhere. Numbers
    are rounded to what the scorecard shows, so timing jitter is not called a difference."""
    known = cells[[v is not None and not _isnan(v) for v in cells[column]]]
    if known[column].map(_same).nunique() <= 1:
        return ""
    for key in VARIATION_KEYS:
        if key not in known or known[key].nunique() <= 1:
            continue
        per = known.groupby(key, sort=False)[column].agg(lambda v: v.map(_same).nunique())
        if (per <= 1).all():
            values = known.groupby(key, sort=False)[column].first()
            return f"{key}: " + " · ".join(f"{k} {_shown(v)}" for k, v in values.items())
    return "differs between cells"


def _same(value: Any) -> str:
    """What two values must share to count as the same (numbers to the digits shown)."""
    if isinstance(value, (float, np.floating)):
        return format_value(value, digits=2)
    return str(value)


def _shown(value: Any) -> str:
    """A value as the variation note shows it: short (lists by their length)."""
    if isinstance(value, (float, np.floating)):
        return format_value(value, digits=2)
    text = format_value(value)
    if text.startswith("["):  # a list the table stored as compact JSON
        count = text.count('","') + 1 if text not in ("[]", "") else 0
        return f"{count} name{'s' if count != 1 else ''}"
    return text if len(text) <= 40 else text[:37] + "..."


def machine_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Geo-mean speed-up over eager per mode (columns) for each machine and device (rows).

    Plus the mode that is fastest in the most cells there: whether the best choice depends
    on the machine is the question a multi-machine report exists to answer.
    """
    rows = []
    for (machine, device), cells in frame.groupby(["machine", "device"], sort=False):
        row: dict[str, Any] = {"machine": machine, "device": device}
        for mode in mode_order(frame["mode"]):
            ratios = cells.loc[cells["mode"] == mode, "speedup"].dropna()
            ratios = ratios[ratios > 0]
            row[mode] = float(np.exp(np.log(ratios).mean())) if len(ratios) else math.nan
        winners = [rows_.loc[rows_["images_per_s"].idxmax(), "mode"]
                   for _, rows_ in groups(cells) if rows_["images_per_s"].notna().any()]
        row["fastest_most_often"] = max(set(winners), key=winners.count) if winners else ""
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- warnings


NOISY_CI = 0.05  # a CI half-width above 5% makes differences of that size unreadable


def noisy_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Ok cells whose CI is wider than NOISY_CI: between workers where a cell has several
    (the CI a rerun can expect), else within its one worker."""
    spread = frame["ci_between"].fillna(frame["ci_rel_halfwidth"]) \
        if "ci_between" in frame else frame["ci_rel_halfwidth"]
    return frame[(frame["status"] == Status.OK) & (spread > NOISY_CI)]


def failed_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells that errored, timed out or crashed (skipped cells are by design, not failures)."""
    return sort_cells(frame[frame["status"].isin(FAILED_STATUSES)])


def disagreeing_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Ok cells whose output differs from eager beyond the mode's tolerance."""
    if "equivalent" not in frame.columns:
        return frame.iloc[0:0]
    flagged = frame["equivalent"].map(lambda v: v is False or v is np.False_)
    return sort_cells(frame[flagged & (frame["status"] == Status.OK)])


def config_params(config: str) -> dict[str, str]:
    """'alpha=0.25,resolution=96' -> {'alpha': '0.25', 'resolution': '96'}."""
    params = {}
    for part in filter(None, (p.strip() for p in config.split(","))):
        name, _, value = part.partition("=")
        params[name.strip()] = value.strip()
    return params


def _isnan(value: Any) -> bool:
    return isinstance(value, (float, np.floating)) and math.isnan(value)
