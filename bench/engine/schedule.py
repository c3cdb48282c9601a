"""The order of a run's measurements: rounds of cells, then extra visits while a rule asks.

One schedule for every way of running a matrix: the local runner (bench.engine.runner), a Ray
node's group (bench.cluster.node) and A/B lockstep (bench.ab.driver). Each visit is one fresh
worker (or, for A/B, one fresh worker pair) of one cell. First every (round, cell) of the
rotated rounds order; then passes over the cells in their first-round order, one extra visit
per cell that `more` still asks for, until no cell asks or each has had `max_more` extra
visits. Passes rather than one cell's extra visits back to back, so the machine's drift over
the minutes the extra visits take hits every cell alike (the same reason the rounds are
interleaved).

`more(cell)` is called only when the previous visits' results are in (the caller records them
before asking for the next visit), so it can decide on everything measured so far.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from bench.store.record import Cell


@dataclass(frozen=True)
class Visit:
    round: int  # 0, 1, ...: the worker's (or worker pair's) index within its cell
    cell: Cell
    note: str = ""  # why an extra visit was scheduled ("" for the planned rounds)


def visits(order: Sequence[tuple[int, Cell]], more: Callable[[Cell], str | None] | None = None,
           max_more: int = 0) -> Iterator[Visit]:
    """The planned (round, cell) visits in order, then the extra ones `more` asks for."""
    done: dict[Cell, int] = {}
    for round_index, cell in order:
        done[cell] = max(done.get(cell, 0), round_index + 1)
        yield Visit(round_index, cell)
    if more is None or max_more <= 0:
        return
    extra = dict.fromkeys(done, 0)
    wanting = list(done)
    while wanting:
        still = []
        for cell in wanting:
            if extra[cell] >= max_more:
                continue
            note = more(cell)
            if not note:
                continue
            yield Visit(done[cell] + extra[cell], cell, note)
            extra[cell] += 1
            still.append(cell)
        wanting = still
