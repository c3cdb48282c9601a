"""Nothing a run, a debug or an overhead measurement starts or writes outlives it, and a run
that loses its folder or a signal says so truthfully. README "Reliability", classes 5, 6, 10
and 11.

The tests of classes 5, 6 and 10 start real processes (`python -m bench ...`) with a fresh
TMPDIR of their own, then check that no process they started survives and that the temporary
directory is left empty.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import tiny_suite
from test_signals import _alive, _cleanup, _records, _wait_until, snapshot

from bench.store.runfiles import load_run

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


_SHORT_DIRS: list[Path] = []


@pytest.fixture(autouse=True)
def _remove_short_dirs():
    """The short directories _bench makes in /tmp go with the test that made them."""
    yield
    import shutil

    while _SHORT_DIRS:
        shutil.rmtree(_SHORT_DIRS.pop(), ignore_errors=True)


def _bench(tmp: Path, *args) -> subprocess.Popen:
    """`python -m bench ARGS` with TMPDIR set to `tmp` (a folder nothing else uses). `tmp` is
    a symlink to a short directory: the forkserver's socket lives under TMPDIR, and a Unix
    socket path longer than 108 bytes (a deep tmp_path) cannot be bound."""
    short = Path(tempfile.mkdtemp(prefix="bl-", dir="/tmp"))
    _SHORT_DIRS.append(short)
    tmp.symlink_to(short)
    tmp = short
    return subprocess.Popen([sys.executable, "-m", "bench", *map(str, args)], cwd=ROOT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(tmp)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _leftovers(tmp: Path) -> list[str]:
    tmp = tmp.resolve()
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))


# --------------------------------------------------------------------------- 5. temp files


def test_class05_a_six_cell_run_leaves_nothing_in_its_temporary_directory(tmp_path):
    # function and xla trace through AutoGraph, which writes __autograph_generated_file*.py.
    suite = tiny_suite(tmp_path, ["eager", "function", "xla"], batches=(1, 2))
    tmp, out = tmp_path / "tmp", tmp_path / "out"
    process = _bench(tmp, "run", "--suite", suite, "--out", out, "--quiet", "--probes", "none")
    started: dict = {}
    try:
        assert _wait_until(lambda: _records(out) >= 1, 120), "no record was written"
        started = snapshot(process.pid)
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        assert [r.status for r in load_run(next(out.glob("*.jsonl"))).records] == ["ok"] * 6
        assert _wait_until(lambda: not any(_alive(p) for p in started), 10)
        assert _leftovers(tmp) == []
    finally:
        _cleanup(process, started)


# --------------------------------------------------------------------------- 6. leftovers


def test_class06_an_interrupted_start_removes_its_log_folder_too(tmp_path):
    suite = tiny_suite(tmp_path, ["eager"])
    tmp, out = tmp_path / "tmp", tmp_path / "out"
    process = _bench(tmp, "run", "--suite", suite, "--out", out, "--quiet", "--probes", "none")
    started: dict = {}
    try:
        # The log folder exists once the forkserver is starting (calibration comes next).
        assert _wait_until(lambda: any(out.glob("*_logs/forkserver.log")), 60)
        started = snapshot(process.pid)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        if _records(out):
            pytest.skip("the machine was quick enough to finish a cell first")
        assert process.returncode == 143, stderr
        assert "nothing was recorded" in stderr
        assert _leftovers(out) == []  # no run file, no empty `_logs/` folder
        assert _wait_until(lambda: not any(_alive(p) for p in started), 10)
        assert _leftovers(tmp) == []
    finally:
        _cleanup(process, started)


def test_class06_an_interrupted_overhead_leaves_no_folder(tmp_path):
    tmp = tmp_path / "tmp"
    process = _bench(tmp, "overhead", "--case", "cnn:input_size=16,conv_filters=4/8,fc_units=16",
                     "--steps", "10000000")
    started: dict = {}
    try:
        assert _wait_until(lambda: any(tmp.glob("bench-overhead-*/overhead.log")), 60)
        assert _wait_until(lambda: len(snapshot(process.pid)) >= 3, 30)  # the worker runs
        started = snapshot(process.pid)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 143, stderr
        assert "Traceback" not in stderr
        assert _wait_until(lambda: not any(_alive(p) for p in started), 10)
        assert _leftovers(tmp) == []
    finally:
        _cleanup(process, started)


# --------------------------------------------------------------------------- 10. folder gone


def test_class10_the_results_folder_deleted_mid_run_stops_it_with_exit_3(tmp_path):
    suite = tiny_suite(tmp_path, ["eager", "function"], budget=1.0, batches=(1, 2, 4))
    tmp, out = tmp_path / "tmp", tmp_path / "out"
    process = _bench(tmp, "run", "--suite", suite, "--out", out, "--quiet", "--probes", "none")
    started: dict = {}
    try:
        assert _wait_until(lambda: _records(out) >= 1, 120), "no record was written"
        started = snapshot(process.pid)
        shutil.rmtree(out)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 3, stderr
        assert "results folder" in stderr and "disappeared" in stderr
        assert "crashed" not in stderr and "Traceback" not in stderr
        assert _wait_until(lambda: not any(_alive(p) for p in started), 10)
        assert _leftovers(tmp) == []
    finally:
        _cleanup(process, started)


# --------------------------------------------------------------------------- 11. header, footer


def test_class11_an_interruption_before_the_first_cell_never_leaves_a_bare_header(
        tmp_path, monkeypatch, capsys):
    """SIGTERM while a large plan's forecast is built (after calibration, before the first
    cell): what stderr says must be what the file holds."""
    from test_reliability import _cli

    import bench.engine.runner
    from bench.engine.signals import Interrupted

    monkeypatch.setattr(bench.engine.runner, "worker_context", lambda log, keras=True: None)
    monkeypatch.setattr(bench.engine.runner, "calibrate_profiles", lambda *args: {})

    def interrupted(*args, **kwargs):
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(bench.engine.runner, "Forecast", interrupted)
    out = tmp_path / "out"
    code, _, err = _cli(capsys, "run", "--suite", tiny_suite(tmp_path, ["eager"]), "--out", out,
                        "--quiet", "--probes", "none")
    assert code == 143
    files = list(out.glob("*.jsonl"))
    if "marked incomplete" in err:
        assert files and not load_run(files[0]).complete
        assert '"kind": "footer"' in files[0].read_text()
    else:
        assert "nothing was recorded" in err and not files
