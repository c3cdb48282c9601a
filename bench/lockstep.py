"""The worker side of A/B in lockstep: a side's server, and the cell workers it forks.

`python -m bench.lockstep` runs in one side's environment (its interpreter, its revision of
this repository first on the import path, its environment variables) and serves the A/B
driver (bench.ab.driver), which imports no TensorFlow and may be another revision of the code:

- The server imports TensorFlow and the suite once, prints one hello line (the protocol
  version, where its `bench` package lives, the TensorFlow release) and then reads commands
  from stdin, one JSON object a line: `{"op": "fork", "socket": PATH, "token": T, "log": PATH}`
  forks a fresh worker, so a cell costs a fork, not a TensorFlow import. It exits when stdin
  closes or its parent dies.
- A worker connects to the driver's Unix socket, says its token, receives its job (a cell,
  the worker options, the CPUs to prepare on and the CPUs to step on), prepares the cell with
  this revision's own `bench.engine.worker.open_cell`, moves every thread to the lockstep CPUs and
  says it is ready. Then it runs one step per command byte (`w` a warm-up step, `s` a timed
  step; it answers `k` when the step's result is back), timing each step with its own clock.
  On `q` (followed by the CPUs to finish on) it closes the cell with `close_cell` (equivalence
  against eager, paired speed-up when asked), sends its ordinary Record and exits.

Messages are a byte `J`, a 4-byte big-endian length and UTF-8 JSON. PROTOCOL changes whenever
a message changes; the driver refuses a side that speaks another version, so an old revision
fails with one line before anything is measured. A planted slowdown (BENCH_INJECT_SLOWDOWN)
is read here, from the side's own environment, so `env:` can plant it on one side only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import time
import traceback
from typing import Any

PROTOCOL = 1
HELLO = "bench-lockstep"
SCRATCH_PREFIX = "bench-ab-"  # the driver's scratch folder, the servers' TMPDIR


def send_json(conn: socket.socket, obj: dict[str, Any]) -> None:
    from bench.store.runfiles import _jsonable

    data = json.dumps(obj, allow_nan=False, default=_jsonable).encode("utf-8")
    conn.sendall(b"J" + struct.pack(">I", len(data)) + data)


def recv_exact(conn: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = conn.recv(left)
        if not chunk:
            raise EOFError("the other end closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_json(conn: socket.socket) -> dict[str, Any]:
    kind = recv_exact(conn, 1)
    if kind != b"J":
        raise ValueError(f"expected a message, got {kind!r}")
    (size,) = struct.unpack(">I", recv_exact(conn, 4))
    return json.loads(recv_exact(conn, size).decode("utf-8"))


def pin_process(cpus: list[int]) -> None:
    """Move every thread of this process (TensorFlow's pools included) to `cpus`: affinity
    set with sched_setaffinity(0) covers only the calling thread and threads made after."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cpus)


def serve() -> int:
    from bench.engine.signals import die_with_parent

    # The driver may die hard (SIGKILL): then the kernel sends this server SIGTERM, and it
    # removes the run's scratch folder (TMPDIR, AutoGraph's files) before going; its
    # workers die with it (their own parent-death signal).
    signal.signal(signal.SIGTERM, _remove_scratch_and_exit)
    die_with_parent(signal.SIGTERM)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
    import importlib
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:  # the one line the driver reports
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")
    # First: bench.modes.runtime imports TensorFlow without its eager Keras import.
    tf = importlib.import_module("bench.modes.runtime").tf

    import bench
    import bench.engine.worker  # noqa: F401
    import bench.modes.graph  # noqa: F401  - what every worker needs, imported once
    import bench.modes.tf2  # noqa: F401
    import cases  # noqa: F401

    hello = {"hello": HELLO, "protocol": PROTOCOL, "bench": os.path.dirname(bench.__file__),
             "tensorflow": tf.__version__, "python": sys.executable}
    sys.stdout.write(json.dumps(hello) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("op") != "fork":
            continue
        for name in command.get("preload", ()):  # e.g. Keras, before the cell that needs it
            importlib.import_module(name)
        if os.fork() == 0:
            _worker(command)  # never returns
    return 0


def _remove_scratch_and_exit(signum, frame) -> None:
    import shutil

    scratch = os.environ.get("TMPDIR", "")
    if os.path.basename(scratch).startswith(SCRATCH_PREFIX):
        shutil.rmtree(scratch, ignore_errors=True)
    os._exit(128 + signum)


def _worker(command: dict[str, Any]) -> None:
    """A forked worker's whole life; ends the process, whatever happens."""
    from bench.engine.signals import die_with_parent

    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        die_with_parent()
        fd = os.open(command["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # the server's command pipe is not the worker's
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(command["socket"])
        send_json(conn, {"token": command["token"], "pid": os.getpid()})
        _serve_cell(conn, recv_json(conn))
        code = 0
    except BaseException:  # noqa: BLE001 - the log has it; the driver sees the socket close
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _options(values: dict[str, Any]):
    """This revision's CellOptions from the driver's fields; fields it lacks are dropped."""
    import dataclasses

    from bench.engine.worker import CellOptions

    known = {f.name for f in dataclasses.fields(CellOptions)}
    return CellOptions(**{k: (tuple(v) if isinstance(v, list) else v)
                          for k, v in values.items() if k in known})


def _serve_cell(conn: socket.socket, job: dict[str, Any]) -> None:
    from dataclasses import replace

    from bench.engine.inject import slowdown_for, slowdown_from_env
    from bench.engine.timing import Measurement
    from bench.engine.worker import close_cell, error_record, open_cell
    from bench.store.record import Cell, Record, TimeStage

    cell = Cell(**job["cell"])
    options = _options(job["options"])
    options = replace(options, cpus=tuple(job["prepare_cpus"]),
                      slowdown=slowdown_for(cell.mode, cell.phase, slowdown_from_env()))
    try:
        opened = open_cell(cell, options)
    except Exception as exc:  # noqa: BLE001 - the cell's own failure, recorded as such
        send_json(conn, {"status": "done", "record": error_record(cell, exc).to_json()})
        return
    if isinstance(opened, Record):  # skipped: not applicable
        send_json(conn, {"status": "done", "record": opened.to_json()})
        return
    pin_process(job["lockstep_cpus"])
    send_json(conn, {"status": "ready"})
    step, clock = opened.step, time.perf_counter
    warmup_s: list[float] = []
    samples_s: list[float] = []
    while True:
        command = conn.recv(1)
        if command in (b"s", b"w"):
            started = clock()
            step()
            (samples_s if command == b"s" else warmup_s).append(clock() - started)
            conn.sendall(b"k")
        elif command == b"q":
            break
        else:  # b"": the driver went away; nothing to report to
            return
    finish = recv_json(conn)
    pin_process(finish["cpus"])
    opened.laps.split(TimeStage.WARMUP, TimeStage.SAMPLING, sum(warmup_s))
    try:
        # No load meter over the lockstep: the other side shares these CPUs by design.
        record = close_cell(opened, Measurement(samples_s, warmup_s, False, "lockstep"),
                            reference_check=finish.get("reference_check", True))
        # The CPUs the samples ran on, not the spare one this side may have finished on.
        record = replace(record, cpus=list(job["lockstep_cpus"]))
    except Exception as exc:  # noqa: BLE001
        record = error_record(cell, exc)
    send_json(conn, {"status": "done", "record": record.to_json()})


if __name__ == "__main__":
    sys.exit(serve())
