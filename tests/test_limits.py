"""Plans and options with stated ceilings, the same everywhere they mean the same thing, and
testing aids that refuse a typo. README "Reliability", classes 7, 8 and 12. No TensorFlow."""

from __future__ import annotations

import time

import pytest
from test_reliability import _cli, _one_clear_line

from bench.engine import plan
from bench.errors import UsageError
from bench.store.record import Cell

# --------------------------------------------------------------------------- 7. plan size


def test_class07_a_huge_plan_is_refused_in_one_line(capsys):
    batches = ",".join(str(b) for b in range(1, plan.MAX_BATCH + 1))
    started = time.monotonic()
    code, _, err = _cli(capsys, "run", "--suite", "smoke", "--batch", batches, "--estimate")
    assert code == 2 and "cells" in err and "narrow it" in err and "--batch" in err
    _one_clear_line(err)
    assert time.monotonic() - started < 30
    # A run (not only its estimate) is refused where every runner builds its order.
    cells = [Cell("cnn", "", "eager", "infer", batch=b) for b in range(1, 2001)]
    with pytest.raises(UsageError, match=r"120,000 cells \(4,000 x 30 rounds\)"):
        plan.rounds_order(cells * 2, 30)
    code, _, err = _cli(capsys, "run", "--suite", "full", "--rounds", "100", "--batch",
                        ",".join(map(str, range(1, 9))), "--estimate")
    assert code == 2 and "x 100 rounds" in err


def test_class07_the_full_suite_at_100_rounds_is_estimated_quickly(capsys):
    started = time.monotonic()
    code, out, _ = _cli(capsys, "run", "--suite", "full", "--rounds", "100", "--probes", "all",
                        "--estimate")
    assert code == 0 and "75600 cells" in out
    assert time.monotonic() - started < 60  # was hours: probe selection was quadratic


def test_class07_probe_selection_is_linear():
    cells = [Cell("cnn", "", "eager", "infer", batch=b) for b in range(1, 2001)]
    order = plan.rounds_order(cells, 40)  # 80,000 (round, cell) pairs
    started = time.monotonic()
    chosen = plan.probe_selection(order, "all")
    assert len(chosen) == 2000 and all(r == 0 for r, _ in chosen)
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- 8. option bounds


@pytest.mark.parametrize("args", [
    ["overhead", "--steps", "1000000000000"],
    ["overhead", "--steps", "10"],
    ["overhead", "--batch", "100000"],
    ["overhead", "--batch", "0"],
    ["debug", "--batch", "4097"],
    ["run", "--batch", "4097", "--estimate"],
    ["history", "report", "--threshold", "1.5"],
    ["compare", "a", "b", "--alpha", "nan"],
    ["gate", "--max-pairs", "100000"],
    ["gate", "--pair-budget", "1e9"],
    ["gate-check", "--pairs", "1000000"],
    ["ab", ".", ".", "--min-steps", "0"],
    ["stability", "a", "b", "--tolerance", "-1"],
    ["noise", "--seconds", "1e12"],
])
def test_class08_every_numeric_option_has_a_ceiling(capsys, args):
    code, _, err = _cli(capsys, *args)
    assert code == 2
    assert "expected" in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_class08_the_same_option_has_the_same_bounds_everywhere(capsys):
    messages = {}
    for command in (["overhead"], ["debug"]):
        code, _, err = _cli(capsys, *command, "--batch", "4097")
        assert code == 2
        messages[command[0]] = err.split("--batch: ")[1]
    code, _, err = _cli(capsys, "run", "--batch", "4097", "--estimate")
    assert code == 2 and f"from 1 to {plan.MAX_BATCH}" in err
    assert messages["overhead"] == messages["debug"]


# --------------------------------------------------------------------------- 12. typos


@pytest.mark.parametrize("fault", ["bogus", "eager:explode", "nomode:crash"])
def test_class12_a_bad_planted_fault_is_refused(tmp_path, capsys, monkeypatch, fault):
    monkeypatch.setenv("BENCH_INJECT_FAULT", fault)
    code, _, err = _cli(capsys, "run", "--suite", "smoke", "--out", tmp_path / "out")
    assert code == 2 and "BENCH_INJECT_FAULT" in err
    _one_clear_line(err)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_class12_good_planted_faults_parse():
    from bench.engine.inject import parse_faults

    assert parse_faults("eager:crash, xla:hang") == {"eager": "crash", "xla": "hang"}
    assert parse_faults("") == {}


@pytest.mark.parametrize("value", ["0", "nan", "-1", "inf", "1e9"])
def test_class12_debug_timeout_is_checked_like_run_timeout(capsys, value):
    debug_code, _, debug_err = _cli(capsys, "debug", "--timeout", value)
    code, _, run_err = _cli(capsys, "run", "--timeout", value, "--estimate")
    assert debug_code == 2 and code == 2
    assert "timeout" in debug_err and "timeout" in run_err
