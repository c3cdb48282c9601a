"""A one-line progress display on stderr: the cell being measured and the time left.

On a Ray cluster (bench.cluster) cells finish on several nodes at once: `done` then gets the
node's name, and the line shows how many cells each node has finished.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

from bench.record import Cell, Record


class Progress:
    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.done_count = 0
        self.started = time.monotonic()
        self.failed = 0
        self.per_node: Counter[str] = Counter()

    def _eta(self) -> str:
        if not self.done_count:
            return "?"
        per = (time.monotonic() - self.started) / self.done_count
        left = per * (self.total - self.done_count)
        return f"{int(left // 60)}m{int(left % 60):02d}s"

    def _bar(self) -> str:
        width = 20
        filled = int(width * self.done_count / max(self.total, 1))
        return "#" * filled + "-" * (width - filled)

    def start(self, cell: Cell, round_index: int) -> None:
        if not self.enabled or not self.tty:
            return
        line = (f"[{self._bar()}] {self.done_count}/{self.total} r{round_index} {cell.key} "
                f"(left ~{self._eta()})")
        self.stream.write("\r\033[K" + line[:150])
        self.stream.flush()

    def done(self, record: Record, node: str = "") -> None:
        self.done_count += 1
        self.failed += record.status in ("error", "timeout", "crashed")
        if node:
            self.per_node[node] += 1
        if not self.enabled:
            return
        at = f" @{node}" if node else ""
        if self.tty:
            if record.status not in ("ok", "skipped"):
                self.stream.write(f"\r\033[K{record.status}: {record.cell.key}{at}: "
                                  f"{record.reason}\n")
            if node:  # nothing else updates the line on a cluster: cells finish elsewhere
                line = (f"[{self._bar()}] {self.done_count}/{self.total} {self._nodes()} "
                        f"(left ~{self._eta()})")
                self.stream.write("\r\033[K" + line[:150])
                self.stream.flush()
            return
        note = f" ({record.reason})" if record.status not in ("ok", "skipped") else ""
        self.stream.write(f"[{self.done_count}/{self.total}] {record.status:7s} "
                          f"{record.cell.key}{at}{note}  left ~{self._eta()}\n")
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
