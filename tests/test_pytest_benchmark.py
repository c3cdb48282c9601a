"""pytest-benchmark JSON as an input format, and the `pytest bench/` benchmarks end to end."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from runs import fake_samples, write_run

from bench.cli import main
from bench.errors import UsageError
from bench.store.pytest_benchmark_json import (
    is_pytest_benchmark_json,
    load_pytest_benchmark,
    run_from_json,
)
from bench.store.record import Cell, Record
from bench.store.runfiles import StoreError, load_runs
from reports.table import records_frame

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
EXTRA_INFO_KEYS = {
    "suite", "case", "config", "mode", "phase", "device", "input", "batch", "images_per_s",
    "setup_s", "first_result_s", "graph_nodes", "max_abs_diff", "tolerance", "equivalent",
    "macs", "machine", "debug", "probes", "warmup_rounds", "rounds",
}


def bench_entry(mode: str, median_s: float, *, data: bool = True, seed: int = 0) -> dict:
    """One benchmark as bench/test_benchmarks.py writes it (trimmed to what matters)."""
    samples = fake_samples(median_s, 20, seed)
    cell_id = f"cnn[input_size=32]-{mode}-infer-b8"
    stats = {"min": min(samples), "max": max(samples), "mean": sum(samples) / len(samples),
             "stddev": 0.0001, "rounds": len(samples), "median": median_s, "iqr": 0.0001,
             "q1": median_s, "q3": median_s, "iqr_outliers": 0, "stddev_outliers": 0,
             "outliers": "0;0", "ld15iqr": min(samples), "hd15iqr": max(samples),
             "ops": 1 / median_s, "total": sum(samples), "iterations": 1}
    if data:
        stats["data"] = samples
    return {
        "group": "cnn[input_size=32] infer cpu resident b8", "name": f"test_bench[{cell_id}]",
        "fullname": f"bench/test_benchmarks.py::test_bench[{cell_id}]",
        "params": {"bench_cell": "Cell(...)"}, "param": cell_id,
        "extra_info": {
            "bench_extra_info": 1, "suite": "quick", "key": "", "case": "cnn",
            "config": "input_size=32", "mode": mode, "phase": "infer", "device": "cpu",
            "input": "resident", "batch": 8, "images_per_s": 8 / median_s,
            "setup_s": {"build": 0.05, "trace": 0.4, "first_call": 0.02},
            "first_result_s": 0.47, "graph_nodes": {"traced": 40}, "max_abs_diff": 2e-7,
            "tolerance": 1e-4, "equivalent": True, "macs": 4_000_000, "params": 400_000,
            "flops_per_image": 8e6, "peak_rss_mb": 12.5, "warmup_rounds": 3, "rounds": 20,
            "debug": {"stack_depth": 3}, "probes": "ran", "mode_extra": {"mode_impl": mode},
            "machine": {"hostname": "bench-box", "cpu_model": "Intel(R) Xeon(R) CPU E5-2680 v4",
                        "cores": 8, "memory_gb": 31.3, "tensorflow": "2.21.0",
                        "threads": {"intra_op": 8, "inter_op": 2},
                        "git": {"commit": "stale", "dirty": False}},
        },
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 5,
                    "max_time": 1.0, "min_time": 5e-06, "warmup": False},
        "stats": stats,
    }


def pytest_benchmark_json(*benchmarks: dict) -> dict:
    return {
        "machine_info": {"node": "bench-box", "processor": "x86_64", "machine": "x86_64",
                         "python_version": "3.11.7", "system": "Linux", "release": "6.1",
                         "cpu": {"brand_raw": "Intel(R) Xeon(R) CPU E5-2680 v4", "count": 8}},
        "commit_info": {"id": COMMIT, "time": "2025-01-01T00:00:00+00:00", "dirty": True,
                        "project": "main", "branch": "main"},
        "benchmarks": list(benchmarks),
        "datetime": "2025-01-02T03:04:05.678901+00:00",
        "version": "5.2.3",
    }


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=4))
    return path


def test_detection(tmp_path):
    good = write_json(tmp_path / "out.json", pytest_benchmark_json(bench_entry("eager", 0.01)))
    assert is_pytest_benchmark_json(good)
    other = write_json(tmp_path / "other.json", {"benchmarks": []})  # no machine_info
    assert not is_pytest_benchmark_json(other)
    (tmp_path / "broken.json").write_text("{not json")
    assert not is_pytest_benchmark_json(tmp_path / "broken.json")
    assert not is_pytest_benchmark_json(tmp_path / "missing.json")
    record = Record(Cell("cnn", "", "eager", "infer", batch=8), "ok",
                    samples_s=fake_samples(0.01), images_per_step=8)
    assert not is_pytest_benchmark_json(write_run(tmp_path / "run.jsonl", [record]))


def test_conversion_keeps_cell_samples_and_extra_info(tmp_path):
    path = write_json(tmp_path / "out.json", pytest_benchmark_json(
        bench_entry("eager", 0.010), bench_entry("function", 0.004, seed=1)))
    run = load_pytest_benchmark(path)
    assert run.complete and not run.problems and run.path == str(path)
    assert run.header.suite == "quick"
    assert run.header.run_id == "20250102T030405Z-out"
    assert run.header.started.startswith("2025-01-02T03:04:05")
    machine = run.header.machine
    assert machine["git"] == {"commit": COMMIT, "dirty": True, "branch": "main"}
    assert machine["hostname"] == "bench-box" and machine["fingerprint"]
    assert run.header.options["warmup_rounds"] == 3

    eager, function = run.records
    assert function.cell == Cell("cnn", "input_size=32", "function", "infer", "cpu",
                                 "resident", 8)
    assert function.status == "ok" and function.run_id == run.header.run_id
    assert function.samples_s == fake_samples(0.004, 20, 1)
    assert function.images_per_step == 8
    assert function.setup_s == {"build": 0.05, "trace": 0.4, "first_call": 0.02}
    assert function.first_result_s == 0.47 and function.graph_nodes == {"traced": 40}
    assert (function.max_abs_diff, function.tolerance, function.equivalent) == (2e-7, 1e-4, True)
    assert (function.macs_per_image, function.params) == (4_000_000, 400_000)
    assert function.debug == {"stack_depth": 3} and function.peak_rss_mb == 12.5
    assert function.threads == {"intra_op": 8, "inter_op": 2}
    assert function.mode_impl == "function"
    assert function.pytest_benchmark["median_s"] == 0.004
    assert function.pytest_benchmark["raw_data"] is True
    assert eager.cell.mode == "eager"

    frame = records_frame(load_runs([path]))  # the table hook reads it like a run file
    assert list(frame["mode"]) == ["eager", "function"]
    assert frame["images_per_s"].tolist() == pytest.approx([800, 2000], rel=0.03)
    assert frame["setup_trace_s"].tolist() == [0.4, 0.4]
    assert frame["dbg_stack_depth"].tolist() == [3, 3]


def test_without_raw_data_samples_stay_empty(tmp_path):
    entry = bench_entry("xla", 0.002, data=False)
    (record,) = run_from_json(pytest_benchmark_json(entry), "saved.json").records
    assert record.samples_s == []  # nothing synthesised
    summary = record.pytest_benchmark
    assert summary["median_s"] == 0.002 and summary["raw_data"] is False
    assert summary["mean_s"] > 0 and summary["stddev_s"] == 0.0001 and summary["rounds"] == 20


def test_calls_covering_several_batches_become_per_batch_samples():
    entry = bench_entry("keras", 0.08)
    entry["extra_info"]["batches_per_call"] = 8  # one Model.fit call over 8 batches
    (record,) = run_from_json(pytest_benchmark_json(entry), "keras.json").records
    assert record.samples_s == pytest.approx([s / 8 for s in fake_samples(0.08, 20, 0)])
    assert record.images_per_step == 8
    assert record.pytest_benchmark["batches_per_call"] == 8


def test_foreign_benchmarks_are_skipped_with_a_note(tmp_path):
    foreign = copy.deepcopy(bench_entry("eager", 0.01))
    foreign["extra_info"] = {}
    foreign["name"] = "test_something_else"
    foreign["fullname"] = "tests/test_other.py::test_something_else"
    run = run_from_json(pytest_benchmark_json(bench_entry("eager", 0.01), foreign), "mixed.json")
    assert len(run.records) == 1
    assert len(run.problems) == 1 and "test_something_else" in run.problems[0]

    only_foreign = write_json(tmp_path / "foreign.json", pytest_benchmark_json(foreign))
    with pytest.raises(StoreError, match="none of its 1 benchmarks comes from bench/"):
        load_pytest_benchmark(only_foreign)
    with pytest.raises(UsageError, match="foreign.json"):
        load_runs([only_foreign])


def test_unreadable_input_is_a_store_error(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(StoreError, match="not a pytest-benchmark JSON file"):
        load_pytest_benchmark(tmp_path / "broken.json")
    with pytest.raises(StoreError, match="top-level keys"):
        run_from_json({"benchmarks": []}, "x.json")
    bad_cell = bench_entry("eager", 0.01)
    bad_cell["extra_info"]["batch"] = 0
    run = run_from_json(pytest_benchmark_json(bad_cell, bench_entry("xla", 0.01)), "x.json")
    assert len(run.records) == 1 and "batch" in run.problems[0]


def test_directories_and_bench_table_accept_the_json(tmp_path, capsys):
    folder = tmp_path / "runs"
    folder.mkdir()
    write_json(folder / "pb.json", pytest_benchmark_json(bench_entry("eager", 0.01)))
    write_json(folder / "unrelated.json", {"some": "config"})  # ignored in a directory
    record = Record(Cell("cnn", "input_size=32", "function", "infer", batch=8), "ok",
                    samples_s=fake_samples(0.005), images_per_step=8)
    write_run(folder / "run.jsonl", [record])
    assert len(load_runs([folder])) == 2

    assert main(["table", str(folder / "pb.json"), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("case,config,mode")
    assert "cnn,input_size=32,eager,infer" in out


# --------------------------------------------------------------------------- end to end


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    from conftest import child_env

    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=child_env())


def test_bench_options_are_checked_at_startup():
    done = _run([sys.executable, "-m", "pytest", "bench/", "--collect-only", "-q",
                 "-p", "no:cacheprovider", "--bench-suite", "no-such-suite"])
    assert done.returncode == 4, done.stdout + done.stderr
    assert "unknown suite 'no-such-suite'" in done.stderr


def test_collection_gives_one_readable_id_per_cell():
    done = _run([sys.executable, "-m", "pytest", "bench/", "--collect-only", "-q",
                 "-p", "no:cacheprovider", "--bench-suite", "smoke"])
    assert done.returncode == 0, done.stdout + done.stderr
    ids = [line for line in done.stdout.splitlines() if "::test_bench[" in line]
    assert len(ids) == 28  # smoke: 2 cases x 14 (mode, phase) pairs
    assert "bench/test_benchmarks.py::test_bench[cnn-session-infer-b8]" in ids
    assert ("bench/test_benchmarks.py::test_bench[mobilenet[alpha=0.25,resolution=64,"
            "classes=10]-xla-train-b4]") in ids


def test_pytest_bench_writes_json_that_pytest_benchmark_and_bench_table_read(tmp_path):
    if importlib.util.find_spec("tensorflow") is None:  # never imported here: it runs below
        pytest.skip("TensorFlow is not installed")
    out = tmp_path / "out.json"
    done = _run([sys.executable, "-m", "pytest", "bench/", "--benchmark-only",
                 "--bench-suite", "smoke", "-k", "cnn and (eager or function) and infer",
                 "--benchmark-json", str(out), "--benchmark-storage", str(tmp_path / "store"),
                 "-q", "-p", "no:cacheprovider"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(out.read_text())
    names = sorted(b["name"] for b in data["benchmarks"])
    assert names == ["test_bench[cnn-eager-infer-b8]", "test_bench[cnn-function-infer-b8]"]
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        assert not EXTRA_INFO_KEYS - set(info), EXTRA_INFO_KEYS - set(info)
        assert info["equivalent"] is True and info["max_abs_diff"] <= info["tolerance"]
        assert "first_call" in info["setup_s"] and info["images_per_s"] > 0
        assert info["machine"]["tensorflow"] and info["machine"]["cores"]
        assert len(bench["stats"]["data"]) == bench["stats"]["rounds"] == info["rounds"]
    function = next(b for b in data["benchmarks"] if "function" in b["name"])
    assert "trace" in function["extra_info"]["setup_s"]  # tracing is setup, not a round

    compared = _run([sys.executable, "-m", "pytest_benchmark", "compare", str(out)])
    assert compared.returncode == 0, compared.stderr
    assert "cnn-function-infer-b8" in compared.stdout

    table = _run([sys.executable, "-m", "bench", "table", str(out)])
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if line.startswith("cnn ")]
    assert len(rows) == 2 and all(" ok " in row for row in rows)
