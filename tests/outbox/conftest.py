"""Fixtures of the delivery engine's tests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hpmail.core.time import utcnow
from hpmail.outbox import clock


@pytest.fixture
def later():
    """Return ``later(seconds)``: moves the delivery clock forward."""
    offset = timedelta()

    def move(seconds: float) -> None:
        nonlocal offset
        offset += timedelta(seconds=seconds)

    clock.set_clock(lambda: utcnow() + offset)
    yield move
    clock.set_clock(None)
