"""Where a worker runs: its CPU set, TensorFlow's pool sizes, and who else used those CPUs.

A benchmark worker owns its CPUs. On a small machine the spread between worker processes, not
inside one, is what limits precision, and oversubscription (TensorFlow's pools plus Python plus
the runner's own polling on the same cores) makes the slow tail much worse. So:

- `threads` is a dimension of the matrix: "1", "2", ... or "all" (every CPU this process may
  use). A worker with N < all CPUs is pinned to the *last* N CPUs of the set and the runner
  moves itself to the others, so its polling and progress output never share a core with
  the measurement. With "all" there is nowhere else to go: the runner then polls rarely.
- TensorFlow's pools are sized to the set: intra-op = N, inter-op = min(N, 2) (the networks
  are chains of ops, so inter-op parallelism beyond 2 buys nothing; 2 was the suite's default
  before threads became an axis, so the all-core profile is unchanged). `inter_threads` in a
  suite's settings overrides the inter-op size.
- `LoadMeter` reads /proc/stat and the process's own CPU time around the measurement, so a
  record says how much CPU *other* processes took from the worker's CPUs while it sampled.

Pure Python (Linux /proc where available; elsewhere pinning and load are simply not recorded).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from bench.errors import UsageError
from bench.store.record import ALL_THREADS

MAX_INTER_OP = 2


def available_cpus() -> list[int]:
    """CPUs this process may run on (its affinity mask), in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def parse_threads(value: object, where: str = "threads") -> str:
    """A threads value as written in a suite or on the command line -> its canonical string."""
    if isinstance(value, bool):
        raise UsageError(f"{where}: expected a positive integer or 'all', got {value!r}")
    text = str(value).strip().lower()
    if text == ALL_THREADS:
        return ALL_THREADS
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{where}: expected a positive integer or 'all', got {value!r}")
    count, cpus = int(text), len(available_cpus())
    if count > cpus:
        raise UsageError(f"{where}: {count} threads, but this process may use only {cpus} "
                         f"CPU(s); use at most {cpus} or 'all'")
    return str(count)


@dataclass(frozen=True)
class Placement:
    """The CPUs and pool sizes of one worker; `runner_cpus` is where the runner should wait."""

    cpus: tuple[int, ...]
    intra_op: int
    inter_op: int
    runner_cpus: tuple[int, ...]

    def as_threads(self) -> dict[str, int]:
        return {"intra_op": self.intra_op, "inter_op": self.inter_op}


def placement(threads: str, inter_threads: int = 0,
              cpus: list[int] | None = None) -> Placement:
    """Pin N threads to the last N CPUs; the runner keeps the rest (all of them for 'all')."""
    cpus = list(cpus if cpus is not None else available_cpus())
    count = len(cpus) if threads == ALL_THREADS else min(int(threads), len(cpus))
    mine = tuple(cpus[len(cpus) - count:])
    others = tuple(cpus[:len(cpus) - count]) or tuple(cpus)
    inter = inter_threads or min(count, MAX_INTER_OP)
    return Placement(mine, count, inter, others)


def pin(cpus: tuple[int, ...] | list[int]) -> bool:
    """Pin the calling process (and the threads it creates later) to `cpus`; False if not."""
    try:
        os.sched_setaffinity(0, set(cpus))
        return True
    except (AttributeError, OSError, ValueError):
        return False


def _cpu_busy_s(cpus: tuple[int, ...]) -> float | None:
    """Busy seconds (all but idle and iowait) of these CPUs since boot, from /proc/stat."""
    wanted = {f"cpu{c}" for c in cpus}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        with open("/proc/stat") as f:
            busy = 0
            for line in f:
                parts = line.split()
                if parts and parts[0] in wanted:
                    values = [int(v) for v in parts[1:]]
                    busy += sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
            return busy / tick
    except (OSError, ValueError, IndexError):
        return None


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def loadavg() -> float | None:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class LoadMeter:
    """CPU time other processes used on `cpus` while this process measured.

    other = busy time of the CPUs (from /proc/stat) minus this process's own CPU time (the
    worker is pinned there, so its threads only ever run on those CPUs). Windows accumulate:
    `start()`/`stop()` around each timed phase (the isolated and the paired measurement), then
    `result()`. Resolution is the kernel tick (10 ms), so windows under a second read coarse.
    """

    def __init__(self, cpus: tuple[int, ...] | list[int]):
        self.cpus = tuple(cpus)
        self._start: tuple[float, float | None, float] | None = None
        self._wall = self._other = 0.0
        self._known = True

    def start(self) -> None:
        self._start = (time.perf_counter(), _cpu_busy_s(self.cpus), _own_cpu_s())

    def stop(self) -> None:
        if self._start is None:
            return
        wall0, busy0, own0 = self._start
        self._start = None
        busy1 = _cpu_busy_s(self.cpus)
        self._wall += time.perf_counter() - wall0
        if busy0 is None or busy1 is None:
            self._known = False
            return
        self._other += max(0.0, (busy1 - busy0) - (_own_cpu_s() - own0))

    def result(self) -> dict[str, float]:
        """{'other_cores': average cores others used on our CPUs, 'window_s', 'loadavg'}."""
        result: dict[str, float] = {"window_s": round(self._wall, 3)}
        if self._known and self._wall > 0:
            result["other_cores"] = round(self._other / self._wall, 3)
        average = loadavg()
        if average is not None:
            result["loadavg"] = average
        return result
