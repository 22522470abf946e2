"""When to try an e-mail again: a growing delay, then giving up after a few days."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app


def retry_delay(attempts: int) -> timedelta:
    """Return the wait after ``attempts`` tries: the first delay, doubling, capped."""
    first = current_app.config["DELIVERY_FIRST_RETRY_SECONDS"]
    longest = current_app.config["DELIVERY_MAX_RETRY_SECONDS"]
    return timedelta(seconds=min(first * 2 ** max(attempts - 1, 0), longest))


def next_attempt(created_at: datetime, attempts: int, now: datetime) -> datetime | None:
    """Return when to try again, or ``None`` when the e-mail has waited long enough: give up."""
    give_up = timedelta(seconds=current_app.config["DELIVERY_GIVE_UP_AFTER_SECONDS"])
    if now - created_at >= give_up:
        return None
    return now + retry_delay(attempts)
