"""`bench ab` end to end: sides, lockstep order, run files, the verdict, a git side's old code."""

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMALL_CNN

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--case", SMALL_CNN, "--batch", "2", "--phase", "infer", "--pair-budget", "0.2",
        "--min-steps", "5"]


def _bench(args, cwd=ROOT, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                          capture_output=True, text=True)


def _git(*args, cwd=ROOT):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_bad_sides_are_one_line_and_exit_2(tmp_path):
    first_commit = _git("rev-list", "--max-parents=0", "HEAD").splitlines()[-1]
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")],
                   check=True)
    cases = {
        "git:no-such-revision": "unknown revision",
        f"git:{first_commit}": "too old to speak the A/B worker protocol",
        "python:/no/such/python": "no such interpreter",
        f"python:{tmp_path / 'bare'}": "TensorFlow is not installed",
        "env:1BAD=x": "is not NAME=VALUE",
        "svn:123": "unknown kind 'svn'",
    }
    for side, message in cases.items():
        result = _bench(["ab", side, ".", *TINY, "--out", str(tmp_path / "out")])
        assert result.returncode == 2, (side, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
        assert len(lines) == 1 and message in lines[0], (side, result.stderr)
        assert "Traceback" not in result.stderr
    # Nothing was measured, so nothing was left behind.
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_bad_rule_options_exit_2(tmp_path):
    for args in (["--threshold", "0"], ["--min-pairs", "5", "--max-pairs", "3"],
                 ["--pair-budget", "nan"], ["--look-every", "0"]):
        result = _bench(["ab", ".", ".", *TINY, *args, "--out", str(tmp_path)])
        assert result.returncode == 2 and "error:" in result.stderr, args


def test_turns_alternate_a_b_b_a():
    from bench.ab.driver import LockstepSettings, _take_turns, _Worker

    sent = []

    class Conn:
        def __init__(self, label):
            self.label = label

        def sendall(self, data):
            sent.append((self.label, data))

        def recv(self, size):
            return b"k"

    workers = [_Worker("A", Conn("A")), _Worker("B", Conn("B"))]
    _take_turns(workers, LockstepSettings(pair_budget_s=0.0, min_steps=4, warmup=2), None)
    assert sent == [("A", b"w"), ("B", b"w"), ("B", b"w"), ("A", b"w"),
                    ("A", b"s"), ("B", b"s"), ("B", b"s"), ("A", b"s"),
                    ("A", b"s"), ("B", b"s"), ("B", b"s"), ("A", b"s")]


@pytest.fixture(scope="module")
def identical(tmp_path_factory):
    pytest.importorskip("tensorflow")
    tmp = tmp_path_factory.mktemp("ab")
    (tmp / "scratch").mkdir()
    result = _bench(["ab", ".", ".", *TINY, "--mode", "eager,function", "--min-pairs", "2",
                     "--max-pairs", "2", "--out", str(tmp / "out"), "--report",
                     str(tmp / "ab.html"), "--format", "csv"],
                    env={"TMPDIR": str(tmp / "scratch")})
    return result, tmp


def test_identical_sides_give_two_ordinary_run_files(identical):
    from bench.store.runfiles import load_runs
    from reports.ab import find_pairs

    result, tmp = identical
    assert result.returncode in (0, 1), result.stderr
    files = sorted((tmp / "out").glob("*.jsonl"))
    assert [f.name[-7:] for f in files] == ["A.jsonl", "B.jsonl"]
    runs = load_runs(files)
    assert all(run.complete for run in runs)
    (pair,) = find_pairs(runs)
    for run in (pair.a, pair.b):
        assert sorted((r.cell.mode, r.round) for r in run.records) == [
            ("eager", 0), ("eager", 1), ("function", 0), ("function", 1)]
        assert all(r.status == "ok" for r in run.records)
        # exact facts are checked once (the first pair), timing is repeated
        assert [(r.cell.mode, r.equivalent) for r in run.records if r.round == 0] == [
            ("eager", True), ("function", True)]
        assert all(r.equivalent is None for r in run.records if r.round == 1)
        assert all(len(r.samples_s) >= 5 for r in run.records)
        # the paired speed-up over eager is measured in the first pair only
        assert [bool(r.paired_s) for r in run.records if r.cell.mode == "function"] == \
            [True, False]
    # both sides of a pair say the CPU their samples ran on: the same one
    assert [r.cpus for r in pair.a.records] == [r.cpus for r in pair.b.records]
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["key"].split("/")[-6] for r in rows] == ["eager", "function"]
    assert {"ratio", "low", "high", "verdict"} <= set(rows[0])
    assert all(0.5 < float(r["ratio"]) < 2.0 for r in rows)


def test_the_report_has_the_ab_section(identical):
    _, tmp = identical
    page = (tmp / "ab.html").read_text()
    assert "A/B in lockstep" in page and "B/A step time per cell" in page
    assert (tmp / "ab_ab.csv").is_file()


def test_an_ab_run_leaves_no_process_or_scratch_file(identical):
    _, tmp = identical
    assert list((tmp / "scratch").iterdir()) == []
    # This run's processes are the ones with its TMPDIR (other tests may run A/B at the same
    # time under pytest-xdist, so the machine-wide process list is not this run's).
    marker = f"TMPDIR={tmp / 'scratch'}".encode()
    left = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                left.append(environ.parent.name)
        except OSError:  # gone meanwhile, or not ours to read
            pass
    assert left == []


def test_a_slowdown_planted_on_b_is_slower(tmp_path):
    pytest.importorskip("tensorflow")
    result = _bench(["ab", ".", ".+env:BENCH_INJECT_SLOWDOWN=function:infer:1.0", *TINY,
                     "--mode", "function", "--min-pairs", "3", "--max-pairs", "4",
                     "--out", str(tmp_path), "--format", "csv"])
    assert result.returncode == 1, result.stderr
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    # B's steps carry busy work worth its own median step (2x); the bounds are loose because
    # under pytest-xdist another test's load can move the worker's calibration of it.
    assert row["verdict"] == "slower" and 1.3 < float(row["ratio"]) < 4.0, row


SLOW_EAGER = '''

_fast_prepare = prepare


def prepare(request):  # a revision whose eager step sleeps 20 ms more
    import dataclasses
    import time

    prepared = _fast_prepare(request)
    fast = prepared.step

    def step():
        time.sleep(0.02)
        return fast()

    return dataclasses.replace(prepared, step=step)
'''


def test_a_git_side_runs_that_revisions_code(tmp_path):
    pytest.importorskip("tensorflow")
    repo = tmp_path / "repo"
    _git("clone", "--quiet", "--no-hardlinks", str(ROOT), str(repo), cwd=tmp_path)
    fast = _git("rev-parse", "HEAD", cwd=repo)
    eager = repo / "bench" / "modes" / "eager.py"
    eager.write_text(eager.read_text() + SLOW_EAGER)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "slow eager", cwd=repo)
    slow = _git("rev-parse", "HEAD", cwd=repo)
    result = _bench(["ab", f"git:{slow}", f"git:{fast}", *TINY, "--mode", "eager",
                     "--min-pairs", "2", "--max-pairs", "2", "--out", str(tmp_path / "out"),
                     "--format", "csv"], cwd=repo)
    assert result.returncode in (0, 1), result.stderr
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert float(row["ratio"]) < 0.5, row  # B (the fast revision) far faster than A
    assert (repo / ".git" / "bench-worktrees" / slow / "bench" / "lockstep.py").is_file()


def test_every_side_gets_fixed_allocator_thresholds_unless_it_sets_them():
    from bench.ab.sides import ALLOCATOR_ENV, parse_side, prepare_side

    plain = prepare_side(parse_side("."), "A")
    assert {k: plain.env[k] for k in ALLOCATOR_ENV} == ALLOCATOR_ENV
    own = prepare_side(parse_side(".+env:MALLOC_MMAP_THRESHOLD_=0,X=1"), "B")
    assert own.env["MALLOC_MMAP_THRESHOLD_"] == "0" and own.env["X"] == "1"
    assert own.env["MALLOC_TRIM_THRESHOLD_"] == ALLOCATOR_ENV["MALLOC_TRIM_THRESHOLD_"]


def test_a_cell_both_sides_skip_gets_one_pair_not_min_pairs(tmp_path):
    from bench.store.runfiles import load_runs

    result = _bench(["ab", ".", ".", "--case", SMALL_CNN, "--batch", "2", "--phase", "train",
                     "--mode", "frozen", "--min-pairs", "3", "--out", str(tmp_path / "out"),
                     "--format", "csv", "--quiet"])
    assert result.returncode == 0, result.stderr
    for run in load_runs(sorted((tmp_path / "out").glob("*.jsonl"))):
        assert [r.status for r in run.records] == ["skipped"]
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert row["verdict"] == "skipped"
