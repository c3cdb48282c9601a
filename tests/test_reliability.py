"""Issue 10, one test (or a few) per class: concurrent runs, files that are not ours, disk
full, unwritable paths, bad case values, out-of-range options, mistyped results files, quiet
nonsense and misleading messages. Signals are in test_signals.py.

Everything but the concurrent-runs test runs in-process without TensorFlow.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import descendants
from test_pytest_benchmark import bench_entry, pytest_benchmark_json
from test_runner import ROOT, _suite
from test_signals import _alive

import bench.store.runfiles
from bench.cli import main
from bench.engine import plan
from bench.errors import WRITE_FAILED, UsageError
from bench.store.record import Cell, Record
from bench.store.runfiles import (
    RunHeader,
    RunWriter,
    StoreError,
    StoreWriteError,
    claim_run_file,
    load_run,
    load_runs,
)
from cases import ConfigError, get_workload

SAMPLES = [0.010, 0.011, 0.0105, 0.0102, 0.0108]


def _record(mode: str = "eager", samples=None, **fields) -> Record:
    return Record(cell=Cell("cnn", "", mode, "infer", batch=2), status="ok",
                  samples_s=list(SAMPLES if samples is None else samples), images_per_step=2,
                  **fields)


def _run_file(path: Path, modes=("eager", "function"), run_id: str = "run-1") -> Path:
    writer = RunWriter(path, RunHeader(run_id=run_id, suite="tiny", started="2026-01-01"))
    for mode in modes:
        writer.append(_record(mode, run_id=run_id))
    writer.close(complete=True)
    return path


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_clear_line(err: str) -> None:
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err


# --------------------------------------------------------------------------- 1. concurrent runs


def test_claim_gives_each_run_its_own_file(tmp_path):
    first = claim_run_file(tmp_path / "out", "quick-20260101-000000")
    second = claim_run_file(tmp_path / "out", "quick-20260101-000000")
    assert first != second and first.exists() and second.exists()
    assert second.name == "quick-20260101-000000-2.jsonl"
    # A claimed, empty file is accepted by the writer; one with data never is.
    _run_file(first)
    assert load_run(first).complete
    with pytest.raises(FileExistsError):
        RunWriter(first, RunHeader(run_id="x", suite="s", started=""))
    assert load_run(first).header.run_id == "run-1"


def test_two_runs_into_one_directory_at_once_both_keep_their_results(tmp_path):
    suite = _suite(tmp_path, ["eager"])
    out = tmp_path / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--out", str(out),
               "--quiet", "--probes", "none"]
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)
                 for _ in range(2)]
    seen: set[int] = set()
    try:
        while any(p.poll() is None for p in processes):
            for p in processes:
                seen |= descendants(p.pid)
            time.sleep(0.1)
        results = [p.communicate(timeout=60) for p in processes]
        assert [p.returncode for p in processes] == [0, 0], [err for _, err in results]
        files = sorted(out.glob("*.jsonl"))
        assert len(files) == 2
        for file in files:
            run = load_run(file)
            assert run.complete and [r.status for r in run.records] == ["ok"]
            assert (out / f"{file.stem}_logs").is_dir()  # logs belong to their run
        assert len({load_run(f).header.run_id for f in files}) == 2
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in seen if _alive(p)]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=30)


# --------------------------------------------------------------------------- 2. not our file


def test_history_append_refuses_a_file_that_is_not_a_history(tmp_path, capsys):
    run = _run_file(tmp_path / "run.jsonl")
    other = _run_file(tmp_path / "other.jsonl", run_id="run-2")
    text = tmp_path / "notes.txt"
    text.write_text("my notes\n")
    for target in (other, text):
        before = target.read_bytes()
        code, _, err = _cli(capsys, "history", "append", run, "--history", target)
        assert code == 2 and "history" in err
        _one_clear_line(err)
        assert target.read_bytes() == before
    history = tmp_path / "history.jsonl"
    assert _cli(capsys, "history", "append", run, "--history", history)[0] == 0
    assert _cli(capsys, "history", "append", other, "--history", history)[0] == 0
    assert all(json.loads(line)["kind"] == "history" for line in history.read_text().splitlines())
    code, _, err = _cli(capsys, "history", "report", "--history", other,
                        "-o", tmp_path / "t.html")
    assert code == 2 and ("not a history" in err or "run file" in err), err


def test_baseline_record_refuses_to_replace_what_is_not_a_run_file(tmp_path, capsys):
    run = _run_file(tmp_path / "run.jsonl")
    folder = tmp_path / "baselines"
    folder.mkdir()
    precious = folder / "quick-cpu.jsonl"
    precious.write_text("not a run at all\n")
    code, _, err = _cli(capsys, "baseline", "record", run, "--name", "quick-cpu", "--dir", folder)
    assert code == 2 and "refusing to replace" in err
    _one_clear_line(err)
    assert precious.read_text() == "not a run at all\n"
    # A baseline that is a run file is refreshed as before.
    _run_file(folder / "old.jsonl", run_id="old")
    assert _cli(capsys, "baseline", "record", run, "--name", "old", "--dir", folder)[0] == 0
    assert load_run(folder / "old.jsonl").header.run_id == "run-1"


# --------------------------------------------------------------------------- 4. disk full


def _fail_writes_after(monkeypatch, good: int, short: bool = False) -> None:
    calls = {"n": 0}
    real = os.write

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] <= good:
            return real(fd, data)
        if short:  # the kernel wrote part of the line, then the disk was full
            return real(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(bench.store.runfiles.os, "write", write)


@pytest.mark.parametrize("short", [False, True], ids=["ENOSPC", "short write"])
def test_disk_full_keeps_every_whole_line(tmp_path, monkeypatch, short):
    path = tmp_path / "run.jsonl"
    writer = RunWriter(path, RunHeader(run_id="r", suite="s", started=""))
    writer.append(_record("eager"))
    _fail_writes_after(monkeypatch, 0, short)
    with pytest.raises(StoreWriteError, match="No space left|short write"):
        writer.append(_record("function"))
    monkeypatch.undo()
    assert path.read_text().endswith("\n")
    run = load_run(path)
    assert [r.cell.mode for r in run.records] == ["eager"] and not run.problems


def test_disk_full_during_a_run_is_one_message_and_exit_code_3(tmp_path, monkeypatch, capsys):
    """The run command's handling, with the runner replaced by one that fills the disk."""
    import bench.engine.runner

    def fake_run(order, *, out_path, **kwargs):
        writer = RunWriter(out_path, RunHeader(run_id="r", suite="tiny", started=""))
        writer.append(_record("eager"))
        _fail_writes_after(monkeypatch, 0)
        writer.append(_record("function"))

    monkeypatch.setattr(bench.engine.runner, "run", fake_run)
    out = tmp_path / "out"
    code, _, err = _cli(capsys, "run", "--suite", _suite(tmp_path, ["eager"]), "--out", out,
                        "--quiet", "--probes", "none")
    monkeypatch.undo()
    assert code == WRITE_FAILED == 3
    assert "No space left on device" in err and "kept" in err and "Traceback" not in err
    [file] = out.glob("*.jsonl")
    assert [r.cell.mode for r in load_run(file).records] == ["eager"]


def test_disk_full_during_history_append_leaves_the_history_as_it_was(tmp_path, monkeypatch,
                                                                    capsys):
    history = tmp_path / "history.jsonl"
    assert _cli(capsys, "history", "append", _run_file(tmp_path / "a.jsonl"),
                "--history", history)[0] == 0
    before = history.read_bytes()
    second = _run_file(tmp_path / "b.jsonl", run_id="b")
    _fail_writes_after(monkeypatch, 0, short=True)
    code, _, err = _cli(capsys, "history", "append", second, "--history", history)
    monkeypatch.undo()
    assert code == WRITE_FAILED and "short write" in err and "Traceback" not in err
    assert history.read_bytes() == before


# --------------------------------------------------------------------------- 5. unwritable paths


def _unwritable(tmp_path: Path) -> list[Path]:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    return [Path("/proc/bench-test/out"), a_file / "sub", a_file]


@pytest.mark.parametrize("which", ["proc", "under a file", "a file"])
@pytest.mark.parametrize("command", [
    "run --out", "run --report", "report -o", "history append --history",
    "history report -o", "baseline record --dir", "debug --out",
])
def test_unwritable_paths_are_one_line_and_exit_2(tmp_path, capsys, command, which):
    target = _unwritable(tmp_path)[["proc", "under a file", "a file"].index(which)]
    run = _run_file(tmp_path / "run.jsonl")
    suite = _suite(tmp_path, ["eager"])
    history = tmp_path / "history.jsonl"
    html = target.with_name(target.name + ".html") if which != "a file" else target / "r.html"
    args = {
        "run --out": ["run", "--suite", suite, "--out", target, "--quiet"],
        "run --report": ["run", "--suite", suite, "--out", tmp_path / "out", "--report", html],
        "report -o": ["report", run, "-o", html],
        "history append --history": ["history", "append", run, "--history",
                                     target / "h.jsonl" if which == "a file" else target],
        "history report -o": ["history", "report", "--history", history, "-o", html],
        "baseline record --dir": ["baseline", "record", run, "--dir", target],
        "debug --out": ["debug", "--case", "cnn", "--mode", "eager", "--out", target],
    }[command]
    if command == "history report -o":
        assert _cli(capsys, "history", "append", run, "--history", history)[0] == 0
    before = sorted(tmp_path.rglob("*"))
    code, _, err = _cli(capsys, *args)
    assert code == 2, err
    _one_clear_line(err)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written half-way
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- 6. case values


@pytest.mark.parametrize("spec, message", [
    ("mobilenet:alpha=inf", "not a finite number"),
    ("mobilenet:alpha=nan", "not a finite number"),
    ("mobilenet:alpha=1e308", "<= 4"),
    ("mobilenet:resolution=100000", "<= 1024"),
    ("mobilenet:classes=10000000000", "between 1 and 100000"),
    ("cnn:input_size=99999999999999999999", "between 1 and 1024"),
    ("cnn:conv_filters=8/99999999", "16384"),
    ("cnn:kernel_size=1e3", "not a valid int"),
])
def test_bad_case_values_are_a_config_error(spec, message):
    with pytest.raises(ConfigError, match=message):
        get_workload(spec)


@pytest.mark.parametrize("config, message", [
    ("alpha = true", "alpha: true is a boolean; expected float"),
    ("resolution = false", "resolution: false is a boolean; expected int"),
    ("alpha = inf", "alpha: inf is not a finite number"),
    ("alpha = 1e308", "alpha must be > 0 and <= 4"),
])
def test_bad_toml_case_values_name_file_and_key(tmp_path, config, message):
    suite = tmp_path / "s.toml"
    suite.write_text(f'[[case]]\nname = "mobilenet"\n[case.config]\n{config}\n')
    with pytest.raises(UsageError, match=message):
        plan.load_suite(str(suite))


# --------------------------------------------------------------------------- 7. option ranges


@pytest.mark.parametrize("option", [
    "--rounds 100000000", "--budget 1e300", "--budget inf", "--timeout 1e12", "--warmup 10000000",
    "--min-samples 1000000000", "--memory-limit-mb 99999999999", "--batch 100000",
])
def test_options_out_of_range_fail_fast_before_anything_runs(tmp_path, capsys, option):
    out = tmp_path / "out"
    start = time.monotonic()
    code, _, err = _cli(capsys, "run", "--suite", _suite(tmp_path, ["eager"]), "--out", out,
                        *option.split())
    assert code == 2 and time.monotonic() - start < 5
    _one_clear_line(err)
    assert not out.exists()


def test_rounds_order_refuses_absurd_rounds_before_allocating():
    with pytest.raises(UsageError, match="from 1 to 100"):
        plan.rounds_order([Cell("cnn", "", "eager", "infer")], 100_000_000)


# --------------------------------------------------------------------------- 8. mistyped records


BAD_RECORDS = {
    "infinite sample": '"samples_s": [0.01, Infinity]',
    "string sample": '"samples_s": [0.01, "fast"]',
    "zero samples": '"samples_s": [0.0, 0.0]',
    "string setup": '"setup_s": {"build": "1.5"}',
    "number for a name": '"cell": {"case": "cnn", "config": "", "mode": 3, "phase": "infer"}',
    "bool batch": '"cell": {"case": "cnn", "config": "", "mode": "x", "phase": "infer", '
                  '"batch": true}',
    "string images": '"images_per_step": "2"',
    "string first result": '"first_result_s": "0.4"',
    "list for debug": '"debug": [1]',
    "bad paired_s": '"paired_s": [-1.0]',
    "bad cpus": '"cpus": ["0"]',
    # The fields schema 1 kept in its undeclared `extra`.
    "string batches_per_call": '"batches_per_call": "4"',
    "one slot time": '"slot_held": [100.0]',
    "number for a remeasure note": '"extra_visit": 1',
    "v1 extra not an object": '"schema": 1, "extra": [1]',
}


def _with_bad_record(path: Path, fragment: str) -> Path:
    """A run file whose line 3 is a record with `fragment` (JSON members) overriding fields."""
    _run_file(path, modes=("eager", "function"))
    lines = path.read_text().splitlines()
    bad = {**json.loads(lines[1]), **json.loads("{" + fragment + "}")}  # reads Infinity too
    lines.insert(2, json.dumps(bad))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("what", list(BAD_RECORDS))
def test_a_mistyped_record_is_skipped_with_file_and_line(tmp_path, what):
    path = _with_bad_record(tmp_path / "run.jsonl", BAD_RECORDS[what])
    run = load_run(path)
    assert [r.cell.mode for r in run.records] == ["eager", "function"]
    assert len(run.problems) == 1 and run.problems[0].startswith(f"{path}:3: ")


@pytest.mark.parametrize("command", ["table", "report", "compare", "history", "stability",
                                     "baseline"])
def test_commands_survive_mistyped_records(tmp_path, capsys, command):
    path = _with_bad_record(tmp_path / "run.jsonl", BAD_RECORDS["infinite sample"])
    other = _with_bad_record(tmp_path / "other.jsonl", BAD_RECORDS["string setup"])
    other.write_text(other.read_text().replace('"run-1"', '"run-2"'))
    args = {
        "table": ["table", path],
        "report": ["report", path, "-o", tmp_path / "r.html"],
        "compare": ["compare", path, other],
        "history": ["history", "append", path, "--history", tmp_path / "h.jsonl"],
        "stability": ["stability", path, other],
        "baseline": ["baseline", "list", "--dir", tmp_path],
    }[command]
    code, _, err = _cli(capsys, *args)
    assert code in (0, 1) and "Traceback" not in err
    assert f"{path}:3:" in err or command == "baseline"
    if command == "baseline":  # recording it is refused: a baseline must be clean
        code, _, err = _cli(capsys, "baseline", "record", path, "--dir", tmp_path / "b")
        assert code == 2 and "unreadable" in err


@pytest.mark.parametrize("header, message", [
    ({"machine": "box"}, "machine must be an object"),
    ({"run_id": 7}, "run_id must be a string"),
    ({"peak_flops": {"cpu": "fast"}}, "peak_flops"),
])
def test_a_mistyped_header_is_not_a_results_file(tmp_path, header, message):
    path = _run_file(tmp_path / "run.jsonl")
    lines = path.read_text().splitlines()
    lines[0] = json.dumps({**json.loads(lines[0]), **header})
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(StoreError, match=message):
        load_run(path)


# --------------------------------------------------------------------------- 9. quiet nonsense


def test_compare_with_no_cell_in_common_says_so(tmp_path, capsys):
    base = _run_file(tmp_path / "base.jsonl", modes=("eager",))
    current = _run_file(tmp_path / "cur.jsonl", modes=("function",), run_id="run-2")
    code, _, err = _cli(capsys, "compare", base, current)
    assert code == 2 and "nothing to compare" in err
    _one_clear_line(err)


def test_the_same_run_twice_is_loaded_once_with_a_warning(tmp_path, capsys):
    path = _run_file(tmp_path / "run.jsonl")
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    runs = load_runs([path, copy, path])
    assert len(runs) == 1
    assert sum("already given" in p for p in runs[0].problems) == 2
    code, out, err = _cli(capsys, "table", path, path, "--format", "csv")
    assert code == 0 and "already given" in err
    assert len(out.strip().splitlines()) == 3  # header + eager + function


# --------------------------------------------------------------------------- 10. messages


def test_a_byte_order_mark_is_not_a_reason_to_reject_a_run(tmp_path):
    path = _run_file(tmp_path / "run.jsonl")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    run = load_run(path)
    assert run.complete and len(run.records) == 2 and not run.problems


def test_pytest_benchmark_json_is_named_as_such(tmp_path, capsys):
    path = tmp_path / "pb.json"
    path.write_text(json.dumps(pytest_benchmark_json(bench_entry("eager", 0.01),
                                                     bench_entry("function", 0.005)), indent=2))
    code, _, err = _cli(capsys, "baseline", "record", path, "--dir", tmp_path / "b")
    assert code == 2 and "pytest-benchmark" in err and "not valid JSON" not in err
    # history append reads it like table and report do.
    code, out, err = _cli(capsys, "history", "append", path, "--history", tmp_path / "h.jsonl")
    assert code == 0, err
    assert "appended 2 cells" in out


def test_an_interrupted_start_leaves_no_empty_file_and_says_so(tmp_path, monkeypatch, capsys):
    import bench.engine.runner

    def interrupted(order, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C during calibration, before the header is written

    monkeypatch.setattr(bench.engine.runner, "run", interrupted)
    out = tmp_path / "out"
    code, _, err = _cli(capsys, "run", "--suite", _suite(tmp_path, ["eager"]), "--out", out,
                        "--quiet", "--probes", "none")
    assert code == 130
    assert "nothing was recorded" in err and "removed" in err
    assert not list(out.glob("*.jsonl"))
