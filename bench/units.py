"""Quantities as people read them, shared by the engine's progress line and the reports."""

from __future__ import annotations


def clock(seconds: float) -> str:
    """Seconds as m:ss, e.g. 3m55s."""
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
