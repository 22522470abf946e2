"""The time every table stores: naive UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time in UTC, without tzinfo (as the database columns store it)."""
    return datetime.now(UTC).replace(tzinfo=None)
