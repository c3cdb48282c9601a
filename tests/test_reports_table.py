"""The flat table: loading run files, pooling rounds, failed cells, formats, `bench table`."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest
from runs import fake_samples, write_run

from bench.cli import main
from bench.errors import UsageError
from bench.store.record import Cell, Record
from bench.store.runfiles import load_runs
from reports.table import (
    BASE_COLUMNS,
    default_columns,
    format_table,
    machine_label,
    records_frame,
    short_cpu_name,
)


def ok(mode: str, median_s: float, round_: int = 0, phase: str = "infer", seed: int = 0,
       **extra) -> Record:
    return Record(Cell("cnn", "", mode, phase, batch=8), "ok", round=round_,
                  samples_s=fake_samples(median_s, 20, seed), images_per_step=8, **extra)


def test_rounds_are_pooled_and_statistics_derived(tmp_path):
    records = [
        ok("eager", 0.010, 0, setup_s={"build": 1.0, "first_call": 0.2}, first_result_s=1.3,
           peak_rss_mb=100.0, flops_per_image=1e9, macs_per_image=500_000_000, params=10),
        ok("eager", 0.010, 1, seed=1, setup_s={"build": 3.0, "first_call": 0.4},
           first_result_s=3.5, peak_rss_mb=120.0, flops_per_image=1e9),
    ]
    path = write_run(tmp_path / "run.jsonl", records, peak_flops={"cpu": 1e12})
    frame = records_frame(load_runs([path]))
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["samples"] == 40 and row["rounds"] == 2
    assert row["setup_build_s"] == pytest.approx(2.0)  # median over rounds
    assert row["setup_s"] == pytest.approx(2.0 + 0.3)
    assert row["first_result_s"] == pytest.approx(2.4)
    assert row["peak_rss_mb"] == 120.0  # a peak is a peak: the max over rounds
    assert row["images_per_s"] == pytest.approx(800, rel=0.03)
    assert row["ci_low"] <= row["images_per_s"] <= row["ci_high"]
    assert row["gflops"] == pytest.approx(row["images_per_s"] * 1e9 / 1e9)
    assert row["peak_fraction"] == pytest.approx(row["gflops"] * 1e9 / 1e12)
    assert row["macs"] == 500_000_000
    assert list(frame.columns[: len(BASE_COLUMNS)]) == BASE_COLUMNS


def test_failed_round_makes_the_cell_failed_with_nan_metrics(tmp_path):
    records = [ok("xla", 0.005, 0),
               Record(Cell("cnn", "", "xla", "infer", batch=8), "error", "compile failed",
                      round=1),
               Record(Cell("cnn", "", "frozen", "train", batch=8), "skipped",
                      "not applicable: frozen graphs do not train")]
    frame = records_frame(load_runs([write_run(tmp_path / "r.jsonl", records)]))
    xla = frame[frame["mode"] == "xla"].iloc[0]
    assert (xla["status"], xla["reason"]) == ("error", "compile failed")
    assert math.isnan(xla["images_per_s"]) and xla["samples"] == 0
    skipped = frame[frame["mode"] == "frozen"].iloc[0]
    assert skipped["status"] == "skipped" and skipped["reason"].startswith("not applicable")
    assert len(frame) == 2  # never dropped


def test_different_machines_stay_separate_rows(tmp_path):
    a = write_run(tmp_path / "a.jsonl", [ok("eager", 0.01)], run_id="a", hostname="laptop")
    b = write_run(tmp_path / "b.jsonl", [ok("eager", 0.02)], run_id="b", hostname="server")
    frame = records_frame(load_runs([tmp_path]))  # a directory loads every run file in it
    assert sorted(frame["run_id"]) == ["a", "b"]
    assert frame["machine"].nunique() == 2
    assert all(frame["machine"].str.endswith(" Xeon"))  # the recorded "Intel(R) Xeon(R) Processor"
    assert "machine" in default_columns(frame)
    assert a.exists() and b.exists()


def test_graph_nodes_debug_and_equivalence_columns(tmp_path):
    records = [ok("optimized", 0.004, graph_nodes={"built": 300, "frozen": 250, "optimized": 90},
                  debug={"breakpoint": False, "frames": [1, 2], "where": {"a": 1}},
                  max_abs_diff=2e-6, tolerance=1e-5, equivalent=True),
               ok("function", 0.004, graph_nodes={"traced": 120})]
    frame = records_frame(load_runs([write_run(tmp_path / "r.jsonl", records)]))
    opt, fn = frame.iloc[0], frame.iloc[1]
    assert opt["graph_nodes"] == 90 and opt["graph_nodes_built"] == 300
    assert fn["graph_nodes"] == 120  # no built/frozen/optimized: the first stage recorded
    assert not opt["dbg_breakpoint"] and pd.isna(fn["dbg_breakpoint"])
    assert opt["dbg_frames"] == "[1,2]" and opt["dbg_where"] == '{"a":1}'
    assert bool(opt["equivalent"]) and opt["max_abs_diff"] == 2e-6


def test_load_runs_errors_are_one_line_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        load_runs([tmp_path / "missing.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no run files"):
        load_runs([tmp_path / "empty"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not json\n")
    with pytest.raises(UsageError, match=r"bad\.jsonl:1"):
        load_runs([bad])


def test_bad_lines_are_problems_not_errors(tmp_path):
    path = write_run(tmp_path / "r.jsonl", [ok("eager", 0.01)], complete=False)
    with open(path, "a") as f:
        f.write("{broken\n")
        f.write(json.dumps({"kind": "record", "schema": 1, "cell": {}}) + "\n")
    (run,) = load_runs([path])
    assert len(run.records) == 1 and len(run.problems) == 2 and not run.complete


def test_format_table_text_csv_markdown(tmp_path):
    records = [ok("eager", 0.01), Record(Cell("cnn", "", "xla", "infer", batch=8), "error",
                                         "a | pipe")]
    frame = records_frame(load_runs([write_run(tmp_path / "r.jsonl", records)]))
    small = frame[["mode", "status", "images_per_s", "reason"]]
    text = format_table(small, "text")
    assert text.splitlines()[0].split() == ["mode", "status", "images_per_s", "reason"]
    assert "eager  ok      803" in text and "nan" not in text
    csv = pd.read_csv(io.StringIO(format_table(small, "csv")))
    assert list(csv["mode"]) == ["eager", "xla"]
    md = format_table(small, "markdown").splitlines()
    assert md[0] == "| mode | status | images_per_s | reason |" and md[1] == "|---|---|---|---|"
    assert "a \\| pipe" in md[3]
    with pytest.raises(UsageError):
        format_table(small, "yaml")


def test_machine_label_and_cpu_name(tmp_path):
    assert short_cpu_name("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz") == "Xeon E5-2680 v4"
    assert short_cpu_name("AMD EPYC 7B13 64-Core Processor") == "EPYC 7B13"
    (run,) = load_runs([write_run(tmp_path / "r.jsonl", [ok("eager", 0.01)])])
    assert machine_label(run) == "bench-box Xeon"


def test_table_command(tmp_path, capsys):
    path = write_run(tmp_path / "r.jsonl", [ok("eager", 0.01), ok("function", 0.005)],
                     complete=False)
    assert main(["table", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "function" in out and "images_per_s" in out
    assert "incomplete" in err
    assert main(["table", str(path), "--format", "csv", "--columns", "mode,images_per_s"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == "mode,images_per_s"
    assert main(["table", str(path), "--all-columns"]) == 0
    assert "samples_s" not in capsys.readouterr().out
    assert main(["table", str(path), "--columns", "nope"]) == 2
    assert "unknown column" in capsys.readouterr().err
    assert main(["table", str(tmp_path / "none.jsonl")]) == 2


def test_pytest_benchmark_json_goes_through_the_hook(tmp_path):
    pytest.importorskip("bench.store.pytest_benchmark_json")
    data = {
        "machine_info": {"node": "ci-box", "cpu": {"brand_raw": "AMD EPYC 7B13"}},
        "commit_info": {"id": "abc123", "dirty": False},
        "datetime": "2024-05-14T09:30:00+00:00",
        "version": "4.0.0",
        "benchmarks": [{
            "name": "test_cell[cnn-eager-infer]",
            "stats": {"data": fake_samples(0.01, 15), "median": 0.01},
            "extra_info": {"case": "cnn", "mode": "eager", "phase": "infer", "batch": 8},
        }],
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    for runs in (load_runs([path]), load_runs([tmp_path])):
        frame = records_frame(runs)
        assert frame["mode"].tolist() == ["eager"]
        assert frame["images_per_s"].iloc[0] == pytest.approx(800, rel=0.03)
        assert frame["machine"].iloc[0] == "ci-box EPYC 7B13"


def test_dataset_cells_show_seconds_per_epoch_and_the_input_column(tmp_path):
    epoch = Record(Cell("cnn", "", "function_epoch", "infer", input="dataset", batch=8), "ok",
                   samples_s=fake_samples(0.010, 20), images_per_step=8,
                   batches_per_call=4)
    records = [ok("eager", 0.010), epoch]
    frame = records_frame(load_runs([write_run(tmp_path / "run.jsonl", records)]))
    row = frame.set_index("mode").loc["function_epoch"]
    assert row["epoch_batches"] == 4
    assert row["epoch_s"] == pytest.approx(4 * 8 / row["images_per_s"])
    assert row["epoch_s"] == pytest.approx(0.040, rel=0.03)  # 4 batches of 10 ms
    assert math.isnan(frame.set_index("mode").loc["eager", "epoch_s"])
    columns = default_columns(frame)
    assert columns.index("input") == columns.index("batch") - 1
    assert "epoch_s" in columns
    assert "function_epoch" in format_table(frame.loc[:, columns])
