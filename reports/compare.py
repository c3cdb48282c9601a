"""Compare a current run with a baseline: what changed, and is it more than noise?

A speed change is a *regression* only when it is both larger than a threshold (default 5%) and
statistically significant on the raw samples (asv and pyperf do the same), so noise alone never
fails a build and a tiny but real slow-down does not either. Three kinds of metric:

- ``images_per_s``: absolute throughput. Each worker process (round) is one replicate, its
  median one value, and the two sides' worker values are compared with Student's t-test
  (pooled variance) on their logarithms (bench.stats.replicates): thousands of steps from a handful
  of processes are a handful of observations, not thousands. It depends on the machine, so
  it gates only when both sides carry the same machine fingerprint (or the caller insists).
- ``speedup_vs_eager``: the speed-up of reports.speedup on each side. Measured *paired*,
  alternating step by step inside each worker, the worker's and the machine's state cancel;
  one ratio per worker, compared the same way. When a side has no paired data, or a single
  paired worker, both sides fall back to the separate-workers speed-up and its per-round
  ratios (`_speedup_test`: Mann-Whitney, or the bootstrap replicates with few rounds).
- exact metrics: cell status, numerical equivalence, graph node counts and debuggability
  probes. They do not depend on speed, so any difference is reported, and one that is not
  clearly better is a failure ("changed"): refresh the baseline when it was intended.

Everything here is plain numpy/pandas over `bench.store.runfiles.Run`; no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from bench.modes import REFERENCE_MODE
from bench.stats.replicates import (
    SPEEDUP_OUTLIER,
    THROUGHPUT_OUTLIER,
    compare_replicates,
    used_values,
)
from bench.stats.samples import mann_whitney_u
from bench.store.record import Status
from bench.store.runfiles import Run
from reports.format import format_value as _format_value
from reports.pool import PooledCell, pool_cells
from reports.speedup import PAIRED, Speedup, eager_key, speedup_over_eager


class CompareVerdict(StrEnum):
    """What one comparison row found; like Status, a member is its own name as a string."""

    REGRESSION = "regression"  # worse beyond the threshold and significant, or no longer ok
    IMPROVEMENT = "improvement"
    SAME = "same"
    NEW = "new"  # only the current run has it, or it works now
    MISSING = "missing"  # only the baseline has it
    CHANGED = "changed"  # an exact metric that moved in no clearly better direction


# Verdicts that fail the gate (when the row is gated). "changed" fails too, so that the
# baseline is refreshed on purpose.
FAILING_VERDICTS = (CompareVerdict.REGRESSION, CompareVerdict.CHANGED)
COLUMNS = ["key", "metric", "baseline", "current", "change", "p_value", "verdict", "gated",
           "test"]
SPEED_METRICS = ("images_per_s", "speedup_vs_eager")

_MISSING = str(CompareVerdict.MISSING)  # the status of a cell one side lacks: the verdict's word


# --------------------------------------------------------------------------- machines


def run_fingerprint(run: Run) -> str | None:
    """The opaque machine fingerprint of a run's header, None when absent."""
    value = (run.header.machine or {}).get("fingerprint")
    return str(value) if value else None


def machines_match(baseline: Sequence[Run], current: Sequence[Run]) -> tuple[bool, str]:
    """Whether absolute throughput is comparable: one fingerprint shared by every run."""
    prints = {run_fingerprint(run) for run in [*baseline, *current]}
    if None in prints:
        return False, "a machine fingerprint is missing"
    if len(prints) == 1:
        return True, "same machine fingerprint"
    return False, "machine fingerprints differ"


# --------------------------------------------------------------------------- the result


@dataclass
class CompareResult:
    """One row per (cell, metric); `regressed` is what a CI gate exits on."""

    rows: pd.DataFrame
    gated_absolute: bool
    regressed: bool
    threshold: float = 0.05
    alpha: float = 0.01
    absolute_reason: str = ""

    def failures(self) -> pd.DataFrame:
        return self.rows[self.rows["gated"] & self.rows["verdict"].isin(FAILING_VERDICTS)]

    def summary(self) -> str:
        """A few readable lines: what regressed, what improved, what is new or missing."""
        rows = self.rows
        cells = rows["key"].nunique()
        gate = "gated" if self.gated_absolute else "NOT gated"
        lines = [(
            f"compared {cells} cells (threshold {self.threshold:.0%}, alpha {self.alpha:g}); "
            f"absolute throughput {gate} ({self.absolute_reason})"
        )]
        failures = self.failures()
        ungated = rows[~rows["gated"] & rows["verdict"].isin(FAILING_VERDICTS)]
        groups = [
            ("REGRESSED", failures),
            ("not gated (machine-dependent)", ungated),
            ("improved", rows[rows["verdict"] == CompareVerdict.IMPROVEMENT]),
            (CompareVerdict.NEW, rows[rows["verdict"] == CompareVerdict.NEW]),
            (CompareVerdict.MISSING, rows[rows["verdict"] == CompareVerdict.MISSING]),
        ]
        for title, part in groups:
            if part.empty:
                continue
            lines.append(f"{title}: {len(part)}")
            lines.extend(f"  {describe(row)}" for row in part.to_dict("records"))
        lines.append("result: REGRESSION" if self.regressed else "result: no regression")
        return "\n".join(lines) + "\n"


def describe(row: dict[str, Any]) -> str:
    """One line for one comparison row, e.g. 'cnn/... images_per_s: 812 -> 604 (-25.6%, p=1e-9)'."""
    old, new = format_value(row["baseline"]), format_value(row["current"])
    text = f"{row['key']} {row['metric']}: {old} -> {new}"
    details = []
    if _finite(row["change"]):
        details.append(f"{row['change']:+.1%}")
    if _finite(row["p_value"]):
        details.append(f"p={row['p_value']:.2g}")
    details.append(row["verdict"])
    return f"{text} ({', '.join(details)})"


def format_value(value: Any) -> str:
    """The one value formatter (reports.format), with "-" for a missing value."""
    return _format_value(value, missing="-")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and math.isfinite(value)


# --------------------------------------------------------------------------- comparing


def compare_runs(
    baseline: list[Run],
    current: list[Run],
    threshold: float = 0.05,
    alpha: float = 0.01,
    gate_absolute: bool | None = None,
    shared_threshold: float | None = None,
    shift_runs: list[Run] | None = None,
) -> CompareResult:
    """Compare every cell of `current` with the same cell of `baseline`.

    gate_absolute None decides from the machine fingerprints (`machines_match`).
    shared_threshold: judge each mode's speed-up change with the shift its whole group shares
    taken out (`group_shifts`) against `threshold`, and its raw change against this wider
    threshold; None judges the raw change against `threshold`. `shift_runs` (default `current`)
    are the runs the shared shifts are estimated from (a confirmation run of a few flagged
    cells borrows them from the run it confirms).
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    same_machine, reason = machines_match(baseline, current)
    if gate_absolute is None:
        gate_absolute = same_machine
    else:
        reason = "forced on" if gate_absolute else "forced off"
    base, cur = pool_cells(baseline), pool_cells(current)
    shifts = {}
    if shared_threshold:
        shifts = group_shifts(base, pool_cells(shift_runs) if shift_runs else cur)
    rules = _Rules(threshold, alpha, gate_absolute, shared_threshold, shifts)
    keys = list(base) + [k for k in cur if k not in base]
    rows: list[dict[str, Any]] = []
    for key in keys:
        rows.extend(_compare_cell(key, base, cur, rules))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["gated"] = frame["gated"].astype(bool)
    regressed = bool((frame["gated"] & frame["verdict"].isin(FAILING_VERDICTS)).any())
    return CompareResult(frame, gate_absolute, regressed, threshold, alpha, reason)


@dataclass(frozen=True)
class _Rules:
    threshold: float
    alpha: float
    gate_absolute: bool
    shared_threshold: float | None = None
    shifts: dict[str, float] = field(default_factory=dict)  # group key -> shared log shift

    def speed_verdict(self, change: float, p_value: float) -> str:
        """Threshold *and* significance: a big change in noise, or a small real one, is 'same'."""
        if not (abs(change) > self.threshold and p_value < self.alpha):
            return CompareVerdict.SAME
        return CompareVerdict.IMPROVEMENT if change > 0 else CompareVerdict.REGRESSION


def _row(key: str, metric: str, baseline: Any, current: Any, verdict: str,
         change: float = math.nan, p_value: float = math.nan, gated: bool = True,
         test: str = "exact") -> dict[str, Any]:
    return {"key": key, "metric": metric, "baseline": baseline, "current": current,
            "change": change, "p_value": p_value, "verdict": str(verdict), "gated": gated,
            "test": test}


def _compare_cell(key: str, base: dict[str, PooledCell], cur: dict[str, PooledCell],
                  rules: _Rules) -> list[dict[str, Any]]:
    b, c = base.get(key), cur.get(key)
    b_status = b.status if b else _MISSING
    c_status = c.status if c else _MISSING
    rows = [_row(key, "status", b_status, c_status, _status_verdict(b_status, c_status))]
    if b is None or c is None or not (b.ok and c.ok):
        return rows
    if len(b.samples) and len(c.samples):
        rows.append(_throughput_row(key, b, c, rules))
    if c.cell.mode != REFERENCE_MODE:
        row = _speedup_row(key, b, base.get(eager_key(b.cell)), c, cur.get(eager_key(c.cell)),
                           rules)
        if row:
            rows.append(row)
    rows.extend(_exact_rows(key, b, c))
    return rows


def _status_verdict(baseline: str, current: str) -> str:
    if baseline == current:
        return CompareVerdict.SAME
    if baseline == Status.OK:
        # Failed, skipped or gone: whatever it was, it no longer works.
        return CompareVerdict.REGRESSION
    if current == Status.OK:
        return CompareVerdict.NEW
    if current == _MISSING:
        return CompareVerdict.MISSING
    # E.g. skipped -> error: not ok either way, but not what was recorded.
    return CompareVerdict.CHANGED


def _replicate_row(key: str, metric: str, b_values: list[float], c_values: list[float],
                   rel: float, gated: bool, rules: _Rules, what: str) -> dict[str, Any] | None:
    """A row tested on worker replicates, or None when a side has fewer than two workers."""
    b_used, c_used = used_values(b_values, rel), used_values(c_values, rel)
    if len(b_used) < 2 or len(c_used) < 2:
        return None
    change, p_value = compare_replicates(b_used, c_used)
    b_center = float(np.exp(np.mean(np.log(b_used))))
    test = f"t-test on log {what}, {len(b_used)} vs {len(c_used)} workers"
    return _row(key, metric, b_center, b_center * (1 + change),
                rules.speed_verdict(change, p_value), change, p_value, gated, test)


def _throughput_row(key: str, b: PooledCell, c: PooledCell, rules: _Rules) -> dict[str, Any]:
    row = _replicate_row(key, "images_per_s", list(b.worker_ips.values()),
                         list(c.worker_ips.values()), THROUGHPUT_OUTLIER, rules.gate_absolute,
                         rules, "worker medians")
    if row:
        return row
    b_samples, c_samples = b.samples, c.samples
    b_ips, c_ips = b.images_per_s(b_samples), c.images_per_s(c_samples)
    change = c_ips / b_ips - 1.0
    p_value = mann_whitney_u(b_samples, c_samples)
    test = f"mann-whitney, {len(b_samples)} vs {len(c_samples)} samples (single worker)"
    return _row(key, "images_per_s", b_ips, c_ips, rules.speed_verdict(change, p_value),
                change, p_value, rules.gate_absolute, test)


def group_shifts(base: dict[str, PooledCell], cur: dict[str, PooledCell]) -> dict[str, float]:
    """Per comparison group (bench.store.record.Cell.group_key): the log change of the paired
    speed-ups that the group's modes share, the median over its modes (at least three).

    Measured on the shared VMs this suite runs on: between a baseline and a run minutes later
    the machine's state (its speed swings +-10% over seconds to minutes, `bench noise`) moves
    the speed-ups of all of a case's graph modes together, by up to 10%, because it slows
    Python-bound eager more or less than kernel-bound graphs. A regression of one mode moves
    that mode alone, so it stands out against the shared shift; a shift of every mode at once
    is judged on its own, with the wider threshold.
    """
    per_group: dict[str, list[float]] = {}
    for key, b in base.items():
        c = cur.get(key)
        if c is None or b.cell.mode == REFERENCE_MODE:
            continue
        pair = _paired_pair(speedup_over_eager(b, base.get(eager_key(b.cell))),
                            speedup_over_eager(c, cur.get(eager_key(c.cell))))
        if pair:
            b_used, c_used = pair
            shift = float(np.mean(np.log(c_used)) - np.mean(np.log(b_used)))
            per_group.setdefault(b.cell.group_key, []).append(shift)
    return {group: float(np.median(v)) for group, v in per_group.items() if len(v) >= 3}


def _paired_pair(b: Speedup | None, c: Speedup | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Both sides' paired worker speed-ups when each has at least two, else None."""
    if b is None or c is None or b.source != PAIRED or c.source != PAIRED:
        return None
    b_used = used_values(list(b.samples), SPEEDUP_OUTLIER)
    c_used = used_values(list(c.samples), SPEEDUP_OUTLIER)
    return (b_used, c_used) if len(b_used) >= 2 and len(c_used) >= 2 else None


def _shifted_speedup_row(key: str, group: str, b_used: np.ndarray, c_used: np.ndarray,
                         rules: _Rules) -> dict[str, Any] | None:
    """The mode's own change (its group's shared shift taken out) against `threshold`, and its
    raw change against `shared_threshold`: a regression if either is beyond its threshold and
    significant. The row shows the measured (raw) change and its p-value, so its numbers read
    as baseline -> current; `test` gives the mode's own change beside it."""
    shift = rules.shifts.get(group)
    if shift is None:
        return None
    own, p_own = compare_replicates(b_used, c_used * math.exp(-shift))
    raw, p_raw = compare_replicates(b_used, c_used)
    verdicts = {rules.speed_verdict(own, p_own),
                _Rules(rules.shared_threshold, rules.alpha, True).speed_verdict(raw, p_raw)}
    verdict = next((v for v in (CompareVerdict.REGRESSION, CompareVerdict.IMPROVEMENT)
                    if v in verdicts), CompareVerdict.SAME)
    b_center = float(np.exp(np.mean(np.log(b_used))))
    test = (f"t-test on log paired worker speed-ups, {len(b_used)} vs {len(c_used)} workers; "
            f"{own:+.1%} (p={p_own:.2g}) after the group's shared {math.expm1(shift):+.1%}, "
            f"{raw:+.1%} (p={p_raw:.2g}) raw")
    return _row(key, "speedup_vs_eager", b_center, b_center * (1 + raw), verdict, raw, p_raw,
                True, test)


def _speedup_row(key: str, b: PooledCell, b_eager: PooledCell | None, c: PooledCell,
                 c_eager: PooledCell | None, rules: _Rules) -> dict[str, Any] | None:
    """Both sides' speed-ups (reports.speedup): paired workers tested against each other when
    each side has two or more, the separate-workers speed-ups otherwise."""
    b_speedup, c_speedup = speedup_over_eager(b, b_eager), speedup_over_eager(c, c_eager)
    pair = _paired_pair(b_speedup, c_speedup)
    if pair:
        row = (_shifted_speedup_row(key, c.cell.group_key, *pair, rules)
               if rules.shared_threshold else None)
        return row or _replicate_row(key, "speedup_vs_eager", list(pair[0]), list(pair[1]),
                                     SPEEDUP_OUTLIER, True, rules, "paired worker speed-ups")
    b_speedup = speedup_over_eager(b, b_eager, paired=False)
    c_speedup = speedup_over_eager(c, c_eager, paired=False)
    if b_speedup is None and c_speedup is None:
        return None  # no eager reference on either side: nothing to compare
    if b_speedup is None or c_speedup is None:
        # The eager cell's own status row says why; here it is only a lost (or new) number.
        verdict = CompareVerdict.MISSING if c_speedup is None else CompareVerdict.NEW
        return _row(key, "speedup_vs_eager", b_speedup.value if b_speedup else None,
                    c_speedup.value if c_speedup else None, verdict)
    change = c_speedup.value / b_speedup.value - 1.0
    p_value, test = _speedup_test(b_speedup, c_speedup, rules.alpha)
    return _row(key, "speedup_vs_eager", b_speedup.value, c_speedup.value,
                rules.speed_verdict(change, p_value), change, p_value, True, test)


def _min_mann_whitney_p(n1: int, n2: int) -> float:
    """The smallest two-sided exact p-value Mann-Whitney can give: complete separation."""
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def _speedup_test(b: Speedup, c: Speedup, alpha: float) -> tuple[float, str]:
    """p-value for 'the speed-up changed', from per-round ratios when there are enough rounds.

    With few rounds Mann-Whitney cannot reach alpha at all (3 vs 3 rounds: p >= 0.1), so then
    the p-value is the two-sided bootstrap tail of log(current / baseline) around zero, from
    each side's bootstrap replicates of its speed-up (steps resampled; a single round is the
    extreme case).
    """
    n1, n2 = len(b.samples), len(c.samples)
    if _min_mann_whitney_p(n1, n2) < alpha:
        return mann_whitney_u(b.samples, c.samples), f"mann-whitney, {n1} vs {n2} rounds"
    diff = np.log(np.asarray(c.replicates)) - np.log(np.asarray(b.replicates))
    tail = min(int((diff <= 0).sum()), int((diff >= 0).sum()))
    p_value = min(1.0, 2.0 * (tail + 1) / (len(diff) + 1))
    return p_value, f"bootstrap, {n1} vs {n2} rounds"


def _exact_rows(key: str, b: PooledCell, c: PooledCell) -> list[dict[str, Any]]:
    rows = []
    if b.equivalent is not None or c.equivalent is not None:
        rows.append(_row(key, "equivalent", b.equivalent, c.equivalent,
                         _equivalence_verdict(b.equivalent, c.equivalent)))
    for name in _union(b.graph_nodes, c.graph_nodes):
        old, new = b.graph_nodes.get(name), c.graph_nodes.get(name)
        change = new / old - 1.0 if old and new is not None else math.nan
        rows.append(_row(key, f"graph_nodes.{name}", old, new, _exact_verdict(old, new), change))
    b_probes, c_probes = _probe_values(b.debug), _probe_values(c.debug)
    for name in _union(b_probes, c_probes):
        old, new = b_probes.get(name), c_probes.get(name)
        rows.append(_row(key, f"debug.{name}", old, new, _exact_verdict(old, new)))
    return rows


def _union(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return list(a) + [k for k in b if k not in a]


def _probe_values(debug: dict[str, Any]) -> dict[str, Any]:
    """Probe facts that do not depend on speed: booleans, counts, labels; timings are skipped."""
    return {k: v for k, v in debug.items()
            if not k.endswith(("_s", "_ms"))
            and (v is None or isinstance(v, (bool, int, str)))}


def _equivalence_verdict(old: bool | None, new: bool | None) -> str:
    if old is None:
        return CompareVerdict.NEW
    if new is None:
        return CompareVerdict.MISSING
    if old == new:
        return CompareVerdict.SAME
    return CompareVerdict.REGRESSION if old else CompareVerdict.IMPROVEMENT


def _exact_verdict(old: Any, new: Any) -> str:
    if old is None and new is not None:
        return CompareVerdict.NEW
    if new is None and old is not None:
        return CompareVerdict.MISSING
    return CompareVerdict.SAME if old == new else CompareVerdict.CHANGED


# --------------------------------------------------------------------------- confirmation

# Metrics whose failure can be a fluke of the machine (a slow patch, a killed worker), so the
# gate re-measures the cell before believing it; exact metrics are deterministic.
CONFIRMED_METRICS = (*SPEED_METRICS, "status")


def needs_confirmation(result: CompareResult) -> list[str]:
    """Cell keys whose gated failures are speed or status failures (worth re-measuring)."""
    failures = result.failures()
    keys = failures.loc[failures["metric"].isin(CONFIRMED_METRICS), "key"]
    return list(dict.fromkeys(keys))


def confirmed_failures(first: CompareResult, second: CompareResult | None) -> pd.DataFrame:
    """The first comparison's failures that stand: exact ones always, speed and status ones
    only when the confirmation run (fresh workers) fails the same cell and metric again."""
    failures = first.failures()
    flaky = failures["metric"].isin(CONFIRMED_METRICS)
    if second is None:
        return failures[~flaky]
    again = {(k, m) for k, m in second.failures()[["key", "metric"]].itertuples(index=False)}
    stands = [(k, m) in again for k, m in failures[["key", "metric"]].itertuples(index=False)]
    return failures[~flaky | np.asarray(stands, dtype=bool)]
