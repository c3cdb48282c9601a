"""Decision tables on hand-made records: pivots, speed-up over eager, break-even, scorecard."""

from __future__ import annotations

import math

import pytest
from runs import fake_samples, write_run

from bench.store.record import Cell, Record
from bench.store.runfiles import load_runs
from reports.pivots import (
    break_even,
    break_even_steps,
    break_even_verdict,
    cumulative_time_s,
    disagreeing_cells,
    failed_cells,
    fixed_cost_s,
    machine_summary,
    mode_order,
    pivot_modes,
    scorecard,
    wins_below_steps,
)
from reports.table import records_frame


def rec(mode: str, median_s: float | None, phase: str = "infer", first: float = 1.0,
        status: str = "ok", reason: str = "", debug: dict | None = None, **extra) -> Record:
    cell = Cell("mobilenet", "alpha=0.5", mode, phase, batch=4)
    if status != "ok":
        return Record(cell, status, reason)
    return Record(cell, "ok", samples_s=fake_samples(median_s, 25, seed=len(mode)),
                  images_per_step=4, first_result_s=first, setup_s={"build": first / 2},
                  debug=debug or {}, **extra)


def frame_of(tmp_path, *runs: tuple[str, list[Record]]):
    paths = [write_run(tmp_path / f"{name}.jsonl", records, run_id=name, hostname=name)
             for name, records in runs]
    return records_frame(load_runs(paths))


def test_break_even_arithmetic():
    # 3 s more setup, saves 2 ms per step: 1500 steps to pay back.
    assert break_even_steps(4.0, 0.008, 1.0, 0.010) == 1500
    assert break_even_steps(4.0, 0.007, 1.0, 0.010) == 1000
    assert break_even_steps(4.001, 0.007, 1.0, 0.010) == 1001  # ceil, not round
    assert break_even_steps(0.5, 0.008, 1.0, 0.010) == 0  # cheaper and faster: always ahead
    assert break_even_steps(4.0, 0.012, 1.0, 0.010) == math.inf  # slower: never
    assert break_even_steps(4.0, 0.010, 1.0, 0.010) == math.inf  # equal speed: never
    assert math.isnan(break_even_steps(math.nan, 0.01, 1.0, 0.01))
    # Cheaper to set up but slower per step: wins jobs up to 0.5 s / 2 ms = 250 steps.
    assert break_even_steps(0.5, 0.012, 1.0, 0.010) == math.inf
    assert wins_below_steps(0.5, 0.012, 1.0, 0.010) == 250
    assert math.isnan(wins_below_steps(4.0, 0.008, 1.0, 0.010))
    assert break_even_verdict(1500, math.nan) == "faster after 1,500 steps"
    assert break_even_verdict(math.inf, 250) == "faster only for jobs up to 250 steps"
    assert break_even_verdict(math.inf, math.nan).startswith("never")
    assert break_even_verdict(0, math.nan) == "always faster"


def test_cumulative_time_matches_break_even():
    n = break_even_steps(4.0, 0.008, 1.0, 0.010)
    mode = cumulative_time_s(4.0, 0.008, [n - 1, n])
    eager = cumulative_time_s(1.0, 0.010, [n - 1, n])
    assert mode[0] > eager[0] and mode[1] <= eager[1]


def test_fixed_cost_prefers_first_result_then_setup_sum():
    assert fixed_cost_s({"first_result_s": 2.5, "setup_s": 2.0}) == 2.5
    assert fixed_cost_s({"first_result_s": math.nan, "setup_s": 2.0}) == 2.0
    assert fixed_cost_s({"first_result_s": None, "setup_s": 2.0}) == 2.0


def test_speedup_and_pivot_with_failed_and_skipped_cells(tmp_path):
    records = [rec("eager", 0.010, first=0.2), rec("function", 0.005, first=1.2),
               rec("xla", None, status="error", reason="<b>boom</b>"),
               rec("eager", 0.030, "train"),
               rec("frozen", None, "train", status="skipped", reason="not applicable")]
    frame = frame_of(tmp_path, ("cpu", records))
    fn = frame[frame["mode"] == "function"].iloc[0]
    assert fn["speedup"] == pytest.approx(2.0, rel=0.03)
    assert fn["speedup_low"] < fn["speedup"] < fn["speedup_high"]
    assert frame[frame["mode"] == "eager"]["speedup"].tolist() == [1.0, 1.0]
    assert math.isnan(frame[frame["mode"] == "xla"].iloc[0]["speedup"])

    table = pivot_modes(frame, "images_per_s")
    assert list(table.columns) == ["eager", "function", "xla", "frozen"]  # canonical order
    assert table.loc["infer", "function"] == pytest.approx(800, rel=0.03)
    assert math.isnan(table.loc["infer", "xla"]) and math.isnan(table.loc["train", "frozen"])
    assert list(failed_cells(frame)["mode"]) == ["xla"]  # skipped is not a failure


def test_speedup_never_crosses_machines(tmp_path):
    frame = frame_of(
        tmp_path,
        ("laptop", [rec("eager", 0.010), rec("function", 0.005)]),
        ("server", [rec("eager", 0.002), rec("function", 0.004)]),
    )
    by = {(r["machine"].split()[0], r["mode"]): r["speedup"] for _, r in frame.iterrows()}
    assert by[("laptop", "function")] == pytest.approx(2.0, rel=0.03)
    assert by[("server", "function")] == pytest.approx(0.5, rel=0.03)
    table = pivot_modes(frame, "speedup")
    assert table.index.names == ["run_id", "machine"]  # only the keys that vary
    summary = machine_summary(frame).set_index("machine")
    assert summary["function"].round(1).tolist() == [2.0, 0.5]
    assert summary["fastest_most_often"].tolist() == ["function", "eager"]


def test_break_even_table(tmp_path):
    records = [rec("eager", 0.010, first=1.0), rec("function", 0.008, first=4.0),
               rec("keras", 0.012, first=0.5), rec("xla", 0.012, first=5.0),
               rec("session", 0.009, first=0.9)]
    table = break_even(frame_of(tmp_path, ("cpu", records)))
    rows = {r["mode"]: r for _, r in table.iterrows()}
    assert rows["eager"]["verdict"] == "reference"
    n = rows["function"]["break_even_steps"]
    expected = math.ceil(3.0 / (rows["eager"]["step_ms"] / 1e3 - rows["function"]["step_ms"] / 1e3))
    assert n == expected and 1000 < n < 2000
    assert rows["xla"]["verdict"].startswith("never")
    assert rows["keras"]["verdict"].startswith("faster only for jobs up to")
    assert rows["session"]["break_even_steps"] == 0


def test_break_even_skips_groups_without_eager(tmp_path):
    records = [rec("eager", None, status="error", reason="x"), rec("function", 0.008)]
    assert break_even(frame_of(tmp_path, ("cpu", records))).empty


def test_scorecard_and_disagreement(tmp_path):
    records = [rec("eager", 0.010, debug={"breakpoint": True, "frames": 5}),
               rec("function", 0.005, debug={"breakpoint": False, "frames": 20}),
               rec("function", 0.006, "train", debug={"breakpoint": True, "frames": 30}),
               rec("xla", 0.004, debug={"breakpoint": False}, max_abs_diff=0.5,
                   tolerance=1e-3, equivalent=False),
               rec("eager", 0.012, "train")]
    frame = frame_of(tmp_path, ("cpu", records))
    card = scorecard(frame).set_index("mode")
    assert list(card.index) == ["eager", "function", "xla"]
    assert card.loc["eager", "dbg_breakpoint"] is True
    assert card.loc["function", "dbg_breakpoint"] == "mixed"
    assert card.loc["function", "dbg_frames"] == 25.0  # median over cells
    assert card.loc["function", "speedup_geomean"] == pytest.approx(
        math.sqrt(2.0 * 2.0), rel=0.05)
    assert list(disagreeing_cells(frame)["mode"]) == ["xla"]


def test_mode_order_puts_unknown_modes_last():
    assert mode_order(["zzz", "xla", "eager", "aaa"]) == ["eager", "xla", "aaa", "zzz"]
