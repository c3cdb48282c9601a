"""A fabricated but realistic run, so the report can be built, tested and looked at without TF.

Numbers are invented (seeded numpy), shaped like a real CPU run: graph modes faster per step
but dearer to set up, XLA fastest with the longest compile, frozen/optimized train cells
skipped as not applicable, one failing cell. `python -m reports.demo OUT.jsonl [--gpu]`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from bench.record import Cell, Record
from bench.store import RunHeader, RunWriter

MODES = ("session", "frozen", "optimized", "eager", "function", "function_epoch", "xla", "keras")
DATASET_ONLY = ("function_epoch",)  # bench.modes.MODE_INPUTS
EPOCH_BATCHES = 8
GRAPH_ONLY_INFER = ("frozen", "optimized")
# Relative step time against eager, and the setup stages each mode pays (seconds).
_SPEED = {"eager": 1.0, "function": 0.62, "function_epoch": 0.58, "xla": 0.45, "keras": 0.70,
          "session": 0.64, "frozen": 0.60, "optimized": 0.52}
_SETUP = {
    "eager": {"build": 0.05, "first_call": 0.15},
    "function": {"build": 0.05, "trace": 0.55, "first_call": 0.08},
    "function_epoch": {"build": 0.07, "trace": 0.70, "first_call": 0.30},
    "xla": {"build": 0.05, "trace": 0.60, "compile": 3.2, "first_call": 0.05},
    "keras": {"build": 0.9, "first_call": 0.45},
    "session": {"build": 0.8, "first_call": 0.10},
    "frozen": {"build": 0.8, "freeze": 0.6, "first_call": 0.10},
    "optimized": {"build": 0.8, "freeze": 0.6, "optimize": 1.4, "first_call": 0.10},
}
_PROBES = ("breakpoint_in_step", "print_each_step", "error_names_user_line",
           "inspect_intermediates", "traceback_frames")
_DEBUG = {  # invented probe results, shaped like the real probes' output
    mode: dict(zip(_PROBES, values, strict=True)) for mode, values in {
        "eager": (True, True, True, True, 6),
        "function": (False, False, True, False, 24),
        "function_epoch": (False, False, True, False, 27),
        "xla": (False, False, False, False, 41),
        "keras": (False, False, True, True, 35),
        "session": (False, False, False, True, 18),
        "frozen": (False, False, False, False, 18),
        "optimized": (False, False, False, False, 18),
    }.items()
}
# (case, config, eager ms per image at infer, MACs per image, params)
_WORKLOADS = (
    ("cnn", "", 0.40, 12_000_000, 310_000),
    ("cnn", "width=64", 1.10, 46_000_000, 1_200_000),
    ("mobilenet", "alpha=0.25,resolution=96", 0.55, 14_000_000, 470_000),
    ("mobilenet", "alpha=0.5,resolution=128", 1.60, 49_000_000, 1_330_000),
)
ERROR_CELL = ("mobilenet", "alpha=0.5,resolution=128", "xla", "train")
ERROR_REASON = ("InternalError: XLA compilation failed: ran out of memory allocating 2.1GiB "
                "for the fused depthwise-conv backward pass")


def demo_cells(batches: tuple[int, ...] = (1, 8, 32)) -> list[Cell]:
    """Both cases, two configs each, all modes, both phases; batch sweep on the default CNN,
    which also gets a dataset-input group (an epoch per call, function_epoch only there)."""
    cells = []
    for case, config, *_ in _WORKLOADS:
        sizes = batches if (case, config) == ("cnn", "") else (32,)
        inputs = ("resident", "dataset") if (case, config) == ("cnn", "") else ("resident",)
        for input_style in inputs:
            for batch in sizes if input_style == "resident" else (32,):
                for phase in ("infer", "train"):
                    for mode in MODES:
                        if mode in DATASET_ONLY and input_style != "dataset":
                            continue
                        cells.append(Cell(case, config, mode, phase, "cpu", input_style, batch))
    return cells


def demo_records(run_id: str, seed: int = 0, device: str = "cpu", rounds: int = 2,
                 samples: int = 40) -> list[Record]:
    rng = np.random.default_rng(seed)
    speed = 0.12 if device == "gpu" else 1.0
    workloads = {(c, k): (ms, macs, params) for c, k, ms, macs, params in _WORKLOADS}
    records = []
    for round_ in range(rounds):
        for cell in demo_cells():
            cell = Cell(cell.case, cell.config, cell.mode, cell.phase, device, cell.input,
                        cell.batch)
            ms, macs, params = workloads[(cell.case, cell.config)]
            records.append(_record(rng, run_id, round_, cell, ms * speed, macs, params, samples))
    return records


def _record(rng: np.random.Generator, run_id: str, round_: int, cell: Cell, ms_per_image: float,
            macs: int, params: int, n: int) -> Record:
    common = {"cell": cell, "run_id": run_id, "round": round_, "images_per_step": cell.batch,
                  "macs_per_image": macs, "params": params, "flops_per_image": 2.0 * macs}
    if cell.phase == "train" and cell.mode in GRAPH_ONLY_INFER:
        return Record(status="skipped", reason=f"not applicable: the {cell.mode} graph holds "
                      "constants instead of variables, so it cannot train", **common)
    if (cell.case, cell.config, cell.mode, cell.phase) == ERROR_CELL:
        return Record(status="error", reason=ERROR_REASON, **common)
    # Fixed per-step overhead makes small batches less efficient, like real dispatch cost.
    overhead_ms = {"eager": 1.5, "keras": 3.0}.get(cell.mode, 0.4)
    step_ms = (ms_per_image * cell.batch + overhead_ms) * _SPEED[cell.mode]
    if cell.phase == "train":
        step_ms *= 3.0
    if cell.input == "dataset":  # a little input-pipeline cost per batch
        step_ms *= 1.05
    step = step_ms / 1e3 * rng.lognormal(0.0, 0.04, size=n)
    step[rng.integers(0, n)] *= 1.4  # a GC-pause outlier
    setup = {k: v * rng.uniform(0.9, 1.1) for k, v in _SETUP[cell.mode].items()}
    diff = 0.0 if cell.mode == "eager" else float(rng.uniform(1e-7, 4e-6))
    tolerance = 1e-3 if cell.mode == "xla" else 1e-5
    return Record(
        status="ok", samples_s=[float(s) for s in step], warmup_s=[step_ms / 1e3 * 3],
        setup_s=setup, first_result_s=sum(setup.values()) + step_ms / 1e3,
        peak_rss_mb=float(180 + params * 4 / 2**20 * (6 if cell.phase == "train" else 2)
                          + 15 * cell.batch * (1.4 if cell.mode == "eager" else 1.0)),
        graph_nodes=_graph_nodes(cell), max_abs_diff=diff, tolerance=tolerance,
        equivalent=diff <= tolerance, threads={"intra_op": 2, "inter_op": 1},
        debug=dict(_DEBUG[cell.mode]), wall_s=sum(setup.values()) + float(step.sum()) + 1.0,
        extra={"batches_per_call": EPOCH_BATCHES if cell.input == "dataset" else 1},
        **common,
    )


def _graph_nodes(cell: Cell) -> dict[str, int]:
    base = 240 if cell.case == "cnn" else 520
    if cell.phase == "train":
        base *= 3
    if cell.mode in ("session", "frozen", "optimized"):
        nodes = {"built": base}
        if cell.mode in ("frozen", "optimized"):
            nodes["frozen"] = int(base * 0.8)
        if cell.mode == "optimized":
            nodes["optimized"] = int(base * 0.45)
        return nodes
    if cell.mode in ("function", "function_epoch", "xla"):
        return {"traced": base}
    return {}


def demo_header(run_id: str, device: str = "cpu", hostname: str = "bench-box") -> RunHeader:
    cpu = "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"
    return RunHeader(
        run_id=run_id, suite="standard", started="2024-05-14T09:30:00Z",
        machine={"hostname": hostname, "cpu_model": cpu, "cores": 2, "memory_gb": 8,
                 "os": "Linux-6.1.0-x86_64-with-glibc2.36", "python": "3.11.7",
                 "tensorflow": "2.21.0", "numpy": "1.26.4",
                 "gpu": "NVIDIA T4" if device == "gpu" else "",
                 "git": {"commit": "3f2c9e1a7b5d", "dirty": False}},
        options={"rounds": 2, "min_samples": 40, "warmup": 5, "timeout_s": 600},
        peak_flops={"cpu": 3.2e11, "gpu": 8.1e12},
    )


def write_demo_run(path: str | os.PathLike, device: str = "cpu", seed: int = 0,
                   hostname: str = "bench-box", complete: bool = True) -> Path:
    """Write the demo run to `path` (which must not exist) and return the path."""
    run_id = f"demo-{hostname}-{device}"
    writer = RunWriter(path, demo_header(run_id, device, hostname))
    for record in demo_records(run_id, seed, device):
        writer.append(record)
    if complete:
        writer.close(True, finished="2024-05-14T09:58:00Z")
    return Path(path)


def write_run(path: str | os.PathLike, records: list[Record], run_id: str = "test-run",
              hostname: str = "bench-box", complete: bool = True,
              peak_flops: dict[str, float] | None = None) -> Path:
    """Write hand-made records as a run file (for tests and examples)."""
    header = demo_header(run_id, hostname=hostname)
    header.peak_flops = dict(peak_flops or {})
    writer = RunWriter(path, header)
    for record in records:
        writer.append(record)
    if complete:
        writer.close(True)
    return Path(path)


def fake_samples(median_s: float, n: int = 30, seed: int = 0, spread: float = 0.02) -> list[float]:
    """Step times scattered around a median, reproducibly."""
    rng = np.random.default_rng(seed)
    return [float(s) for s in median_s * rng.lognormal(0.0, spread, size=n)]


def main() -> None:
    parser = argparse.ArgumentParser(description="write a fabricated demo run file")
    parser.add_argument("out", help="run file to create (.jsonl)")
    parser.add_argument("--gpu", action="store_true", help="fabricate a GPU run")
    args = parser.parse_args()
    print(write_demo_run(args.out, "gpu" if args.gpu else "cpu"))


if __name__ == "__main__":
    main()
