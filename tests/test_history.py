"""History: per-cell summaries appended over commits, steps detected, trends page drawn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.store.record import Cell, Record
from bench.store.runfiles import RunHeader, RunWriter, load_run
from reports.history import (
    HistoryEntry,
    append_run,
    detect_steps,
    history_frame,
    load_history,
    series,
    summarize_run,
)
from reports.trends import render_trends, write_trends

MEDIAN_S = {"eager": 0.010, "function": 0.005}
BASELINE_RUN = Path(__file__).resolve().parent / "data" / "quick-cpu-xeon.jsonl"


def write_run(path: Path, index: int, function_s: float = 0.005, rounds: int = 3,
              fingerprint: str = "machine-a", seed: int = 0, threads: str = "all") -> Path:
    """Run number `index` (its commit is c<index>), rounds of eager and function."""
    rng = np.random.default_rng(seed + index)
    header = RunHeader(run_id=f"run{index}", suite="quick", started=f"2024-05-{index + 1:02d}",
                       machine={"fingerprint": fingerprint, "git": {"commit": f"c{index:07d}"}})
    writer = RunWriter(path, header)
    for r in range(rounds):
        for mode, median in (("eager", MEDIAN_S["eager"]), ("function", function_s)):
            samples = median * rng.lognormal(0.0, 0.02, 30)
            writer.append(Record(cell=Cell("cnn", "", mode, "infer", batch=4, threads=threads),
                                 status="ok",
                                 run_id=header.run_id, round=r, samples_s=samples.tolist(),
                                 images_per_step=4))
    writer.close(complete=True)
    return path


def build_history(tmp_path: Path, function_times: list[float]) -> Path:
    history = tmp_path / "history" / "history.jsonl"
    for i, seconds in enumerate(function_times):
        run = load_run(write_run(tmp_path / f"run{i}.jsonl", i, seconds))
        append_run(run, history)
    return history


def test_summarize_run_has_throughput_ci_and_speedup(tmp_path):
    run = load_run(write_run(tmp_path / "r.jsonl", 0))
    entries = {e.mode: e for e in summarize_run(run)}
    eager, function = entries["eager"], entries["function"]
    assert function.commit == "c0000000" and function.fingerprint == "machine-a"
    assert function.images_per_s == pytest.approx(4 / 0.005, rel=0.02)
    assert function.ips_ci_low < function.images_per_s < function.ips_ci_high
    assert function.speedup == pytest.approx(2.0, rel=0.03)
    assert function.speedup_ci_low < function.speedup < function.speedup_ci_high
    assert len(function.round_ips) == 3 and len(function.round_speedups) == 3
    assert eager.speedup is None and eager.round_speedups == []
    assert summarize_run(run, commit="abc")[0].commit == "abc"


def test_single_thread_cells_get_their_speedup_from_single_thread_eager(tmp_path):
    """The quick suite is single-thread only: its cells' eager partner is 1-thread eager."""
    run = load_run(write_run(tmp_path / "r.jsonl", 0, threads="1"))
    function = next(e for e in summarize_run(run) if e.mode == "function")
    assert function.key.endswith("/t1")
    assert function.speedup == pytest.approx(2.0, rel=0.03)


def test_recorded_single_thread_cells_record_their_paired_speedup():
    """The recorded Xeon run (quick suite, `threads` 1, paired workers): every ok non-eager
    cell gets the speed-up the table shows, from the same measurement."""
    from reports.table import records_frame

    run = load_run(BASELINE_RUN)
    table = records_frame([run]).set_index("key")
    entries = [e for e in summarize_run(run) if e.status == "ok" and e.mode != "eager"]
    assert entries and all(e.key.endswith("/t1") for e in entries)
    for entry in entries:
        row = table.loc[entry.key]
        assert entry.speedup_source == row["speedup_source"] == "paired"
        assert entry.speedup == pytest.approx(row["speedup"])
        assert entry.speedup_ci_low <= entry.speedup <= entry.speedup_ci_high
        paired = [r for r in run.records if r.cell.key == entry.key and r.paired_s]
        assert len(entry.round_speedups) == len(paired)  # one per paired worker


def test_a_switch_from_separate_workers_to_paired_speedups_is_not_a_step():
    """Old lines (no source: separate workers) then paired ones 20% higher: two series."""
    def entry(i: int, value: float, source: str) -> HistoryEntry:
        return HistoryEntry(commit=f"c{i}", date=f"2024-05-{i + 1:02d}", fingerprint="m",
                            run_id=f"run{i}", suite="quick", key="cnn/function", mode="function",
                            status="ok", speedup=value, speedup_source=source,
                            round_speedups=[value * f for f in (0.99, 1.0, 1.01)])
    entries = [entry(i, 2.0, "") for i in range(5)] + [entry(i, 2.4, "paired")
                                                      for i in range(5, 10)]
    found = series(entries, "speedup")
    assert sorted(s.source for s in found) == ["paired", "separate workers"]
    assert all(not s.steps for s in found)
    same = [entry(i, e.speedup, "paired") for i, e in enumerate(entries)]
    assert [s.index for s in series(same, "speedup")[0].steps] == [5]  # one source: a step


def test_history_is_append_only_and_skips_a_run_already_there(tmp_path):
    history = tmp_path / "h.jsonl"
    run = load_run(write_run(tmp_path / "r0.jsonl", 0))
    assert append_run(run, history) == 2
    first = history.read_text()
    assert append_run(run, history) == 0  # same run_id: not duplicated
    assert append_run(load_run(write_run(tmp_path / "r1.jsonl", 1)), history) == 2
    assert history.read_text().startswith(first)
    loaded = load_history(history)
    assert len(loaded.entries) == 4 and not loaded.problems
    frame = history_frame(loaded.entries)
    assert frame["commit"].tolist() == ["c0000000"] * 2 + ["c0000001"] * 2


def test_load_history_skips_a_truncated_line(tmp_path):
    history = build_history(tmp_path, [0.005, 0.005])
    with open(history, "a", encoding="utf-8") as f:
        f.write('{"kind": "history", "commit": "tr')
    loaded = load_history(history)
    assert len(loaded.entries) == 4
    assert len(loaded.problems) == 1 and ":5:" in loaded.problems[0]


def test_detect_steps_finds_one_step_and_ignores_noise():
    rng = np.random.default_rng(0)
    flat = [[v] for v in 100 * (1 + 0.01 * rng.standard_normal(20))]
    assert detect_steps(flat) == []
    drift = [[v] for v in 100 * (1 + 0.01 * rng.standard_normal(20)) * np.r_[[1.0] * 10,
                                                                              [0.99] * 10]]
    assert detect_steps(drift) == []  # a 1% shift is below the 5% threshold
    stepped = [[v] for v in np.r_[100 * (1 + 0.01 * rng.standard_normal(10)),
                                  80 * (1 + 0.01 * rng.standard_normal(10))]]
    steps = detect_steps(stepped)
    assert [s.index for s in steps] == [10]
    assert steps[0].change == pytest.approx(-0.2, abs=0.02) and steps[0].p_value < 0.05


def test_detect_steps_uses_rounds_to_confirm_a_recent_step():
    rng = np.random.default_rng(1)
    # Two runs after the step, three rounds each: enough values to be significant.
    points = [list(m * (1 + 0.01 * rng.standard_normal(3))) for m in [100] * 6 + [70] * 2]
    assert [s.index for s in detect_steps(points)] == [6]
    # With one value per run, two runs after it are not enough evidence yet.
    single = [[p[0]] for p in points]
    assert detect_steps(single) == []


def test_series_are_per_cell_and_machine_with_steps(tmp_path):
    history = build_history(tmp_path, [0.005] * 5 + [0.0065] * 5)
    entries = load_history(history).entries
    throughput = {s.key: s for s in series(entries, "images_per_s")}
    function = throughput["cnn/function/infer/cpu/resident/b4/tall"]
    assert len(function.entries) == 10
    assert [s.index for s in function.steps] == [5]
    assert function.entries[5].commit == "c0000005"
    assert throughput["cnn/eager/infer/cpu/resident/b4/tall"].steps == []
    speedups = series(entries, "speedup")
    assert [s.key for s in speedups] == ["cnn/function/infer/cpu/resident/b4/tall"]
    assert [s.index for s in speedups[0].steps] == [5]


def test_trends_page_is_self_contained_and_escaped(tmp_path):
    history = build_history(tmp_path, [0.005] * 4 + [0.0065] * 4)
    entries = load_history(history).entries
    entries[0].key = "<script>alert(1)</script>"
    page = render_trends(entries)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert page.count("data:image/png;base64,") == 3
    assert "Detected steps" in page and "c0000004" in page
    out = write_trends(history, tmp_path / "out" / "trends.html")
    assert out.is_file() and "src='http" not in out.read_text()


def test_trends_page_for_an_empty_history(tmp_path):
    empty = tmp_path / "h.jsonl"
    empty.write_text("")
    assert "No history yet" in write_trends(empty, tmp_path / "t.html").read_text()


def test_history_cli_append_and_report(tmp_path, capsys):
    history = tmp_path / "h.jsonl"
    for i in range(3):
        run = write_run(tmp_path / f"r{i}.jsonl", i)
        assert main(["history", "append", str(run), "--history", str(history)]) == 0
    assert main(["history", "append", str(run), "--history", str(history)]) == 0
    assert "already in" in capsys.readouterr().out
    assert main(["history", "append", str(run), "--history", str(history),
                 "--commit", "x"]) == 0
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(lines) == 6 and {line["commit"] for line in lines} == {
        "c0000000", "c0000001", "c0000002"}
    out = tmp_path / "trends.html"
    assert main(["history", "report", "--history", str(history), "-o", str(out)]) == 0
    assert out.is_file()
    assert main(["history", "report", "--history", str(tmp_path / "none.jsonl")]) == 2
    assert main(["history", "append", str(tmp_path / "none.jsonl"),
                 "--history", str(history)]) == 2
    assert main(["history"]) == 2
