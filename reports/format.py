"""One way to show a value in a terminal table, a comparison or an HTML report.

Booleans read "yes"/"no", missing values (None, NaN) are blank unless the caller names a
placeholder, integers stay integers, and other numbers get 3 significant digits below 100 and
none above. HTML asks for thousands separators; nothing else differs between the views.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def format_value(value: Any, *, missing: str = "", grouping: bool = False,
                 digits: int = 3) -> str:
    if value is None:
        return missing
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if grouping else str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return missing
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if abs(value) >= 100:
            return f"{value:,.0f}" if grouping else f"{value:.0f}"
        if value == int(value):
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value).replace("\n", " ")
