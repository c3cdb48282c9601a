"""`python -m bench run`: measure a suite's matrix and print what it found.

With no arguments it runs the overview suite (about 5 minutes) on the CPU and prints a verdict
(`--format` prints the full table instead). Every option narrows or overrides the
suite; everything is validated before any cell runs, including that --out and --report can be
written. The run file is claimed (created empty, exclusively) before calibration, so two runs
started in the same second never share a name or a log folder. Exit codes: 0 every cell ok or
skipped, 1 some cells failed, 2 bad usage or input, 3 the run file could not be written (disk
full; the records written so far are kept), 130 interrupted by SIGINT, 143 by SIGTERM (the
partial run is kept). With --ray the matrix runs on a Ray cluster, one run file per node
(bench.cluster.driver).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import options
from bench.commands.matrix import (
    add_matrix_options,
    add_measurement_options,
    add_output_options,
    selection,
)
from bench.commands.report import check_outputs as check_report_outputs
from bench.engine import signals
from bench.engine.execute import execute, execute_ray
from bench.engine.plan import ProbePolicy
from bench.errors import WRITE_FAILED, UsageError
from bench.store.paths import printable
from bench.store.runfiles import RunFileGone, StoreWriteError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a benchmark suite (default: overview, on the CPU)",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    add_matrix_options(p, default_suite="overview")
    p.add_argument("--rounds", type=int, help="run the matrix R times, rotating the order")
    add_measurement_options(p)
    p.add_argument("--remeasure", type=int,
                   help="extra workers per cell whose workers disagree (default: suite's, 2)")
    p.add_argument("--shard", help="i/n: run only the i-th of n disjoint parts of the matrix")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run on a Ray cluster, one cell per node at a time: 'auto' (the cluster "
                        "this machine belongs to), host:port, or nothing/'local' (an in-process "
                        "cluster); needs the ray extra (bench.cluster.driver)")
    p.add_argument("--probes", choices=options.choices(ProbePolicy),
                   help="debuggability probes (dbg_* columns): 'once' per case, config, mode "
                        "and phase (smallest batch, first round), 'infer' the same for "
                        "inference only, 'all' cells, or 'none' (default: the suite's setting)")
    add_output_options(p, out_help="directory for the run file (results/)",
                       format_help="print the full table of cells in this format instead of "
                                   "the verdict (for scripts)",
                       quiet_help="no progress display")
    p.add_argument("--estimate", action="store_true",
                   help="print the cells and the estimated run time, then stop (bench.engine.eta; "
                        "peaks from the newest run in --out, else the reference machine's)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from bench.engine import plan

    if args.ray is not None:
        from bench.cluster.driver import require_ray

        require_ray()  # one line and exit 2 before any work
    suite, cells, settings = selection(args)
    if args.shard:
        index, count = plan.parse_shard(args.shard)
        cells = plan.shard(cells, index, count)
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
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM/SIGHUP via bench.engine.signals
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

    from bench.store.runfiles import load_runs
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
        from reports.time_spent import time_line
        from reports.verdict import verdict_lines, with_labels

        print("\n".join(verdict_lines(with_labels(frame),
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
    from bench.engine import plan
    from bench.engine.eta import REFERENCE_PEAK, Budget, estimate_run
    from bench.modes import not_applicable_reason
    from bench.store.runfiles import StoreError, load_run

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
