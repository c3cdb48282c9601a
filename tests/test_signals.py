"""SIGTERM ends a run like Ctrl-C; whatever kills the runner, no process it started survives.

These start real runner processes (`python -m bench run`) on a tiny suite, list the runner's
descendants through /proc while it works, stop it, and check every one of them is gone.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import descendants
from test_runner import ROOT, _suite

from bench.store.runfiles import load_run

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _start(suite: Path, out: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--out", str(out),
         "--quiet", "--probes", "none"], cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def snapshot(pid: int) -> dict[int, str | None]:
    """The descendants of `pid` with their start times, to recognise them later."""
    return {p: _start_time(p) for p in descendants(pid)}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _records(out: Path) -> int:
    return sum(f.read_text().count('"kind": "record"') for f in out.glob("*.jsonl"))


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _cleanup(process: subprocess.Popen, pids: dict[int, str | None]) -> None:
    """Whatever the test found, leave nothing it started running on the shared machine
    (a pid is only killed if it is still the same process: same start time)."""
    for pid, started in pids.items():
        if _alive(pid) and started is not None and _start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=30)


def test_sigterm_writes_an_incomplete_footer_and_stops_every_process(tmp_path):
    suite = _suite(tmp_path, ["session", "eager", "function"], budget=2.0, batches=(1, 2))
    out = tmp_path / "out"
    process = _start(suite, out)
    started: dict[int, str | None] = {}
    try:
        assert _wait_until(lambda: _records(out) >= 1, 120), "no record was written"
        # A worker is measuring the next cell: runner -> forkserver -> worker, resource tracker.
        assert _wait_until(lambda: len(descendants(process.pid)) >= 3, 30)
        started = snapshot(process.pid)
        process.send_signal(signal.SIGTERM)  # what CI systems and `timeout` send
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 143, stderr
        assert "SIGTERM" in stderr and "Traceback" not in stderr
        run = load_run(next(out.glob("*.jsonl")))
        assert not run.complete and "SIGTERM" in run.end_reason
        assert run.records and all(r.status == "ok" for r in run.records)
        assert _wait_until(lambda: not any(_alive(p) for p in started), 10), \
            [p for p in started if _alive(p)]
    finally:
        _cleanup(process, started)


def test_sigkill_of_the_runner_takes_a_hanging_worker_with_it(tmp_path):
    suite = _suite(tmp_path, ["session", "function"], extra="timeout_s = 300")
    out = tmp_path / "out"
    process = _start(suite, out, env={"BENCH_INJECT_FAULT": "function:hang"})
    started: dict[int, str | None] = {}
    try:
        assert _wait_until(lambda: _records(out) >= 1, 120), "no record was written"
        assert _wait_until(lambda: len(descendants(process.pid)) >= 3, 30)
        time.sleep(0.5)  # let the hanging worker get past its start-up
        started = snapshot(process.pid)
        process.kill()  # SIGKILL: the runner cannot clean up anything itself
        process.communicate(timeout=30)
        assert _wait_until(lambda: not any(_alive(p) for p in started), 10), \
            [p for p in started if _alive(p)]
    finally:
        _cleanup(process, started)


def test_sigterm_before_any_cell_names_no_phantom_file(tmp_path):
    suite = _suite(tmp_path, ["eager"])
    out = tmp_path / "out"
    process = _start(suite, out)
    started: dict[int, str | None] = {}
    try:
        # The run file is claimed (empty) before calibration; stop the run while it is empty.
        assert _wait_until(lambda: any(out.glob("*.jsonl")), 60)
        started = snapshot(process.pid)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        if _records(out):
            pytest.skip("the machine was quick enough to finish a cell first")
        assert process.returncode == 143, stderr
        assert "nothing was recorded" in stderr and "Traceback" not in stderr
        assert not list(out.glob("*.jsonl"))
        assert _wait_until(lambda: not any(_alive(p) for p in started), 10)
    finally:
        _cleanup(process, started)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_ab_run_leaves_no_server_worker_or_scratch(tmp_path, signum):
    """SIGTERM: footers say so, exit 143; SIGKILL: the side servers and workers die too."""
    from conftest import SMALL_CNN

    pytest.importorskip("tensorflow")
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", "ab", ".", ".", "--case", SMALL_CNN, "--batch", "2",
         "--phase", "infer", "--mode", "eager,function", "--min-pairs", "8", "--max-pairs", "8",
         "--out", str(out), "--quiet"], cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    started: dict[int, str | None] = {}
    try:
        assert _wait_until(lambda: _records(out) >= 2, 180), "no pair was recorded"
        started = snapshot(process.pid)
        assert len(started) >= 2  # two side servers, at least
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
        assert _wait_until(lambda: not any(_alive(p) for p in started), 15), \
            [p for p in started if _alive(p)]
        if signum == signal.SIGTERM:
            assert process.returncode == 143 and "kept in" in stderr, stderr
            for path in out.glob("*.jsonl"):
                run = load_run(path)
                assert not run.complete and "SIGTERM" in run.end_reason and run.records
        assert _wait_until(lambda: list(scratch.iterdir()) == [], 15), list(scratch.iterdir())
    finally:
        _cleanup(process, started)
