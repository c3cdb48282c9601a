"""The HTML report: escaping, files written, baseline, machines, and a real browser render."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from runs import fake_samples, recorded_records, write_run

from bench.cli import main
from bench.store.record import Cell, Record
from bench.store.runfiles import load_runs
from reports.report import build_report

CHROMIUM = "/usr/bin/chromium"
SCRIPT = "<script>alert('pwned')</script>"


def small_records(run_id: str, device: str = "cpu") -> list[Record]:
    """The recorded CNN cells (every mode and phase, one failing) plus a crashed cell."""
    records = recorded_records(run_id, device=device)
    # Markup and a TeX-like '$' in a config: shown literally in the page and in the plots.
    records.append(Record(Cell("cnn", "<b>x</b>$^$", "xla", "infer", device), "crashed", SCRIPT,
                          run_id=run_id))
    return records


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("runs") / "cpu.jsonl"
    return write_run(path, small_records("cpu-run"), run_id="cpu-run",
                     peak_flops={"cpu": 3.2e11})


@pytest.fixture(scope="module")
def report_file(run_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(run_file), "-o", str(out)]) == 0
    return out


def test_record_text_cannot_inject_markup(report_file):
    page = report_file.read_text()
    assert "<script" not in page  # the page has no scripts at all, and records add none
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;$^$" in page


def test_report_is_self_contained_with_csvs_next_to_it(report_file, capsys):
    page = report_file.read_text()
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith(("data:image/png;base64,", "#")) for s in sources)
    assert "<link" not in page and "@import" not in page
    for name in ("cells", "modes", "break_even", "scorecard"):
        table = pd.read_csv(report_file.with_name(f"report_{name}.csv"))
        assert len(table) > 0
    cells = pd.read_csv(report_file.with_name("report_cells.csv"))
    assert set(cells["status"]) == {"ok", "skipped", "error", "crashed"}
    assert "samples_s" not in cells.columns


def test_report_shows_warnings_tables_and_plots(report_file):
    page = report_file.read_text()
    assert "Warnings (" in page and "cell(s) failed" in page
    assert "XLA compilation failed" in page  # the failing cell is visible with its reason
    assert "not applicable" in page
    assert "Debuggability scorecard" in page and "python calls per step" in page
    for title in ("Speed-up over eager", "Throughput per mode", "Step-time distributions",
                  "Break-even", "Modes side by side"):
        assert title in page
    assert page.count("data:image/png;base64,") >= 4  # no scaling plot: one workload


def test_no_probes_and_incomplete_run_are_said_plainly(tmp_path):
    records = [Record(Cell("cnn", "", mode, "infer"), "ok", samples_s=fake_samples(t, 10),
                      images_per_step=1) for mode, t in (("eager", 0.01), ("function", 0.005))]
    run = load_runs([write_run(tmp_path / "r.jsonl", records, complete=False)])
    page = build_report(run).html
    assert "No debuggability probes in this run." in page
    assert "run is incomplete" in page


def test_multiple_machines_get_their_own_sections(tmp_path):
    cpu = write_run(tmp_path / "cpu.jsonl", small_records("a")[:14], run_id="a",
                    hostname="laptop")
    gpu = write_run(tmp_path / "gpu.jsonl", small_records("b", "gpu")[:14], run_id="b",
                    hostname="gpubox")
    report = build_report(load_runs([cpu, gpu]))
    assert 'id="laptop-xeon-cpu"' in report.html
    assert 'id="gpubox-xeon-gpu"' in report.html
    assert set(report.tables["cells"]["run_id"]) == {"a", "b"}


def test_baseline_comparison(run_file, tmp_path):
    current = tmp_path / "current.jsonl"
    records = small_records("cur")
    for record in records:  # function got 30% slower
        if record.cell.mode == "function" and record.status == "ok":
            record.samples_s = [s * 1.3 for s in record.samples_s]
    write_run(current, records, run_id="cur")
    out = tmp_path / "r.html"
    assert main(["report", str(current), "--baseline", str(run_file), "-o", str(out)]) == 0
    page = out.read_text()
    assert "Comparison with the baseline" in page and "regression" in page
    assert out.with_name("r_baseline.csv").exists()



def test_report_usage_errors(run_file, tmp_path, capsys):
    assert main(["report", str(run_file), "-o", str(tmp_path / "r.txt")]) == 2
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
def test_report_renders_in_headless_chromium(report_file, tmp_path):
    shot = tmp_path / "shot.png"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
              "--enable-logging=stderr", "--v=0"]
    url = report_file.resolve().as_uri()
    done = subprocess.run(common + [f"--screenshot={shot}", "--window-size=1400,3000", url],
                          capture_output=True, text=True, timeout=90)
    assert shot.exists() and shot.stat().st_size > 50_000, done.stderr[-2000:]
    for bad in ("Uncaught", "ERROR:CONSOLE", "ERR_FILE_NOT_FOUND", "net::ERR"):
        assert bad not in done.stderr, done.stderr[-2000:]
    dom = subprocess.run(common + ["--dump-dom", url], capture_output=True, text=True,
                         timeout=90)
    assert "Debuggability scorecard" in dom.stdout
    assert "<script" not in dom.stdout
    assert dom.stdout.count("<img") >= 4
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_report_links_a_trends_page_built_from_history(run_file, tmp_path):
    from bench.store.runfiles import load_run
    from reports.history import append_run

    history = tmp_path / "history.jsonl"
    append_run(load_run(run_file), history, commit="abc123")
    out = tmp_path / "report.html"
    assert main(["report", str(run_file), "-o", str(out), "--history", str(history)]) == 0
    trends = tmp_path / "report_trends.html"
    assert trends.exists() and "Benchmark trends" in trends.read_text()
    assert 'href="report_trends.html"' in out.read_text()
    assert main(["report", str(run_file), "-o", str(out), "--history",
                 str(tmp_path / "missing.jsonl")]) == 2
