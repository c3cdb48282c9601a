"""`bench gate` end to end on a tiny suite: A/B against the baseline's commit; a slowdown
planted on the working tree's side is confirmed and fails, identical code passes."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMALL_CNN

ROOT = Path(__file__).resolve().parent.parent


def _suite(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(
        'description = "gate test"\n[settings]\nbudget_s = 0.1\npaired_budget_s = 0.2\n'
        "min_samples = 5\nwarmup = 1\nrounds = 1\nremeasure = 0\nprobes = \"none\"\n"
        '[defaults]\nmodes = ["eager", "function"]\nphases = ["infer"]\nthreads = [1]\n'
        f'[[case]]\nspec = "{SMALL_CNN}"\nbatches = [4]\n')
    return path


def _bench(args, env=None):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    pytest.importorskip("tensorflow")
    tmp = tmp_path_factory.mktemp("gate")
    suite = _suite(tmp)
    out = tmp / "base"
    result = _bench(["run", "--suite", str(suite), "--out", str(out), "--quiet"])
    assert result.returncode == 0, result.stderr
    return suite, next(out.glob("*.jsonl")), tmp


FAST = ["--pair-budget", "0.2", "--min-steps", "5", "--min-pairs", "3", "--max-pairs", "4"]


def test_a_planted_slowdown_is_confirmed_and_fails_the_gate(baseline):
    """A 1.5x slowdown on B's function cell. The threshold is 20% (slower means beyond
    6.7%) so that the eager cell, which has no slowdown, is not flagged by the noise of 3-4
    pairs while another test runs on the other core (CI flagged it once at 3%)."""
    suite, base, tmp = baseline
    result = _bench(["gate", "--suite", str(suite), "--baseline", str(base), *FAST,
                     "--threshold", "0.2",
                     "--candidate", ".+env:BENCH_INJECT_SLOWDOWN=function:infer:1.5",
                     "--out", str(tmp / "slow"), "--quiet"])
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    flagged = re.search(r"confirming (\d+) flagged cell", result.stdout)
    assert flagged and int(flagged.group(1)) >= 1, output
    assert "gate: FAIL: 1 confirmed slower" in result.stdout, output
    failed = [line for line in result.stdout.splitlines() if line.startswith("  failed: ")]
    assert len(failed) == 1 and "/function/infer/" in failed[0], output
    # two sides, first run and confirmation
    assert len(list((tmp / "slow").glob("*.jsonl"))) == 4, output


def test_identical_code_passes_the_gate(baseline):
    suite, base, tmp = baseline
    result = _bench(["gate", "--suite", str(suite), "--baseline", str(base), *FAST,
                     "--threshold", "0.5", "--out", str(tmp / "same"), "--quiet"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gate: pass: 0 confirmed slower" in result.stdout
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    assert f"A = git:{commit}" in result.stderr  # side A is the baseline's commit


def test_gate_rejects_bad_options_and_a_baseline_without_commit(baseline, tmp_path):
    import json

    suite, base, tmp = baseline
    result = _bench(["gate", "--suite", str(suite), "--baseline", str(base),
                     "--threshold", "2"])
    assert result.returncode == 2 and "threshold" in result.stderr
    assert "Traceback" not in result.stderr
    lines = base.read_text().splitlines()
    header = json.loads(lines[0])
    header["machine"].pop("git", None)
    orphan = tmp_path / "orphan.jsonl"
    orphan.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    result = _bench(["gate", "--suite", str(suite), "--baseline", str(orphan)])
    assert result.returncode == 2 and "records no git commit" in result.stderr


def test_the_confirmation_gets_what_the_first_run_left_of_the_time_budget():
    from bench.ab.driver import LockstepSettings
    from bench.commands.gate import confirmation_settings

    budget = LockstepSettings(time_budget_s=420.0)
    assert confirmation_settings(budget, 400.0).time_budget_s == 20.0
    assert confirmation_settings(budget, 500.0).time_budget_s == 1.0  # min_pairs only
    assert confirmation_settings(LockstepSettings(), 500.0).time_budget_s is None
