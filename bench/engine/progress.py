"""A one-line progress display on stderr: cells done, time elapsed, the time left (from
bench.engine.eta's corrected cost model when the runner gives one) and the cell being measured.

On a Ray cluster (bench.cluster.driver) cells finish on several nodes at once: `done` then gets the
node's name, the line shows how many cells each node has finished, and the time left is the
mean time per finished cell so far times the cells left (it sees the cluster's parallelism).
"""

from __future__ import annotations

import sys
import time
from collections import Counter

from bench.engine.eta import Forecast
from bench.store.record import Cell, Record, is_failed
from bench.units import clock


class Progress:
    def __init__(self, total: int, enabled: bool = True, stream=None,
                 forecast: Forecast | None = None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.done_count = 0
        self.started = time.monotonic()
        self.failed = 0
        self.forecast = forecast
        self.per_node: Counter[str] = Counter()

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def left_s(self) -> float | None:
        """Estimated seconds left: the forecast's, else the mean cell time so far."""
        if self.forecast is not None:
            return self.forecast.remaining_s()
        if not self.done_count:
            return None
        return self.elapsed_s() / self.done_count * (self.total - self.done_count)

    def _eta(self) -> str:
        left = self.left_s()
        return "?" if left is None else clock(left)

    def _bar(self) -> str:
        width = 20
        filled = int(width * self.done_count / max(self.total, 1))
        return "#" * filled + "-" * (width - filled)

    def start(self, cell: Cell, round_index: int) -> None:
        if not self.enabled or not self.tty:
            return
        line = (f"[{self._bar()}] {self.done_count}/{self.total} {clock(self.elapsed_s())} "
                f"elapsed, ~{self._eta()} left  r{round_index} {cell.key}")
        self.stream.write("\r\033[K" + line[:150])
        self.stream.flush()

    def done(self, record: Record, node: str = "") -> None:
        self.done_count += 1
        self.failed += is_failed(record.status)
        if self.forecast is not None:
            self.forecast.done(record)
        if node:
            self.per_node[node] += 1
        if not self.enabled:
            return
        at = f" @{node}" if node else ""
        if self.tty:
            if is_failed(record.status):
                self.stream.write(f"\r\033[K{record.status}: {record.cell.key}{at}: "
                                  f"{record.reason}\n")
            if node:  # nothing else updates the line on a cluster: cells finish elsewhere
                line = (f"[{self._bar()}] {self.done_count}/{self.total} "
                        f"{clock(self.elapsed_s())} elapsed, ~{self._eta()} left  "
                        f"{self._nodes()}")
                self.stream.write("\r\033[K" + line[:150])
                self.stream.flush()
            return
        note = f" ({record.reason})" if is_failed(record.status) else ""
        self.stream.write(f"[{self.done_count}/{self.total}] {record.status:7s} "
                          f"{record.cell.key}{at}{note}  {clock(self.elapsed_s())} elapsed, "
                          f"~{self._eta()} left\n")
        self.stream.flush()

    def _nodes(self) -> str:
        return "per node: " + ", ".join(f"{n} {k}" for n, k in sorted(self.per_node.items()))

    def finish(self, interrupted: bool = False) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\033[K")
        elapsed = time.monotonic() - self.started
        state = "interrupted" if interrupted else "done"
        nodes = f"; {self._nodes()}" if self.per_node else ""
        self.stream.write(f"{state}: {self.done_count}/{self.total} cells in {elapsed:.0f} s, "
                          f"{self.failed} failed{nodes}\n")
        self.stream.flush()
