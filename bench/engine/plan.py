"""Suite files and the benchmark matrix: what to run, decided before anything runs.

Pure Python, no TensorFlow: a suite file is read, every key and case spec is
validated, and the matrix is expanded into `Cell`s. A mistake in a suite costs one clear line
(`SuiteError`) at start-up, never a half-finished run.

Suite file format (TOML; a bare name such as `smoke` means `cases/suites/smoke.toml`)::

    description = "what this suite is for"

    [settings]             # any Settings field; omitted ones keep their defaults
    budget_s = 2.0
    epoch_batches = 8      # dataset input: distinct batches per epoch, one measured call

    [defaults]             # applied to every [[case]] unless the case overrides the key
    batches = [1, 32]      # default [1]
    modes = ["session", "eager", "function", "function_epoch"]  # default: all (bench.modes)
    phases = ["infer", "train"]   # default both
    inputs = ["resident"]         # "resident", "feed" and/or "dataset"; default resident
    devices = ["cpu"]             # "cpu" and/or "gpu"; default cpu
    threads = [1, "all"]          # CPUs per worker (pinned) and intra-op threads; default all

    [[case]]
    spec = "cnn:input_size=32,channels=3"   # a case spec, as on the command line
    batches = [32]                          # optional per-case override of any [defaults] key

    [[case]]
    name = "mobilenet"                      # or: a case name plus typed config values
    [case.config]
    alpha = 0.25
    resolution = 128

Cells for (mode, phase) pairs that cannot exist (frozen/optimized training) are kept in the
matrix on purpose: the runner records them as skipped with the reason, so every table has the
same shape.

A mode that takes only some input styles (`function_epoch`: dataset only) gets cells for those
it takes. When the modes are all of them (the default), a mode that takes none of the listed
inputs is left out; a mode named in a list that takes none of the listed inputs is an error
(`--mode function_epoch --input feed` asks for nothing that can run).
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import cases
from bench.engine.placement import parse_threads
from bench.errors import UsageError
from bench.modes import MODE_TABLE, accepts_input, mode_inputs
from bench.modes.base import EPOCH_BATCHES
from bench.store.record import (
    ALL_THREADS,
    DEVICES,
    INPUT_STYLES,
    PHASES,
    Cell,
    Device,
    InputStyle,
    Phase,
)
from cases import ConfigError, get_workload

SUITES_DIR = Path(cases.__file__).parent / "suites"

# Axis key -> (values accepted, what one value is called); batches are checked separately.
_CHOICES: dict[str, tuple[Collection[str], str]] = {
    "modes": (MODE_TABLE.keys(), "mode"),  # a live view: modes registered later count
    "phases": (PHASES, "phase"),
    "inputs": (INPUT_STYLES, "input style"),
    "devices": (DEVICES, "device"),
}
AXES = ("batches", *_CHOICES, "threads")  # batches and threads are checked on their own
BUILTIN_DEFAULTS: dict[str, list[Any]] = {
    "batches": [1],
    "modes": list(MODE_TABLE),
    "phases": list(PHASES),
    "inputs": [InputStyle.RESIDENT],
    "devices": [Device.CPU],
    "threads": [ALL_THREADS],
}
TOP_LEVEL_KEYS = ("description", "settings", "defaults", "case")
CASE_KEYS = ("spec", "name", "config", *AXES)


class ProbePolicy(StrEnum):
    """Which cells also run the debuggability probes (`probe_selection` says why each)."""

    ONCE = "once"  # the smallest batch of each group, first round
    INFER = Phase.INFER.value  # the same, inference cells only (the phase's own word)
    ALL = "all"  # every cell of the first round
    NONE = "none"


PROBE_POLICIES = tuple(ProbePolicy)


class SuiteError(UsageError):
    """A suite file (or a matrix override) that cannot be run; the message names file and key."""


@dataclass
class Settings:
    """How each cell is measured; shared by every cell of a suite so results are comparable."""

    warmup: int = 2  # untimed steps that absorb first-call costs
    min_samples: int = 10
    target_ci: float = 0.02  # stop once the median's 95% CI half-width is within 2%
    budget_s: float = 10.0  # wall time per cell for sampling, warm-up included
    # The whole matrix R times, interleaved: R worker processes per cell, the replicates a
    # cell's CI and the regression gate are computed from (bench.stats.replicates).
    rounds: int = 1
    timeout_s: float = 600.0  # a worker running longer is killed and recorded as timeout
    memory_limit_mb: int | None = None  # worker address-space cap; None = no limit
    seed: int = 0  # weights and input batches
    threads_inter: int = 0  # inter-op pool; 0 = min(threads, 2) (bench.engine.placement)
    probes: str = ProbePolicy.ONCE  # debuggability probes: a ProbePolicy
    # Paired speed-up: after its own measurement a worker alternates its step with eager's
    # for another budget_s (bench.paired); off halves the sampling time of non-eager cells.
    paired: bool = True
    paired_budget_s: float = 0.0  # sampling seconds of the paired measurement; 0 = budget_s
    # Extra workers per cell when its workers disagree (a slow worker is re-measured).
    remeasure: int = 2
    # Dataset input: distinct batches per epoch; one measured call of such a cell is an epoch.
    epoch_batches: int = EPOCH_BATCHES


# Ceilings far above any real run, so a typo (--rounds 100000000, --budget 1e300) is one clear
# error before anything is allocated or run, not an exhausted memory or a run that never ends.
MAX_WARMUP = 10_000
MAX_MIN_SAMPLES = 100_000
MAX_BUDGET_S = 3600.0
MAX_ROUNDS = 100
MAX_TIMEOUT_S = 86_400.0
MAX_MEMORY_MB = 1_048_576
MAX_BATCH = 4096
MAX_EPOCH_BATCHES = 10_000
# Cells x rounds of one plan: the full suite at 100 rounds (75,600) fits; a typo such as
# batches = [1..4096] (hundreds of thousands) is refused before anything is built or estimated.
MAX_PLAN_CELLS = 100_000
NARROW_HINT = "narrow it with --case, --mode, --phase, --batch, --threads, --rounds or --shard"

# Settings field -> (type, check, what is accepted).
_SETTING_RULES: dict[str, tuple[type, Any, str]] = {
    "warmup": (int, lambda v: 0 <= v <= MAX_WARMUP, f"an integer from 0 to {MAX_WARMUP}"),
    "min_samples": (int, lambda v: 1 <= v <= MAX_MIN_SAMPLES,
                    f"an integer from 1 to {MAX_MIN_SAMPLES}"),
    "target_ci": (float, lambda v: 0 < v < 1, "a number between 0 and 1 exclusive, e.g. 0.02"),
    "budget_s": (float, lambda v: 0 < v <= MAX_BUDGET_S,
                 f"a positive number of seconds, at most {MAX_BUDGET_S:g}"),
    "rounds": (int, lambda v: 1 <= v <= MAX_ROUNDS, f"an integer from 1 to {MAX_ROUNDS}"),
    "timeout_s": (float, lambda v: 0 < v <= MAX_TIMEOUT_S,
                  f"a positive number of seconds, at most {MAX_TIMEOUT_S:g} (a day)"),
    "memory_limit_mb": (int, lambda v: 1 <= v <= MAX_MEMORY_MB,
                        f"a positive integer (MB), at most {MAX_MEMORY_MB} (1 TiB); "
                        "omit for no limit"),
    "seed": (int, lambda v: v >= 0, "an integer >= 0"),
    "threads_inter": (int, lambda v: 0 <= v <= 256, "an integer from 0 to 256 (0 = auto)"),
    "probes": (str, lambda v: v in PROBE_POLICIES, "one of " + ", ".join(PROBE_POLICIES)),
    "paired": (bool, lambda v: True, "true or false"),
    "paired_budget_s": (float, lambda v: 0 <= v <= 3600, "seconds from 0 to 3600 (0 = budget_s)"),
    "remeasure": (int, lambda v: 0 <= v <= 10, "an integer from 0 to 10"),
    "epoch_batches": (int, lambda v: 1 <= v <= MAX_EPOCH_BATCHES,
                      f"an integer from 1 to {MAX_EPOCH_BATCHES} (batches per dataset epoch)"),
}


@dataclass
class Entry:
    """One [[case]] of a suite with its axes resolved (defaults applied)."""

    case: str  # canonical case spec, e.g. "mobilenet:alpha=0.25,resolution=128"
    batches: list[int]
    modes: list[str]
    phases: list[str]
    inputs: list[str]
    devices: list[str]
    threads: list[str] = field(default_factory=lambda: [ALL_THREADS])


@dataclass
class Suite:
    name: str
    path: Path
    description: str
    entries: list[Entry]
    settings: Settings
    # The resolved [defaults] axes; used for cases added from the command line.
    defaults: dict[str, list[Any]] = field(default_factory=lambda: dict(BUILTIN_DEFAULTS))


# ---------------------------------------------------------------------------------------------
# Loading and validation


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def suite_path(name_or_path: str) -> Path:
    """A bare name is a shipped suite; anything with a '/' or a .toml suffix is a path."""
    if "/" in name_or_path or "\\" in name_or_path or name_or_path.endswith(".toml"):
        path = Path(name_or_path)
        if not path.is_file():
            raise SuiteError(f"{path}: suite file not found")
        return path
    path = SUITES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise SuiteError(
            f"unknown suite {name_or_path!r}; available suites: "
            f"{', '.join(available_suites()) or '(none)'} (or give a path to a .toml file)"
        )
    return path


def load_suite(name_or_path: str) -> Suite:
    """Read and fully validate a suite; raises SuiteError naming the file and the key."""
    path = suite_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: TOML syntax error: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read suite file: {exc}") from None

    _check_keys(data, TOP_LEVEL_KEYS, f"{path}: top level")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SuiteError(f"{path}: description: expected a string, got {description!r}")

    settings_table = _table(data.get("settings", {}), f"{path}: [settings]")
    _check_keys(settings_table, tuple(_SETTING_RULES), f"{path}: [settings]")
    settings = make_settings(settings_table, f"{path}: [settings]")

    defaults_table = _table(data.get("defaults", {}), f"{path}: [defaults]")
    _check_keys(defaults_table, AXES, f"{path}: [defaults]")
    defaults = dict(BUILTIN_DEFAULTS)
    for key, value in defaults_table.items():
        defaults[key] = check_axis(key, value, f"{path}: [defaults] {key}")

    raw_cases = data.get("case")
    if raw_cases is None:
        raise SuiteError(f"{path}: no [[case]] entries; add at least one, e.g. "
                         '[[case]] spec = "cnn"')
    if not isinstance(raw_cases, list) or not all(isinstance(c, dict) for c in raw_cases):
        raise SuiteError(f"{path}: case: expected [[case]] tables, got {raw_cases!r}")
    entries = [_entry(raw, defaults, f"{path}: [[case]] {i}")
               for i, raw in enumerate(raw_cases, start=1)]
    return Suite(path.stem, path, description, entries, settings, defaults)


def make_settings(values: dict[str, Any], where: str = "settings") -> Settings:
    """Settings from a mapping of field values, each type- and range-checked.

    Also used for command-line overrides: `make_settings({**asdict(s), "rounds": 3}, "--rounds")`.
    """
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _SETTING_RULES:
            raise SuiteError(f"{where}: unknown key {key!r}; accepted keys: "
                             f"{', '.join(_SETTING_RULES)}")
        kind, ok, accepted = _SETTING_RULES[key]
        if value is None and key == "memory_limit_mb":
            checked[key] = None
            continue
        if kind in (str, bool):
            typed = isinstance(value, kind)
        else:
            typed = (isinstance(value, int) or (kind is float and isinstance(value, float))) \
                and not isinstance(value, bool)
        if not typed or not ok(value):
            raise SuiteError(f"{where} {key}: expected {accepted}, got {value!r}")
        checked[key] = kind(value)
    return Settings(**checked)


def check_axis(key: str, value: Any, where: str) -> list[Any]:
    """Validate one axis list (batches, modes, phases, inputs, devices); returns a copy."""
    if key == "batches":
        accepted = f"a non-empty list of integers from 1 to {MAX_BATCH}, e.g. [1, 32]"
        if not isinstance(value, list) or not value:
            raise SuiteError(f"{where}: expected {accepted}, got {value!r}")
        for batch in value:
            if isinstance(batch, bool) or not isinstance(batch, int) \
                    or not 1 <= batch <= MAX_BATCH:
                raise SuiteError(f"{where}: {batch!r} is not a valid batch size; "
                                 f"expected {accepted}")
        return list(value)
    if key == "threads":
        if not isinstance(value, list) or not value:
            raise SuiteError(f"{where}: expected a non-empty list of thread counts or 'all', "
                             f"e.g. [1, \"all\"], got {value!r}")
        try:
            return list(dict.fromkeys(parse_threads(v, where) for v in value))
        except UsageError as exc:
            raise SuiteError(str(exc)) from None
    choices, noun = _CHOICES[key]
    accepted = f"one or more of {', '.join(choices)}"
    if not isinstance(value, list) or not value:
        raise SuiteError(f"{where}: expected a non-empty list with {accepted}, got {value!r}")
    for item in value:
        if item not in choices:
            raise SuiteError(f"{where}: unknown {noun} {item!r}; accepted: {', '.join(choices)}")
    return list(value)


def _entry(raw: dict[str, Any], defaults: dict[str, list[Any]], where: str) -> Entry:
    _check_keys(raw, CASE_KEYS, where)
    if ("spec" in raw) == ("name" in raw):
        raise SuiteError(f'{where}: needs exactly one of spec = "cnn:..." or name = "cnn" '
                         "(with an optional [case.config] table)")
    key = "spec" if "spec" in raw else "name"
    spec = raw[key]
    if not isinstance(spec, str):
        raise SuiteError(f"{where} {key}: expected a string, got {spec!r}")
    if key == "name" and ":" in spec:
        raise SuiteError(f"{where} name: {spec!r} is a spec, not a name; use spec = {spec!r}")
    config = _table(raw.get("config", {}), f"{where} config")
    try:
        workload = get_workload(spec, config)
    except ConfigError as exc:
        label = f"{key} + config" if config else key
        raise SuiteError(f"{where} {label}: {_one_line(exc)}") from None
    axes = {k: check_axis(k, raw[k], f"{where} {k}") if k in raw else list(defaults[k])
            for k in AXES}
    return Entry(case=workload.spec, **axes)


def _check_keys(table: dict[str, Any], accepted: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in accepted:
            raise SuiteError(f"{where}: unknown key {key!r}; accepted keys: {', '.join(accepted)}")


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SuiteError(f"{where}: expected a table, got {value!r}")
    return value


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


# ---------------------------------------------------------------------------------------------
# The matrix


def expand(
    suite: Suite,
    *,
    cases: list[str] | None = None,
    modes: list[str] | None = None,
    phases: list[str] | None = None,
    batches: list[int] | None = None,
    inputs: list[str] | None = None,
    devices: list[str] | None = None,
    threads: list[str] | None = None,
) -> list[Cell]:
    """The suite's cells in a stable order, narrowed or overridden by command-line filters.

    Order: entry, threads (as listed), batch (ascending), then mode, phase, input and device
    in their canonical order, so the same suite always yields the same list (sharding and
    rounds rely on it).
    """
    overrides = {"batches": batches, "modes": modes, "phases": phases,
                 "inputs": inputs, "devices": devices, "threads": threads}
    for key, value in overrides.items():
        if value is not None:
            overrides[key] = check_axis(key, value, f"{key} override")
    entries = suite.entries if cases is None else _select_cases(suite, cases)

    check_plan_size(sum(_entry_size({k: overrides[k] if overrides[k] is not None
                                     else getattr(entry, k) for k in AXES})
                        for entry in entries))
    cells: dict[Cell, None] = {}  # an ordered set: identical cells collapse, order is kept
    for entry in entries:
        workload = get_workload(entry.case)
        axes = {k: overrides[k] if overrides[k] is not None else getattr(entry, k) for k in AXES}
        _check_inputs(axes["modes"], axes["inputs"], entry.case)
        for threads in axes["threads"]:
            for batch in sorted(set(axes["batches"])):
                for mode in _in_order(axes["modes"], MODE_TABLE):
                    for phase in _in_order(axes["phases"], PHASES):
                        for input_style in _in_order(axes["inputs"], INPUT_STYLES):
                            if not accepts_input(mode, input_style):
                                continue
                            for device in _in_order(axes["devices"], DEVICES):
                                cell = Cell(workload.case, workload.config_string, mode, phase,
                                            device=device, input=input_style, batch=batch,
                                            threads=threads)
                                cells[cell] = None
    return list(cells)


def _entry_size(axes: dict[str, list[Any]]) -> int:
    """How many cells one entry expands to, counted without building them."""
    pairs = sum(1 for mode in set(axes["modes"]) for style in set(axes["inputs"])
                if accepts_input(mode, style))
    return (len(set(axes["threads"])) * len(set(axes["batches"])) * len(set(axes["phases"]))
            * len(set(axes["devices"])) * pairs)


def check_plan_size(cells: int, rounds: int = 1) -> None:
    """One line, before anything is built, for a plan too large to run or even estimate."""
    if cells * rounds > MAX_PLAN_CELLS:
        times = f" ({cells:,} x {rounds} rounds)" if rounds > 1 else ""
        raise UsageError(f"the plan has {cells * rounds:,} cells{times}; at most "
                         f"{MAX_PLAN_CELLS:,} are run: {NARROW_HINT}")


def _check_inputs(modes: list[str], inputs: list[str], case: str) -> None:
    """A mode named in a narrowed list must take at least one of the listed input styles."""
    if set(modes) >= set(MODE_TABLE):
        return  # every mode: those that take none of the inputs are simply left out
    for mode in modes:
        if not any(accepts_input(mode, i) for i in inputs):
            raise SuiteError(
                f"{case}: mode {mode!r} cannot take input {', '.join(inputs)}; it takes only "
                f"{', '.join(mode_inputs(mode))} (add it to the inputs, e.g. --input "
                f"{','.join([*inputs, *mode_inputs(mode)])}, or drop the mode)")


def _select_cases(suite: Suite, specs: list[str]) -> list[Entry]:
    """Entries for command-line case specs, in the order given.

    A bare name ("cnn") narrows to the suite's entries of that case, or adds the case with its
    default config if the suite has none. A full spec keeps the axes of the suite entry with the
    same config, else of the first entry of that case, else the suite's [defaults].
    """
    if isinstance(specs, str) or not specs:
        raise UsageError(f"case override: expected a non-empty list of case specs, got {specs!r}")
    selected: list[Entry] = []
    for spec in specs:
        try:
            workload = get_workload(spec)
        except ConfigError as exc:
            raise UsageError(f"case {spec!r}: {_one_line(exc)}") from None
        same_case = [e for e in suite.entries if _case_name(e.case) == workload.case]
        if ":" not in spec and same_case:
            selected.extend(same_case)
            continue
        same_spec = [e for e in same_case if e.case == workload.spec]
        if same_spec:
            selected.extend(same_spec)
            continue
        template = same_case[0] if same_case else None
        axes = {k: list(getattr(template, k) if template else suite.defaults[k]) for k in AXES}
        selected.append(Entry(case=workload.spec, **axes))
    return selected


def _case_name(spec: str) -> str:
    return spec.partition(":")[0]


def _in_order(values: list[str], canonical: Any) -> list[str]:
    wanted = set(values)
    return [v for v in canonical if v in wanted]


# ---------------------------------------------------------------------------------------------
# Sharding and rounds


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' (1-based, as typed on the command line) -> (1, 4) (0-based index, count)."""
    index, slash, count = text.partition("/")
    try:
        k, n = int(index), int(count)
    except ValueError:
        k = n = 0
    if not slash or not 1 <= k <= n:
        raise UsageError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return k - 1, n


def shard(cells: list[Cell], index: int, count: int) -> list[Cell]:
    """Round-robin share `index` (0-based) of `count`.

    Round-robin over the stable order spreads each case's cheap and expensive modes across all
    shards, so shards take similar time; sizes differ by at most one cell.
    """
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"shard {index + 1}/{count}: expected 1 <= K <= N")
    return cells[index::count]


def rounds_order(cells: list[Cell], rounds: int) -> list[tuple[int, Cell]]:
    """The whole matrix `rounds` times as (round, cell), each round starting further along.

    Rotating the start means a slow patch of a shared machine lands on different cells in each
    round instead of always on the same modes; rounds are pooled per cell afterwards.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_ROUNDS:
        raise UsageError(f"rounds: expected an integer from 1 to {MAX_ROUNDS}, got {rounds!r}")
    check_plan_size(len(cells), rounds)
    order: list[tuple[int, Cell]] = []
    for r in range(rounds):
        offset = r * len(cells) // rounds
        order.extend((r, cell) for cell in cells[offset:] + cells[:offset])
    return order


__all__ = ["AXES", "Entry", "Settings", "Suite", "SuiteError", "available_suites", "expand",
           "load_suite", "make_settings", "parse_shard", "rounds_order", "shard", "suite_path"]


def probe_selection(order: list[tuple[int, Cell]], how: str) -> set[tuple[int, Cell]]:
    """Which (round, cell) pairs also run the debuggability probes.

    The probes measure properties of a mode and a network, not of a batch size, and cost
    seconds each (tens for MobileNet training), so by default ("once") they run for the
    smallest batch of each case, config, mode, phase, input and device (whatever its threads),
    in the first round. "infer" does the same for inference cells only: training probes cost
    about five times as much (a fresh train step to build, trace or compile for every fault and
    the cold start), and on the standard run 172 of the 180 debugging-aid facts were the same
    in both phases (the 8 others: intermediates of traced training steps, a cheap probe).
    """
    if how == ProbePolicy.NONE:
        return set()
    if how == ProbePolicy.ALL:
        first = min((r for r, _ in order), default=0)  # once: linear in the plan's size
        return {(r, c) for r, c in order if r == first}
    chosen: dict[tuple, tuple[int, Cell]] = {}
    for round_index, cell in sorted(order, key=lambda rc: (rc[0], rc[1].batch)):
        if how == ProbePolicy.INFER and cell.phase != Phase.INFER:
            continue
        group = (cell.case, cell.config, cell.mode, cell.phase, cell.input, cell.device)
        chosen.setdefault(group, (round_index, cell))
    return set(chosen.values())
