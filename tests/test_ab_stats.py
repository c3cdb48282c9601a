"""The A/B statistics and schedule on synthetic data: no TensorFlow, no timing."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.engine.schedule import visits
from bench.stats.ab import Rule, Verdict, judge, pair_ratio, sequential
from bench.store.record import Cell
from reports.gate import gate_decision

CELLS = [Cell("cnn", "", mode, "infer") for mode in ("eager", "function", "xla")]


def _ratios(rng, shift, sd, n):
    return list(np.exp(rng.normal(math.log(shift), sd, size=n)))


def test_identical_distributions_stop_as_no_change_within_alpha():
    rule, rng = Rule(), np.random.default_rng(7)
    verdicts = [sequential(_ratios(rng, 1.0, 0.01, rule.max_pairs), rule)[0].verdict
                for _ in range(2000)]
    slower = sum(v == Verdict.SLOWER for v in verdicts) / len(verdicts)
    faster = sum(v == Verdict.FASTER for v in verdicts) / len(verdicts)
    assert slower + faster <= rule.alpha  # the rule's promise, over many looks per run
    assert sum(v == Verdict.SAME for v in verdicts) / len(verdicts) > 0.9


def test_heavy_tailed_identical_code_rarely_looks_slower():
    """Process-level modes (a whole worker at 2x) must not decide a cell on their own."""
    rule, rng = Rule(), np.random.default_rng(3)
    wrong = 0
    for _ in range(1000):
        ratios = _ratios(rng, 1.0, 0.01, rule.max_pairs)
        for i in rng.choice(rule.max_pairs, size=1, replace=False):
            ratios[i] *= rng.choice([0.5, 2.0])  # one pair with a process in a slow state
        wrong += sequential(ratios, rule)[0].verdict in (Verdict.SLOWER, Verdict.FASTER)
    assert wrong / 1000 <= rule.alpha


def test_a_ten_percent_shift_stops_early_as_slower():
    rule, rng = Rule(), np.random.default_rng(11)
    for _ in range(200):
        judgement, used = sequential(_ratios(rng, 1.10, 0.01, rule.max_pairs), rule)
        assert judgement.verdict == Verdict.SLOWER and used <= rule.look_at[1]
        assert judgement.low > 1.0 + rule.effect


def test_no_verdict_before_min_pairs_and_undecided_at_the_cap():
    rule = Rule(min_pairs=3, max_pairs=4)
    assert judge([1.0, 1.0], rule).verdict == Verdict.UNDECIDED  # too few pairs to look
    wild = [0.9, 1.1, 0.95, 1.08]
    judgement, used = sequential(wild, rule)
    assert judgement.verdict == Verdict.UNDECIDED and used == 4


def test_the_verdict_is_judged_only_at_the_schedules_looks():
    rule = Rule()  # 3-12 pairs, a look every third pair after the first, and at the cap
    assert rule.look_at == (3, 6, 9, 12) and rule.looks == 4
    assert Rule(max_pairs=8, look_every=2).look_at == (3, 5, 7, 8)
    assert Rule(min_pairs=2, max_pairs=2).look_at == (2,)
    assert Rule(max_pairs=8, look_every=1).look_at == (3, 4, 5, 6, 7, 8)
    clear = [1.0, 1.001, 0.999, 1.0, 1.0, 1.001]
    assert judge(clear[:3], rule).verdict == Verdict.SAME
    assert judge(clear[:4], rule).verdict == Verdict.UNDECIDED  # 4 is not a look
    assert judge(clear, rule).verdict == Verdict.SAME
    # Alpha is spread over the looks the schedule has: fewer looks, a narrower interval.
    wide, narrow = judge(clear, Rule(look_every=1)), judge(clear, rule)
    assert wide.low < narrow.low and narrow.high < wide.high
    # A run file from before the schedule looked at every pair; its rule is read back so.
    assert Rule.from_dict({"min_pairs": 3, "max_pairs": 8}).look_at == (3, 4, 5, 6, 7, 8)
    assert Rule.from_dict({}).max_pairs == 8  # what those runs' default was
    assert Rule.from_dict(rule.as_dict()).as_dict() == rule.as_dict()


def test_pair_ratio_is_the_median_of_step_by_step_ratios():
    assert pair_ratio([1.0, 2.0, 3.0], [4.0, 4.0, 5.0]) == pytest.approx(2.0)  # 4, 2, 5/3
    assert pair_ratio([], [1.0]) is None
    # Both sides slow in the same steps (the machine's state): the steps' ratios cancel it,
    # where the two medians, each landing on another mode, would say B is 39% slower.
    a = [10.5, 10.5, 14.6, 14.6, 14.6]
    b = [10.5, 10.5, 10.5, 14.6, 14.6]
    assert pair_ratio(a, [x * 1.03 for x in a]) == pytest.approx(1.03)
    assert pair_ratio(b, a) == pytest.approx(1.0)
    assert float(np.median(a)) / float(np.median(b)) == pytest.approx(14.6 / 10.5)


def test_rule_rejects_bad_knobs():
    from bench.errors import UsageError

    for bad in (Rule(threshold=0), Rule(alpha=1.5), Rule(min_pairs=5, max_pairs=3),
                Rule(margin=0.5), Rule(look_every=0)):
        with pytest.raises(UsageError):
            bad.check()


def test_schedule_interleaves_rounds_then_passes_while_asked():
    order = [(r, c) for r in range(2) for c in CELLS]
    asked = {CELLS[0]: 2, CELLS[2]: 1}  # extra visits each cell still wants

    def more(cell):
        if asked.get(cell, 0) > 0:
            asked[cell] -= 1
            return "undecided"
        return None

    got = [(v.round, v.cell.mode, v.note) for v in visits(order, more, max_more=5)]
    assert got[:6] == [(r, c.mode, "") for r, c in order]
    # One pass over the cells at a time, never one cell's extra visits back to back.
    assert got[6:] == [(2, "eager", "undecided"), (2, "xla", "undecided"),
                       (3, "eager", "undecided")]


def test_schedule_caps_extra_visits():
    got = list(visits([(0, CELLS[0])], lambda cell: "again", max_more=2))
    assert [v.round for v in got] == [0, 1, 2]


def _table(rows):
    return pd.DataFrame([{"key": k, "verdict": v, "ratio": r, "low": r, "high": r,
                          "status_b": s} for k, v, r, s in rows])


def test_gate_fails_only_what_the_confirmation_finds_again():
    rule = Rule()
    first = _table([("a", "slower", 1.05, "ok"), ("b", "slower", 1.04, "ok"),
                    ("c", "undecided", 1.00, "ok"), ("d", "no change", 1.0, "crashed")])
    again = _table([("a", "slower", 1.05, "ok"), ("b", "no change", 1.0, "ok"),
                    ("d", "no change", 1.0, "ok")])
    decision = gate_decision(first, again, rule)
    assert decision.flagged == ["a", "b", "d"]
    assert decision.failed == ["a"] and decision.undecided == ["c"] and not decision.passed
    leaning = _table([("b", "undecided", 1.0 + 2 * rule.effect, "ok")])
    assert gate_decision(first.iloc[1:2], leaning, rule).failed == ["b"]
    assert gate_decision(first.iloc[2:3], None, rule).passed
    assert not gate_decision(first.iloc[2:3], None, rule, exact=["x: nodes 1 -> 2"]).passed


def test_gate_and_gate_check_share_the_decision_function(monkeypatch):
    import reports.gate
    from bench.commands import gatecheck

    calls = []
    real = reports.gate.gate_decision
    monkeypatch.setattr(reports.gate, "gate_decision",
                        lambda *a, **k: calls.append(a) or real(*a, **k))
    rng = np.random.default_rng(0)
    decision, used = gatecheck.replay({"x": [1.2] * 12, "y": [1.0] * 12}, Rule(), rng)
    assert calls and decision.failed == ["x"] and len(used) == 2
    table = gatecheck.replay_rates({0.0: {"y": list(np.exp(rng.normal(0, 0.005, 12)))},
                                    0.10: {"y": list(np.exp(rng.normal(0.095, 0.005, 12)))}},
                                   Rule(), decisions=20)
    assert list(table["gate_failed"]) == [0.0, 1.0]
    import inspect

    from bench.commands import gate

    assert "gate_decision(" in inspect.getsource(gate.main)


def test_tf_env_names_supported_releases_only(tmp_path):
    from bench.commands.tfenv import SUPPORTED, env_path
    from bench.errors import UsageError

    assert env_path(SUPPORTED[0], tmp_path) == tmp_path / f"tf-{SUPPORTED[0]}"
    with pytest.raises(UsageError, match="not a supported release"):
        env_path("1.15", tmp_path)
