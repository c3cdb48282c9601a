"""Outputs the suite writes (reports, CSVs, trends pages, baselines, history): never through a
link, never over a run or a file another writer owns, all or nothing, spreadsheet-safe.

In-process, no TensorFlow. README "Reliability", classes 1-4, 13 and 14.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import threading
import time

import pytest
from test_reliability import _cli, _one_clear_line, _record, _run_file

import bench.store.atomic
from bench.store.runfiles import RunHeader, RunWriter, load_run
from reports.history import append_run, load_history

# --------------------------------------------------------------------------- 1. links


@pytest.mark.parametrize("command", ["report", "run --report", "history report"])
def test_class01_no_output_is_written_through_a_symbolic_link(tmp_path, capsys, command):
    run = _run_file(tmp_path / "run.jsonl")
    before = run.read_bytes()
    link = tmp_path / "r.html"
    link.symlink_to(run)
    history = tmp_path / "history.jsonl"
    assert _cli(capsys, "history", "append", run, "--history", history)[0] == 0
    args = {"report": ["report", run, "-o", link],
            "run --report": ["run", "--suite", "smoke", "--report", link, "--out", tmp_path],
            "history report": ["history", "report", "--history", history, "-o", link]}[command]
    code, _, err = _cli(capsys, *args)
    assert code == 2 and "symbolic link" in err
    _one_clear_line(err)
    assert run.read_bytes() == before and link.is_symlink()


def test_class01_a_side_csv_that_is_a_link_and_a_run_file_named_html_are_refused(tmp_path,
                                                                                 capsys):
    run = _run_file(tmp_path / "run.jsonl")
    before = run.read_bytes()
    (tmp_path / "r_cells.csv").symlink_to(run)
    code, _, err = _cli(capsys, "report", run, "-o", tmp_path / "r.html")
    assert code == 2 and "symbolic link" in err
    # A run (or history) file given an .html name is never replaced either.
    copy = tmp_path / "copy.html"
    copy.write_bytes(before)
    code, _, err = _cli(capsys, "report", run, "-o", copy)
    assert code == 2 and "holds a run file" in err
    _one_clear_line(err)
    assert copy.read_bytes() == before and run.read_bytes() == before


def test_class01_history_append_refuses_a_link(tmp_path, capsys):
    run = _run_file(tmp_path / "run.jsonl")
    real = tmp_path / "real.jsonl"
    assert _cli(capsys, "history", "append", run, "--history", real)[0] == 0
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    code, _, err = _cli(capsys, "history", "append", _run_file(tmp_path / "b.jsonl", run_id="b"),
                        "--history", link)
    assert code == 2 and "symbolic link" in err


# --------------------------------------------------------------------------- 2. atomic


def test_class02_a_failed_report_leaves_the_previous_one_and_no_temp_file(tmp_path, capsys,
                                                                          monkeypatch):
    run = _run_file(tmp_path / "run.jsonl")
    out = tmp_path / "r.html"
    assert _cli(capsys, "report", run, "-o", out)[0] == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_write = os.write

    def half_then_full(fd, data):  # the disk fills up half-way through the new page
        if len(data) > 100:
            real_write(fd, bytes(data[:50]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(bench.store.atomic.os, "write", half_then_full)
    code, _, err = _cli(capsys, "report", run, "-o", out)
    assert code == 3
    _one_clear_line(err)
    assert str(out) in err and "No space left" in err  # 14: the message names the file
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_class02_baselines_and_pages_are_written_atomically(tmp_path, monkeypatch, capsys):
    run = _run_file(tmp_path / "run.jsonl")
    folder = tmp_path / "b"
    assert _cli(capsys, "baseline", "record", run, "--name", "x", "--dir", folder)[0] == 0
    old = (folder / "x.jsonl").read_bytes()

    def fail(*args):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(bench.store.atomic.os, "replace", fail)
    other = _run_file(tmp_path / "other.jsonl", run_id="other")
    code, _, err = _cli(capsys, "baseline", "record", other, "--name", "x", "--dir", folder)
    assert code == 3 and "x.jsonl" in err
    assert (folder / "x.jsonl").read_bytes() == old
    assert sorted(p.name for p in folder.iterdir()) == ["x.jsonl"]


# --------------------------------------------------------------------------- 3. history lock


def test_class03_two_appends_of_one_run_at_once_add_it_once(tmp_path, monkeypatch):
    import reports.history

    run = load_run(_run_file(tmp_path / "run.jsonl"))
    history = tmp_path / "history.jsonl"
    summarize = reports.history.summarize_run
    both_checked = threading.Barrier(2, timeout=5)

    def slow_summary(*args):  # both appends get past their first look before either writes
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait()
        time.sleep(0.2)
        return summarize(*args)

    monkeypatch.setattr(reports.history, "summarize_run", slow_summary)
    added = []
    threads = [threading.Thread(target=lambda: added.append(append_run(run, history)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(added) == [0, 2]
    assert len(history.read_text().splitlines()) == 2


def test_class03_a_run_appended_twice_loads_once(tmp_path):
    run = load_run(_run_file(tmp_path / "run.jsonl"))
    history = tmp_path / "history.jsonl"
    append_run(run, history)
    history.write_text(history.read_text() * 2)  # what two racing appends used to leave
    loaded = load_history(history)
    assert len(loaded.entries) == 2 and len(loaded.problems) == 2
    assert "duplicate" in loaded.problems[0]


# --------------------------------------------------------------------------- 4. side CSVs


def test_class04_a_report_never_replaces_a_csv_it_did_not_write(tmp_path, capsys):
    run = _run_file(tmp_path / "run.jsonl")
    mine = tmp_path / "r_cells.csv"
    mine.write_text("my,own\n1,2\n")
    code, out, err = _cli(capsys, "report", run, "-o", tmp_path / "r.html")
    assert code == 2 and "r_cells.csv" in err and "refusing" in err
    _one_clear_line(err)
    assert mine.read_text() == "my,own\n1,2\n" and not (tmp_path / "r.html").exists()
    mine.unlink()
    code, out, _ = _cli(capsys, "report", run, "-o", tmp_path / "r.html")
    assert code == 0 and "r_cells.csv" in out and "r_modes.csv" in out  # says what it writes
    # Its own CSVs are named in the report, so a re-run replaces them.
    assert _cli(capsys, "report", run, "-o", tmp_path / "r.html")[0] == 0


# --------------------------------------------------------------------------- 13. CSV injection


def test_class13_csv_text_cannot_start_a_formula(tmp_path, capsys):
    path = tmp_path / "run.jsonl"
    writer = RunWriter(path, RunHeader(run_id="r", suite="s", started="2026"))
    writer.append(_record("eager", run_id="r"))
    bad = _record("function", run_id="r")
    bad.status, bad.reason, bad.samples_s = "error", "=HYPERLINK(\"http://x\",\"y\")", []
    writer.append(bad)
    writer.close(True)
    code, out, _ = _cli(capsys, "table", path, "--format", "csv", "--all-columns")
    assert code == 0
    assert "'=HYPERLINK" in out and ",=HYPERLINK" not in out and '"=HYPERLINK' not in out
    assert _cli(capsys, "report", path, "-o", tmp_path / "r.html")[0] == 0
    cells = (tmp_path / "r_cells.csv").read_text()
    assert "'=HYPERLINK" in cells and ",=HYPERLINK" not in cells


def test_class13_numbers_stay_numbers():
    import pandas as pd

    from reports.csvfile import to_csv

    text = to_csv(pd.DataFrame({"x": [-1.5, 2.0], "s": ["-a", "@b"], "t": ["+c", "ok"]}))
    assert text.splitlines() == ["x,s,t", "-1.5,'-a,'+c", "2.0,'@b,ok"]


# --------------------------------------------------------------------------- 14. modes


def test_class14_outputs_follow_the_umask(tmp_path, capsys):
    run = _run_file(tmp_path / "run.jsonl")
    old = os.umask(0o022)
    try:
        assert _cli(capsys, "baseline", "record", run, "--name", "x", "--dir", tmp_path)[0] == 0
        assert _cli(capsys, "report", run, "-o", tmp_path / "r.html")[0] == 0
    finally:
        os.umask(old)
    for name in ("x.jsonl", "r.html", "r_cells.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    assert json.loads((tmp_path / "x.jsonl").read_text().splitlines()[0])["kind"] == "header"


# --------------------------------------------------------------------------- 9. odd inputs


def _non_utf8_run(tmp_path):
    path = tmp_path / os.fsdecode(b"run-\xff\xfe.jsonl")  # a name in Latin-1, say
    return _run_file(path)


def test_class09_a_run_file_whose_name_is_not_utf8_is_reported(tmp_path, capsys):
    path = _non_utf8_run(tmp_path)
    code, out, err = _cli(capsys, "report", path, "-o", tmp_path / "r.html")
    assert code == 0, err
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "Traceback" not in err


def test_class09_a_good_run_whose_report_cannot_be_written_exits_0_and_says_so(
        tmp_path, capsys, monkeypatch):
    import bench.commands.run
    from bench.engine.runner import RunResult

    path = _non_utf8_run(tmp_path)
    folder = tmp_path / "reports"

    def finished_run(*args, **kwargs):  # the run is fine; meanwhile its report folder went
        folder.rmdir()
        return path, RunResult(path, load_run(path).records)

    monkeypatch.setattr(bench.commands.run, "execute", finished_run)
    code, _, err = _cli(capsys, "run", "--suite", "smoke", "--report", folder / "r.html",
                        "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    assert "report could not be written" in err and "no longer exists" in err
    assert "Traceback" not in err


def test_class09_an_absurd_setup_time_is_one_warning_not_a_crash(tmp_path, capsys):
    from reports.pivots import break_even_steps, wins_below_steps

    path = tmp_path / "run.jsonl"
    writer = RunWriter(path, RunHeader(run_id="r", suite="s", started="2026"))
    writer.append(_record("eager", run_id="r", first_result_s=1.0))
    writer.append(_record("function", samples=[0.005] * 5, run_id="r", first_result_s=1e308))
    writer.close(True)
    code, _, err = _cli(capsys, "report", path, "-o", tmp_path / "r.html")
    assert code == 0 and "first_result_s" in err and ":3:" in err and "Traceback" not in err
    assert break_even_steps(1e308, 0.005, 1.0, 0.01) == float("inf")
    assert wins_below_steps(-1e308, 0.01, 1e308, 0.005) == float("inf")


# --------------------------------------------------------------------------- 14. messages


def test_class14_an_interrupted_gate_says_no_verdict_was_reached(tmp_path, capsys,
                                                                 monkeypatch):
    from runs import BASELINE_RUN as BASELINE

    import bench.commands.ab

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench.commands.ab, "measure", interrupted)
    code, out, err = _cli(capsys, "gate", "--baseline", BASELINE, "--against", ".", "--out",
                          tmp_path, "--quiet")
    assert code == 130
    assert "no verdict was reached" in err and "pass" not in out
