"""Runs a matrix of cells, each in its own worker process, and writes the run file as it goes.

Isolation: workers are forked from a forkserver that has already imported TensorFlow, so a
cell pays process creation but not TF's import, and a crash, hang or memory blow-up in one
cell costs only that cell. The runner itself never imports TensorFlow. Each worker's stdout
and stderr go to a per-cell log next to the run file; a failed cell's record points to it.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import forkserver
from pathlib import Path

from bench.engine import scratch
from bench.engine.eta import Budget, Forecast, cell_shape, estimate
from bench.engine.inject import slowdown_for
from bench.engine.machine import fingerprint, machine_facts
from bench.engine.placement import available_cpus, pin, placement
from bench.engine.progress import Progress
from bench.engine.schedule import visits
from bench.engine.worker import CellOptions, calibrate, error_record, run_cell
from bench.errors import UsageError
from bench.modes import KERAS_PRELOAD, needs_keras, not_applicable_reason
from bench.stats.replicates import remeasure_needed
from bench.store.record import ALL_THREADS, Cell, Device, Record, Status, TimeStage, is_failed
from bench.store.runfiles import RunHeader, RunWriter, new_run_id, peak_key
from bench.store.runfiles import log_dir as run_log_dir

PRELOAD = ["bench.engine.worker", "bench.modes.runtime", "bench.modes.tf2", "bench.modes.graph",
           "cases"]
# How often the runner wakes while a worker runs. The result arrives through a pipe (no
# polling needed); the wake-ups only check the deadline and, with a memory limit, the worker's
# resident memory. Rare wake-ups keep the runner from competing for the worker's CPUs.
POLL_S = 1.0
MEMORY_POLL_S = 0.1


@dataclass
class RunResult:
    path: Path
    records: list[Record] = field(default_factory=list)
    complete: bool = True

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if is_failed(r.status)]


def worker_context(log_path: Path, keras: bool = True) -> mp.context.BaseContext:
    """A forkserver context whose server has TensorFlow imported (and Keras, when `keras`:
    bench.modes.needs_keras), started with its stderr pointed at `log_path`, so TF's import
    banner stays out of the user's terminal. The first call in a process fixes the preload."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD + (list(KERAS_PRELOAD) if keras else []))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            forkserver.ensure_running()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return ctx


def _child(target, args, conn, log_path: str, tmpdir: str) -> None:
    from bench.engine.signals import die_with_runner

    die_with_runner()  # no worker outlives its runner, whatever kills the runner
    scratch.use(tmpdir)  # AutoGraph's files go where the runner removes them (bench.engine.scratch)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    try:
        result = (Status.OK, target(*args))
    except BaseException as exc:  # noqa: BLE001 - everything a cell raises is its own failure
        result = (Status.ERROR, exc if _picklable(exc) else RuntimeError(repr(exc)))
        import traceback

        traceback.print_exception(exc)
    conn.send(result)
    conn.close()


def _picklable(exc: BaseException) -> bool:
    import pickle

    try:
        pickle.dumps(exc)
        return True
    except Exception:  # noqa: BLE001
        return False


@dataclass
class Outcome:
    status: str  # "ok" | "error" | "timeout" | "crashed"
    value: object = None
    reason: str = ""


def run_in_worker(ctx, target, args, log_path: Path, timeout_s: float,
                  memory_limit_mb: float | None = None) -> Outcome:
    """Run `target(*args)` in a fresh worker; never raises for what the worker does."""
    receiver, sender = ctx.Pipe(duplex=False)
    tmpdir = scratch.make()
    process = ctx.Process(target=_child, args=(target, args, sender, str(log_path), tmpdir),
                          daemon=True)
    try:
        process.start()
    except BaseException:  # e.g. SIGTERM while forking: no worker, no directory left
        if process.pid is not None:
            _kill(process)
        scratch.remove(tmpdir)
        raise
    sender.close()
    deadline = time.monotonic() + timeout_s
    poll_s = MEMORY_POLL_S if memory_limit_mb else POLL_S
    try:
        while True:
            if receiver.poll(poll_s):
                try:
                    kind, value = receiver.recv()
                except (EOFError, OSError):
                    break  # died without a word: decoded below
                process.join(5)
                if kind == Status.OK:
                    return Outcome(Status.OK, value)
                return Outcome(Status.ERROR, value)
            if not process.is_alive() and not receiver.poll(0):
                break
            if time.monotonic() > deadline:
                _kill(process)
                return Outcome(Status.TIMEOUT, reason=f"timeout: no result after {timeout_s:g} s")
            rss = _rss_mb(process.pid)
            if memory_limit_mb and rss and rss > memory_limit_mb:
                _kill(process)
                return Outcome(Status.CRASHED,
                               reason=f"out of memory: resident memory {rss:.0f} MB "
                                      f"exceeded the {memory_limit_mb:g} MB limit")
    finally:
        if process.is_alive():
            _kill(process)
        receiver.close()
        scratch.remove(tmpdir)
    process.join(5)
    return Outcome(Status.CRASHED, reason=_describe_exit(process.exitcode))


def _kill(process) -> None:
    process.kill()
    process.join(5)


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "crashed: worker did not exit"
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (possibly the kernel's out-of-memory killer)" if name == "SIGKILL" else ""
        return f"crashed: worker killed by {name}{hint}"
    return f"crashed: worker exited with code {code} without a result"


def _log_name(cell: Cell, round_index: int) -> str:
    safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in cell.key)
    return f"{safe}.r{round_index}.log"


def run(cells_in_order: list[tuple[int, Cell]], *, suite: str, options: CellOptions,
        out_path: Path, timeout_s: float, memory_limit_mb: float | None = None,
        settings: dict | None = None, show_progress: bool = True,
        probe: set[tuple[int, Cell]] | None = None, threads_inter: int = 0,
        remeasure: int = 0, slowdown: dict | None = None) -> RunResult:
    """Measure every (round, cell) in order, appending each record to `out_path` at once.

    `probe`: the (round, cell) pairs that also run the debuggability probes. `remeasure`: at
    most this many extra workers per cell whose workers disagree (bench.stats.replicates), run after
    all rounds. `slowdown`: planted regressions (bench.engine.inject), for testing the gate.
    """
    log_dir = run_log_dir(out_path)
    cells = list(dict.fromkeys(cell for _, cell in cells_in_order))
    ctx = worker_context(log_dir / "forkserver.log", keras=needs_keras(cells))
    machine_cpus = available_cpus()  # taken once: the runner moves itself between CPUs below
    profiles = (sorted({(cell.device, cell.threads) for cell in cells})
                or [(Device.CPU, ALL_THREADS)])
    facts = machine_facts()
    calibration_started = time.perf_counter()
    peak = calibrate_profiles(ctx, profiles, threads_inter, machine_cpus, log_dir, "start",
                              facts)
    calibration_s = time.perf_counter() - calibration_started
    facts["fingerprint"] = fingerprint(facts, ",".join(sorted({d for d, _ in profiles})))
    run_id = new_run_id()
    header = RunHeader(run_id=run_id, suite=suite, started=dt.datetime.now(dt.UTC)
                       .isoformat(timespec="seconds"), machine=facts,
                       options={**(settings or {}), **asdict(options), "timeout_s": timeout_s,
                                "memory_limit_mb": memory_limit_mb,
                                "injected_slowdown": _slowdown_text(slowdown)},
                       peak_flops=peak)
    result = RunResult(out_path)
    rounds = 1 + max((r for r, _ in cells_in_order), default=0)
    forecast = Forecast([(cell, estimate(cell_shape(cell, peak, (r, cell) in (probe or ())),
                                         Budget.of(options)))
                         for r, cell in cells_in_order],
                        tail_s=calibration_s)  # the closing calibration repeats the opening one
    progress = Progress(len(cells_in_order), enabled=show_progress, forecast=forecast)

    def measure(cell: Cell, round_index: int, probes: bool, note: str = "") -> Record:
        # What the display promised when this cell started: how good the ETA is, from the file.
        elapsed_s, left_s = round(progress.elapsed_s(), 2), round(progress.left_s() or 0.0, 2)
        progress.start(cell, round_index)
        record = measure_placed(ctx, cell, round_index, options, probes=probes,
                                log_dir=log_dir, timeout_s=timeout_s,
                                memory_limit_mb=memory_limit_mb, threads_inter=threads_inter,
                                machine_cpus=machine_cpus, slowdown=slowdown)
        record.run_id = run_id
        record.eta_elapsed_s, record.eta_left_s = elapsed_s, left_s
        record.extra_visit = note
        writer.append(record)
        result.records.append(record)
        progress.done(record)
        return record

    def more(cell: Cell) -> str | None:
        return remeasure_needed([r for r in result.records if r.cell == cell], rounds)

    # The header is written only now, with nothing between it and the `try` that writes the
    # footer: an interruption while the forecast is built leaves no header without a footer.
    writer = RunWriter(out_path, header)
    try:
        for visit in visits(cells_in_order, more, remeasure):
            if visit.note:
                progress.total += 1
            measure(visit.cell, visit.round,
                    not visit.note and (visit.round, visit.cell) in (probe or ()), visit.note)
        try:
            end_peak = calibrate_profiles(ctx, profiles, threads_inter, machine_cpus, log_dir,
                                          "end", None)
        except (RuntimeError, UsageError):  # the cells are measured; the start peak stands
            end_peak = {}
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP via bench.engine.signals
        result.complete = False
        writer.close(complete=False, reason=getattr(exc, "reason", "interrupted by user (SIGINT)"),
                     finished=_now())
        progress.finish(interrupted=True)
        raise
    finally:
        pin(machine_cpus)
    writer.close(complete=True, finished=_now(), peak_flops=end_peak,
                 elapsed_s=round(progress.elapsed_s(), 2))
    progress.finish()
    return result


def measure_placed(ctx, cell: Cell, round_index: int, options: CellOptions, *, probes: bool,
                   log_dir: Path, timeout_s: float, memory_limit_mb: float | None,
                   threads_inter: int, machine_cpus: list[int],
                   slowdown: dict | None) -> Record:
    """One (round, cell) in a fresh worker pinned to its CPUs; the caller waits off them.

    Shared by the local runner and the Ray node task (bench.cluster.node), so a cell on a
    cluster node is measured exactly as a local one: same placement, timeout, memory limit and
    crash path.
    """
    place = placement(cell.threads, threads_inter, machine_cpus)
    pin(place.runner_cpus)  # the runner waits on CPUs the worker does not use
    cell_options = replace(options, probes=probes, cpus=place.cpus,
                           intra_op=place.intra_op, inter_op=place.inter_op,
                           slowdown=slowdown_for(cell.mode, cell.phase, slowdown or {}))
    record = _measure_one(ctx, cell, cell_options, log_dir / _log_name(cell, round_index),
                          timeout_s, memory_limit_mb)
    record.round = round_index
    return record


def calibrate_profiles(ctx, profiles: list[tuple[str, str]], threads_inter: int,
                       machine_cpus: list[int], log_dir: Path, when: str,
                       facts: dict | None) -> dict[str, float]:
    """Peak FLOP/s per (device, threads) profile, measured on the CPUs its cells get.

    Run at the start and again at the end of a run; readers take the better of the two
    (bench.store.runfiles), so a busy moment during one calibration cannot inflate every share of
    peak. With `facts`, TensorFlow facts go there and a missing GPU is a UsageError.
    """
    peak: dict[str, float] = {}
    for device, threads in profiles:
        place = placement(threads, threads_inter, machine_cpus)
        pin(place.runner_cpus)
        got = run_in_worker(ctx, calibrate, (device, place.cpus, place.intra_op,
                                             place.inter_op),
                            log_dir / f"calibrate-{when}-{device}-t{threads}.log", timeout_s=300)
        if got.status != Status.OK:
            raise RuntimeError(f"calibration on {device} failed: {got.reason or got.value}")
        if device == Device.GPU and not got.value.get("gpus"):
            raise UsageError("device 'gpu' requested but TensorFlow sees no GPU on this machine "
                             "(install the 'gpu' extra on a CUDA machine, or use --device cpu)")
        if facts is not None:
            facts.update({k: v for k, v in got.value.items()
                          if k not in ("peak_flops", "threads")})
        if got.value.get("peak_flops"):
            peak[peak_key(device, threads)] = got.value["peak_flops"]
    pin(machine_cpus)
    return peak


def _slowdown_text(slowdown: dict | None) -> str:
    return ",".join(f"{m}{':' + p if p else ''}:{f:g}" for (m, p), f in (slowdown or {}).items())


def _measure_one(ctx, cell: Cell, options: CellOptions, log_path: Path, timeout_s: float,
                 memory_limit_mb: float | None) -> Record:
    reason = not_applicable_reason(cell.mode, cell.phase)
    if reason:
        return Record(cell=cell, status=Status.SKIPPED, reason=reason)
    started = time.perf_counter()
    got = run_in_worker(ctx, run_cell, (cell, options), log_path, timeout_s, memory_limit_mb)
    elapsed = time.perf_counter() - started
    if got.status == Status.OK:
        record = got.value
        # The worker accounted for its own stages; the rest is forking it and the result's trip.
        record.time_s = {TimeStage.START: max(elapsed - sum(record.time_s.values()), 0.0),
                         **record.time_s}
        return record
    if got.status == Status.ERROR:
        record = error_record(cell, got.value)
    else:
        record = Record(cell=cell, status=got.status, reason=got.reason)
    record.time_s = {TimeStage.LOST: elapsed}
    record.log = str(log_path)
    return record


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
