"""HTML building blocks for the self-contained report: escaped text, tables, images, boxes.

Everything from a record (case names, configs, error messages, probe values, machine facts)
passes through `esc` before it touches markup, so a record cannot inject HTML or script into
the page. The page needs no network: CSS is inline, images are base64 PNG data URIs, no JS.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from reports.format import format_value

CSS = """
:root { --ok: #1a7f37; --bad: #b00020; --warn: #9a6700; --muted: #6e7781; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1f2328; margin: 0; background: #f6f8fa; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 40px 0 8px; padding-bottom: 6px; border-bottom: 2px solid #1f2328; }
h3 { font-size: 16px; margin: 28px 0 6px; }
h4 { font-size: 14px; margin: 18px 0 4px; }
p.lead { color: var(--muted); margin: 0 0 16px; }
p.explain { color: #3d444d; max-width: 980px; margin: 4px 0 10px; }
nav ul { columns: 2; margin: 4px 0 0; padding-left: 18px; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; vertical-align: top; }
th { background: #f0f3f6; text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.num .small { white-space: normal; }
td.reason { max-width: 17em; white-space: normal; overflow-wrap: anywhere; font-size: 12px; }
tr:nth-child(even) td { background-color: #fafbfc; }
th.rowhead { white-space: nowrap; font-weight: 500; color: #3d444d; }
td.best { font-weight: 700; }
td.good { background-color: #dafbe1 !important; }
td.bad { background-color: #ffebe9 !important; }
td.neutral { background-color: #f6f8fa !important; color: var(--muted); }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11px;
         font-weight: 600; color: #fff; }
.badge.ok { background: var(--ok); } .badge.skipped { background: #8c959f; }
.badge.error, .badge.timeout, .badge.crashed { background: var(--bad); }
.small { font-size: 12px; color: var(--muted); }
.warnings { border: 1px solid #d4a72c; background: #fff8c5; border-radius: 6px;
            padding: 8px 16px; margin: 12px 0 20px; }
.warnings.clean { border-color: #4ac26b; background: #dafbe1; }
.warnings h3 { margin: 4px 0; }
.warnings ul { margin: 4px 0; padding-left: 20px; }
.warnings li { overflow-wrap: anywhere; }
.side { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.side > div { min-width: 0; }
.side > .fig { flex: 1 1 560px; } .side > .card { flex: 0 1 auto; }
table.card th { white-space: normal; max-width: 7.5em; vertical-align: bottom; }
table.modes { table-layout: fixed; width: 100%; }
table.modes th:first-child { width: 13.5em; }
table.modes td { overflow-wrap: anywhere; }
table.cells td { white-space: nowrap; }
table.cells td.wide { white-space: normal; min-width: 24em; }
figure { margin: 8px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: var(--muted); font-size: 12px; max-width: 980px; }
details summary { cursor: pointer; font-weight: 600; margin: 8px 0; }
.scroll { overflow-x: auto; }
code { background: #f0f3f6; padding: 0 4px; border-radius: 4px; font-size: 12px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""


def esc(value: Any) -> str:
    """Text for HTML, quotes included (so it is safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str) -> str:
    """The complete document: one file with inline CSS and no external references."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body><main>\n{body}\n</main></body>\n</html>\n"
    )


def image(png: bytes, alt: str, caption: str = "") -> str:
    """A PNG embedded as a data URI, with an escaped caption saying what question it answers."""
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def warning_box(lines: Sequence[str], clean_text: str = "No warnings.") -> str:
    """A yellow box listing what to distrust; lines indented by two spaces nest under the
    line before them (e.g. the failed cells under 'N cells failed')."""
    if not lines:
        return f'<div class="warnings clean"><strong>{esc(clean_text)}</strong></div>'
    items: list[str] = []
    for line in lines:
        if line.startswith("  ") and items:
            items[-1] += f"<li>{esc(line.strip())}</li>"
        else:
            items.append(f"<li>{esc(line)}<ul>")
    body = "".join(item + "</ul></li>" for item in items).replace("<ul></ul>", "")
    return (f'<div class="warnings" role="alert"><h3>Warnings ({len(items)})</h3>'
            f"<ul>{body}</ul></div>")


def badge(status: str) -> str:
    return f'<span class="badge {esc(status)}">{esc(status)}</span>'


class Cell:
    """A table cell: already-safe HTML, a CSS class and an inline style. Use `text` or `raw`."""

    __slots__ = ("css", "markup", "style")

    def __init__(self, markup: str, css: str = "", style: str = ""):
        self.markup = markup
        self.css = css
        self.style = style


def text(value: Any, css: str = "", style: str = "") -> Cell:
    return Cell(esc(value), css, style)


def raw(markup: str, css: str = "", style: str = "") -> Cell:
    """Markup built from escaped parts by the caller (never from record text directly)."""
    return Cell(markup, css, style)


def table(header: Sequence[str], rows: Iterable[Sequence[Cell | Any]],
          row_headers: bool = False, css: str = "") -> str:
    """An HTML table; plain values are escaped, `Cell`s are trusted (built from escaped text)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cell = cell if isinstance(cell, Cell) else text(format_number(cell),
                                                              "num" if _is_num(cell) else "")
            tag = "th" if row_headers and i == 0 else "td"
            klass = "rowhead" if tag == "th" else cell.css
            attr = f' class="{klass}"' if klass else ""
            if tag == "td" and cell.style:
                attr += f' style="{esc(cell.style)}"'
            cells.append(f"<{tag}{attr}>{cell.markup}</{tag}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    klass = f' class="{css}"' if css else ""
    return (f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def format_number(value: Any, digits: int = 3) -> str:
    """The one value formatter (reports.format), with thousands separators for a page."""
    return format_value(value, grouping=True, digits=digits)


def shade(value: float, low: float, high: float) -> str:
    """An inline background for numbers in a column: light to darker blue along the range."""
    if not math.isfinite(value) or high <= low:
        return ""
    t = (value - low) / (high - low)
    lightness = 96 - 30 * t
    return f"background-color: hsl(210, 70%, {lightness:.0f}%)"


def section(anchor: str, title: str, body: str, level: int = 2) -> str:
    return f'<h{level} id="{esc(anchor)}">{esc(title)}</h{level}>\n{body}'


def paragraph(words: str, css: str = "explain") -> str:
    return f'<p class="{css}">{esc(words)}</p>'


def details(summary: str, body: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"
