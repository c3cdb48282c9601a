"""Shared test settings: quiet TensorFlow, small thread pools, tiny case configurations."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Small enough that every mode of both cases builds and runs in about a second on 2 cores.
SMALL_CNN = "cnn:input_size=16,conv_filters=4/8,fc_units=16"
SMALL_CNN_VALID = (
    "cnn:input_size=20,channels=3,conv_filters=4/8,kernel_size=5,padding=VALID,pool=avg"
)
SMALL_MOBILENET = "mobilenet:alpha=0.25,resolution=32,classes=10"
# Training equivalence needs enough spatial positions per batch-norm channel to be stable.
TRAIN_MOBILENET = "mobilenet:alpha=0.25,resolution=64,classes=10"


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child `pytest`: this one without pytest-xdist's worker variables
    (a child that inherits PYTEST_XDIST_WORKER believes it is an xdist worker, and
    pytest-benchmark then refuses --benchmark-only), quiet TensorFlow, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def sigint_default() -> None:
    """Popen preexec_fn: SIGINT handled as in a terminal. A job started in the background of a
    non-interactive shell inherits SIGINT *ignored* (POSIX), and Python then never raises
    KeyboardInterrupt; the Ctrl-C tests must not depend on how the test run was launched."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def tiny_suite(tmp_path: Path, modes: list[str], budget: float = 0.2, batches=(2,),
               extra: str = "") -> Path:
    """A suite file of SMALL_CNN inference cells for runner-level tests; `extra`: more
    [settings] lines."""
    path = tmp_path / "tiny.toml"
    path.write_text(
        f'description = "test"\n[settings]\nbudget_s = {budget}\nmin_samples = 3\nwarmup = 1\n'
        f"{extra}\n[defaults]\nmodes = {modes!r}\nphases = ['infer']\n"
        f"[[case]]\nspec = '{SMALL_CNN}'\nbatches = {list(batches)!r}\n".replace("'", '"'))
    return path


def _process_tree() -> dict[int, list[int]]:
    """Parent pid -> child pids, read from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children of children too)."""
    tree, found, todo = _process_tree(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# Modules whose tests start real runs, worker processes or TensorFlow models: marked `slow`, so
# `python -m pytest -m "not slow"` is the quick lane (statistics, schema, reports on recorded
# runs, plans, options) and the full `python -m pytest -q -n auto --dist loadfile` runs everything.
SLOW_MODULES = {"test_ab", "test_dataset", "test_equivalence", "test_first_run", "test_gate",
                "test_graphs", "test_keras_import", "test_leftovers", "test_limits",
                "test_outputs", "test_own_model", "test_placement", "test_probes",
                "test_pytest_benchmark", "test_ray",
                "test_reliability", "test_reports_html", "test_runner", "test_signals",
                "test_toy_mode"}


# The files that take longest (seconds of one xdist worker, `--durations` on 2026-12-01: ray 157,
# equivalence 130, ab 100, gate 73, signals 60, runner 60, own_model 48, leftovers 45, probes
# 40, first_run 34), handed out first. pytest-xdist's loadfile order is by number of tests, so
# the three-test gate file used to start last and run alone for 70-100 s at the end of the run.
# A file missing here only costs balance, never a test.
LONGEST_FIRST = ("test_ray", "test_equivalence", "test_ab", "test_gate", "test_signals",
                 "test_runner", "test_own_model", "test_leftovers", "test_probes",
                 "test_first_run", "test_reports_html", "test_reliability")


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist: keep the order made below
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if _module(item) in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_module(item), len(rank)))  # stable: files stay whole


def _module(item) -> str:
    return item.module.__name__.rsplit(".", 1)[-1]
