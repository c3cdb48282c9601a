"""CSV text that a spreadsheet opens as data, never as formulas.

A cell key, a failure reason or a case spec comes from suite files and error messages; a text
field starting with `=`, `+`, `-` or `@` (or a tab or carriage return) would be run as a formula
by Excel, LibreOffice or Google Sheets ("CSV injection"). Such text gets a leading single quote,
as spreadsheet-safe writers do (OWASP's advice); numbers stay numbers, so `-3.5` is untouched.
Every CSV the suite writes (report tables, `table --format csv`, `run --format csv`) goes
through `to_csv`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: Any) -> Any:
    """A string that a spreadsheet would read as a formula, quoted; anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with its text cells (and column names) made safe; numbers untouched."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(safe_text)
    safe.columns = [safe_text(c) for c in safe.columns]
    return safe


def to_csv(frame: pd.DataFrame) -> str:
    """The frame as CSV text, spreadsheet-safe, without the index."""
    return spreadsheet_safe(frame).to_csv(index=False)
