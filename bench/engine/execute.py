"""The run API: a list of cells and settings in, a run file (or one per Ray node) out.

`run` (locally or on a Ray cluster) measures through these functions; the command-line
modules only parse, validate and print. The run file is claimed before calibration, so two
runs started in the same second never share a name. An interruption (KeyboardInterrupt,
bench.engine.signals) or a failed write (StoreWriteError) is re-raised with `run_path` set, and
`nothing_recorded` when the claimed file was removed again.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from bench.store.paths import printable, writable_dir
from bench.store.runfiles import StoreWriteError, claim_run_file, release_claim, run_stem


def execute(cells: list, name: str, settings, out_dir: str | Path, *,
            show_progress: bool = True, probes: str | None = None, rounds: int | None = None):
    """Run `cells` with `settings` into a new run file in `out_dir`: (path, RunResult).

    The run file is claimed before calibration.
    An interruption (KeyboardInterrupt, bench.engine.signals) or a failed write (StoreWriteError) is
    re-raised with `run_path` set, and `nothing_recorded` when the claimed file was removed.
    """
    from bench.engine import plan
    from bench.engine.inject import slowdown_from_env
    from bench.engine.runner import run
    from bench.engine.worker import CellOptions

    out_dir = writable_dir(out_dir, "--out")
    slowdown = slowdown_from_env()
    out_path = claim_run_file(out_dir, run_stem(name))
    options = CellOptions.from_settings(settings)
    rounds = rounds or settings.rounds
    order = plan.rounds_order(cells, rounds)
    probe = plan.probe_selection(order, probes or settings.probes)
    planted = f" (planted slowdown: {os.environ.get('BENCH_INJECT_SLOWDOWN')})" if slowdown else ""
    print(f"running {len(cells)} cells x {rounds} round(s) of suite '{name}' -> "
          f"{printable(out_path)}{planted}", file=sys.stderr)
    try:
        result = run(order, suite=name, options=options, out_path=out_path,
                     timeout_s=settings.timeout_s, memory_limit_mb=settings.memory_limit_mb,
                     settings={**dataclasses.asdict(settings), "rounds": rounds},
                     show_progress=show_progress, probe=probe,
                     threads_inter=settings.threads_inter, remeasure=settings.remeasure,
                     slowdown=slowdown)
    except (KeyboardInterrupt, StoreWriteError) as exc:
        exc.run_path = out_path
        exc.nothing_recorded = release_claim(out_path)
        raise
    except BaseException:
        release_claim(out_path)  # e.g. calibration failed: leave no empty run file behind
        raise
    return out_path, result


def execute_ray(cells: list, name: str, settings, out_dir: str | Path, address: str, *,
                show_progress: bool = True):
    """`execute` on a Ray cluster (bench.cluster.driver): (run file per node, ClusterResult).

    Files are claimed per node as its first record arrives, so nothing is claimed up front.
    An interruption is re-raised with `run_paths` (the files written so far).
    """
    from bench.cluster.driver import run_on_cluster
    from bench.engine import plan
    from bench.engine.inject import slowdown_from_env
    from bench.engine.worker import CellOptions

    out_dir = writable_dir(out_dir, "--out")
    slowdown = slowdown_from_env()
    stem = run_stem(name)
    options = CellOptions.from_settings(settings)
    order = plan.rounds_order(cells, settings.rounds)
    probe = plan.probe_selection(order, settings.probes)
    where = address if address not in ("", "local") else "a local in-process Ray cluster"
    print(f"running {len(cells)} cells x {settings.rounds} round(s) of suite '{name}' on "
          f"{where} -> {out_dir}/{stem}-<node>.jsonl", file=sys.stderr)
    result = run_on_cluster(order, address=address, suite=name, out_dir=out_dir,
                            stem=stem, options=options,
                            timeout_s=settings.timeout_s,
                            memory_limit_mb=settings.memory_limit_mb,
                            settings=dataclasses.asdict(settings), show_progress=show_progress,
                            probe=probe, threads_inter=settings.threads_inter,
                            remeasure=settings.remeasure, slowdown=slowdown)
    return result.paths, result
