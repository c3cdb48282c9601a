"""HTML building blocks for the pages: escaped text, tables, images, boxes, the page itself.

The markup lives in Jinja2 templates (reports/templates: `base.html` is the page and
stylesheet shared by the report and the trends page, `parts.html` the building blocks) with
autoescape on, so text from a record (case names, configs, error messages, probe values,
machine facts) is escaped by default and cannot inject HTML or script into the page. Python
keeps what a cell says and how a number looks (reports.format). The page needs no network: CSS
is inline, images are base64 PNG data URIs, no JS.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from reports.format import format_value

ENV = Environment(loader=PackageLoader("reports", "templates"),
                  autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                  keep_trailing_newline=True)
_PARTS = ENV.get_template("parts.html").module


def esc(value: Any) -> str:
    """Text for HTML, quotes included (so it is safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, template: str = "base.html", **context: Any) -> str:
    """The complete document: one file with inline CSS and no external references. `body` is
    markup built from escaped parts; other context goes through the template's escaping."""
    return ENV.get_template(template).render(title=title, body=Markup(body), **context)


def trusted(markup: str) -> Markup:
    """Markup built from escaped parts in Python, passed to a template as it is."""
    return Markup(markup)


def png_data(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


# The helpers below return plain strings of finished markup (escaped inside), so callers can
# concatenate them with other markup; `page` marks the assembled body safe once.


def image(png: bytes, alt: str, caption: str = "") -> str:
    """A PNG embedded as a data URI, with a caption saying what question it answers."""
    return str(_PARTS.figure(png_data(png), alt, caption))


def warning_box(lines: Sequence[str], clean_text: str = "No warnings.") -> Markup:
    """A yellow box listing what to distrust; lines indented by two spaces nest under the
    line before them (e.g. the failed cells under 'N cells failed')."""
    items: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("  ") and items:
            items[-1][1].append(line.strip())
        else:
            items.append((line, []))
    return str(_PARTS.warning_box(items, clean_text))


def badge(status: str) -> str:
    return str(Markup('<span class="badge {0}">{0}</span>').format(status))


class Cell:
    """A table cell: already-safe HTML, a CSS class and an inline style. Use `text` or `raw`."""

    __slots__ = ("css", "markup", "style", "tag")

    def __init__(self, markup: str, css: str = "", style: str = ""):
        self.markup = Markup(markup)
        self.css = css
        self.style = style
        self.tag = "td"


def text(value: Any, css: str = "", style: str = "") -> Cell:
    return Cell(esc(value), css, style)


def raw(markup: str, css: str = "", style: str = "") -> Cell:
    """Markup built from escaped parts by the caller (never from record text directly)."""
    return Cell(markup, css, style)


def table(header: Sequence[str], rows: Iterable[Sequence[Cell | Any]],
          row_headers: bool = False, css: str = "") -> str:
    """An HTML table; plain values are formatted and escaped, `Cell`s are trusted."""
    cells = []
    for row in rows:
        out = []
        for i, cell in enumerate(row):
            cell = cell if isinstance(cell, Cell) else text(format_number(cell),
                                                              "num" if _is_num(cell) else "")
            if row_headers and i == 0:
                cell = Cell(cell.markup, "rowhead")
                cell.tag = "th"
            out.append(cell)
        cells.append(out)
    return str(_PARTS.table(header, cells, css))


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


def shade_better(value: float, low: float, high: float, better: str) -> str:
    """An inline background from red (worse) to green (better) along the column's range;
    `better` is "higher" or "lower" (bench.probes.table.BETTER)."""
    if not math.isfinite(value) or high <= low:
        return ""
    t = (value - low) / (high - low)
    goodness = t if better == "higher" else 1.0 - t
    return f"background-color: hsl({120 * goodness:.0f}, 60%, 88%)"


def section(anchor: str, title: str, body: str, level: int = 2) -> str:
    return str(Markup('<h{0} id="{1}">{2}</h{0}>\n{3}').format(level, anchor, title,
                                                                 Markup(body)))


def paragraph(words: str, css: str = "explain") -> str:
    return str(Markup('<p class="{}">{}</p>').format(css, words))


def details(summary: str, body: str) -> str:
    return str(Markup("<details><summary>{}</summary>{}</details>").format(summary,
                                                                           Markup(body)))
