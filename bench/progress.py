"""A one-line progress display on stderr: the cell being measured and the time left."""

from __future__ import annotations

import sys
import time

from bench.record import Cell, Record, is_failed


class Progress:
    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.done_count = 0
        self.started = time.monotonic()
        self.failed = 0

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

    def done(self, record: Record) -> None:
        self.done_count += 1
        self.failed += is_failed(record.status)
        if not self.enabled:
            return
        if self.tty:
            if is_failed(record.status):
                self.stream.write(f"\r\033[K{record.status}: {record.cell.key}: {record.reason}\n")
            return
        note = f" ({record.reason})" if is_failed(record.status) else ""
        self.stream.write(f"[{self.done_count}/{self.total}] {record.status:7s} "
                          f"{record.cell.key}{note}  left ~{self._eta()}\n")
        self.stream.flush()

    def finish(self, interrupted: bool = False) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\033[K")
        elapsed = time.monotonic() - self.started
        state = "interrupted" if interrupted else "done"
        self.stream.write(f"{state}: {self.done_count}/{self.total} cells in {elapsed:.0f} s, "
                          f"{self.failed} failed\n")
        self.stream.flush()
