"""Runs -> the HTML report and its CSV tables: where a user decides which execution mode to use.

Order of the page follows the decision: what was run and can it be trusted (facts, warnings),
then per machine and device the answer at a glance (speed-up heat map beside the
debuggability scorecard), the numbers per case (modes as columns), the plots that explain them
(throughput, step-time spread, break-even, scaling), a baseline comparison, and every cell.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.probes.table import BETTER
from bench.stats.ab import Verdict
from bench.store.record import MEASURING_STAGES, InputStyle, Status
from bench.store.runfiles import Run, run_warnings
from reports import html as h
from reports import plots
from reports.ab import AbPair, ab_info, ab_table, describe_ratio, find_pairs, verdict_counts
from reports.compare import CompareVerdict
from reports.pivots import (
    NOISY_CI,
    REFERENCE_MODE,
    break_even,
    cell_label,
    debug_columns,
    disagreeing_cells,
    failed_cells,
    groups,
    machine_summary,
    main_table,
    mode_order,
    noisy_cells,
    scorecard,
)
from reports.table import load_warnings, machine_label, printable_columns, records_frame
from reports.time_spent import by_mode, by_stage, eta_error_at
from reports.versus_baseline import BaselineView, baseline_view

TITLE = "TensorFlow execution modes: benchmark report"
MAX_LISTED = 12  # warning lines per kind before "... and N more"


@dataclass
class Report:
    html: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # name -> CSV content


def build_report(runs: Sequence[Run], baseline: Sequence[Run] | None = None,
                 csv_names: Sequence[str] = (), trends_name: str | None = None) -> Report:
    """Everything the report shows, as one HTML string plus the tables behind it.

    `trends_name`: file name of a trends page written next to the report, linked from it.
    """
    pairs = find_pairs(runs)
    # An A/B run's sides hold the same cells: the comparison section speaks for both, and
    # the ordinary sections show side B (the candidate) so its cells are not pooled with A's.
    runs = [r for r in runs if (ab_info(r) or {}).get("side") != "A"] if pairs else runs
    frame = records_frame(list(runs))
    even = break_even(frame) if not frame.empty else pd.DataFrame()
    view = baseline_view(baseline, runs) if baseline else None
    warnings = report_warnings(runs, frame) + (_baseline_warnings(view) if view else [])
    parts = [_ab_section(pair, i) for i, pair in enumerate(pairs)]
    if len(_by_machine(frame)) > 1:
        parts.append(_across_machines(frame))
    for (machine, device), cells in _by_machine(frame):
        parts.append(_machine_section(machine, device, cells, even))
    if view is not None:
        parts.append(_baseline_section(view))
    stages = by_stage(list(runs))
    parts.append(_time_section(runs, stages))
    parts.append(_all_cells_section(frame))
    tables = {"cells": frame.loc[:, printable_columns(frame)],
              "modes": main_table(frame) if not frame.empty else frame,
              "break_even": even,
              "scorecard": scorecard(frame) if not frame.empty else pd.DataFrame(),
              "time": stages}
    if view is not None:
        tables["baseline"] = view.rows
    if pairs:
        tables["ab"] = pd.concat([ab_table(p) for p in pairs], ignore_index=True)
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    suites = ", ".join(dict.fromkeys(r.header.suite for r in runs))
    page = h.page(TITLE, "", "report.html",
                  lead=f"{len(runs)} run(s) of suite {suites}, {len(frame)} cells; generated {now}",
                  facts=h.trusted(_run_facts(runs, frame)),
                  warnings=h.trusted(h.warning_box(warnings)),
                  contents=_ab_contents(pairs) + _contents(frame, view),
                  trends_name=trends_name, sections=[h.trusted(p) for p in parts],
                  csv_names=list(csv_names))
    return Report(page, tables)


def _by_machine(frame: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    if frame.empty:
        return []
    return list(frame.groupby(["machine", "device"], sort=False))


def _anchor(*parts: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(str(p) for p in parts).lower()).strip("-")


# --------------------------------------------------------------------------- header


def _run_facts(runs: Sequence[Run], frame: pd.DataFrame) -> str:
    """Facts as rows, runs as columns: every machine/software fact the header carries."""
    columns = [r.header.run_id or r.path for r in runs]
    facts: dict[str, list[Any]] = {}

    def put(name: str, index: int, value: Any) -> None:
        facts.setdefault(name, [""] * len(runs))[index] = value

    for i, run in enumerate(runs):
        cells = frame[frame["run_id"] == run.header.run_id] if not frame.empty else frame
        counts = cells["status"].value_counts() if len(cells) else pd.Series(dtype=int)
        put("suite", i, run.header.suite)
        put("started", i, run.header.started)
        put("machine", i, machine_label(run))
        put("devices", i, ", ".join(sorted(set(cells["device"]))) if len(cells) else "")
        put("complete", i, "yes" if run.complete else f"NO: {run.end_reason}")
        put("cells", i, ", ".join(f"{n} {s}" for s, n in counts.items()))
        put("file", i, run.path)
        for name, value in _flatten(run.header.machine):
            put(name, i, value)
        for device, flops in sorted(run.header.peak_flops.items()):
            put(f"measured peak ({device})", i, f"{flops / 1e9:,.0f} GFLOP/s")
        for name, value in _flatten(run.header.options, "option "):
            put(name, i, value)
    first = ["suite", "started", "machine", "devices", "complete", "cells"]
    gitish = [k for k in facts if re.search("git|commit", k) and k not in first]
    headline = first + gitish
    rest = [k for k in facts if k not in headline]

    def rows(names: list[str]) -> list[list[Any]]:
        return [[name] + [h.text(v, "bad" if name == "complete" and str(v).startswith("NO")
                                 else "") for v in facts[name]] for name in names]

    header = ["fact"] + columns
    return (h.table(header, rows(headline), row_headers=True)
            + h.details(f"Machine, software and run settings ({len(rest)} more facts)",
                        h.table(header, rows(rest), row_headers=True)))


def _flatten(facts: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for key, value in (facts or {}).items():
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, (list, tuple)):
            out.append((f"{prefix}{key}", ", ".join(str(v) for v in value)))
        elif value not in (None, ""):
            out.append((f"{prefix}{key}", str(value)))
    return out


def report_warnings(runs: Sequence[Run], frame: pd.DataFrame) -> list[str]:
    """Everything that should make a reader distrust part of the page, one line each."""
    lines = list(run_warnings(runs))
    if frame.empty:
        return lines + ["the runs contain no records"]
    multi = frame.groupby(["machine", "device"]).ngroups > 1
    failed = failed_cells(frame)
    if len(failed):
        lines.append(f"{len(failed)} cell(s) failed (shown in the tables with their reason):")
        lines.extend(_listed(failed, lambda r: f"  {_cell_name(r, multi)}: {r['status']}: "
                                               f"{r['reason'] or 'no reason recorded'}"))
    wrong = disagreeing_cells(frame)
    if len(wrong):
        lines.append(f"{len(wrong)} cell(s) disagree numerically with eager (a wrong answer has "
                     "no speed; do not use these modes without checking why):")
        lines.extend(_listed(wrong, lambda r: f"  {_cell_name(r, multi)}: max |diff| "
                                              f"{h.format_number(r['max_abs_diff'])} > tolerance "
                                              f"{h.format_number(r['tolerance'])}"))
    for key, cells in groups(frame):
        eager = cells[cells["mode"] == REFERENCE_MODE]
        if (eager["status"] != Status.OK).all() and (cells["status"] == Status.OK).any():
            lines.append(f"no ok eager cell for {cell_label(key, multi)}: no speed-ups there")
    noisy = noisy_cells(frame)
    if len(noisy):
        lines.append(f"{len(noisy)} cell(s) are noisy (CI wider than ±{NOISY_CI:.0%}, between "
                     "workers where there are several); differences smaller than that are not "
                     "meaningful there")
    return lines + load_warnings(frame)


def _listed(rows: pd.DataFrame, line) -> list[str]:
    out = [line(r) for _, r in rows.head(MAX_LISTED).iterrows()]
    if len(rows) > MAX_LISTED:
        out.append(f"  ... and {len(rows) - MAX_LISTED} more (see 'All cells')")
    return out


def _cell_name(row: pd.Series, multi: bool) -> str:
    return f"{cell_label(row, multi)} {row['mode']}"


def _contents(frame: pd.DataFrame, view: BaselineView | None) -> list[tuple[str, str]]:
    """(anchor, label) of the page's sections, for the template's contents list."""
    items = [(_anchor(m, d), f"{m} · {d}") for (m, d), _ in _by_machine(frame)]
    if len(items) > 1:
        items.insert(0, ("machines", "Across machines and devices"))
    if view is not None:
        items.append(("baseline", "Comparison with the baseline"))
    items.append(("time", "Where the time went"))
    items.append(("all-cells", "All cells"))
    return items


def _across_machines(frame: pd.DataFrame) -> str:
    summary = machine_summary(frame)
    modes = [c for c in summary.columns if c not in ("machine", "device", "fastest_most_often")]
    rows = [[h.text(f"{r['machine']} · {r['device']}")] + [_speedup_cell(r[m]) for m in modes]
            + [h.text(r["fastest_most_often"])] for _, r in summary.iterrows()]
    body = h.paragraph("Geometric mean of the speed-up over eager across each machine's cells. "
                       "Speed-ups are always measured within one machine and device; absolute "
                       "throughput is in each machine's section.")
    body += h.table(["machine · device"] + modes + ["fastest in most cells"], rows)
    return h.section("machines", "Across machines and devices", body)


# --------------------------------------------------------------------------- per machine


def _machine_section(machine: str, device: str, frame: pd.DataFrame,
                     even: pd.DataFrame) -> str:
    anchor = _anchor(machine, device)
    even = even[(even["machine"] == machine) & (even["device"] == device)] if len(even) else even
    parts = [h.section(anchor, f"{machine} · {device}", "")]
    parts.append(h.section(f"{anchor}-glance", "At a glance: speed-up and debuggability",
                           _glance(frame), 3))
    parts.append(h.section(f"{anchor}-tables", "Modes side by side, per case", "", 3))
    parts.append(h.paragraph(
        "Images/s is the batch size over the median step time, with its 95% confidence "
        "interval; speed-up is over eager on the same cell, paired in one worker where measured "
        "so (95% CI; a bootstrap one for separate workers). Setup is the sum "
        "of the recorded setup stages; first result is the time from 'prepare' to the first "
        "output. The best throughput per table is bold; green/red speed-ups are significant."))
    for key, cells in groups(frame):
        parts.append(_mode_table(key, cells, even))
    parts.append(_figures_section(anchor, frame, even))
    return "\n".join(parts)


def _glance(frame: pd.DataFrame) -> str:
    heat = plots.speedup_heatmap(frame)
    left = h.image(plots.figure_png(heat), "speed-up over eager heat map",
                   "Speed-up over eager per cell (median step time ratio). Blue: faster than "
                   "eager, red: slower; grey cells did not run, with their status.") \
        if heat is not None else ""
    # One scorecard per case: probes differ between networks (MobileNet has batch norm to
    # fold, the CNN has none), and pooling them would only say "mixed".
    cards = "".join(f"<h4>Debuggability scorecard: {h.esc(case)}</h4>" + _scorecard_table(cells)
                    for case, cells in frame.groupby("case", sort=False))
    # The scorecard first: it alone puts speed-up and debuggability side by side.
    return f'<div class="side"><div class="card">{cards}</div><div class="fig">{left}</div></div>'


def _scorecard_table(frame: pd.DataFrame) -> str:
    """Modes as columns, speed-up then each probe as rows (as `bench debug` prints it)."""
    card = scorecard(frame)
    probes = debug_columns(frame)
    ranges = {p: _numeric_range(card[p]) for p in probes}
    header = ["", *(str(m) for m in card["mode"])]
    rows = [
        [h.text("speed-up (geo-mean)"), *(_speedup_cell(v) for v in card["speedup_geomean"])],
        [h.text("range"), *(h.text(_range_text(lo, hi), "num")
                            for lo, hi in zip(card["speedup_min"], card["speedup_max"],
                                              strict=True))],
        [h.text("cells ok"), *(h.text(f"{ok}/{n}", "num")
                               for ok, n in zip(card["cells_ok"], card["cells"], strict=True))],
    ]
    for probe in probes:
        rows.append([h.text(probe.removeprefix("dbg_").replace("_", " ")),
                     *(_probe_cell(probe, v, ranges[probe], why)
                       for v, why in zip(card[probe], card[f"{probe}__varies"], strict=True))])
    note = ("" if probes else h.paragraph("No debuggability probes in this run.", "small"))
    legend = h.paragraph("Probes are measured per mode. Green marks the end that helps a "
                         "debugging user (the aid works, fewer retraces, a faster cold start), "
                         "red the other; descriptive values (graph sizes, op lists) are not "
                         "coloured. Lists show their length (open them for the names); a value "
                         "that differs between the mode's cells says where.", "small") \
        if probes else ""
    return h.table(header, rows, css="card") + note + legend


def _numeric_range(values: pd.Series) -> tuple[float, float]:
    nums = [float(v) for v in values if h._is_num(v) and math.isfinite(float(v))]
    return (min(nums), max(nums)) if nums else (math.nan, math.nan)


def _probe_cell(probe: str, value: Any, span: tuple[float, float], varies: str = "") -> h.Cell:
    """One probe value: coloured only where the probe has a better direction (BETTER)."""
    better = BETTER.get(probe)
    if varies:
        return h.text(f"varies: {varies}", "neutral small")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return h.text("–", "neutral")
    if isinstance(value, (bool, np.bool_)):
        if better == "yes":
            return h.text("✓ yes" if value else "✗ no", "good" if value else "bad")
        return h.text("yes" if value else "no")
    if h._is_num(value):
        style = h.shade_better(float(value), *span, better) if better in ("higher", "lower") \
            else ""
        return h.text(h.format_number(value), "num", style)
    names = _listed_names(value)
    if names is not None:
        if not names:
            return h.text("none")
        return h.raw(h.details(f"{len(names)} name{'s' if len(names) != 1 else ''}",
                               h.esc(", ".join(names))))
    return h.text(value)


def _listed_names(value: Any) -> list[str] | None:
    """A probe value that is a list (stored as compact JSON by the table), or None."""
    if not (isinstance(value, str) and value.startswith("[")):
        return None
    try:
        items = json.loads(value)
    except ValueError:
        return None
    return [str(item) for item in items] if isinstance(items, list) else None


def _range_text(low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f"{low:.2f}–{high:.2f}×"


def _speedup_cell(value: float, low: float = math.nan, high: float = math.nan) -> h.Cell:
    """Speed-up with its CI; green/red only when the whole CI is above/below 1. Eager's own
    interval is the point 1 (reports.speedup) and says nothing, so it is not shown."""
    if not math.isfinite(value):
        return h.text("", "num")
    label = f"{value:.2f}×"
    if math.isfinite(low) and math.isfinite(high) and high > low:
        label += f" ({low:.2f}–{high:.2f})"
        css = "good" if low > 1 else "bad" if high < 1 else ""
    else:
        css = "good" if value > 1.05 else "bad" if value < 0.95 else ""
    return h.text(label, f"num {css}".strip())


def _mode_table(key: dict[str, Any], cells: pd.DataFrame, even: pd.DataFrame) -> str:
    """One case, configuration, phase and batch: modes as columns, metrics as rows."""
    rows_by_mode = {row["mode"]: row for _, row in cells.iterrows()}
    modes = mode_order(rows_by_mode)
    verdicts = _break_even_lookup(key, even)
    best = cells["images_per_s"].max()
    show_device_mem = cells["peak_device_mb"].notna().any()
    show_peak = cells["peak_fraction"].notna().any()

    def metric(name: str, fn) -> list[Any]:
        return [name] + [fn(rows_by_mode[m]) for m in modes]

    rows = [
        metric("status", _status_cell),
        metric("images/s", lambda r: h.text(h.format_number(r["images_per_s"]),
                                            "num best" if r["images_per_s"] == best else "num")),
        metric("95% CI (images/s)", lambda r: h.text(_ci_text(r["ci_low"], r["ci_high"]),
                                                     "num")),
        metric("speed-up vs eager", lambda r: _speedup_cell(r["speedup"], r["speedup_low"],
                                                            r["speedup_high"])),
        metric("latency p50 / p99 (ms)", lambda r: h.text(_pair(r["p50_ms"], r["p99_ms"]),
                                                          "num")),
        metric("setup (s)", _setup_cell),
        metric("first result (s)", lambda r: h.text(h.format_number(r["first_result_s"]),
                                                    "num")),
        metric("break-even vs eager", lambda r: _break_even_cell(verdicts.get(r["mode"]))),
        metric("peak RSS (MB)", lambda r: h.text(h.format_number(r["peak_rss_mb"]), "num")),
    ]
    if show_device_mem:
        rows.append(metric("peak device memory (MB)",
                           lambda r: h.text(h.format_number(r["peak_device_mb"]), "num")))
    if show_peak:
        rows.append(metric("share of measured peak FLOP/s",
                           lambda r: h.text(_percent(r["peak_fraction"]), "num")))
    if key["input"] == InputStyle.DATASET:  # a measured call is an epoch
        rows.insert(4, metric("seconds per epoch",
                              lambda r: h.text(h.format_number(r["epoch_s"]), "num")))
    rows.append(metric("agrees with eager", _agreement_cell))
    title = _group_title(key, cells)
    return f"<h4>{h.esc(title)}</h4>" + h.table([""] + modes, rows, row_headers=True,
                                                css="modes")


def _group_title(key: dict[str, Any], cells: pd.DataFrame) -> str:
    config = f" [{key['config']}]" if key["config"] else ""
    title = f"{key['case']}{config} · {key['phase']} · batch {key['batch']}"
    if key["input"] == InputStyle.DATASET:
        batches = cells["epoch_batches"].dropna()
        epoch = f" (epoch of {int(batches.iloc[0])} batches)" if len(batches) else ""
        title += f" · dataset input{epoch}"
    elif key["input"] != InputStyle.RESIDENT:
        title += f" · {key['input']} input"
    details = []
    macs, params = cells["macs"].dropna(), cells["params"].dropna()
    if len(macs):
        details.append(f"{macs.iloc[0] / 1e6:,.1f}M MACs/image")
    if len(params):
        details.append(f"{params.iloc[0] / 1e6:,.2f}M params")
    return title + (f" ({', '.join(details)})" if details else "")


def _setup_cell(row: pd.Series) -> h.Cell:
    """Total setup with its stages underneath: which stage costs is the actionable part."""
    total = h.format_number(row["setup_s"])
    if not total:
        return h.text("", "num")
    stages = [(c.removeprefix("setup_").removesuffix("_s"), row[c]) for c in row.index
              if c.startswith("setup_") and c.endswith("_s") and c != "setup_s"
              and h._is_num(row[c]) and math.isfinite(row[c])]
    detail = " · ".join(f"{name} {h.format_number(v, 2)}" for name, v in stages)
    return h.raw(f'{h.esc(total)}<br><span class="small">{h.esc(detail)}</span>', "num")


def _status_cell(row: pd.Series) -> h.Cell:
    if row["status"] == Status.OK:
        return h.raw(h.badge(Status.OK))
    reason = f"<br>{h.esc(row['reason'])}" if row["reason"] else ""
    return h.raw(h.badge(row["status"]) + reason, "reason")


def _ci_text(low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f"{h.format_number(low)} – {h.format_number(high)}"


def _pair(a: float, b: float) -> str:
    if not math.isfinite(a):
        return ""
    return f"{h.format_number(a)} / {h.format_number(b)}"


def _percent(value: float) -> str:
    return f"{value:.0%}" if math.isfinite(value) else ""


def _agreement_cell(row: pd.Series) -> h.Cell:
    verdict = row["equivalent"]
    if row["status"] != Status.OK or verdict is None or (isinstance(verdict, float)
                                                    and math.isnan(verdict)):
        return h.text("")
    diff = h.format_number(row["max_abs_diff"])
    if verdict:
        return h.text(f"yes ({diff})" if diff else "yes", "good")
    return h.text(f"NO: |diff| {diff} > {h.format_number(row['tolerance'])}", "bad")


def _break_even_lookup(key: dict[str, Any], even: pd.DataFrame) -> dict[str, pd.Series]:
    if even.empty:
        return {}
    mask = np.ones(len(even), dtype=bool)
    for name, value in key.items():
        mask &= (even[name] == value).to_numpy()
    return {row["mode"]: row for _, row in even[mask].iterrows()}


def _break_even_cell(row: pd.Series | None) -> h.Cell:
    """Short words for a table cell; the CSV keeps the long verdict."""
    if row is None:
        return h.text("–", "neutral")
    if row["verdict"] == "reference":
        return h.text("reference", "neutral")
    steps, wins = row["break_even_steps"], row["wins_below_steps"]
    if not h._is_num(steps) or math.isnan(steps):
        return h.text("unknown", "neutral")
    if steps == 0:
        return h.text("always faster", "good")
    if math.isinf(steps):
        if h._is_num(wins) and math.isfinite(wins):
            return h.text(f"only jobs ≤ {wins:,.0f} steps", "neutral")
        return h.text("never", "bad")
    return h.text(f"after {steps:,.0f} steps", "num")


# --------------------------------------------------------------------------- figures


def _figures_section(anchor: str, frame: pd.DataFrame, even: pd.DataFrame) -> str:
    parts = []
    figure = plots.throughput_figure(frame)
    if figure is not None:
        parts.append(h.section(f"{anchor}-throughput", "Throughput per mode", h.image(
            plots.figure_png(figure), "throughput per mode",
            "Images per second from the median step time; error bars are the 95% CI of the "
            "median. Modes that did not run are named in place of their bar."), 3))
    figure = plots.distributions_figure(frame)
    if figure is not None:
        parts.append(h.section(f"{anchor}-distributions", "Step-time distributions", h.image(
            plots.figure_png(figure),
            "step time distributions",
            "Every measured step (warm-up excluded): the box spans the middle half, whiskers "
            "1.5 IQR, dots are outliers such as GC pauses. A wide box means an unstable mode."),
            3))
    parts.append(h.section(f"{anchor}-break-even", "Break-even: setup cost against step time",
                           _break_even_body(frame, even), 3))
    scaling = []
    figure = plots.batch_scaling_figure(frame)
    if figure is not None:
        scaling.append(h.image(plots.figure_png(figure), "throughput versus batch size",
                               "Throughput as the batch grows: flat lines mean the per-step "
                               "overhead is already amortised."))
    figure = plots.model_scaling_figure(frame)
    if figure is not None:
        scaling.append(h.image(plots.figure_png(figure), "throughput versus model size",
                               "Throughput and achieved FLOP/s across configurations of the "
                               "same network (e.g. MobileNet alpha and resolution), placed by "
                               "multiply-accumulates per image."))
    if scaling:
        parts.append(h.section(f"{anchor}-scaling", "Scaling with batch size and model size",
                               "\n".join(scaling), 3))
    return "\n".join(parts)


def _break_even_body(frame: pd.DataFrame, even: pd.DataFrame) -> str:
    intro = h.paragraph(
        "A graph mode pays a one-off cost (trace, freeze, optimise, compile) to run each step "
        "faster. For a job of N steps, total time = fixed cost + N × median step, where the "
        "fixed cost is the time to the first result. Break-even is the smallest N at which a "
        "mode's total drops to eager's: ceil((fixed_mode − fixed_eager) / (step_eager − "
        "step_mode)); 'always' when it is cheaper to set up and faster, 'never' when it is not "
        "faster per step.")
    if even.empty:
        return intro + h.paragraph("No break-even: no ok eager cell to compare with.", "small")
    modes = [m for m in mode_order(even["mode"]) if m != REFERENCE_MODE]
    rows = []
    for key, cells in even.groupby(list(even.columns[:8]), sort=False):
        key_dict = dict(zip(even.columns[:8], key, strict=True))
        by_mode = {row["mode"]: row for _, row in cells.iterrows()}
        first = cells.iloc[0]
        rows.append([h.text(cell_label(key_dict)), h.text(h.format_number(first["eager_fixed_s"]),
                                                          "num"),
                     h.text(h.format_number(first["eager_step_ms"]), "num")]
                    + [_break_even_cell(by_mode.get(m)) for m in modes])
    table = h.table(["cell", "eager fixed (s)", "eager step (ms)"] + modes, rows)
    figure = plots.break_even_figure(frame, even)
    image = h.image(plots.figure_png(figure), "cumulative time versus job length",
                    "Cumulative wall time against job length on log-log axes; dots mark where "
                    "a mode overtakes eager (dashed). The lowest line at your job length wins.") \
        if figure is not None else ""
    return intro + table + image


# --------------------------------------------------------------------------- baseline, cells


def _ab_contents(pairs: list[AbPair]) -> list[tuple[str, str]]:
    return [(f"ab-{i}", "A/B in lockstep") for i, _ in enumerate(pairs)]


_AB_CSS = {Verdict.SLOWER: "bad", Verdict.FASTER: "good", Verdict.FAILED: "bad"}


def _ab_section(pair: AbPair, index: int) -> str:
    """The A/B comparison: what B changed per cell, with the forest plot first."""
    table = ab_table(pair)
    a, b = pair.specs
    rule = pair.rule
    counts = ", ".join(f"{n} {v}" for v, n in verdict_counts(table).items() if n)
    body = h.paragraph(
        f"B = {b} against A = {a}. Each cell ran in {rule.min_pairs} to {rule.max_pairs} worker "
        "pairs: a fresh A and a fresh B process on the same CPU, taking turns step by step, so "
        "the machine's drift hits both. Each pair gives one B/A: the median of its "
        "step-by-step ratios; "
        f"the cell's interval is a t-interval over pairs at {1 - rule.alpha / rule.looks:.2%} "
        f"(alpha {rule.alpha:g} over {rule.looks} looks, at "
        f"{', '.join(map(str, rule.look_at))} pairs). Slower or faster means the whole "
        f"interval lies beyond ±{rule.effect:.1%}; no change means it lies within "
        f"±{rule.threshold:.0%}; the side run files have every pair's records.")
    body += h.paragraph(f"Verdicts: {counts} of {len(table)} cells.", "small")
    labelled = table.assign(label=table["key"].str.replace("/cpu/resident", "", regex=False))
    fig = plots.ab_forest_figure(labelled, rule.threshold, rule.effect)
    if fig is not None:
        body += h.image(plots.figure_png(fig), "B/A step time per cell with its interval",
                        "B/A step time per cell (dots) with its interval (bars); dashed: the "
                        "threshold, dotted: the smallest change called slower or faster.")
    rows = []
    for row in table.sort_values("ratio", ascending=False).to_dict("records"):
        ratio = describe_ratio(row) if isinstance(row["ratio"], float) \
            and math.isfinite(row["ratio"]) else "-"
        rows.append([row["key"], h.text(row["verdict"], _AB_CSS.get(row["verdict"], "")),
                     ratio, f"{row['status_a']} / {row['status_b']}", row["exact"] or "same"])
    body += h.table(["cell", "verdict", "B/A step time", "status A / B",
                     "exact facts (first pair)"], rows)
    return h.section(f"ab-{index}", "A/B in lockstep", body)


def _baseline_section(view: BaselineView) -> str:
    """Regressions first, then other changes; unchanged and new cells only counted."""
    rows = view.rows
    counts = rows["verdict"].value_counts() if len(rows) else pd.Series(dtype=int)
    summary = ", ".join(f"{n} {v}" for v, n in counts.items()) or "nothing to compare"
    order = {CompareVerdict.REGRESSION: 0, CompareVerdict.CHANGED: 1, CompareVerdict.MISSING: 2,
             CompareVerdict.IMPROVEMENT: 3}
    shown = rows[rows["verdict"].isin(list(order))]
    shown = shown.assign(_o=shown["verdict"].map(order)).sort_values("_o", kind="stable")
    columns = [c for c in ("key", "metric", "baseline", "current", "change", "p_value",
                           "verdict", "gated", "test") if c in rows.columns]
    body = h.paragraph(view.note)
    if view.summary:
        body += h.paragraph(view.summary.splitlines()[0], "small")
    body += h.paragraph(f"Verdicts: {summary}.", "small")
    if len(shown):
        body += h.table(columns, [[_comparison_cell(c, row[c]) for c in columns]
                                  for _, row in shown.iterrows()])
    else:
        body += h.paragraph("No regression, improvement or other change against the baseline.",
                            "small")
    new = rows[rows["verdict"] == CompareVerdict.NEW]
    if len(new):
        keys = sorted(set(new["key"]))
        body += h.details(f"{len(keys)} cell(s) not in the baseline",
                          "<ul>" + "".join(f"<li>{h.esc(k)}</li>" for k in keys) + "</ul>")
    return h.section("baseline", "Comparison with the baseline", body)


def _baseline_warnings(view: BaselineView) -> list[str]:
    verdicts = view.rows["verdict"] if len(view.rows) else pd.Series(dtype=str)
    bad = int((verdicts == CompareVerdict.REGRESSION).sum())
    if not bad:
        return []
    return [f"{bad} regression(s) against the baseline: see 'Comparison with the baseline'"]


_VERDICT_CSS = {CompareVerdict.REGRESSION: "bad", CompareVerdict.IMPROVEMENT: "good",
                CompareVerdict.CHANGED: "bad", CompareVerdict.MISSING: "bad",
                CompareVerdict.NEW: "neutral", CompareVerdict.SAME: ""}


def _comparison_cell(column: str, value: Any) -> h.Cell | Any:
    if column == "verdict":
        return h.text(value, _VERDICT_CSS.get(str(value), ""))
    if column == "change" and h._is_num(value) and math.isfinite(value):
        return h.text(f"{value:+.1%}", "num " + ("good" if value > 0 else "bad"))
    if column == "p_value" and h._is_num(value):
        return h.text(f"{value:.2g}" if math.isfinite(value) else "", "num")
    if column == "gated":
        return h.text("yes" if value else "no (machine-dependent)", "" if value else "neutral")
    return value if h._is_num(value) else h.text(h.format_number(value))


# Column -> header of the 'All cells' table; the CSV has every column under its own name.
_ALL_COLUMNS = {
    "machine": "machine", "device": "device", "case": "case", "config": "config",
    "mode": "mode", "phase": "phase", "batch": "batch", "status": "status",
    "images_per_s": "images/s", "ci_low": "CI low", "ci_high": "CI high",
    "speedup": "speed-up", "cv": "cv", "p50_ms": "p50 ms", "p99_ms": "p99 ms",
    "samples": "samples", "outliers": "outliers", "setup_s": "setup s",
    "first_result_s": "first result s", "peak_rss_mb": "peak RSS MB", "gflops": "GFLOP/s",
    "peak_fraction": "% peak", "graph_nodes": "graph nodes", "equivalent": "agrees",
    "reason": "reason",
}


_ETA_POINTS = (0.1, 0.25, 0.5)


def _time_section(runs: Sequence[Run], stages: pd.DataFrame) -> str:
    """Where the cells' time went (Record.time_s), per stage and per mode, and how close the
    progress display's ETA was to the real remaining time. `stages`: by_stage(runs)."""
    if stages.empty:
        return h.section("time", "Where the time went", h.paragraph(
            "These runs did not record where their time went (written before time accounting "
            "existed)."))
    total = float(stages["seconds"].sum())
    measuring = float(stages.loc[stages["stage"].isin(MEASURING_STAGES), "seconds"].sum())
    body = h.paragraph(
        f"The cells took {total:.0f} s. Measuring (warm-up, sampling, the paired measurement "
        f"with eager) was {measuring / total:.0%} of it: that is the part a longer budget "
        "lengthens. The rest (process start, inputs, setup, first call, equivalence steps, the "
        "eager reference, probes) is paid once per cell whatever the budget.")
    rows = [[h.text(r.stage), h.text(f"{r.seconds:.1f}", "num"), h.text(f"{r.share:.0%}", "num")]
            for r in stages.itertuples()]
    left = h.table(["stage", "seconds", "share"], rows)
    modes = by_mode(runs).head(12)
    mode_rows = [[h.text(f"{r['mode']} {r['phase']}")]
                 + [h.text(f"{r[c]:.1f}", "num")
                    for c in ("getting ready", "measuring", "probing", "total")]
                 for _, r in modes.iterrows()]
    right = h.table(["mode · phase", "getting ready s", "measuring s", "probes s", "total s"],
                    mode_rows)
    body += f'<div class="side"><div>{left}</div><div>{right}</div></div>'
    eta = []
    for run in runs:
        errors = [(p, eta_error_at(run, p)) for p in _ETA_POINTS]
        known = [f"{p:.0%} of cells: {e:+.0%}" for p, e in errors if e is not None]
        if known:
            eta.append(f"{run.header.run_id}: " + ", ".join(known))
    if eta:
        body += h.paragraph("Error of the remaining time the progress display printed, after "
                            "a share of the cells (printed / actual - 1): " + "; ".join(eta),
                            "small")
    return h.section("time", "Where the time went", body)


def _all_cells_section(frame: pd.DataFrame) -> str:
    constant = [c for c in ("machine", "device") if c in frame and frame[c].nunique() <= 1]
    columns = [c for c in _ALL_COLUMNS if c in frame.columns and c not in constant]
    rows = []
    for _, row in frame.iterrows():
        cells: list[Any] = []
        for c in columns:
            value = row[c]
            if c == "status":
                cells.append(h.raw(h.badge(str(value))))
            elif c == "reason":
                cells.append(h.text(value, "reason wide"))
            elif c == "peak_fraction":
                cells.append(h.text(_percent(value), "num"))
            else:
                cells.append(value)
        rows.append(cells)
    table = h.table([_ALL_COLUMNS[c] for c in columns], rows, css="cells")
    body = h.details(f"All {len(frame)} cells, one row each (rounds pooled); the same table, "
                     "with every column, is in the cells CSV", table)
    return h.section("all-cells", "All cells", body)
