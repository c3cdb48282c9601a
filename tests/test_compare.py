"""The regression gate: noise never fails it, a real slow-down or a changed exact metric does."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.store.record import Cell, Record
from bench.store.runfiles import RunHeader, RunWriter, load_run
from reports.compare import compare_runs

MEDIAN_S = {"eager": 0.010, "function": 0.005, "xla": 0.004}


def make_records(rounds: int = 3, n: int = 40, seed: int = 0) -> list[Record]:
    """Rounds of a small matrix in rotating order, log-normal step times (3% spread)."""
    rng = np.random.default_rng(seed)
    modes = list(MEDIAN_S)
    records = []
    for r in range(rounds):
        for mode in modes[r % len(modes):] + modes[: r % len(modes)]:
            samples = MEDIAN_S[mode] * rng.lognormal(0.0, 0.03, n)
            records.append(Record(
                cell=Cell("cnn", "", mode, "infer"), status="ok", run_id="base", round=r,
                samples_s=samples.tolist(), images_per_step=1,
                graph_nodes={"built": 120} if mode != "eager" else {},
                max_abs_diff=1e-6 if mode != "eager" else None,
                tolerance=1e-4 if mode != "eager" else None,
                debug={"dbg_stack_trace": mode == "eager", "dbg_retraces": 1, "dbg_trace_s": 0.2},
            ))
    return records


def slowed(records: list[Record], factor: float, noise: float = 0.0, seed: int = 1,
           modes: tuple[str, ...] | None = None) -> list[Record]:
    """A copy whose samples are `factor` times slower, each with extra relative noise."""
    rng = np.random.default_rng(seed)
    out = []
    for record in records:
        if modes is None or record.cell.mode in modes:
            samples = np.asarray(record.samples_s) * factor
            samples = samples * (1.0 + noise * rng.standard_normal(samples.size))
            record = dataclasses.replace(record, samples_s=samples.tolist())
        out.append(record)
    return out


def write_run(path: Path, records: list[Record], fingerprint: str | None = "machine-a") -> Path:
    machine = {"fingerprint": fingerprint} if fingerprint else {}
    writer = RunWriter(path, RunHeader(run_id=path.stem, suite="quick",
                                       started="2024-05-01T00:00:00Z", machine=machine))
    for record in records:
        writer.append(record)
    writer.close(complete=True)
    return path


def changed(records: list[Record], mode: str, **fields) -> list[Record]:
    return [dataclasses.replace(r, **fields) if r.cell.mode == mode else r for r in records]


def verdicts(result, metric: str) -> dict[str, str]:
    """Mode -> verdict of one metric for the cnn cells."""
    rows = result.rows
    rows = rows[(rows["metric"] == metric) & rows["key"].str.startswith("cnn/")]
    pairs = zip(rows["key"], rows["verdict"], strict=True)
    return {key.split("/")[1]: verdict for key, verdict in pairs}


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    return write_run(tmp_path / "base.jsonl", make_records())


# --------------------------------------------------------------------------- the must-shows


def test_self_compare_is_no_regression_and_exits_0(base, capsys):
    result = compare_runs([load_run(base)], [load_run(base)])
    assert not result.regressed and result.gated_absolute
    assert set(result.rows["verdict"]) == {"same"}
    assert main(["compare", str(base), str(base)]) == 0
    assert "no regression" in capsys.readouterr().out


def test_thirty_percent_slower_copy_is_a_regression(base, tmp_path, capsys):
    slow = write_run(tmp_path / "slow.jsonl", slowed(make_records(), 1.3))
    result = compare_runs([load_run(base)], [load_run(slow)])
    assert result.regressed
    assert verdicts(result, "images_per_s") == dict.fromkeys(MEDIAN_S, "regression")
    row = result.rows[result.rows["metric"] == "images_per_s"].iloc[0]
    assert row["change"] == pytest.approx(1 / 1.3 - 1, abs=0.02) and row["p_value"] < 1e-6
    # Every mode slowed alike: speed-ups over eager did not move.
    assert set(verdicts(result, "speedup_vs_eager").values()) == {"same"}
    assert main(["compare", str(base), str(slow)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "images_per_s" in out


def test_one_percent_slower_with_noise_is_not_a_regression(base, tmp_path):
    drift = write_run(tmp_path / "drift.jsonl", slowed(make_records(), 1.01, noise=0.02))
    result = compare_runs([load_run(base)], [load_run(drift)])
    assert not result.regressed
    assert set(result.rows["verdict"]) == {"same"}
    assert main(["compare", str(base), str(drift)]) == 0


def test_changed_graph_node_count_is_flagged_at_unchanged_speed(base, tmp_path, capsys):
    records = changed(make_records(), "xla", graph_nodes={"built": 131})
    other = write_run(tmp_path / "nodes.jsonl", records)
    result = compare_runs([load_run(base)], [load_run(other)])
    assert result.regressed
    assert verdicts(result, "graph_nodes.built") == {"function": "same", "xla": "changed"}
    assert set(verdicts(result, "images_per_s").values()) == {"same"}
    assert main(["compare", str(base), str(other)]) == 1
    assert "graph_nodes.built: 120 -> 131" in capsys.readouterr().out


def test_lost_equivalence_is_flagged_at_unchanged_speed(base, tmp_path):
    # Only max_abs_diff and tolerance are stored: equivalence is derived from them.
    records = changed(make_records(), "function", max_abs_diff=1e-2)
    other = write_run(tmp_path / "wrong.jsonl", records)
    result = compare_runs([load_run(base)], [load_run(other)])
    assert result.regressed
    assert verdicts(result, "equivalent") == {"function": "regression", "xla": "same"}
    assert main(["compare", str(base), str(other)]) == 1


# --------------------------------------------------------------------------- machines


def test_absolute_throughput_is_not_gated_across_machines(base, tmp_path):
    slow = write_run(tmp_path / "slow.jsonl", slowed(make_records(), 1.3), "machine-b")
    result = compare_runs([load_run(base)], [load_run(slow)])
    assert not result.gated_absolute and not result.regressed
    # Still reported, just not gated.
    assert set(verdicts(result, "images_per_s").values()) == {"regression"}
    assert "NOT gated" in result.summary()
    assert main(["compare", str(base), str(slow)]) == 0
    assert main(["compare", str(base), str(slow), "--absolute", "always"]) == 1


def test_missing_fingerprint_does_not_gate_absolute(tmp_path):
    a = write_run(tmp_path / "a.jsonl", make_records(), None)
    b = write_run(tmp_path / "b.jsonl", slowed(make_records(), 1.3), None)
    assert not compare_runs([load_run(a)], [load_run(b)]).gated_absolute


def test_one_mode_slower_is_a_speedup_regression_on_another_machine(base, tmp_path):
    slow = write_run(tmp_path / "slow.jsonl", slowed(make_records(), 1.3, modes=("xla",)),
                     "machine-b")
    result = compare_runs([load_run(base)], [load_run(slow)])
    assert result.regressed and not result.gated_absolute
    assert verdicts(result, "speedup_vs_eager") == {"function": "same", "xla": "regression"}
    row = result.rows[result.rows["metric"] == "speedup_vs_eager"].iloc[-1]
    assert row["test"].startswith("bootstrap")  # 3 rounds: too few for Mann-Whitney at 1%


def test_speedups_use_mann_whitney_over_rounds_when_there_are_enough(tmp_path):
    base = write_run(tmp_path / "a.jsonl", make_records(rounds=6, n=20))
    slow = write_run(tmp_path / "b.jsonl", slowed(make_records(rounds=6, n=20, seed=5), 1.3,
                                                  modes=("function",)), "machine-b")
    drift = write_run(tmp_path / "c.jsonl", slowed(make_records(rounds=6, n=20, seed=6), 1.01,
                                                   noise=0.02), "machine-b")
    result = compare_runs([load_run(base)], [load_run(slow)])
    assert verdicts(result, "speedup_vs_eager") == {"function": "regression", "xla": "same"}
    assert set(result.rows.loc[result.rows["metric"] == "speedup_vs_eager", "test"]) == {
        "mann-whitney, 6 vs 6 rounds"}
    assert not compare_runs([load_run(base)], [load_run(drift)]).regressed


def test_single_round_speedup_is_bootstrapped(tmp_path):
    base = write_run(tmp_path / "a.jsonl", make_records(rounds=1, n=60))
    slow = write_run(tmp_path / "b.jsonl", slowed(make_records(rounds=1, n=60, seed=3), 1.2,
                                                  modes=("xla",)), "machine-b")
    same = write_run(tmp_path / "c.jsonl", make_records(rounds=1, n=60, seed=4), "machine-b")
    result = compare_runs([load_run(base)], [load_run(slow)])
    assert verdicts(result, "speedup_vs_eager") == {"function": "same", "xla": "regression"}
    assert not compare_runs([load_run(base)], [load_run(same)]).regressed


def test_faster_current_is_an_improvement_not_a_failure(base, tmp_path):
    fast = write_run(tmp_path / "fast.jsonl", slowed(make_records(), 0.7))
    result = compare_runs([load_run(base)], [load_run(fast)])
    assert not result.regressed
    assert set(verdicts(result, "images_per_s").values()) == {"improvement"}


# --------------------------------------------------------------------------- exact metrics


def test_debug_probes_compared_exactly_but_timings_ignored(base, tmp_path):
    records = changed(make_records(), "function", debug={
        "dbg_stack_trace": False, "dbg_retraces": 3, "dbg_trace_s": 9.0, "dbg_x_ms": 5.0})
    other = write_run(tmp_path / "dbg.jsonl", records)
    result = compare_runs([load_run(base)], [load_run(other)])
    assert verdicts(result, "debug.dbg_retraces")["function"] == "changed"
    assert verdicts(result, "debug.dbg_stack_trace")["function"] == "same"  # False before too
    probes = result.rows.loc[result.rows["metric"].str.startswith("debug."), "metric"]
    assert set(probes) == {"debug.dbg_stack_trace", "debug.dbg_retraces"}
    assert result.regressed


def test_failed_or_missing_cell_is_a_regression_and_new_cell_is_not(base, tmp_path):
    records = [r for r in make_records() if r.cell.mode != "xla"]
    records = changed(records, "function", status="error", reason="boom", samples_s=[])
    records.append(dataclasses.replace(make_records()[0], cell=Cell("mobilenet", "", "eager",
                                                                    "infer")))
    other = write_run(tmp_path / "broken.jsonl", records)
    result = compare_runs([load_run(base)], [load_run(other)])
    status = verdicts(result, "status")
    assert status == {"eager": "same", "function": "regression", "xla": "regression"}
    rows = result.rows[result.rows["metric"] == "status"]
    assert rows["verdict"].tolist()[-1] == "new"
    assert rows["current"].tolist()[1:3] == ["error", "missing"]
    assert result.regressed

    # The other way round: cells that appear or start working are "new", not failures.
    backwards = compare_runs([load_run(other)], [load_run(base)])
    assert set(verdicts(backwards, "status").values()) >= {"new"}
    assert backwards.rows.loc[backwards.rows["key"].str.startswith("mobilenet"),
                              "verdict"].tolist() == ["regression"]


def test_rows_have_the_documented_columns(base):
    rows = compare_runs([load_run(base)], [load_run(base)]).rows
    assert list(rows.columns)[:7] == ["key", "metric", "baseline", "current", "change",
                                      "p_value", "verdict"]


# --------------------------------------------------------------------------- the CLI


def test_cli_markdown_directories_and_threshold(base, tmp_path, capsys):
    folder = tmp_path / "current"
    folder.mkdir()
    write_run(folder / "slow.jsonl", slowed(make_records(), 1.3))
    assert main(["compare", str(base), str(folder), "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("| cell |") and "regression" in out
    # A 30% slower run passes a 50% threshold.
    assert main(["compare", str(base), str(folder), "--threshold", "0.5"]) == 0


def test_cli_bad_input_exits_2(base, tmp_path, capsys):
    assert main(["compare", str(base), str(tmp_path / "nope.jsonl")]) == 2
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_text("not json\n")
    assert main(["compare", str(corrupt), str(base)]) == 2
    assert main(["compare", str(base), str(base), "--threshold", "5"]) == 2
    assert "error:" in capsys.readouterr().err


def test_baseline_record_refresh_and_list(base, tmp_path, capsys):
    folder = tmp_path / "baselines"
    assert main(["baseline", "record", str(base), "--name", "quick-cpu",
                 "--dir", str(folder)]) == 0
    target = folder / "quick-cpu.jsonl"
    assert target.read_bytes() == base.read_bytes()
    newer = write_run(tmp_path / "newer.jsonl", slowed(make_records(), 1.3))
    assert main(["baseline", "record", str(newer), "--name", "quick-cpu",
                 "--dir", str(folder)]) == 0
    assert target.read_bytes() == newer.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["quick-cpu.jsonl"]  # no temp left over
    capsys.readouterr()
    assert main(["baseline", "list", "--dir", str(folder)]) == 0
    assert "quick-cpu" in capsys.readouterr().out
    # A recorded baseline is usable by name.
    assert main(["compare", "quick-cpu", str(newer), "--baselines", str(folder)]) == 0


def test_baseline_refuses_incomplete_run_and_bad_name(tmp_path):
    path = tmp_path / "partial.jsonl"
    writer = RunWriter(path, RunHeader(run_id="p", suite="quick", started="2024-05-01"))
    writer.append(make_records()[0])
    folder = str(tmp_path / "b")
    assert main(["baseline", "record", str(path), "--dir", folder]) == 2
    assert main(["baseline", "record", str(path), "--dir", folder, "--allow-incomplete"]) == 0
    assert json.loads((tmp_path / "b" / "quick-cpu.jsonl").read_text().splitlines()[0])[
        "run_id"] == "p"
    assert main(["baseline", "record", str(path), "--dir", folder, "--name", "../x",
                 "--allow-incomplete"]) == 2


def test_baselines_and_history_default_to_the_working_directory(monkeypatch, tmp_path):
    from bench.commands.compare import resolve_baseline
    from bench.store.paths import BASELINE_DIR, DEFAULT_HISTORY

    assert not BASELINE_DIR.is_absolute() and not DEFAULT_HISTORY.is_absolute()
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # where CI runs `.ci/gate`
    assert Path(resolve_baseline("quick-cpu", BASELINE_DIR)).resolve().is_file()
    monkeypatch.chdir(tmp_path)  # elsewhere: nothing is found inside the installed package
    assert resolve_baseline("quick-cpu", BASELINE_DIR) == "quick-cpu"


def test_compare_shows_the_speedup_the_table_shows(base):
    """One definition (reports.speedup): separate workers here, paired in the recorded baseline."""
    from reports.table import records_frame

    recorded = Path(__file__).resolve().parent / "data" / "quick-cpu-xeon.jsonl"
    for path, source in ((base, "separate workers"), (recorded, "paired")):
        run = load_run(path)
        table = records_frame([run]).set_index("key")
        rows = compare_runs([run], [run]).rows
        rows = rows[rows["metric"] == "speedup_vs_eager"]
        assert len(rows) and set(table.loc[rows["key"], "speedup_source"]) == {source}
        shown = table.loc[rows["key"], "speedup"].tolist()
        assert rows["baseline"].tolist() == pytest.approx(shown)
