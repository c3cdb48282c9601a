"""The debuggability scorecard: probes as rows, modes as columns, one table per case.

Plain Python over Records (no TensorFlow), so it formats results recorded anywhere. Long values
(lists of missing layers, error summaries) are counted or cut in the grid and spelled out in
full under it.
"""

from __future__ import annotations

from typing import Any

from bench.modes import MODE_TABLE as MODES
from bench.probes import KEYS
from bench.store.record import InputStyle, Record, Status

CELL_WIDTH = 28


def format_scorecard(records: list[Record], fmt: str = "text") -> str:
    """Every case/phase/batch group of records as one scorecard, in `text` or `markdown`."""
    groups: dict[tuple, list[Record]] = {}
    for record in records:
        cell = record.cell
        key = (cell.case_spec, cell.phase, cell.batch, cell.device, cell.input)
        groups.setdefault(key, []).append(record)
    parts = [_one(key, group, fmt) for key, group in groups.items()]
    return "\n".join(parts)


def _one(key: tuple, records: list[Record], fmt: str) -> str:
    spec, phase, batch, device, input_style = key
    by_mode = {r.cell.mode: r for r in records}
    modes = [m for m in MODES if m in by_mode] + [m for m in by_mode if m not in MODES]
    keys = [k for k in KEYS if any(k in r.debug for r in records)]
    keys += sorted({k for r in records for k in r.debug if k not in KEYS})
    title = f"Debuggability scorecard: {spec}, {phase}, batch {batch}, {device}"
    if input_style != InputStyle.RESIDENT:
        title += f", {input_style} input"
    header = ["probe", *modes]
    rows: list[list[str]] = []
    notes: list[str] = []
    status_row = ["status"]
    for mode in modes:
        record = by_mode[mode]
        status_row.append(record.status if record.status == Status.OK else
                          "n/a" if record.status == Status.SKIPPED else record.status)
        if record.status not in (Status.OK, Status.SKIPPED):
            notes.append(f"{mode}: {record.status}: {record.reason}")
    rows.append(status_row)
    for k in keys:
        row = [label(k)]
        for mode in modes:
            value = by_mode[mode].debug.get(k) if by_mode[mode].status == Status.OK else None
            shown, full = cell_text(k, value)
            row.append(shown)
            if full:
                notes.append(f"{mode}: {row[0]}: {full}")
        rows.append(row)
    if fmt == "markdown":
        return _markdown(title, header, rows, notes)
    return _text(title, header, rows, notes)


def label(key: str) -> str:
    """`dbg_cold_start_s` -> `cold start (s)`."""
    name = key.removeprefix("dbg_")
    if name.endswith("_s"):
        return name[:-2].replace("_", " ") + " (s)"
    return name.replace("_", " ")


def cell_text(key: str, value: Any) -> tuple[str, str | None]:
    """(what the grid shows, the full value for the notes when the grid abbreviates it)."""
    if value is None:
        return "-", None
    if isinstance(value, bool):
        return ("yes" if value else "no"), None
    if isinstance(value, (list, tuple)):
        if not value:
            return "none", None
        return f"{len(value)} (see below)", ", ".join(str(v) for v in value)
    if isinstance(value, float):
        if key.endswith("_s"):
            return f"{value:.3f}", None
        if key.endswith("_fraction"):
            return f"{100 * value:.0f}%", None
        return f"{value:.3g}", None
    text = str(value)
    if len(text) > CELL_WIDTH:
        return text[: CELL_WIDTH - 4] + " ...", text
    return text, None


def _text(title: str, header: list[str], rows: list[list[str]], notes: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [title, line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    if notes:
        out += ["", "details:"] + [f"  {n}" for n in notes]
    return "\n".join(out) + "\n"


def _markdown(title: str, header: list[str], rows: list[list[str]], notes: list[str]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [f"### {title}", "", line(header), "|" + "|".join("---" for _ in header) + "|"]
    out += [line(r) for r in rows]
    if notes:
        out += ["", "Details:", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"
