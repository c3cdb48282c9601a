"""The trends page: throughput and speed-up over eager per cell, over commits, steps marked.

One self-contained HTML file (inline CSS, plots as base64 PNG), so it can be attached to a CI
job or opened from disk: the report's base page and stylesheet (reports/templates/trends.html
extends base.html), so every string that comes from data is escaped by the template. Plots are
drawn on `matplotlib.figure.Figure` objects directly (Agg, no pyplot), so no global state is
touched.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from pathlib import Path

from bench.store.atomic import write_atomically
from bench.store.paths import printable
from reports import html as h
from reports.format import format_value
from reports.history import HistoryEntry, Series, Step, load_history, series

METRIC_LABELS = {"images_per_s": "throughput (images/s)", "speedup": "speed-up over eager"}


def write_trends(history_path: str | os.PathLike, out_html: str | os.PathLike,
                 threshold: float = 0.05, alpha: float = 0.05) -> Path:
    """Read a history file and write the trends page (atomically); returns the page's path."""
    page = render_history(history_path, threshold, alpha)
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(out, page)


def render_history(history_path: str | os.PathLike, threshold: float = 0.05,
                   alpha: float = 0.05) -> str:
    """The trends page of a history file, as a string."""
    history = load_history(history_path)
    return render_trends(history.entries, threshold, alpha, problems=history.problems,
                         source=printable(history_path))


def render_trends(entries: Sequence[HistoryEntry], threshold: float = 0.05, alpha: float = 0.05,
                  problems: Sequence[str] = (), source: str = "") -> str:
    """The whole page as a string: a table of detected steps, then one plot per cell."""
    by_metric = {m: series(entries, m, threshold, alpha) for m in METRIC_LABELS}
    keys = sorted({s.key for found in by_metric.values() for s in found})
    order = _run_order(entries)
    cells = [(key, _plot({m: [s for s in by_metric[m] if s.key == key] for m in METRIC_LABELS},
                         order)) for key in keys]
    return h.page("Benchmark trends", "", "trends.html", runs=len({e.run_id for e in entries}),
                  cells=cells, source=source, threshold=f"{threshold:.0%}", alpha=f"{alpha:g}",
                  problems=list(problems), steps_header=STEPS_HEADER, steps=_steps(by_metric))


STEPS_HEADER = ("cell", "metric", "machine", "first commit after", "date",
                "median before → after", "change", "p")


def _steps(by_metric: dict[str, list[Series]]) -> list[list[h.Cell]]:
    """One row per detected step; cell text is formatted here, escaped by the template."""
    rows = []
    for metric, found in by_metric.items():
        for s in found:
            for step in s.steps:
                entry = s.entries[step.index]
                rows.append([h.text(s.key), h.text(METRIC_LABELS[metric]),
                             h.text(_series_label(s, "-")), h.text(entry.commit[:12]),
                             h.text(entry.date),
                             h.text(f"{format_value(step.before)} → {format_value(step.after)}"),
                             h.text(f"{step.change:+.1%}", "up" if step.change > 0 else "down"),
                             h.text(f"{step.p_value:.2g}")])
    return rows


def _run_order(entries: Sequence[HistoryEntry]) -> dict[str, int]:
    """run_id -> x position: all runs on one axis, oldest first, so plots line up by commit."""
    runs = sorted({(e.date, e.run_id) for e in entries})
    return {run_id: x for x, (_, run_id) in enumerate(runs)}


def _short(fingerprint: str) -> str:
    return fingerprint[:10]


def _series_label(s: Series, unknown: str) -> str:
    """The machine, and for a speed-up the measurement it came from (paired, separate workers)."""
    machine = _short(s.fingerprint) or unknown
    return f"{machine} ({s.source})" if s.source else machine


def _plain_text(text: str) -> str:
    """Data shown inside a plot: a '$' would otherwise switch matplotlib into math mode."""
    return text.replace("$", r"\$")


def _plot(found: dict[str, list[Series]], order: dict[str, int]) -> str:
    """Two panels (throughput, speed-up) for one cell, one line per machine, steps marked."""
    from matplotlib.figure import Figure  # lazy: only the report needs matplotlib

    fig = Figure(figsize=(10, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    labels: dict[int, str] = {}
    for ax, (metric, all_series) in zip(axes, found.items(), strict=True):
        ax.set_title(METRIC_LABELS[metric], fontsize=10)
        ax.grid(alpha=0.3)
        if not all_series:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            continue
        for s in all_series:
            _draw(ax, s, order, labels)
        if len(all_series) > 1:
            ax.legend(fontsize=7)
    for ax in axes:
        _commit_ticks(ax, labels)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _draw(ax, s: Series, order: dict[str, int], labels: dict[int, str]) -> None:
    xs = [order[e.run_id] for e in s.entries]
    ys = s.values
    for x, e in zip(xs, s.entries, strict=True):
        labels[x] = _plain_text(e.commit[:7])
    low_name, high_name = ("ips_ci_low", "ips_ci_high") if s.metric == "images_per_s" else (
        "speedup_ci_low", "speedup_ci_high")
    lows = [getattr(e, low_name) for e in s.entries]
    highs = [getattr(e, high_name) for e in s.entries]
    errors = [[max(0.0, y - lo) if lo is not None else 0.0 for y, lo in zip(ys, lows, strict=True)],
              [max(0.0, hi - y) if hi is not None else 0.0
               for y, hi in zip(ys, highs, strict=True)]]
    line = ax.errorbar(xs, ys, yerr=errors, marker="o", markersize=3, capsize=2,
                       label=_plain_text(_series_label(s, "unknown machine")))
    for step in s.steps:
        _mark(ax, step, xs, line.lines[0].get_color())


def _mark(ax, step: Step, xs: list[int], color: str) -> None:
    """A dashed line between the last point before and the first point after the step."""
    x = (xs[step.index - 1] + xs[step.index]) / 2.0
    ax.axvline(x, color="#c00", linestyle="--", linewidth=1)
    ax.annotate(f"{step.change:+.0%}", (x, 1.0), xycoords=("data", "axes fraction"),
                xytext=(2, -10), textcoords="offset points", color="#c00", fontsize=8)


def _commit_ticks(ax, labels: dict[int, str]) -> None:
    """Short commit hashes under the points; thinned so they stay readable."""
    xs = sorted(labels)
    stride = max(1, len(xs) // 12)
    shown = xs[::stride]
    ax.set_xticks(shown)
    ax.set_xticklabels([labels[x] for x in shown], rotation=45, fontsize=7, ha="right")
