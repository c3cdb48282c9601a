"""Suite files and the matrix: every user mistake is one clear line; shards and rounds are exact."""

import sys
from pathlib import Path

import pytest

from bench.engine import plan
from bench.engine.plan import (
    Settings,
    SuiteError,
    expand,
    load_suite,
    parse_shard,
    rounds_order,
    shard,
)
from bench.errors import UsageError
from bench.modes import MODE_TABLE as MODES
from bench.modes import accepts_input

SHIPPED = ("smoke", "quick", "overview", "standard", "full")

GOOD = """
description = "test"
[settings]
budget_s = 0.5
[defaults]
batches = [1, 4]
modes = ["eager", "session"]
[[case]]
spec = "cnn"
[[case]]
name = "mobilenet"
batches = [2]
[case.config]
alpha = 0.25
resolution = 64
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return str(path)


def test_good_suite_loads_with_defaults_applied(tmp_path):
    suite = load_suite(write(tmp_path, GOOD))
    assert suite.name == "suite" and suite.description == "test"
    assert suite.settings == Settings(budget_s=0.5)
    cnn, mobilenet = suite.entries
    assert cnn.case == "cnn" and cnn.batches == [1, 4] and cnn.modes == ["eager", "session"]
    assert cnn.phases == ["infer", "train"] and cnn.inputs == ["resident"]
    assert cnn.devices == ["cpu"]
    assert mobilenet.case == "mobilenet:alpha=0.25,resolution=64" and mobilenet.batches == [2]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('colour = "red"\n[[case]]\nspec = "cnn"', "colour"),
        ("[settings]\nbudget = 1.0\n[[case]]\nspec = 'cnn'", "budget"),
        ("[defaults]\nmode = ['eager']\n[[case]]\nspec = 'cnn'", "mode"),
        ("[[case]]\nspec = 'cnn'\nbatch = [1]", "batch"),
        ("[[case]]\nspec = 'cnn'\nmodes = ['eagre']", "modes"),
        ("[defaults]\nphases = ['inference']\n[[case]]\nspec = 'cnn'", "phases"),
        ("[[case]]\nspec = 'cnn'\ninputs = ['streamed']", "inputs"),
        ("[[case]]\nspec = 'cnn'\ndevices = ['tpu']", "devices"),
        ("[[case]]\nspec = 'resnet'", "spec"),
        ("[[case]]\nspec = 'cnn:kernel=3'", "spec"),
        ("[[case]]\nspec = 'mobilenet:resolution=8'", "spec"),
        ("[[case]]\nname = 'mobilenet'\n[case.config]\nalpha = 'wide'", "name"),
        ("[[case]]\nname = 'mobilenet'\n[case.config]\nwidth = 2", "name"),
        ("[[case]]\nspec = 'cnn'\nbatches = [0]", "batches"),
        ("[[case]]\nspec = 'cnn'\nbatches = [-4]", "batches"),
        ("[[case]]\nspec = 'cnn'\nbatches = [1.5]", "batches"),
        ("[[case]]\nspec = 'cnn'\nbatches = ['8']", "batches"),
        ("[[case]]\nspec = 'cnn'\nbatches = []", "batches"),
        ("[[case]]\nspec = 'cnn'\nmodes = []", "modes"),
        ("[defaults]\ndevices = 'cpu'\n[[case]]\nspec = 'cnn'", "devices"),
        ("[settings]\nbudget_s = -1.0\n[[case]]\nspec = 'cnn'", "budget_s"),
        ("[settings]\ntarget_ci = 1.5\n[[case]]\nspec = 'cnn'", "target_ci"),
        ("[settings]\ntarget_ci = 0\n[[case]]\nspec = 'cnn'", "target_ci"),
        ("[settings]\nrounds = 0\n[[case]]\nspec = 'cnn'", "rounds"),
        ("[settings]\nrounds = 2.0\n[[case]]\nspec = 'cnn'", "rounds"),
        ("[settings]\nwarmup = 'two'\n[[case]]\nspec = 'cnn'", "warmup"),
        ("[settings]\nmin_samples = true\n[[case]]\nspec = 'cnn'", "min_samples"),
        ("[settings]\nmemory_limit_mb = 0\n[[case]]\nspec = 'cnn'", "memory_limit_mb"),
        ("[settings]\nthreads_inter = -1\n[[case]]\nspec = 'cnn'", "threads_inter"),
        ("[settings]\npaired = 1\n[[case]]\nspec = 'cnn'", "paired"),
        ("[settings]\nremeasure = 99\n[[case]]\nspec = 'cnn'", "remeasure"),
        ("[[case]]\nspec = 'cnn'\nthreads = [0]", "threads"),
        ("[[case]]\nspec = 'cnn'\nthreads = [99999]", "threads"),
        ("[[case]]\nspec = 'cnn'\nthreads = ['most']", "threads"),
        ("[[case]]\nspec = 'cnn'\nthreads = [true]", "threads"),
        ("[[case]]\nspec = 'cnn'\nthreads = []", "threads"),
        ("settings = 3\n[[case]]\nspec = 'cnn'", "[settings]"),
        ("description = 3\n[[case]]\nspec = 'cnn'", "description"),
        ('description = "no cases"', "[[case]]"),
        ("[[case]]\nbatches = [1]", "[[case]] 1"),
        ("[[case]]\nspec = 'cnn'\nname = 'cnn'", "[[case]] 1"),
        ("[[case]]\nspec = 'cnn'\n[[case]]\nspec = 3", "[[case]] 2 spec"),
    ],
)
def test_bad_suite_is_one_line_naming_file_and_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(path), message
    assert key in message, message


def test_errors_say_what_is_accepted(tmp_path):
    with pytest.raises(SuiteError, match="accepted: session, frozen"):
        load_suite(write(tmp_path, "[[case]]\nspec = 'cnn'\nmodes = ['eagre']"))
    with pytest.raises(SuiteError, match="accepted cases: cnn, mobilenet"):
        load_suite(write(tmp_path, "[[case]]\nspec = 'resnet'"))
    with pytest.raises(SuiteError, match="accepted keys: .*budget_s"):
        load_suite(write(tmp_path, "[settings]\nbudget = 1\n[[case]]\nspec = 'cnn'"))


@pytest.mark.parametrize("text, accepted", [
    ("[[case]]\nspec = 'cnn'\nphases = ['predict']",
     "unknown phase 'predict'; accepted: infer, train"),
    ("[defaults]\ninputs = ['stream']\n[[case]]\nspec = 'cnn'",
     "unknown input style 'stream'; accepted: resident, feed, dataset"),
    ("[[case]]\nspec = 'cnn'\ndevices = ['tpu']", "unknown device 'tpu'; accepted: cpu, gpu"),
    ("[settings]\nprobes = 'some'\n[[case]]\nspec = 'cnn'",
     "probes: expected one of once, infer, all, none, got 'some'"),
])
def test_vocabulary_values_are_checked_against_their_enums(tmp_path, text, accepted):
    """Suite files are user input: a word not in its enum (bench.store.record, bench.engine.plan)
    names every word that is, as plain words (a member's str, never its repr)."""
    with pytest.raises(SuiteError) as info:
        load_suite(write(tmp_path, text))
    assert accepted in str(info.value)


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, '[[case]]\nspec = cnn\nbatches = [1]\n')
    with pytest.raises(SuiteError, match=r"TOML syntax error.*line 2") as info:
        load_suite(path)
    assert str(info.value).startswith(path)


def test_unknown_suite_name_lists_available_and_missing_path_is_named(tmp_path):
    with pytest.raises(SuiteError, match="unknown suite 'smok'; available suites: .*smoke"):
        load_suite("smok")
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(SuiteError, match="not found") as info:
        load_suite(missing)
    assert missing in str(info.value)
    assert issubclass(SuiteError, UsageError)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_suites_load_and_expand(name):
    suite = load_suite(name)
    assert suite.name == name and suite.description
    assert suite.path.read_text().startswith("# "), "cell count and time estimate on top"
    cells = expand(suite)
    assert len(cells) == len(set(cells))
    inputs = {c.input for c in cells}
    assert {c.mode for c in cells} == {m for m in MODES if any(accepts_input(m, i)
                                                               for i in inputs)}
    assert {c.phase for c in cells} == {"infer", "train"}


def test_shipped_suite_sizes_and_settings():
    counts = {name: len(expand(load_suite(name))) for name in SHIPPED}
    assert counts == {"smoke": 28, "quick": 21, "overview": 84, "standard": 256, "full": 756}
    smoke = load_suite("smoke").settings
    assert (smoke.budget_s, smoke.min_samples, smoke.warmup) == (0.3, 5, 1)
    assert {c.case_spec for c in expand(load_suite("smoke"))} == {
        "cnn", "mobilenet:alpha=0.25,resolution=64,classes=10"}


def test_expand_order_is_entry_batch_mode_phase_and_configs_are_canonical(tmp_path):
    suite = load_suite(write(tmp_path, GOOD))
    cells = expand(suite)
    assert [(c.case, c.batch, c.mode, c.phase) for c in cells[:4]] == [
        ("cnn", 1, "session", "infer"), ("cnn", 1, "session", "train"),
        ("cnn", 1, "eager", "infer"), ("cnn", 1, "eager", "train"),
    ]
    assert cells[-1].case == "mobilenet" and cells[-1].config == "alpha=0.25,resolution=64"
    assert len(cells) == 2 * 2 * 2 + 1 * 2 * 2
    assert expand(suite) == cells


def test_expand_keeps_not_applicable_cells_and_deduplicates(tmp_path):
    text = "[[case]]\nspec = 'cnn'\n[[case]]\nspec = 'cnn:input_size=28'\nbatches = [1, 1]"
    cells = expand(load_suite(write(tmp_path, text)))
    assert len(cells) == 14  # both entries are the default cnn; 7 modes x 2 phases once
    assert any(c.mode == "frozen" and c.phase == "train" for c in cells)


def test_overrides_narrow_the_matrix():
    suite = load_suite("standard")
    everything = expand(suite)
    cells = expand(suite, modes=["eager", "xla"], phases=["infer"], batches=[4])
    assert {(c.mode, c.phase, c.batch) for c in cells} == {("eager", "infer", 4),
                                                          ("xla", "infer", 4)}
    # 4 case configs, 2 modes, 2 threads profiles; plus the 2 dataset groups (all cores)
    assert len(cells) == 4 * 2 * 2 + 2 * 2
    assert {c.threads for c in cells} == {"1", "all"}
    cnn_only = expand(suite, cases=["cnn"])
    assert {c.case_spec for c in cnn_only} == {"cnn", "cnn:input_size=32,channels=3"}
    assert set(cnn_only) < set(everything)
    one = expand(suite, cases=["mobilenet:resolution=128,alpha=0.50"], modes=["function"],
                 threads=["all"])
    assert {(c.case_spec, c.batch) for c in one} == {("mobilenet:alpha=0.5,resolution=128", 1),
                                                    ("mobilenet:alpha=0.5,resolution=128", 16)}
    resident = expand(suite, inputs=["resident"])  # the dataset groups collapse into it
    both = expand(suite, devices=["cpu", "gpu"], inputs=["feed", "resident"])
    assert len(both) == 4 * len(resident) == 4 * 224


def test_case_filter_adds_cases_missing_from_the_suite():
    suite = load_suite("quick")
    added = expand(suite, cases=["mobilenet:alpha=1.0"], modes=["eager"], phases=["infer"])
    assert [(c.case_spec, c.batch) for c in added] == [("mobilenet", 8)]  # mobilenet entry axes
    smoke = load_suite("smoke")
    assert {c.case_spec for c in expand(smoke, cases=["mobilenet"])} == {
        "mobilenet:alpha=0.25,resolution=64,classes=10"}


@pytest.mark.parametrize(
    "kwargs",
    [{"modes": ["warp"]}, {"phases": ["eval"]}, {"batches": [0]}, {"inputs": []},
     {"devices": ["tpu"]}, {"cases": ["resnet"]}, {"cases": ["cnn:size=3"]}, {"cases": []}],
)
def test_bad_overrides_are_usage_errors(kwargs):
    with pytest.raises(UsageError) as info:
        expand(load_suite("smoke"), **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 28, 40])
def test_shards_are_disjoint_covering_and_balanced(n):
    cells = expand(load_suite("standard"))
    parts = [shard(cells, i, n) for i in range(n)]
    assert sorted(cells, key=cells.index) == sorted(
        [c for part in parts for c in part], key=cells.index)
    assert sum(map(len, parts)) == len(cells)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parts == [shard(cells, i, n) for i in range(n)]


def test_parse_shard():
    assert parse_shard("2/4") == (1, 4)
    assert parse_shard("1/1") == (0, 1)
    for bad in ("0/4", "5/4", "x", "2", "2/", "a/b", "-1/4", "1/0"):
        with pytest.raises(UsageError, match="expected K/N"):
            parse_shard(bad)
    with pytest.raises(UsageError):
        shard([], 4, 4)


def test_rounds_order_rotates_each_round():
    cells = expand(load_suite("quick"))
    order = rounds_order(cells, 3)
    assert len(order) == 3 * len(cells)
    n = len(cells)
    assert [r for r, _ in order] == [0] * n + [1] * n + [2] * n
    starts = [order[r * n][1] for r in range(3)]
    assert starts == [cells[0], cells[n // 3], cells[2 * n // 3]]
    for r in range(3):
        assert sorted(c.key for _, c in order[r * n:(r + 1) * n]) == sorted(c.key for c in cells)
    assert rounds_order(cells, 1) == [(0, c) for c in cells]
    with pytest.raises(UsageError):
        rounds_order(cells, 0)


def test_make_settings_checks_command_line_overrides():
    assert plan.make_settings({"rounds": 3, "budget_s": 1}).budget_s == 1.0
    with pytest.raises(SuiteError, match="--rounds rounds: expected an integer from 1 to 100"):
        plan.make_settings({"rounds": 0}, "--rounds")


def test_planning_never_imports_tensorflow():
    """Checked in a fresh interpreter: other tests in this process may have imported TF."""
    import subprocess

    code = ("import sys; from bench.engine import plan; "
            "cells = plan.expand(plan.load_suite('standard')); "
            "print(len(cells), 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent)
    count, imported = out.stdout.split()
    assert int(count) > 0 and imported == "False"


def test_probes_run_once_per_group_by_default():
    suite = plan.load_suite("standard")
    cells = plan.expand(suite, cases=["cnn"])
    order = plan.rounds_order(cells, 2)
    once = plan.probe_selection(order, "once")
    groups = {(c.case, c.config, c.mode, c.phase, c.input, c.device) for c in cells}
    assert len(once) == len(groups)
    smallest = {i: min(c.batch for c in cells if c.input == i) for i in ("resident", "dataset")}
    assert smallest == {"resident": min(suite.entries[0].batches), "dataset": 32}
    assert all(r == 0 and c.batch == smallest[c.input] for r, c in once)
    assert plan.probe_selection(order, "none") == set()
    assert plan.probe_selection(order, "all") == {(0, c) for c in cells}


def test_threads_is_a_matrix_axis(tmp_path):
    suite = load_suite(write(tmp_path, "[defaults]\nthreads = [1, 'all']\nmodes = ['eager']\n"
                                       "phases = ['infer']\n[[case]]\nspec = 'cnn'"))
    cells = expand(suite)
    assert [c.threads for c in cells] == ["1", "all"]
    assert cells[0].key.endswith("/t1") and cells[1].key.endswith("/tall")
    assert [c.threads for c in expand(suite, threads=["all"])] == ["all"]


def test_dataset_input_gives_an_epoch_cell_per_mode_and_function_epoch_only_there(tmp_path):
    suite = load_suite(write(tmp_path, "[settings]\nepoch_batches = 3\n[defaults]\n"
                                       "phases = ['infer']\n[[case]]\nspec = 'cnn'"))
    assert suite.settings.epoch_batches == 3
    cells = expand(suite, inputs=["feed", "dataset"])
    by_input = {i: [c.mode for c in cells if c.input == i] for i in ("feed", "dataset")}
    assert by_input["dataset"] == list(MODES)
    assert by_input["feed"] == [m for m in MODES if m != "function_epoch"]
    assert "cnn/function_epoch/infer/cpu/dataset/b1/tall" in {c.key for c in cells}
    # All modes (the default) with single-batch inputs only: function_epoch is left out.
    assert "function_epoch" not in {c.mode for c in expand(suite)}


def test_a_mode_asked_for_by_name_that_cannot_take_the_inputs_is_one_clear_error(tmp_path):
    suite = load_suite(write(tmp_path, "[[case]]\nspec = 'cnn'"))
    with pytest.raises(SuiteError, match="mode 'function_epoch' cannot take input feed, "
                                         "resident; it takes only dataset"):
        expand(suite, modes=["eager", "function_epoch"], inputs=["feed", "resident"])
    path = write(tmp_path, "[[case]]\nspec = 'cnn'\nmodes = ['function_epoch']")
    with pytest.raises(SuiteError, match="cannot take input resident"):
        expand(load_suite(path))
    assert {c.input for c in expand(load_suite(path), inputs=["dataset"])} == {"dataset"}


@pytest.mark.parametrize("value", [0, -2, 1.5, "4", 10_001])
def test_bad_epoch_batches_is_one_clear_error(tmp_path, value):
    text = f"[settings]\nepoch_batches = {value!r}\n[[case]]\nspec = 'cnn'".replace("'", '"')
    with pytest.raises(SuiteError, match="epoch_batches: expected an integer from 1 to 10000"):
        load_suite(write(tmp_path, text))


@pytest.mark.parametrize(("args", "message"), [
    (["--epoch-batches", "0"], "epoch_batches: expected an integer from 1"),
    (["--epoch-batches", "-3"], "epoch_batches: expected an integer from 1"),
    (["--mode", "function_epoch", "--input", "feed"], "mode 'function_epoch' cannot take input"),
    (["--input", "streamed"], "unknown input style 'streamed'"),
])
def test_bad_dataset_settings_exit_2_before_anything_runs(tmp_path, capsys, args, message):
    from bench.cli import main

    out = tmp_path / "results"
    assert main(["run", "--suite", "smoke", "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing ran, no run file
