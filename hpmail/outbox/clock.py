"""The delivery clock: ``now()`` in naive UTC, which a test may replace to control time.

A test moves the clock of its own process with ``set_clock``. A worker is another process: a test
moves its clock by writing a number of seconds in the file that ``CLOCK_OFFSET_FILE`` names (a
test setting, None otherwise), added to the time; the file is read again when it changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app, has_app_context

from hpmail.core.time import utcnow

_now: Callable[[], datetime] = utcnow
# (path, modification time, size) of the offset file last read, and the offset it held
_offset_read: tuple[tuple, timedelta] = ((), timedelta(0))


def now() -> datetime:
    """Return the current time (naive UTC) as delivery sees it."""
    return _now() + _file_offset()


def set_clock(function: Callable[[], datetime] | None) -> None:
    """Make ``now()`` call ``function`` (``None`` restores the real clock)."""
    global _now
    _now = function or utcnow


def _file_offset() -> timedelta:
    """Return the offset the configured ``CLOCK_OFFSET_FILE`` holds (none when unset or absent)."""
    global _offset_read
    path = current_app.config.get("CLOCK_OFFSET_FILE") if has_app_context() else None
    if not path:
        return timedelta(0)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return timedelta(0)
    key = (path, status.st_ino, status.st_mtime_ns, status.st_size)
    if _offset_read[0] != key:
        with open(path) as file:
            text = file.read().strip()
        _offset_read = (key, timedelta(seconds=float(text or 0)))
    return _offset_read[1]


def write_offset(path, seconds: float) -> None:
    """Move the clock of every process configured with ``path`` to ``seconds`` ahead (tests)."""
    temporary = f"{path}.new"
    with open(temporary, "w") as file:
        file.write(repr(float(seconds)))
    os.replace(temporary, path)
