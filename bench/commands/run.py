"""`python -m bench run`: measure a suite's matrix and print what it found.

With no arguments it runs the overview suite (about 5 minutes) on the CPU and prints a verdict
(`--format` prints the full table instead). Every option narrows or overrides the
suite; everything is validated before any cell runs, including that --out and --report can be
written. The run file is claimed (created empty, exclusively) before calibration, so two runs
started in the same second never share a name or a log folder. Exit codes: 0 every cell ok or
skipped, 1 some cells failed, 2 bad usage or input, 3 the run file could not be written (disk
full; the records written so far are kept), 130 interrupted by SIGINT, 143 by SIGTERM (the
partial run is kept). With --ray the matrix runs on a Ray cluster, one run file per node
(bench.cluster).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from bench import signals
from bench.commands.report import check_outputs as check_report_outputs
from bench.errors import WRITE_FAILED, UsageError
from bench.paths import printable, writable_dir
from bench.store import RunFileGone, StoreWriteError, claim_run_file, release_claim, run_stem


def _csv(kind=str):
    def parse(text: str) -> list:
        try:
            return [kind(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list, got {text!r}") from None

    return parse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a benchmark suite (default: overview, on the CPU)",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--suite", default="overview",
                   help="suite name in cases/suites (overview, standard, full, quick, smoke) "
                        "or a .toml path")
    p.add_argument("--case", action="append", dest="cases", metavar="SPEC",
                   help="case spec, repeatable: cnn, 'mobilenet:alpha=0.5,resolution=160'")
    p.add_argument("--mode", "--modes", type=_csv(), dest="modes", metavar="M[,M]",
                   help="modes: session,frozen,optimized,eager,function,xla,keras")
    p.add_argument("--phase", "--phases", type=_csv(), dest="phases", metavar="P[,P]",
                   help="infer and/or train")
    p.add_argument("--device", "--devices", type=_csv(), dest="devices", metavar="D[,D]",
                   help="cpu and/or gpu (default: the suite's, normally cpu)")
    p.add_argument("--batch", "--batches", type=_csv(int), dest="batches", metavar="N[,N]")
    p.add_argument("--input", "--inputs", type=_csv(), dest="inputs", metavar="I[,I]",
                   help="resident (batch already on the device), feed (host batch per step) and/or "
                        "dataset (a tf.data epoch per measured call)")
    p.add_argument("--epoch-batches", type=int, dest="epoch_batches", metavar="N",
                   help="dataset input: distinct batches per epoch (one measured call)")
    p.add_argument("--rounds", type=int, help="run the matrix R times, rotating the order")
    p.add_argument("--budget", type=float, dest="budget_s", help="seconds of sampling per cell")
    p.add_argument("--target-ci", type=float, help="stop when the median's CI is within this")
    p.add_argument("--min-samples", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--timeout", type=float, dest="timeout_s", help="seconds per cell worker")
    p.add_argument("--memory-limit-mb", type=int, help="kill a worker above this resident MB")
    p.add_argument("--threads", type=_csv(), dest="threads", metavar="T[,T]",
                   help="CPUs per worker, each a matrix value: e.g. 1,all (pinned; TF's "
                        "intra-op pool sized to match; default: the suite's, normally all)")
    p.add_argument("--inter-threads", type=int, dest="threads_inter",
                   help="inter-op threads (default: min(threads, 2))")
    p.add_argument("--remeasure", type=int,
                   help="extra workers per cell whose workers disagree (default: suite's, 2)")
    p.add_argument("--no-paired", dest="paired", action="store_false", default=None,
                   help="skip the paired (alternating with eager) speed-up measurement")
    p.add_argument("--shard", help="i/n: run only the i-th of n disjoint parts of the matrix")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run on a Ray cluster, one cell per node at a time: 'auto' (the cluster "
                        "this machine belongs to), host:port, or nothing/'local' (an in-process "
                        "cluster); needs the ray extra (bench.cluster)")
    p.add_argument("--probes", choices=("once", "infer", "all", "none"),
                   help="debuggability probes (dbg_* columns): 'once' per case, config, mode "
                        "and phase (smallest batch, first round), 'infer' the same for "
                        "inference only, 'all' cells, or 'none' (default: the suite's setting)")
    p.add_argument("--out", default="results", help="directory for the run file (results/)")
    p.add_argument("--report", metavar="HTML", help="also write the HTML report here")
    p.add_argument("--format", choices=("text", "csv", "markdown"),
                   help="print the full table of cells in this format instead of the verdict "
                        "(for scripts)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--estimate", action="store_true",
                   help="print the cells and the estimated run time, then stop (bench.eta; "
                        "peaks from the newest run in --out, else the reference machine's)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from bench import plan

    if args.ray is not None:
        from bench.cluster import require_ray

        require_ray()  # one line and exit 2 before any work
    suite = plan.load_suite(args.suite)
    cells = plan.expand(suite, cases=args.cases, modes=args.modes, phases=args.phases,
                        batches=args.batches, inputs=args.inputs, devices=args.devices,
                        threads=args.threads)
    if args.shard:
        index, count = plan.parse_shard(args.shard)
        cells = plan.shard(cells, index, count)
    overrides = {k: getattr(args, k) for k in ("rounds", "budget_s", "target_ci", "min_samples",
                                               "warmup", "timeout_s", "memory_limit_mb",
                                               "threads_inter", "probes", "remeasure", "paired",
                                               "epoch_batches")
                 if getattr(args, k) is not None}
    settings = plan.make_settings({**dataclasses.asdict(suite.settings), **overrides},
                                  where="command-line options")
    if not cells:
        raise UsageError("the selection leaves no cells to run")
    if args.estimate:
        print(_estimate_text(cells, suite.name, settings, args.out))
        return 0
    if args.report and not args.report.lower().endswith((".html", ".htm")):
        raise UsageError(f"--report {args.report}: give an .html file")
    if args.report:  # before the run: an unwritable report must not spoil a good run
        check_report_outputs(Path(args.report), "--report")
    shard_tag = f"-shard{args.shard.replace('/', 'of')}" if args.shard else ""
    try:
        if args.ray is not None:
            paths, result = execute_ray(cells, suite.name + shard_tag, settings, args.out,
                                        args.ray, show_progress=not args.quiet)
        else:
            out_path, result = execute(cells, suite.name + shard_tag, settings, args.out,
                                       show_progress=not args.quiet)
            paths = [out_path]
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM/SIGHUP via bench.signals
        out_path = getattr(exc, "run_path", args.out)
        if getattr(exc, "run_paths", None) == []:  # a cluster run with no file claimed yet
            print(f"{signals.reason(exc)} before any cell finished: nothing was recorded",
                  file=sys.stderr)
        elif getattr(exc, "run_paths", None):  # a cluster run: one file per node
            kept = ", ".join(str(p) for p in exc.run_paths)
            print(f"{signals.reason(exc)}: finished cells are kept in {kept} "
                  "(marked incomplete)", file=sys.stderr)
        elif getattr(exc, "nothing_recorded", False):
            print(f"{signals.reason(exc)} before any cell finished: nothing was recorded "
                  f"(the empty run file {out_path} was removed)", file=sys.stderr)
        else:
            print(f"{signals.reason(exc)}: finished cells are kept in {out_path} "
                  "(marked incomplete)", file=sys.stderr)
        return signals.exit_code(exc)
    except StoreWriteError as exc:
        kept = "" if isinstance(exc, RunFileGone) else (
            f"; the records written before are kept in {getattr(exc, 'run_path', args.out)} "
            "(the run is incomplete)")
        print(f"error: {exc.strerror}{kept}", file=sys.stderr)
        return WRITE_FAILED

    from bench.store import load_runs
    from reports.table import default_columns, format_table, load_warnings, records_frame

    if not paths:
        raise UsageError("no node recorded a cell")
    runs = load_runs(paths)
    frame = records_frame(runs)
    written = None
    if args.report:
        from bench.commands.report import write_run_report

        written = write_run_report(runs, Path(args.report))
    if args.format:
        print(format_table(frame[default_columns(frame)], args.format))
    else:
        from reports.pivots import with_speedup
        from reports.time_spent import time_line
        from reports.verdict import verdict_lines, with_labels

        print("\n".join(verdict_lines(with_labels(with_speedup(frame)),
                                       printable(written) if written else None)))
        print("  " + time_line(runs))
    for line in load_warnings(frame):
        print(f"warning: {line}", file=sys.stderr)
    print(f"\nresults: {', '.join(printable(p) for p in paths)}"
          + (f"\nreport: {printable(written)}" if written and args.format else ""),
          file=sys.stderr)
    return 1 if result.failed else 0


def _estimate_text(cells: list, name: str, settings, out_dir: str) -> str:
    """How long the plan would take: the ETA's prior model on the newest run's peaks."""
    from bench import plan
    from bench.eta import REFERENCE_PEAK, Budget, estimate_run
    from bench.modes import not_applicable_reason
    from bench.store import StoreError, load_run

    peak, source = dict(REFERENCE_PEAK), "the reference machine's peaks (no earlier run found)"
    for path in sorted(Path(out_dir).glob("*.jsonl"), key=lambda p: p.stat().st_mtime,
                       reverse=True):
        try:
            run = load_run(path)
        except StoreError:
            continue
        if run.header.peak_flops:
            peak, source = run.header.peak_flops, f"the peaks calibrated by {path}"
            break
    order = plan.rounds_order(cells, settings.rounds)
    probed = plan.probe_selection(order, settings.probes)
    seconds = estimate_run(order, probed, Budget.of(settings), peak)
    runs = sum(1 for _, c in order if not not_applicable_reason(c.mode, c.phase))
    return (f"{name}: {len(order)} cells ({runs} run, {len(order) - runs} not applicable), "
            f"estimated {seconds / 60:.1f} min of cells on {source}; the run corrects the "
            "estimate with the times it measures")


def execute(cells: list, name: str, settings, out_dir: str | Path, *,
            show_progress: bool = True, probes: str | None = None, rounds: int | None = None):
    """Run `cells` with `settings` into a new run file in `out_dir`: (path, RunResult).

    Shared by `run`, `gate` and `gate-check`. The run file is claimed before calibration.
    An interruption (KeyboardInterrupt, bench.signals) or a failed write (StoreWriteError) is
    re-raised with `run_path` set, and `nothing_recorded` when the claimed file was removed.
    """
    from bench import plan
    from bench.inject import slowdown_from_env
    from bench.runner import run
    from bench.worker import CellOptions

    out_dir = writable_dir(out_dir, "--out")
    slowdown = slowdown_from_env()
    out_path = claim_run_file(out_dir, run_stem(name))
    options = CellOptions.from_settings(settings)
    rounds = rounds or settings.rounds
    order = plan.rounds_order(cells, rounds)
    probe = plan.probe_selection(order, probes or settings.probes)
    planted = f" (planted slowdown: {os.environ.get('BENCH_INJECT_SLOWDOWN')})" if slowdown else ""
    print(f"running {len(cells)} cells x {rounds} round(s) of suite '{name}' -> "
          f"{printable(out_path)}"
          f"{planted}", file=sys.stderr)
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
    """`execute` on a Ray cluster (bench.cluster): (run file per node, ClusterResult).

    Files are claimed per node as its first record arrives, so nothing is claimed up front.
    An interruption is re-raised with `run_paths` (the files written so far).
    """
    from bench import plan
    from bench.cluster import run_on_cluster
    from bench.inject import slowdown_from_env
    from bench.worker import CellOptions

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
