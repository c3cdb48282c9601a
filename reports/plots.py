"""Plots for the report, each a function answering one question and returning a Figure.

Every function takes the flat frame of one machine and device (reports.table.records_frame,
plus speed-ups from reports.pivots) and returns a matplotlib Figure, or None when the run has
nothing to answer that question with (e.g. no batch sweep). Panels are drawn by seaborn from
tidy frames (one row per cell, per step or per point of a curve), with one colour per mode
(`mode_colors`) as the palette. The Agg backend is forced: reports are built on headless CI
boxes and laptops alike.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import matplotlib

from bench.modes import MODE_TABLE
from bench.stats.ab import Verdict
from bench.store.record import InputStyle, Status, is_failed

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after matplotlib.use: the backend must be chosen first
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from reports.pivots import (
    REFERENCE_MODE,
    config_params,
    cumulative_time_s,
    fixed_cost_s,
    groups,
    mode_order,
)

PANEL_WIDTH = 5.6  # inches; two panels side by side fit a 1200 px wide page at 100 dpi
DPI = 100


@contextmanager
def _style() -> Iterator[None]:
    """The report's look, scoped so importing this module changes no global matplotlib state."""
    # parse_math off: case names and configs come from records, and a stray '$' must be shown,
    # not parsed as TeX (which can raise and abort the whole report).
    rc = {"text.parse_math": False, "figure.dpi": DPI, "axes.titlesize": 11,
          "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
          "legend.fontsize": 9, "axes.titleweight": "bold"}
    with sns.axes_style("whitegrid"), plt.rc_context(rc):
        yield


# Colours of modes the table (bench.modes.MODE_TABLE) does not know, e.g. from older runs.
_SPARE_COLORS = ("#F0E442", "#8c564b", "#7f7f7f", "#17becf")


def mode_colors(modes: list[str]) -> dict[str, str]:
    """One fixed colour per mode across all plots; eager, the reference, is dark grey."""
    colors = {name: info.color for name, info in MODE_TABLE.items()}
    unknown = [m for m in mode_order(modes) if m not in colors]
    for i, mode in enumerate(unknown):
        colors[mode] = _SPARE_COLORS[i % len(_SPARE_COLORS)]
    return colors


def figure_png(fig: Figure) -> bytes:
    """Render and close a figure (closing matters: a report makes dozens of them)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)  # layouts are tight already; no second pass
    plt.close(fig)
    return buffer.getvalue()


def _inch_layout(fig: Figure, rows: int, cols: int, *, left: float = 1.0, right: float = 0.25,
                 top: float = 0.45, bottom: float = 0.6, hgap: float = 0.9,
                 wgap: float = 1.15) -> None:
    """Margins and gaps in inches for a regular panel grid.

    tight_layout measures every tick label of every panel (seconds for a dozen log-scale
    panels); the labels here are short and known, so fixed margins look the same, instantly.
    """
    width, height = fig.get_size_inches()
    axes_h = (height - top - bottom - (rows - 1) * hgap) / rows
    axes_w = (width - left - right - (cols - 1) * wgap) / cols
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                        bottom=bottom / height, hspace=hgap / axes_h, wspace=wgap / axes_w)


def _workload(key: dict) -> str:
    case = f"{key['case']}[{key['config']}]" if key["config"] else key["case"]
    label = f"{case}, batch {key['batch']}"
    resident = key.get("input", InputStyle.RESIDENT) == InputStyle.RESIDENT
    return label if resident else f"{label}, {key['input']}"


def _grid(frame: pd.DataFrame, height: float, legend: bool = False) -> tuple[Figure, list]:
    """One panel per (workload, phase) group: workloads as rows, phases as columns.

    Returns the figure and (axes, group key, rows of the group) for every used panel.
    """
    items = groups(frame)
    rows = list(dict.fromkeys(_workload(k) for k, _ in items))
    cols = list(dict.fromkeys(k["phase"] for k, _ in items))
    top = 0.75 if legend else 0.4
    fig, axes = plt.subplots(len(rows), len(cols), squeeze=False,
                             figsize=(PANEL_WIDTH * len(cols), height * len(rows) + top))
    _inch_layout(fig, len(rows), len(cols), top=top)
    panels = []
    for key, cells in items:
        ax = axes[rows.index(_workload(key)), cols.index(key["phase"])]
        ax.set_title(f"{_workload(key)} · {key['phase']}")
        panels.append((ax, key, cells))
    used = {id(ax) for ax, _, _ in panels}
    for ax in axes.flat:
        if id(ax) not in used:
            ax.set_visible(False)
    return fig, panels


def throughput_figure(frame: pd.DataFrame) -> Figure | None:
    """Which mode processes the most images per second, and how sure are we?

    Horizontal bars per mode with the 95% CI of the median as error bars, one panel per
    workload and phase; failed or skipped modes are named in the panel rather than left out.
    """
    if frame.empty:
        return None
    colors = mode_colors(list(frame["mode"]))
    with _style():
        fig, panels = _grid(frame, height=0.32 * frame["mode"].nunique() + 1.2)
        for ax, _key, cells in panels:
            modes = list(cells["mode"])
            y = np.arange(len(modes))
            values = cells["images_per_s"].to_numpy(dtype=float)
            low = values - cells["ci_low"].to_numpy(dtype=float)
            high = cells["ci_high"].to_numpy(dtype=float) - values
            # The CI is the cell's own (between workers), so seaborn draws the bars only.
            sns.barplot(data=cells.assign(images_per_s=np.nan_to_num(values)),
                        x="images_per_s", y="mode", hue="mode", order=modes, hue_order=modes,
                        palette=colors, errorbar=None, legend=False, ax=ax)
            ax.errorbar(np.nan_to_num(values), y, xerr=np.nan_to_num([low, high]), fmt="none",
                        ecolor="black", elinewidth=1, capsize=3)
            ax.set_ylabel("")
            finite = values[np.isfinite(values)]
            right = finite.max() if finite.size else 1.0
            for i, (value, status) in enumerate(zip(values, cells["status"], strict=True)):
                if status != Status.OK:
                    ax.text(right * 0.01, i, status, va="center",
                            fontsize=8, color="#b00020" if is_failed(status) else "#777")
                elif np.isfinite(value):
                    end = max(value, np.nan_to_num(value + high[i]))
                    ax.text(end + right * 0.02, i, f"{value:,.0f}", va="center", fontsize=8)
            ax.set_xlim(0, right * 1.25)
            if not finite.size:
                ax.set_xticks([])  # nothing measured: no scale to read
            ax.set_xlabel("images/s (median step, 95% CI)")
    return fig


def speedup_heatmap(frame: pd.DataFrame) -> Figure | None:
    """Where does each mode beat eager, and by how much? (cells x modes, colour = speed-up)

    The colour scale is logarithmic and centred on 1x so 2x faster and 2x slower look equally
    strong; cells without a speed-up show their status instead of a colour.
    """
    if frame.empty or "speedup" not in frame.columns:
        return None
    modes = mode_order(frame["mode"])
    labels, values, notes = [], [], []
    multi = frame.groupby(["machine", "device"]).ngroups > 1
    for key, cells in groups(frame):
        labels.append(_short_label(key, multi))
        by_mode = {row["mode"]: row for _, row in cells.iterrows()}
        values.append([by_mode[m]["speedup"] if m in by_mode else math.nan for m in modes])
        notes.append([_heat_note(by_mode.get(m)) for m in modes])
    data = np.log2(pd.DataFrame(values, index=labels, columns=modes, dtype=float))
    finite = np.abs(data.to_numpy()[np.isfinite(data.to_numpy())])
    span = max(float(finite.max()) if finite.size else 1.0, 0.5)
    ticks = [t for t in (-3, -2, -1, 0, 1, 2, 3) if abs(t) <= span]
    with _style():
        width = 0.78 * len(modes) + 0.075 * max(len(label) for label in labels) + 1.2
        fig, ax = plt.subplots(figsize=(width, 0.34 * len(labels) + 1.5))
        ax.set_facecolor("#eeeeee")  # cells without a speed-up: masked, so the grey shows
        sns.heatmap(data, mask=data.isna(), cmap="RdBu", center=0.0, vmin=-span, vmax=span,
                    xticklabels=True, yticklabels=True, ax=ax,
                    cbar_kws={"ticks": ticks, "fraction": 0.04, "pad": 0.02,
                              "label": "speed-up over eager (log scale)"})
        # Notes drawn here rather than by `annot`: masked cells need their status too.
        for i in range(len(labels)):
            for j in range(len(modes)):
                value = data.iat[i, j]
                dark = np.isfinite(value) and abs(value) > span * 0.6
                failed = is_failed(notes[i][j])
                ax.text(j + 0.5, i + 0.5, notes[i][j], ha="center", va="center", fontsize=8,
                        color="#b00020" if failed else "white" if dark else "#222",
                        fontweight="bold" if failed else "normal")
        ax.grid(False)
        ax.xaxis.tick_top()
        ax.tick_params(axis="x", rotation=0)
        ax.tick_params(axis="y", rotation=0)
        ax.collections[0].colorbar.set_ticklabels([f"{2.0 ** t:g}x" for t in ticks])
        ax.set_title("Speed-up over eager", pad=10)
        fig.tight_layout()
    return fig


def _short_label(key: dict, with_machine: bool) -> str:
    """'mobilenet α0.25 r96 · infer b32': heat-map rows must stay narrow."""
    config = _short_config(key["config"]) if key["config"] else ""
    label = f"{key['case']} {config}".strip() + f" · {key['phase']} b{key['batch']}"
    if key.get("input", InputStyle.RESIDENT) != InputStyle.RESIDENT:
        label += f" {key['input']}"
    return f"{key['machine']} {key['device']}: {label}" if with_machine else label


def _heat_note(row: pd.Series | None) -> str:
    if row is None:
        return "-"
    if row["status"] != Status.OK:
        return row["status"]
    if not np.isfinite(row["speedup"]):
        return "n/a"
    return f"{row['speedup']:.2f}x"


def distributions_figure(frame: pd.DataFrame) -> Figure | None:
    """Are the medians representative? Box plots of every raw step time, per mode.

    Times are per step in milliseconds on a log axis, so modes an order of magnitude apart
    still show their spread; dots are Tukey outliers (GC pauses, scheduler noise).
    """
    ok = frame[(frame["status"] == Status.OK) & (frame["samples"] > 0)]
    if ok.empty:
        return None
    colors = mode_colors(list(frame["mode"]))
    with _style():
        fig, panels = _grid(ok, height=0.32 * ok["mode"].nunique() + 1.2)
        for ax, _key, cells in panels:
            modes = list(cells["mode"])
            # Quartiles and whiskers of the times themselves; the axis is made log afterwards.
            sns.boxplot(data=step_times(cells), x="step_ms", y="mode", hue="mode", order=modes,
                        hue_order=modes, palette=colors, legend=False, width=0.6, ax=ax,
                        boxprops={"alpha": 0.8}, medianprops={"color": "black"},
                        flierprops={"markersize": 3, "alpha": 0.6})
            ax.set_ylabel("")
            _log_axes(ax, "x")
            ax.set_xlabel("step time (ms, log scale)")
    return fig


def step_times(cells: pd.DataFrame) -> pd.DataFrame:
    """Tidy step times: one row per measured step, with its mode, in milliseconds."""
    tidy = cells[["mode", "samples_s"]].explode("samples_s").dropna()
    return tidy.assign(step_ms=tidy["samples_s"].astype(float) * 1e3)


def _mode_lines(data: pd.DataFrame, x: str, y: str, ax, colors: dict, **kwargs) -> None:
    """One line per mode, eager (the reference) dashed: the curves of every scaling panel."""
    modes = mode_order(data["mode"])
    sns.lineplot(data=data, x=x, y=y, hue="mode", style="mode", hue_order=modes,
                 style_order=modes, palette=colors, estimator=None, sort=True, legend=False,
                 dashes={m: (4, 2) if m == REFERENCE_MODE else "" for m in modes}, ax=ax,
                 **kwargs)


MAX_JOB_STEPS = 1e12


def break_even_figure(frame: pd.DataFrame, table: pd.DataFrame) -> Figure | None:
    """For a job of N steps, which mode finishes first once setup is counted?

    Cumulative wall time = fixed cost (setup + first call) + N x median step, one line per ok
    mode on log-log axes; a dot marks where a graph mode overtakes eager (its break-even).
    """
    ok = frame[frame["status"] == Status.OK]
    if ok.empty or table.empty or not np.isfinite(table["fixed_s"]).any():
        return None  # no setup times recorded: nothing to draw
    colors = mode_colors(list(frame["mode"]))
    finite = table["break_even_steps"][np.isfinite(table["break_even_steps"])]
    # Up to ten times the largest break-even, at most MAX_JOB_STEPS (a job longer than that
    # is no job: a break-even beyond it is drawn as the curves that never cross in range).
    largest = min(float(finite.max()) if len(finite) else 1.0, MAX_JOB_STEPS)
    top = max(1e4, min(10.0 ** math.ceil(math.log10(max(largest, 1.0) * 10)), MAX_JOB_STEPS))
    steps = np.unique(np.geomspace(1, top, 200).round())
    with _style():
        fig, panels = _grid(ok, height=3.2, legend=True)
        for ax, key, cells in panels:
            curves = [pd.DataFrame({"mode": row["mode"], "steps": steps,
                                    "seconds": cumulative_time_s(fixed, row["median_s"], steps)})
                      for _, row in cells.iterrows()
                      if np.isfinite(fixed := fixed_cost_s(row)) and np.isfinite(row["median_s"])]
            if curves:
                _mode_lines(pd.concat(curves), "steps", "seconds", ax, colors, linewidth=1.6)
            _mark_break_even(ax, key, table, colors)
            _log_axes(ax, "xy")
            ax.set_xlabel("job length (steps after the first result)")
            ax.set_ylabel("cumulative time (s)")
        _top_legend(fig, ok["mode"], colors)
    return fig


def _mark_break_even(ax, key: dict, table: pd.DataFrame, colors: dict) -> None:
    mask = np.ones(len(table), dtype=bool)
    for name in ("run_id", "machine", "device", "case", "config", "phase", "input", "batch"):
        mask &= (table[name] == key[name]).to_numpy()
    for _, row in table[mask].iterrows():
        n = row["break_even_steps"]
        if row["mode"] == REFERENCE_MODE or not np.isfinite(n) or not 1 <= n <= MAX_JOB_STEPS:
            continue
        t = cumulative_time_s(row["fixed_s"], row["step_ms"] / 1e3, n)
        ax.plot([n], [t], "o", color=colors[row["mode"]], markersize=6,
                markeredgecolor="black", markeredgewidth=0.6)


def _log_axes(ax, which: str) -> None:
    """Log scale labelled at 1-2-5 steps on short ranges and at decades on long ones.

    Call after plotting: the density depends on the data range (a bare power of ten per panel
    is too few to read, 1-2-5 steps over five decades collide).
    """
    for name in which:
        axis = ax.xaxis if name == "x" else ax.yaxis
        (ax.set_xscale if name == "x" else ax.set_yscale)("log")
        low, high = ax.get_xlim() if name == "x" else ax.get_ylim()
        decades = math.log10(high / low) if low > 0 and high > low else 1.0
        subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)
        axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
        axis.set_major_formatter(FuncFormatter(lambda v, _: _compact_number(v)))
        axis.set_minor_formatter(NullFormatter())


def _compact_number(value: float) -> str:
    """Tick labels: 0.5, 20, 1k, 100k, 1M."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"


def _top_legend(fig: Figure, modes: Iterable[str], colors: dict) -> None:
    """One legend for all panels, above them (per-panel legends would hide curves)."""
    names = mode_order(modes)
    handles = [Line2D([], [], color=colors[m], linestyle="--" if m == REFERENCE_MODE else "-")
               for m in names]
    if handles:
        fig.legend(handles, names, loc="upper center", ncol=len(names), frameon=False,
                   bbox_to_anchor=(0.5, 1.0))


def batch_scaling_figure(frame: pd.DataFrame) -> Figure | None:
    """How does throughput grow with batch size? (only workloads run at several batch sizes)"""
    ok = frame[frame["status"] == Status.OK]
    swept = [(k, c) for k, c in ok.groupby(["case", "config", "phase", "input"], sort=False)
             if c["batch"].nunique() > 1]
    if not swept:
        return None
    colors = mode_colors(list(frame["mode"]))
    cols = min(2, len(swept))
    rows = math.ceil(len(swept) / cols)
    with _style():
        fig, axes = plt.subplots(rows, cols, squeeze=False,
                                 figsize=(PANEL_WIDTH * cols, 3.4 * rows + 0.75))
        _inch_layout(fig, rows, cols, top=0.75)
        for ax, ((case, config, phase, _), cells) in zip(axes.flat, swept, strict=False):
            _mode_lines(cells, "batch", "images_per_s", ax, colors, marker="o")
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(cells["batch"].unique()),
                          [str(b) for b in sorted(cells["batch"].unique())])
            ax.set_title(f"{case}[{config}] · {phase}" if config else f"{case} · {phase}")
            ax.set_xlabel("batch size (images per step)")
            ax.set_ylabel("images/s (median)")
            ax.set_ylim(bottom=0)
        for ax in axes.flat[len(swept):]:
            ax.set_visible(False)
        _top_legend(fig, ok["mode"], colors)
    return fig


def model_scaling_figure(frame: pd.DataFrame) -> Figure | None:
    """How do throughput and achieved FLOP/s change with model size (MACs per image)?

    One panel row per case run in several configurations (e.g. MobileNet alpha and
    resolution) and phase, at the case's most common batch size; one point per configuration,
    placed by its MACs per image. The right panel's second axis is the share of the machine's
    measured peak FLOP/s, when the run measured it.
    """
    ok = frame[(frame["status"] == Status.OK) & frame["macs"].notna()]
    panels = []
    for (case, phase), cells in ok.groupby(["case", "phase"], sort=False):
        cells = cells[cells["batch"] == cells["batch"].mode().iloc[0]]
        if cells["config"].nunique() > 1:
            panels.append((case, phase, cells))
    if not panels:
        return None
    colors = mode_colors(list(frame["mode"]))
    has_flops = ok["gflops"].notna().any()
    known = ok[ok["peak_fraction"] > 0]
    peak_gflops = float((known["gflops"] / known["peak_fraction"]).iloc[0]) if len(known) else 0
    ncols = 2 if has_flops else 1
    with _style():
        fig, axes = plt.subplots(len(panels), ncols, squeeze=False,
                                 figsize=(PANEL_WIDTH * ncols, 3.6 * len(panels) + 0.75))
        _inch_layout(fig, len(panels), ncols, top=0.75, bottom=0.8, hgap=1.1,
                     right=0.75 if peak_gflops else 0.25, wgap=1.75 if peak_gflops else 1.15)
        for row_axes, (case, phase, cells) in zip(axes, panels, strict=True):
            metrics = [("images_per_s", "images/s (median)")]
            if has_flops:
                metrics.append(("gflops", "achieved GFLOP/s"))
            for ax, (column, label) in zip(row_axes, metrics, strict=True):
                _scaling_panel(ax, cells, column, colors)
                batch = cells["batch"].iloc[0]
                ax.set_title(f"{case} · {phase} · batch {batch}: {label.split(' (')[0]}")
                ax.set_xlabel("configuration (MACs per image, log scale)")
                ax.set_ylabel(label)
                if column == "gflops" and peak_gflops:
                    right = ax.secondary_yaxis("right", functions=(
                        lambda g: g / peak_gflops * 100, lambda p: p * peak_gflops / 100))
                    right.set_ylabel("% of measured peak FLOP/s")
        _top_legend(fig, ok["mode"], colors)
    return fig


def _scaling_panel(ax, cells: pd.DataFrame, column: str, colors: dict) -> None:
    _mode_lines(cells, "macs", column, ax, colors, marker="o", markersize=5)
    configs = cells.drop_duplicates("config").sort_values("macs")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xticks(configs["macs"], [f"{_short_config(c) or 'default'}\n{m / 1e6:.0f}M"
                                    for c, m in zip(configs["config"], configs["macs"],
                                                    strict=True)])
    lo, hi = configs["macs"].min(), configs["macs"].max()
    ax.set_xlim(lo / 1.25, hi * 1.25)
    ax.set_ylim(bottom=0, top=cells[column].max() * 1.15)


def _short_config(config: str) -> str:
    """'alpha=0.25,resolution=96' -> 'α0.25 r96' so tick labels stay short."""
    short = {"alpha": "α", "resolution": "r", "width": "w", "depth": "d"}
    return " ".join(f"{short.get(k, k + '=')}{v}" if v else k
                    for k, v in config_params(config).items())


def ab_forest_figure(table: pd.DataFrame, threshold: float, margin: float) -> Figure | None:
    """A/B per cell: B/A step time with its interval, 1 and the thresholds marked.

    Answers "what changed between the two builds, and how sure is each cell": a point right of
    1 is B slower. Cells are ordered by ratio; colour is the verdict.
    """
    data = table[table["ratio"].map(lambda v: isinstance(v, float) and math.isfinite(v))]
    if data.empty:
        return None
    data = data.sort_values("ratio").reset_index(drop=True)
    colors = {Verdict.SLOWER: "#D55E00", Verdict.FASTER: "#009E73", Verdict.SAME: "#0072B2",
              Verdict.UNDECIDED: "#7f7f7f"}
    with _style():
        height = 1.6 + 0.28 * len(data)
        left = min(0.3 + 0.075 * max(len(str(k)) for k in data["label"]), 6.5)
        fig, ax = plt.subplots(figsize=(left + 5.5, height))
        _inch_layout(fig, 1, 1, left=left, top=0.9, bottom=0.55)
        # One cell's wide interval must not squeeze every other cell against 1: the axis
        # spans the middle 90% of the interval ends (and at least twice the threshold);
        # an interval running past it ends in an arrow at the edge.
        ends = pd.concat([data["low"], data["high"], data["ratio"]]).astype(float)
        ends = ends[np.isfinite(ends)]
        x_lo = min(float(ends.quantile(0.05)), 1 / (1 + 2 * threshold))
        x_hi = max(float(ends.quantile(0.95)), 1 + 2 * threshold)
        for y, row in data.iterrows():
            color = colors.get(row["verdict"], "#000000")
            low, high = row["low"], row["high"]
            if math.isfinite(low) and math.isfinite(high):
                ax.plot([max(low, x_lo), min(high, x_hi)], [y, y], color=color, linewidth=2)
                for end, edge, marker in ((low, x_lo, "<"), (high, x_hi, ">")):
                    if (end < edge) if marker == "<" else (end > edge):
                        ax.plot([edge], [y], marker, color=color, markersize=6)
            ax.plot([min(max(row["ratio"], x_lo), x_hi)], [y], "o", color=color, markersize=5)
        ax.set_xlim(x_lo * 0.99, x_hi * 1.01)
        ax.axvline(1.0, color="black", linewidth=1)
        for x in (1 + threshold, 1 / (1 + threshold)):
            ax.axvline(x, color="#D55E00", linestyle="--", linewidth=1)
        for x in (1 + margin, 1 / (1 + margin)):
            ax.axvline(x, color="#7f7f7f", linestyle=":", linewidth=1)
        ax.set_yticks(range(len(data)))
        ax.set_yticklabels(data["label"])
        ax.set_ylim(-0.6, len(data) - 0.4)
        ax.set_xlabel("B/A step time (right of 1: B slower)")
        handles = [plt.Line2D([], [], color=c, marker="o", linewidth=2, label=v)
                   for v, c in colors.items() if (data["verdict"] == v).any()]
        handles += [plt.Line2D([], [], color="#D55E00", linestyle="--",
                               label=f"threshold ±{threshold:.0%}"),
                    plt.Line2D([], [], color="#7f7f7f", linestyle=":",
                               label=f"slower/faster from ±{margin:.1%}")]
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=3,
                  frameon=False)
    return fig
