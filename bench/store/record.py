"""The record schema: what one measured cell leaves behind, as plain data.

Records are data, not behaviour: a `Cell` says what was run, a `Record` says what
happened. Both round-trip through JSON so a run recorded on a GPU box can be tabled, reported
and compared on a laptop without TensorFlow. Statistics are *not* stored: they are derived from
the raw samples when a table is built, so pooling rounds and re-analysing old runs stay exact.

Bump `SCHEMA_VERSION` when a field changes meaning, and add a loader for the old version
(`RECORD_LOADERS`); `validate_record` rejects what it cannot read.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# 2: `extra` became declared fields (see record_from_v1, which reads version 1).
SCHEMA_VERSION = 2


class Phase(StrEnum):
    """What a cell's step does; a member is its own name as a string (`Phase.INFER == "infer"`),
    so records, suite files and the command line keep plain strings."""

    INFER = "infer"
    TRAIN = "train"


class Device(StrEnum):
    """Where a cell runs."""

    CPU = "cpu"
    GPU = "gpu"


class InputStyle(StrEnum):
    """How a step gets its batch: `resident` already on the device, `feed` a host batch per
    step, `dataset` a tf.data epoch per measured call (one step = one epoch)."""

    RESIDENT = "resident"
    FEED = "feed"
    DATASET = "dataset"


PHASES = tuple(Phase)
DEVICES = tuple(Device)
INPUT_STYLES = tuple(InputStyle)
ALL_THREADS = "all"  # a threads value: every CPU the run may use


class TimeStage(StrEnum):
    """Where a cell's time goes, in the order it is spent (`Record.time_s` keys).

    `start` is the runner's share: forking the worker and receiving its result; `lost` is the
    whole time of a cell that failed (its stages are unknown).
    """

    START = "start"
    INPUTS = "inputs"
    SETUP = "setup"
    FIRST_CALL = "first_call"
    EQUIVALENCE = "equivalence"
    WARMUP = "warmup"
    SAMPLING = "sampling"
    PROBES = "probes"
    REFERENCE = "reference"
    PAIRED = "paired"
    TEARDOWN = "teardown"
    LOST = "lost"


TIME_STAGES = tuple(TimeStage)
# Other processes using at least this share of a worker's CPUs (in cores) while it sampled
# (Record.load) make the cell's numbers suspect: the table and the report warn.
OTHER_LOAD_WARN = 0.10
# The stages a longer budget lengthens; the others are paid once per cell whatever the budget.
MEASURING_STAGES = (TimeStage.WARMUP, TimeStage.SAMPLING, TimeStage.PAIRED)


class Status(StrEnum):
    """What became of a cell, in order of severity: pooled rounds take the worst.

    A member is its own name as a string (`Status.OK == "ok"`), so records and JSON keep plain
    strings; `severity` and `failed` are the only places those two facts are written down.
    """

    OK = "ok"
    SKIPPED = "skipped"  # not applicable to this mode or machine: not a failure
    ERROR = "error"
    TIMEOUT = "timeout"
    CRASHED = "crashed"

    @property
    def severity(self) -> int:
        return list(Status).index(self)

    @property
    def failed(self) -> bool:
        return self.severity >= Status.ERROR.severity


STATUSES = tuple(Status)
FAILED_STATUSES = tuple(s for s in Status if s.failed)


def is_failed(status: str) -> bool:
    """A cell that should have run and did not (error, timeout, crash)."""
    return status in FAILED_STATUSES


def severity(status: str) -> int:
    """Rank of a status; an unknown one ranks worst."""
    return Status(status).severity if status in STATUSES else len(STATUSES)


def worst_status(statuses: Iterable[str]) -> str:
    return max(statuses, key=severity)


# Setup stages, in the order a mode goes through them (`Record.setup_s` keys): `build` the
# graph or variables, `trace` a tf.function, `freeze` variables into constants, `optimize` the
# frozen graph, `import` it into the graph that runs, `first_call` (the first step, which
# includes XLA compilation). A mode emits only the stages it has.
class SetupStage(StrEnum):
    """A setup stage; like Status, a member is its own name as a string."""

    BUILD = "build"
    TRACE = "trace"
    FREEZE = "freeze"
    OPTIMIZE = "optimize"
    IMPORT = "import"
    FIRST_CALL = "first_call"


SETUP_STAGES = tuple(SetupStage)


class SchemaError(ValueError):
    """A record or header that does not match the schema."""


@dataclass(frozen=True)
class Cell:
    """One point of the benchmark matrix: what to run, nothing about how it went."""

    case: str  # "cnn", "mobilenet"
    config: str  # canonical override string, e.g. "alpha=0.25,resolution=96" ("" = defaults)
    mode: str  # a bench.modes.MODES name: "session", "eager", "function_epoch", ...
    phase: str  # a Phase
    device: str = Device.CPU  # a Device
    input: str = InputStyle.RESIDENT  # an InputStyle (dataset: one step = one epoch)
    batch: int = 1
    # CPUs (and intra-op threads) the worker gets: "1", "2", ... or "all" (bench.engine.placement).
    threads: str = ALL_THREADS

    @property
    def key(self) -> str:
        """A stable, human-readable identity used to pool rounds and match baselines."""
        case = f"{self.case}[{self.config}]" if self.config else self.case
        return (f"{case}/{self.mode}/{self.phase}/{self.device}/{self.input}/b{self.batch}"
                f"/t{self.threads}")

    @property
    def group_key(self) -> str:
        """The comparison group: every field but the mode (speed-ups are taken within one)."""
        return Cell(self.case, self.config, "-", self.phase, self.device, self.input,
                    self.batch, self.threads).key

    @property
    def case_spec(self) -> str:
        return f"{self.case}:{self.config}" if self.config else self.case


@dataclass
class Record:
    """What happened when one cell ran once (one round)."""

    cell: Cell
    status: str  # one of STATUSES
    reason: str = ""  # why skipped / failed; short, one line
    run_id: str = ""
    round: int = 0
    schema: int = SCHEMA_VERSION
    # Steady-state step times in seconds, one per step (one step = one batch); warm-up excluded.
    samples_s: list[float] = field(default_factory=list)
    warmup_s: list[float] = field(default_factory=list)
    images_per_step: int = 0
    # Setup stages (SETUP_STAGES) in seconds, in the order they happened; only the stages the
    # mode has.
    setup_s: dict[str, float] = field(default_factory=dict)
    first_result_s: float | None = None  # from "prepare started" to the first host result
    peak_rss_mb: float | None = None  # peak resident memory above the post-import baseline
    peak_device_mb: float | None = None  # TensorFlow's peak device memory (GPU only)
    graph_nodes: dict[str, int] = field(default_factory=dict)  # e.g. built/frozen/optimized
    max_abs_diff: float | None = None  # versus the eager reference, same weights and inputs
    tolerance: float | None = None  # the mode's stated tolerance for max_abs_diff
    equivalent: bool | None = None  # max_abs_diff <= tolerance
    macs_per_image: int | None = None  # forward multiply-accumulates per image
    params: int | None = None
    flops_per_image: float | None = None
    threads: dict[str, int] = field(default_factory=dict)  # intra_op / inter_op
    debug: dict[str, Any] = field(default_factory=dict)  # debuggability probes (dbg_*)
    wall_s: float | None = None  # wall time of the whole worker for this cell
    # Paired speed-up (bench.engine.timing.measure_paired): this mode's and eager's step times,
    # alternating step by step inside this worker after its own measurement, so the worker's
    # state cancels in their ratio.
    paired_s: list[float] = field(default_factory=list)
    paired_eager_s: list[float] = field(default_factory=list)
    cpus: list[int] = field(default_factory=list)  # the CPU set the worker was pinned to
    # Other processes' CPU use while this worker sampled (bench.engine.placement.LoadMeter).
    load: dict[str, float] = field(default_factory=dict)
    # Seconds per stage of TIME_STAGES, summing to the cell's time as the runner saw it: what a
    # longer budget buys and what setup, probes and the eager reference cost.
    time_s: dict[str, float] = field(default_factory=dict)
    # Batches one timed call ran (Model.fit, a dataset epoch); the times above are already per
    # batch. None when nothing was timed.
    batches_per_call: int | None = None
    stopped_by: str = ""  # why sampling stopped: "target", "budget", "max_samples", "lockstep"
    reached_target: bool | None = None  # the median's CI met the run's target
    # Why this visit came after the planned rounds (bench.engine.schedule's note: a remeasure of a
    # cell whose workers disagree, or an A/B pair the sequential test asked for); "" if planned.
    extra_visit: str = ""
    # What the progress display promised when the cell started (the ETA's accuracy, later).
    eta_elapsed_s: float | None = None
    eta_left_s: float | None = None
    log: str = ""  # the worker's log file, kept for a cell that failed
    node: str = ""  # the Ray node that measured it (bench.cluster.node)
    slot_held: list[float] = field(default_factory=list)  # [start, end] Unix s of its slot
    injected_slowdown: float = 0.0  # bench.engine.inject's planted slowdown: a testing aid
    injected_iterations: int = 0
    probes_only: bool = False  # `bench debug`: probed, not timed
    mode_impl: str = ""  # how the mode ran the cell, when it says ("function", a model loader)
    # Everything else a mode says about itself (`Prepared.extra`: Keras version, op types):
    # kept for reference, never read by the reports.
    mode_facts: dict[str, Any] = field(default_factory=dict)
    # A record loaded from pytest-benchmark JSON: that tool's own statistics and names.
    pytest_benchmark: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["kind"] = "record"
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        """A record of any readable schema version (older ones through RECORD_LOADERS)."""
        data = upgrade(data, RECORD_LOADERS, "record")
        validate_record(data)
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        kwargs["cell"] = Cell(**data["cell"])
        return cls(**kwargs)


_CELL_FIELDS = {f.name: f.type for f in dataclasses.fields(Cell)}


def _number(value: Any) -> bool:
    """A real, finite number (JSON's Infinity/NaN and booleans are not measurements)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _optional(check):
    return lambda v: v is None or check(v)


def _list_of(check):
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _dict_of(check):
    return lambda v: isinstance(v, dict) and all(check(x) for x in v.values())


def _positive(value: Any) -> bool:
    return _number(value) and value > 0


def _non_negative(value: Any) -> bool:
    return _number(value) and value >= 0


# No time in a record can be longer than this: a worker is killed after at most a day
# (bench.engine.plan.MAX_TIMEOUT_S), so 1e6 s (11.6 days) is a hand-edited or corrupt value, and one
# like 1e308 would overflow every sum and plot it reaches.
MAX_SECONDS = 1e6


def _seconds(value: Any) -> bool:
    return _non_negative(value) and value <= MAX_SECONDS


def _positive_seconds(value: Any) -> bool:
    return _positive(value) and value <= MAX_SECONDS


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _name(value: Any) -> bool:
    return isinstance(value, str) and value != ""


# Field -> (check, what it must be). Checked only when present, so older and newer records (with
# optional fields such as `cpus` or `paired_s`) load alike; what is present must be usable by
# every report, or the record is skipped with a warning instead of crashing a table later.
RECORD_FIELD_TYPES: dict[str, tuple[Any, str]] = {
    "reason": (lambda v: isinstance(v, str), "a string"),
    "run_id": (lambda v: isinstance(v, str), "a string"),
    "round": (_count, "an integer >= 0"),
    "samples_s": (_list_of(_positive_seconds),
                  f"a list of positive numbers of seconds, at most {MAX_SECONDS:g}"),
    "warmup_s": (_list_of(_seconds), f"a list of seconds from 0 to {MAX_SECONDS:g}"),
    "images_per_step": (_count, "an integer >= 0"),
    "setup_s": (_dict_of(_seconds), f"an object of seconds from 0 to {MAX_SECONDS:g}"),
    "first_result_s": (_optional(_seconds), f"seconds from 0 to {MAX_SECONDS:g}, or null"),
    "peak_rss_mb": (_optional(_number), "a number or null"),
    "peak_device_mb": (_optional(_number), "a number or null"),
    "graph_nodes": (_dict_of(_count), "an object of integers >= 0"),
    "max_abs_diff": (_optional(lambda v: _number(v) and v >= 0),
                     "a non-negative finite number or null"),
    "tolerance": (_optional(_non_negative), "a non-negative number or null"),
    "equivalent": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    "macs_per_image": (_optional(_count), "an integer >= 0 or null"),
    "params": (_optional(_count), "an integer >= 0 or null"),
    "flops_per_image": (_optional(_non_negative), "a non-negative number or null"),
    "threads": (_dict_of(_count), "an object of integers >= 0"),
    "debug": (lambda v: isinstance(v, dict), "an object"),
    "wall_s": (_optional(_seconds), f"seconds from 0 to {MAX_SECONDS:g}, or null"),
    # Optional fields of newer writers.
    "cpus": (_list_of(_count), "a list of CPU numbers"),
    "load": (lambda v: isinstance(v, dict), "an object"),
    "paired_s": (_list_of(_seconds), f"a list of seconds from 0 to {MAX_SECONDS:g}"),
    "paired_eager_s": (_list_of(_seconds), f"a list of seconds from 0 to {MAX_SECONDS:g}"),
    "time_s": (_dict_of(_seconds), f"an object of seconds from 0 to {MAX_SECONDS:g}"),
    # Schema 2: what schema 1 kept in its undeclared `extra` object.
    "batches_per_call": (_optional(lambda v: _count(v) and v >= 1),
                         "a positive integer or null"),
    "stopped_by": (lambda v: isinstance(v, str), "a string"),
    "reached_target": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    "extra_visit": (lambda v: isinstance(v, str), "a string"),
    "eta_elapsed_s": (_optional(_seconds), f"seconds from 0 to {MAX_SECONDS:g}, or null"),
    "eta_left_s": (_optional(_seconds), f"seconds from 0 to {MAX_SECONDS:g}, or null"),
    "log": (lambda v: isinstance(v, str), "a string"),
    "node": (lambda v: isinstance(v, str), "a string"),
    "slot_held": (lambda v: _list_of(_non_negative)(v) and len(v) in (0, 2),
                  "a list of two Unix times [start, end], or empty"),
    "injected_slowdown": (_non_negative, "a non-negative number"),
    "injected_iterations": (_count, "an integer >= 0"),
    "probes_only": (lambda v: isinstance(v, bool), "true or false"),
    "mode_impl": (lambda v: isinstance(v, str), "a string"),
    "mode_facts": (lambda v: isinstance(v, dict), "an object"),
    "pytest_benchmark": (lambda v: isinstance(v, dict), "an object"),
}

CELL_FIELD_TYPES: dict[str, tuple[Any, str]] = {
    "case": (_name, "a non-empty string"),
    "config": (lambda v: isinstance(v, str), "a string"),
    "mode": (_name, "a non-empty string"),
    "phase": (lambda v: v in PHASES, f"one of {', '.join(PHASES)}"),
    "device": (lambda v: v in DEVICES, f"one of {', '.join(DEVICES)}"),
    "input": (lambda v: v in INPUT_STYLES, f"one of {', '.join(INPUT_STYLES)}"),
    "batch": (lambda v: _count(v) and v >= 1, "a positive integer"),
    "threads": (_name, "a non-empty string such as '1' or 'all'"),
}


def validate_record(data: Any) -> None:
    """Raise SchemaError naming the first thing wrong with a JSON record."""
    if not isinstance(data, dict):
        raise SchemaError("a record must be a JSON object")
    if data.get("schema") != SCHEMA_VERSION:
        raise SchemaError(f"unsupported schema version {data.get('schema')!r} "
                          f"(this tool reads {_readable()})")
    cell = data.get("cell")
    if not isinstance(cell, dict):
        raise SchemaError("record has no 'cell' object")
    missing = [name for name in ("case", "mode", "phase") if name not in cell]
    if missing:
        raise SchemaError(f"cell is missing {', '.join(missing)}")
    unknown = set(cell) - set(_CELL_FIELDS)
    if unknown:
        raise SchemaError(f"cell has unknown fields {sorted(unknown)}")
    _check_fields(cell, CELL_FIELD_TYPES, "cell ")
    if data.get("status") not in STATUSES:
        raise SchemaError(f"status {data.get('status')!r} is not one of {', '.join(STATUSES)}")
    _check_fields(data, RECORD_FIELD_TYPES, "")


def _check_fields(data: dict[str, Any], table: dict[str, tuple[Any, str]], prefix: str) -> None:
    for name, (ok, expected) in table.items():
        if name in data and not ok(data[name]):
            raise SchemaError(f"{prefix}{name} must be {expected}, got {_short(data[name])}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- older schemas
# As pyperf keeps a loader for each of its old formats: a run file of an older schema version
# is read, never rejected, by turning each line into the current schema on load. The loaded
# objects are then current (`schema == SCHEMA_VERSION`), so a run rewritten from them (a
# baseline relabelled by the tests, an A/B side on an older commit) is one schema throughout.

# Keys of a schema-1 record's `extra` that are declared fields in schema 2.
V1_EXTRA_FIELDS = {
    "batches_per_call": "batches_per_call", "stopped_by": "stopped_by",
    "reached_target": "reached_target", "remeasure": "extra_visit",
    "ab_extra_pair": "extra_visit", "log": "log", "node": "node", "slot_held": "slot_held",
    "injected_slowdown": "injected_slowdown", "injected_iterations": "injected_iterations",
    "probes_only": "probes_only", "mode_impl": "mode_impl",
    "pytest_benchmark": "pytest_benchmark",
}


def record_from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 record as schema 2: its undeclared `extra` object becomes declared fields.

    Known keys go to their fields: `remeasure` (runner, Ray) and `ab_extra_pair` (A/B), both
    the schedule's note for an extra visit, to `extra_visit`; `eta` ({elapsed_s, left_s}) to
    `eta_elapsed_s` and `eta_left_s`. Every other key goes to `mode_facts`: in schema 1 only
    a mode's `Prepared.extra` wrote other keys (keras_version, jit_compile, op_types_frozen,
    macs_source, ...), and `mode_facts` is where schema 2 keeps them, so nothing is dropped and
    nothing is guessed. The new fields are then validated like any record's.
    """
    data = dict(data)
    extra = data.pop("extra", {})
    if not isinstance(extra, dict):
        raise SchemaError(f"extra must be an object, got {_short(extra)}")
    extra = dict(extra)
    eta = extra.pop("eta", None)
    if eta is not None:
        if not isinstance(eta, dict):
            raise SchemaError(f"extra.eta must be an object, got {_short(eta)}")
        data["eta_elapsed_s"], data["eta_left_s"] = eta.get("elapsed_s"), eta.get("left_s")
    for key, name in V1_EXTRA_FIELDS.items():
        if key in extra:
            data[name] = extra.pop(key)
    data["mode_facts"] = extra
    data["schema"] = SCHEMA_VERSION
    return data


def header_from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 header as schema 2: no header field changed, only the records did."""
    return {**data, "schema": SCHEMA_VERSION}


RECORD_LOADERS = {1: record_from_v1}
HEADER_LOADERS = {1: header_from_v1}


def _readable() -> str:
    return ", ".join(str(v) for v in sorted({*RECORD_LOADERS, SCHEMA_VERSION}))


def upgrade(data: Any, loaders: dict, what: str) -> Any:
    """A record's or header's JSON in the current schema; SchemaError for an unknown version."""
    if not isinstance(data, dict) or data.get("schema") == SCHEMA_VERSION:
        return data  # validation says what is wrong with a non-object
    version = data.get("schema")
    if isinstance(version, bool) or version not in loaders:
        raise SchemaError(f"unsupported {what} schema version {version!r} "
                          f"(this tool reads {_readable()})")
    return loaders[version](data)


def mode_fields(facts: dict[str, Any]) -> dict[str, Any]:
    """A mode's `Prepared.extra` as Record fields: `mode_impl`, and the rest as `mode_facts`."""
    facts = dict(facts)
    return {"mode_impl": str(facts.pop("mode_impl", "")), "mode_facts": facts}


# --------------------------------------------------------------------------- runs
# A run file's header and the loaded run (bench.store.runfiles reads and writes them).


@dataclass
class RunHeader:
    run_id: str
    suite: str
    started: str  # ISO 8601, UTC
    machine: dict[str, Any] = field(default_factory=dict)  # bench.engine.machine facts
    options: dict[str, Any] = field(default_factory=dict)  # the run's settings
    # peak_key(device, threads) -> measured FLOP/s; a footer may hold a second measurement
    # (taken at the end of the run) and loading keeps the better of the two.
    peak_flops: dict[str, float] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION


@dataclass
class Run:
    header: RunHeader
    records: list[Record]
    complete: bool
    path: str = ""
    end_reason: str = ""
    problems: list[str] = field(default_factory=list)  # "file:line: what is wrong"
    finished: str = ""  # ISO 8601 from the footer; "" when the run never finished
    elapsed_s: float | None = None  # footer: seconds from the first cell's start to the end
