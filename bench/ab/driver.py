"""A/B in lockstep: two sides' workers on the same CPU, taking turns step by step.

On the 2-vCPU VMs this suite runs on, the machine's speed drifts by 10-20% over seconds to
minutes, independently per vCPU, so a baseline measured earlier (or a side measured on the
other CPU at the same time) cannot resolve a few percent. Two processes pinned to the *same*
CPU and taking turns one step each see the same machine within milliseconds, and the ratio of
their step times holds still while the step times themselves move (measured on this machine:
identical code within 0.2-1.5% over pairs of fresh processes, a planted 3% resolved; see
docs/regression-tracking.md).

For each cell, a worker pair: side A's server and side B's server (bench.ab.sides, each its own
interpreter, code and environment) each fork a fresh worker; both prepare the cell with the
same seed, weights and input bytes (one on the lockstep CPU, the other on the spare CPU when
there is one, so preparing takes half the time), move to the lockstep CPU(s) and say ready.
The driver, pinned off those CPUs, then hands the turn over a Unix socket: A, B, B, A, A, B...
(warm-up turns first, then until the pair's budget and a minimum of steps are met); each
worker times its own steps. Finally each worker closes the cell as a run's worker does
(equivalence against eager and the paired speed-up over eager in the first pair only: exact
facts are compared once, timing is repeated) and sends its Record, so each side's run file is
an ordinary run file.

Pairs are scheduled by bench.engine.schedule: `min_pairs` rounds over the cells (rotated), then
passes giving one more pair to each cell the sequential rule (bench.stats.ab) has not decided,
up to `max_pairs` and the total time budget. Which side goes first and which prepares on the
spare CPU alternates from pair to pair. No TensorFlow in this process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.ab.sides import Side, SideServer
from bench.engine.machine import fingerprint, machine_facts
from bench.engine.placement import available_cpus, pin, placement
from bench.engine.schedule import visits
from bench.lockstep import SCRATCH_PREFIX, recv_json, send_json
from bench.modes import KERAS_PRELOAD, needs_keras
from bench.stats.ab import Judgement, Rule, Verdict, judge, pair_ratio
from bench.store.record import Cell, Device, Record, Status, is_failed
from bench.store.runfiles import (
    RunHeader,
    RunWriter,
    claim_run_file,
    new_run_id,
    release_claim,
    run_stem,
)

CONNECT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LockstepSettings:
    """How long each pair takes turns, and the run's limits."""

    rule: Rule = field(default_factory=Rule)
    pair_budget_s: float = 1.0  # seconds of taking turns per pair, both sides together
    min_steps: int = 10  # timed steps per side and pair, whatever the budget
    warmup: int = 3  # turns per side before the timed ones (caches, the move between CPUs)
    time_budget_s: float | None = None  # no extra pairs once the run has taken this long
    # One side of a pair prepares (and closes) on the CPU(s) the pair does not step on, when
    # there are any, so the pair's setup takes about half the time; both then step on the same.
    prepare_apart: bool = True

    def as_dict(self) -> dict:
        return {**self.rule.as_dict(), "pair_budget_s": self.pair_budget_s,
                "min_steps": self.min_steps, "warmup": self.warmup,
                "time_budget_s": self.time_budget_s, "prepare_apart": self.prepare_apart}


@dataclass
class CellState:
    """What a cell's pairs found so far."""

    ratios: list[float] = field(default_factory=list)
    statuses: list[tuple[str, str]] = field(default_factory=list)  # (A, B) per pair
    judgement: Judgement | None = None

    @property
    def verdict(self) -> Verdict:
        if any(a == b == Status.SKIPPED for a, b in self.statuses):
            return Verdict.SKIPPED
        if any(a != Status.OK or b != Status.OK for a, b in self.statuses):
            return Verdict.FAILED
        return self.judgement.verdict if self.judgement else Verdict.UNDECIDED


@dataclass
class AbResult:
    paths: dict[str, Path]  # side label -> its run file
    cells: dict[Cell, CellState]
    complete: bool = True

    def cells_with(self, verdict: Verdict) -> list[Cell]:
        return [c for c, s in self.cells.items() if s.verdict == verdict]


def run_ab(cells: list[Cell], sides: list[Side], *, suite: str, settings, lockstep:
           LockstepSettings, out_dir: Path, show_progress: bool = True) -> AbResult:
    """Measure `cells` on both sides in lockstep; one run file per side in `out_dir`.

    `settings` is the suite's bench.engine.plan.Settings (seed, warm-up of the paired measurement,
    timeout, threads). Raises KeyboardInterrupt (with `run_paths`) when interrupted: the
    files keep every finished pair and are marked incomplete.
    """
    from bench.engine.worker import CellOptions

    rule = lockstep.rule
    tmp = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    stem = run_stem(f"ab-{suite}")
    paths: dict[str, Path] = {}
    writers: dict[str, RunWriter] = {}
    run_ids: dict[str, str] = {}
    servers: list[SideServer] = []
    machine_cpus = available_cpus()
    states: dict[Cell, CellState] = {cell: CellState() for cell in cells}
    result = AbResult(paths, states)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    log_dir = out_dir / f"{stem}_logs"
    try:
        for side in sides:
            paths[side.label] = claim_run_file(out_dir, f"{stem}-{side.label}")
        for side in sides:
            servers.append(SideServer.start(side, log_dir / f"server-{side.label}.log", tmp))
        ab_id = uuid.uuid4().hex[:12]
        facts = machine_facts()
        for side, server in zip(sides, servers, strict=True):
            side_facts = {**facts, "tensorflow": server.hello.get("tensorflow"),
                          "python_executable": server.hello.get("python"),
                          "git": {"commit": side.commit, "dirty": side.dirty}}
            side_facts["fingerprint"] = fingerprint(side_facts, Device.CPU)
            header = RunHeader(
                run_id=new_run_id(), suite=suite,
                started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                machine=side_facts,
                options={**dataclasses.asdict(settings),
                         "ab": {"id": ab_id, "side": side.label, "spec": side.spec.text,
                                "env": side.env, "partner": [str(paths[s.label].name)
                                                             for s in sides if s != side],
                                **lockstep.as_dict()}})
            writers[side.label] = RunWriter(paths[side.label], header)
            run_ids[side.label] = header.run_id
        listener.bind(str(tmp / "ab.sock"))
        listener.listen(4)
        order = _order(cells, rule.min_pairs)
        started = time.monotonic()

        def more(cell: Cell) -> str | None:
            state = states[cell]
            if state.verdict != Verdict.UNDECIDED:
                return None
            if lockstep.time_budget_s and time.monotonic() - started > lockstep.time_budget_s:
                return None
            return f"undecided after {len(state.ratios)} pairs"

        total = len(order)
        for count, visit in enumerate(visits(order, more, rule.max_pairs - rule.min_pairs), 1):
            if visit.note:
                total += 1
            if states[visit.cell].verdict == Verdict.SKIPPED:  # both sides said so once
                continue
            options = CellOptions.from_settings(settings, probes=False,
                                                paired=settings.paired and visit.round == 0)
            records = _pair(visit.cell, visit.round, servers, listener, options, lockstep,
                            settings, machine_cpus, log_dir)
            state = states[visit.cell]
            for side, record in zip(sides, records, strict=True):
                record.run_id = run_ids[side.label]
                record.round = visit.round
                record.extra_visit = visit.note
                writers[side.label].append(record)
            state.statuses.append((records[0].status, records[1].status))
            ratio = (pair_ratio(records[0].samples_s, records[1].samples_s)
                     if records[0].status == records[1].status == Status.OK else None)
            if ratio:
                state.ratios.append(ratio)
                state.judgement = judge(state.ratios, rule)
            if show_progress:
                print(_progress_line(count, total, visit.cell, ratio, state, records),
                      file=sys.stderr, flush=True)
    except KeyboardInterrupt as exc:
        result.complete = False
        for writer in writers.values():
            writer.close(complete=False, reason=getattr(exc, "reason", "interrupted by user "
                                                                       "(SIGINT)"),
                         finished=_now())
        exc.run_paths = [p for label, p in paths.items() if label in writers]
        raise
    except BaseException:
        for label, path in paths.items():
            if label not in writers:
                release_claim(path)
        if not writers:  # nothing measured: the failure's message says what went wrong
            shutil.rmtree(log_dir, ignore_errors=True)
        for writer in writers.values():
            writer.close(complete=False, reason="the A/B run failed", finished=_now())
        raise
    finally:
        pin(machine_cpus)
        listener.close()
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for writer in writers.values():
        writer.close(complete=True, finished=_now())
    return result


def _order(cells: list[Cell], rounds: int) -> list[tuple[int, Cell]]:
    from bench.engine.plan import rounds_order

    return rounds_order(cells, rounds)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _progress_line(count: int, total: int, cell: Cell, ratio: float | None, state: CellState,
                   records: list[Record]) -> str:
    if ratio is None:
        what = ", ".join(f"{side} {r.status}{': ' + r.reason if r.reason else ''}"
                         for side, r in zip("AB", records, strict=True))
        return f"[{count}/~{total}] {cell.key}: {what}"
    j = state.judgement
    return (f"[{count}/~{total}] {cell.key}: pair {len(state.ratios)} B/A {ratio:.4f}; "
            f"{j.verdict} {j.ratio:.4f} [{j.low:.4f}-{j.high:.4f}]")


# --------------------------------------------------------------------------- one worker pair


@dataclass
class _Worker:
    label: str
    conn: socket.socket | None = None
    pid: int | None = None
    record: Record | None = None  # set as soon as the worker's part is over


def _pair(cell: Cell, index: int, servers: list[SideServer], listener: socket.socket,
          options, lockstep: LockstepSettings, settings, machine_cpus: list[int],
          log_dir: Path) -> list[Record]:
    """One worker pair of `cell`: prepare both, take turns, close both; a Record per side."""
    place = placement(cell.threads, settings.threads_inter, machine_cpus)
    lock_cpus = list(place.cpus)
    spare = [c for c in machine_cpus if c not in lock_cpus] if lockstep.prepare_apart else []
    spare = spare or lock_cpus
    pin(place.runner_cpus)
    flip = index % 2  # which side goes first and which prepares (and finishes) on the spare CPU
    options = dataclasses.replace(options, intra_op=place.intra_op, inter_op=place.inter_op)
    values = {k: (list(v) if isinstance(v, tuple) else v)
              for k, v in dataclasses.asdict(options).items() if k not in ("cpus",)}
    timeout = settings.timeout_s
    workers = [_Worker(server.side.label) for server in servers]
    try:
        _connect(cell, index, servers, workers, listener, log_dir)
        for i, worker in enumerate(workers):
            home = spare if i == flip else lock_cpus
            if worker.record is None:
                worker.conn.settimeout(timeout)
                send_json(worker.conn, {"cell": dataclasses.asdict(cell), "options": values,
                                        "prepare_cpus": home, "lockstep_cpus": lock_cpus})
        for worker in workers:
            _await_ready(cell, worker, timeout)
        if all(w.record is None for w in workers):
            _take_turns(workers if not flip else workers[::-1], lockstep, cell)
        for i, worker in enumerate(workers):
            if worker.record is None:
                worker.conn.sendall(b"q")
                send_json(worker.conn, {"cpus": spare if i == flip else lock_cpus,
                                        "reference_check": index == 0})
        for worker in workers:
            if worker.record is None:
                _await_record(cell, worker, timeout)
    except _PairFailed as exc:
        for worker in workers:
            if worker.record is None:
                worker.record = Record(cell=cell, status=exc.status,
                                       reason=exc.reason if worker.label == exc.label else
                                       f"the other side's worker failed ({exc.reason})")
    finally:
        for worker in workers:
            _end(worker)
    return [w.record for w in workers]


class _PairFailed(Exception):
    def __init__(self, label: str, status: str, reason: str):
        super().__init__(reason)
        self.label, self.status, self.reason = label, status, reason


def _connect(cell: Cell, index: int, servers: list[SideServer], workers: list[_Worker],
             listener: socket.socket, log_dir: Path) -> None:
    safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in cell.key)
    preload = KERAS_PRELOAD if needs_keras([cell]) else ()
    tokens = {}
    for server, worker in zip(servers, workers, strict=True):
        token = uuid.uuid4().hex
        tokens[token] = worker
        try:
            server.fork(listener.getsockname(), token,
                        log_dir / f"{safe}.p{index}.{worker.label}.log", preload)
        except RuntimeError as exc:
            raise _PairFailed(worker.label, Status.CRASHED, str(exc)) from None
    listener.settimeout(CONNECT_TIMEOUT_S)
    for _ in workers:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            missing = [w.label for w in workers if w.conn is None]
            raise _PairFailed(missing[0], Status.CRASHED,
                              f"crashed: side {missing[0]}'s worker never connected") from None
        conn.settimeout(CONNECT_TIMEOUT_S)
        hello = recv_json(conn)
        worker = tokens[hello["token"]]
        worker.conn, worker.pid = conn, hello.get("pid")


def _await_ready(cell: Cell, worker: _Worker, timeout: float) -> None:
    if worker.record is not None:
        return
    message = _receive(cell, worker, timeout, "preparing")
    if message.get("status") == "done":  # skipped, or an error while preparing
        worker.record = Record.from_json(message["record"])


def _await_record(cell: Cell, worker: _Worker, timeout: float) -> None:
    message = _receive(cell, worker, timeout, "closing the cell")
    worker.record = Record.from_json(message["record"])


def _receive(cell: Cell, worker: _Worker, timeout: float, doing: str) -> dict:
    worker.conn.settimeout(timeout)
    try:
        return recv_json(worker.conn)
    except TimeoutError:
        raise _PairFailed(worker.label, Status.TIMEOUT,
                          f"timeout: side {worker.label}'s worker was {doing} for more than "
                          f"{timeout:g} s") from None
    except (EOFError, OSError, ValueError):
        raise _PairFailed(worker.label, Status.CRASHED,
                          f"crashed: side {worker.label}'s worker died while {doing} "
                          "(see its log)") from None


def _take_turns(order: list[_Worker], lockstep: LockstepSettings, cell: Cell) -> None:
    """Warm-up turns, then timed turns A B, B A, A B... until the budget and min steps."""

    def turn(worker: _Worker, command: bytes) -> None:
        try:
            worker.conn.sendall(command)
            if worker.conn.recv(1) != b"k":
                raise EOFError
        except TimeoutError:
            raise _PairFailed(worker.label, Status.TIMEOUT,
                              f"timeout: side {worker.label}'s step took too long") from None
        except (EOFError, OSError):
            raise _PairFailed(worker.label, Status.CRASHED,
                              f"crashed: side {worker.label}'s worker died during a step "
                              "(see its log)") from None

    for i in range(lockstep.warmup):
        for worker in order if i % 2 == 0 else order[::-1]:
            turn(worker, b"w")
    started, steps = time.perf_counter(), 0
    while steps < lockstep.min_steps or time.perf_counter() - started < lockstep.pair_budget_s:
        for worker in order if steps % 2 == 0 else order[::-1]:
            turn(worker, b"s")
        steps += 1


def _end(worker: _Worker) -> None:
    """The worker's connection closed and its process gone (it exits after its record)."""
    if worker.conn is not None:
        with contextlib.suppress(OSError):
            worker.conn.close()
    if worker.pid and worker.record is not None and is_failed(worker.record.status):
        with contextlib.suppress(OSError):
            os.kill(worker.pid, signal.SIGKILL)
