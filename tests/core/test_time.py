"""The school's day: every "today" of the app is the date where the school is, not the server's."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from hpmail import create_app
from hpmail.core.time import school_today

# Fourteen hours ahead of UTC and twelve behind: at any moment, their dates differ, so at least
# one of them is not the date of a server kept in UTC.
AHEAD, BEHIND = "Pacific/Kiritimati", "Etc/GMT+12"


def dates_in(zone: str, measure) -> tuple:
    """The date in ``zone`` just before and just after ``measure()`` (midnight may pass)."""
    before = datetime.now(ZoneInfo(zone)).date()
    measured = measure()
    return before, measured, datetime.now(ZoneInfo(zone)).date()


@pytest.mark.parametrize("zone", [AHEAD, BEHIND])
def test_today_is_the_date_in_the_schools_time_zone(app_config, zone):
    app = create_app({**app_config, "BABEL_DEFAULT_TIMEZONE": zone})
    with app.app_context():
        before, today, after = dates_in(zone, school_today)
    assert today in (before, after)
