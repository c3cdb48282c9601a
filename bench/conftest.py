"""pytest options and parametrisation for the pytest-benchmark view of a suite.

Only loaded when `bench/` is named on the command line (`pytest bench/ --benchmark-only`): the
project's own tests run from `tests/` (pyproject's testpaths), so they never import this file or
TensorFlow through it. Nothing here imports TensorFlow; the benchmark module does, per cell.

Options (besides pytest-benchmark's own):
    --bench-suite NAME|PATH   suite to expand into cells (default: quick)
    --bench-case SPEC         only these cases (repeatable; as `python -m bench run --case`)
    --bench-mode MODE         only these modes (repeatable or comma-separated)
    --bench-phase PHASE       only these phases (repeatable or comma-separated)
    --bench-rounds N          timed rounds per cell (default: from the suite's budget)
    --bench-warmup N          untimed warm-up rounds per cell (default: the suite's warmup)
    --bench-probes            also run the debuggability probes (bench.probes) per cell

TensorFlow's thread pools are fixed once per process, so a pytest session benchmarks the
suite's first `threads` profile only (pinned and sized as `python -m bench run` does).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bench.engine.plan import Suite, expand, load_suite
from bench.errors import UsageError
from bench.store.record import ALL_THREADS, Cell, Device, InputStyle

DEFAULT_SUITE = "quick"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bench", "TensorFlow execution-mode benchmarks (bench/)")
    group.addoption("--bench-suite", default=DEFAULT_SUITE, metavar="NAME",
                    help=f"suite name or .toml path to benchmark (default: {DEFAULT_SUITE})")
    group.addoption("--bench-case", action="append", default=None, metavar="SPEC",
                    help="only this case spec, e.g. cnn or mobilenet:alpha=0.25 (repeatable)")
    group.addoption("--bench-mode", action="append", default=None, metavar="MODE",
                    help="only these modes (repeatable or comma-separated)")
    group.addoption("--bench-phase", action="append", default=None, metavar="PHASE",
                    help="only these phases: infer, train (repeatable or comma-separated)")
    group.addoption("--bench-rounds", type=int, default=None, metavar="N",
                    help="timed rounds per cell (default: enough to fill the suite's budget_s, "
                         "at least its min_samples)")
    group.addoption("--bench-warmup", type=int, default=None, metavar="N",
                    help="untimed warm-up rounds per cell (default: the suite's warmup)")
    group.addoption("--bench-probes", action="store_true", default=False,
                    help="run the debuggability probes per cell and store them in extra_info")


@dataclass(frozen=True)
class Selection:
    """What this pytest session benchmarks, decided once from the options."""

    suite: Suite
    cells: list[Cell]
    rounds: int | None  # None: from the suite's budget
    warmup: int  # untimed rounds before timing
    probes: bool
    threads: str  # the one threads profile of this session (TF's pools are per process)


SELECTION = pytest.StashKey[Selection]()


def pytest_configure(config: pytest.Config) -> None:
    # A bad option is one clear usage error at start-up, not an error per test.
    config.stash[SELECTION] = _selection(config)
    # Tables, reports and `bench compare` derive every statistic from the raw step times, so
    # saved runs (--benchmark-save / --benchmark-autosave) keep them, as --benchmark-json does.
    if hasattr(config.option, "benchmark_save_data"):
        config.option.benchmark_save_data = True
        session = getattr(config, "_benchmarksession", None)
        if session is not None:  # the plugin configured first and already read the option
            session.save_data = True


def _selection(config: pytest.Config) -> Selection:
    try:
        suite = load_suite(config.getoption("bench_suite"))
        cells = expand(suite, cases=config.getoption("bench_case"),
                       modes=_split(config.getoption("bench_mode")),
                       phases=_split(config.getoption("bench_phase")))
    except UsageError as exc:
        raise pytest.UsageError(f"bench/: {exc}") from None
    rounds, warmup = config.getoption("bench_rounds"), config.getoption("bench_warmup")
    if rounds is not None and rounds < 1:
        raise pytest.UsageError(f"--bench-rounds: expected an integer >= 1, got {rounds}")
    if warmup is not None and warmup < 0:
        raise pytest.UsageError(f"--bench-warmup: expected an integer >= 0, got {warmup}")
    threads = cells[0].threads if cells else ALL_THREADS
    cells = [c for c in cells if c.threads == threads]
    return Selection(suite, cells, rounds, suite.settings.warmup if warmup is None else warmup,
                     bool(config.getoption("bench_probes")), threads)


def _split(values: list[str] | None) -> list[str] | None:
    """Repeatable and comma-separated: ['eager,function', 'xla'] -> ['eager', 'function', 'xla']."""
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def cell_id(cell: Cell) -> str:
    """`cnn[input_size=32,channels=3]-session-infer-b32`; device/input only when not default."""
    parts = [f"{cell.case}[{cell.config}]" if cell.config else cell.case, cell.mode, cell.phase]
    if cell.device != Device.CPU:
        parts.append(cell.device)
    if cell.input != InputStyle.RESIDENT:
        parts.append(cell.input)
    parts.append(f"b{cell.batch}")
    return "-".join(parts)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bench_cell" in metafunc.fixturenames:
        cells = metafunc.config.stash[SELECTION].cells
        metafunc.parametrize("bench_cell", cells, ids=[cell_id(c) for c in cells])


@pytest.fixture(scope="session")
def bench_selection(pytestconfig: pytest.Config) -> Selection:
    return pytestconfig.stash[SELECTION]
