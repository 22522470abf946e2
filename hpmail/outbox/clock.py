"""The delivery clock: ``now()`` in naive UTC, which a test may replace to control time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from hpmail.core.time import utcnow

_now: Callable[[], datetime] = utcnow


def now() -> datetime:
    """Return the current time (naive UTC) as delivery sees it."""
    return _now()


def set_clock(function: Callable[[], datetime] | None) -> None:
    """Make ``now()`` call ``function`` (``None`` restores the real clock)."""
    global _now
    _now = function or utcnow
