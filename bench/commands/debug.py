"""`python -m bench debug`: run only the debuggability probes and print a scorecard.

Each (case, mode) cell is prepared and probed in its own worker process, exactly as
`bench run --probes` would probe it, but without the timed measurement. The scorecard has the
modes as columns and the probes as rows (docs/probes.md explains each row).
With --out, the records (status ok, probes in `debug`, no timing samples) are also written as
a run file `debug-<time>.jsonl`, so `bench table` and `bench report` can show them, plus the
workers' logs; without it the logs go to a temporary directory named on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from bench import options
from bench.errors import UsageError
from bench.store.record import Device, InputStyle, Phase, Status, is_failed

DEFAULT_SUITE = "smoke"  # its cases, at probe-friendly sizes, when no --case is given


def _modes(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("debug", help="run only the debuggability probes; print a scorecard",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--case", action="append", dest="cases", metavar="SPEC",
                   help=f"case spec, repeatable (default: the {DEFAULT_SUITE} suite's cases)")
    p.add_argument("--mode", "--modes", type=_modes, dest="modes", metavar="M[,M]",
                   help="modes (default: all): session,frozen,optimized,eager,function,xla,keras")
    p.add_argument("--phase", choices=options.choices(Phase), default=Phase.INFER.value)
    p.add_argument("--batch", type=options.batch, default=2, help="batch size (default: 2)")
    p.add_argument("--input", choices=options.choices(InputStyle),
                   default=InputStyle.RESIDENT.value,
                   help="input style (default: resident; function_epoch needs dataset)")
    p.add_argument("--format", choices=("text", "markdown"), default="text")
    p.add_argument("--out", metavar="DIR",
                   help="also write the records as a run file (and the logs) in DIR")
    p.add_argument("--timeout", type=options.setting("timeout_s"), default=300.0, dest="timeout_s",
                   help="seconds per cell worker (default: 300)")
    p.set_defaults(func=main)


def plan_cells(specs: list[str] | None, modes: list[str] | None, phase: str, batch: int,
               input_style: str = InputStyle.RESIDENT) -> list:
    """Validated cells, case by case, modes in canonical order. Raises UsageError.

    Without --mode, modes that cannot take the input style are left out (function_epoch
    without dataset input); a mode named that cannot take it is an error, as in bench.engine.plan.
    """
    from bench.engine.plan import MAX_BATCH
    from bench.modes import MODE_TABLE as MODES
    from bench.modes import accepts_input, mode_inputs
    from bench.store.record import Cell
    from cases import ConfigError, get_workload

    if not 1 <= batch <= MAX_BATCH:
        raise UsageError(f"--batch must be an integer from 1 to {MAX_BATCH}, got {batch}")
    unknown = [m for m in modes or [] if m not in MODES]
    if unknown:
        raise UsageError(f"unknown mode {unknown[0]!r}; accepted modes: {', '.join(MODES)}")
    chosen = [m for m in MODES if m in modes] if modes else \
        [m for m in MODES if accepts_input(m, input_style)]
    for mode in chosen:
        if not accepts_input(mode, input_style):
            raise UsageError(f"mode {mode!r} cannot take input {input_style}; it takes only "
                             f"{', '.join(mode_inputs(mode))} (use --input "
                             f"{mode_inputs(mode)[0]})")
    if not chosen:
        raise UsageError("--mode selects no modes")
    if not specs:
        from bench.engine import plan

        specs = [entry.case for entry in plan.load_suite(DEFAULT_SUITE).entries]
    cells = []
    for spec in specs:
        try:
            workload = get_workload(spec)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        cells += [Cell(workload.case, workload.config_string, mode, phase, device=Device.CPU,
                       input=input_style, batch=batch) for mode in chosen]
    return cells


def main(args: argparse.Namespace) -> int:
    cells = plan_cells(args.cases, args.modes, args.phase, args.batch, args.input)
    out_path = None
    if args.out:
        from bench.store.paths import writable_dir
        from bench.store.runfiles import claim_run_file, run_stem

        out_path = claim_run_file(writable_dir(args.out, "--out"), run_stem("debug"))
        log_dir = out_path.with_name(out_path.stem + "_logs")
    else:
        import tempfile

        log_dir = Path(tempfile.mkdtemp(prefix="bench-debug-"))
    try:
        records = probe_cells(cells, log_dir, args.timeout_s)
    except BaseException:
        if out_path is not None:
            from bench.store.runfiles import release_claim

            release_claim(out_path)  # nothing recorded: leave no empty run file behind
        raise

    from bench.probes.scorecard import format_scorecard

    sys.stdout.write(format_scorecard(records, args.format))
    print(f"\nworker logs: {log_dir}", file=sys.stderr)
    if out_path is not None:
        write_run(out_path, records, vars(args))
        print(f"results: {out_path}", file=sys.stderr)
    return 1 if any(is_failed(r.status) for r in records) else 0


def probe_cells(cells: list, log_dir: Path, timeout_s: float) -> list:
    """Probe each cell in its own worker (bench.engine.runner); never raises for a cell's
    failure."""
    from bench.engine import runner
    from bench.modes import not_applicable_reason
    from bench.probes import probe_cell
    from bench.store.record import Record

    ctx = runner.worker_context(log_dir / "forkserver.log")
    records = []
    for cell in cells:
        reason = not_applicable_reason(cell.mode, cell.phase)
        if reason:
            records.append(Record(cell=cell, status=Status.SKIPPED, reason=reason))
            continue
        print(f"probing {cell.key} ...", end="", file=sys.stderr, flush=True)
        start = time.perf_counter()
        log_path = log_dir / (_safe(cell.key) + ".log")
        got = runner.run_in_worker(ctx, probe_cell, (cell,), log_path, timeout_s)
        if got.status == Status.OK:
            record = got.value
        else:
            reason = got.reason or f"{type(got.value).__name__}: {got.value}"
            record = Record(cell=cell, status=got.status, reason=" ".join(reason.split())[:300],
                            log=str(log_path))
        print(f" {record.status} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
        records.append(record)
    return records


def write_run(path: Path, records: list, options: dict) -> None:
    from bench.engine.machine import machine_facts
    from bench.store.runfiles import RunHeader, RunWriter, new_run_id

    now = dt.datetime.now(dt.UTC)
    run_id = new_run_id()
    header = RunHeader(run_id=run_id, suite="debug", started=now.isoformat(timespec="seconds"),
                       machine=machine_facts(),
                       options={k: v for k, v in options.items() if k != "func"})
    writer = RunWriter(path, header)
    for record in records:
        record.run_id = run_id
        writer.append(record)
    writer.close(complete=True, finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in text)
