"""One bad cell never takes the run down; interrupted runs stay loadable; bad input exits 2."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import sigint_default
from conftest import tiny_suite as _suite

from bench.store.runfiles import load_run

ROOT = Path(__file__).resolve().parent.parent


def _bench(args, tmp_path, env=None, **kwargs):
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=300, **kwargs)


def _only_run(out: Path):
    files = sorted(out.glob("*.jsonl"))
    assert len(files) == 1, files
    return load_run(files[0])


def test_crash_hang_oom_and_error_cost_one_cell_each(tmp_path):
    suite = _suite(tmp_path, ["session", "eager", "function", "xla", "keras"],
                   extra="timeout_s = 15\nmemory_limit_mb = 1500")
    out = tmp_path / "out"
    result = _bench(["run", "--suite", str(suite), "--out", str(out), "--quiet",
                     "--probes", "none"], tmp_path,
                    env={"BENCH_INJECT_FAULT": "eager:crash,function:hang,xla:oom,keras:error"})
    assert result.returncode == 1, result.stderr
    run = _only_run(out)
    assert run.complete
    status = {r.cell.mode: r for r in run.records}
    assert status["session"].status == "ok" and status["session"].samples_s
    assert status["eager"].status == "crashed" and "SIGABRT" in status["eager"].reason
    assert status["function"].status == "timeout"
    assert status["xla"].status == "crashed" and "out of memory" in status["xla"].reason
    assert status["keras"].status == "error" and "injected error" in status["keras"].reason
    assert Path(status["keras"].log).exists()
    assert "RuntimeError" in Path(status["keras"].log).read_text()


def test_sigint_leaves_a_loadable_partial_run(tmp_path):
    suite = _suite(tmp_path, ["session", "eager", "function", "keras"], budget=2.0,
                   batches=(1, 2, 3))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--out", str(out),
         "--quiet", "--probes", "none"], cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=sigint_default)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        files = list(out.glob("*.jsonl"))
        if files and files[0].read_text().count('"kind": "record"') >= 2:
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    run = _only_run(out)
    assert not run.complete and "interrupted" in run.end_reason
    assert 2 <= len(run.records) < 12
    assert all(r.status == "ok" for r in run.records)
    table = _bench(["table", str(next(out.glob("*.jsonl")))], tmp_path)
    assert table.returncode == 0, table.stderr


@pytest.mark.parametrize("args, message", [
    (["run", "--mode", "eagre"], "unknown mode 'eagre'"),
    (["run", "--suite", "nope"], "nope"),
    (["run", "--case", "mobilenet:alpha=0"], "alpha must be > 0"),
    (["run", "--batch", "0"], "batch"),
    (["run", "--shard", "3/2"], "shard"),
    (["cases", "cnn:padding=FULL"], "padding 'FULL' is not one of SAME, VALID"),
    (["table", "does-not-exist.jsonl"], "does-not-exist.jsonl"),
])
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, args, message):
    result = _bench(args, tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_gpu_requested_without_gpu_is_a_clear_error(tmp_path):
    tf = pytest.importorskip("tensorflow")
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    out = tmp_path / "out"
    result = _bench(["run", "--suite", str(_suite(tmp_path, ["eager"])), "--device", "gpu",
                     "--probes", "none",
                     "--out", str(out), "--quiet"], tmp_path)
    assert result.returncode == 2
    assert "no GPU" in result.stderr and "Traceback" not in result.stderr
    assert not list(out.glob("*.jsonl"))  # nothing half-written
