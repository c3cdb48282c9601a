"""The record schema: what one measured cell leaves behind, as plain data.

Records are data, not behaviour (DESIGN.md): a `Cell` says what was run, a `Record` says what
happened. Both round-trip through JSON so a run recorded on a GPU box can be tabled, reported
and compared on a laptop without TensorFlow. Statistics are *not* stored: they are derived from
the raw samples when a table is built, so pooling rounds and re-analysing old runs stay exact.

Bump `SCHEMA_VERSION` when a field changes meaning; `validate_record` rejects what it cannot read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1

PHASES = ("infer", "train")
DEVICES = ("cpu", "gpu")
INPUT_STYLES = ("resident", "feed")
ALL_THREADS = "all"  # a threads value: every CPU the run may use
STATUSES = ("ok", "skipped", "error", "timeout", "crashed")
FAILED_STATUSES = ("error", "timeout", "crashed")


class SchemaError(ValueError):
    """A record or header that does not match the schema."""


@dataclass(frozen=True)
class Cell:
    """One point of the benchmark matrix: what to run, nothing about how it went."""

    case: str  # "cnn", "mobilenet"
    config: str  # canonical override string, e.g. "alpha=0.25,resolution=96" ("" = defaults)
    mode: str  # "session", "frozen", "optimized", "eager", "function", "xla", "keras"
    phase: str  # "infer" | "train"
    device: str = "cpu"  # "cpu" | "gpu"
    input: str = "resident"  # "resident" | "feed"
    batch: int = 1
    # CPUs (and intra-op threads) the worker gets: "1", "2", ... or "all" (bench.placement).
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
    # Setup stages in seconds, in the order they happened: build, freeze, optimize, trace,
    # compile, first_call ... Only the stages the mode has.
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
    flops_per_image: float | None = None  # convention in bench.efficiency
    threads: dict[str, int] = field(default_factory=dict)  # intra_op / inter_op
    debug: dict[str, Any] = field(default_factory=dict)  # debuggability probes (dbg_*)
    wall_s: float | None = None  # wall time of the whole worker for this cell
    # Paired speed-up (bench.paired): this mode's and eager's step times, alternating step by
    # step inside this worker after the isolated measurement, so the worker's state cancels.
    paired_s: list[float] = field(default_factory=list)
    paired_eager_s: list[float] = field(default_factory=list)
    cpus: list[int] = field(default_factory=list)  # the CPU set the worker was pinned to
    # Other processes' CPU use while this worker sampled (bench.placement.LoadMeter).
    load: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["kind"] = "record"
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        validate_record(data)
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        kwargs["cell"] = Cell(**data["cell"])
        return cls(**kwargs)


_CELL_FIELDS = {f.name: f.type for f in dataclasses.fields(Cell)}


def validate_record(data: Any) -> None:
    """Raise SchemaError naming the first thing wrong with a JSON record."""
    if not isinstance(data, dict):
        raise SchemaError("a record must be a JSON object")
    if data.get("schema") != SCHEMA_VERSION:
        raise SchemaError(
            f"unsupported schema version {data.get('schema')!r} (this tool reads {SCHEMA_VERSION})"
        )
    cell = data.get("cell")
    if not isinstance(cell, dict):
        raise SchemaError("record has no 'cell' object")
    missing = [name for name in ("case", "mode", "phase") if not isinstance(cell.get(name), str)]
    if missing:
        raise SchemaError(f"cell is missing {', '.join(missing)}")
    unknown = set(cell) - set(_CELL_FIELDS)
    if unknown:
        raise SchemaError(f"cell has unknown fields {sorted(unknown)}")
    if not isinstance(cell.get("batch", 1), int) or cell.get("batch", 1) < 1:
        raise SchemaError(f"cell batch must be a positive integer, got {cell.get('batch')!r}")
    if data.get("status") not in STATUSES:
        raise SchemaError(f"status {data.get('status')!r} is not one of {', '.join(STATUSES)}")
    if not isinstance(cell.get("threads", ALL_THREADS), str):
        raise SchemaError(f"cell threads must be a string, got {cell.get('threads')!r}")
    for name in ("samples_s", "paired_s", "paired_eager_s"):
        samples = data.get(name, [])
        if not isinstance(samples, list) or not all(
            isinstance(s, (int, float)) and s >= 0 for s in samples
        ):
            raise SchemaError(f"{name} must be a list of non-negative numbers")
    for name in ("setup_s", "graph_nodes", "threads", "debug", "extra", "load"):
        if not isinstance(data.get(name, {}), dict):
            raise SchemaError(f"{name} must be an object")
