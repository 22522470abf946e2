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


def days_around(zone: str, call):
    """Return ``call()``'s result and the dates in ``zone`` just before and after it (midnight
    may pass during the call: either date is then right)."""
    before = datetime.now(ZoneInfo(zone)).date()
    result = call()
    return result, {before, datetime.now(ZoneInfo(zone)).date()}


@pytest.mark.parametrize("zone", [AHEAD, BEHIND])
def test_today_is_the_date_in_the_schools_time_zone(app_config, zone):
    app = create_app({**app_config, "BABEL_DEFAULT_TIMEZONE": zone})
    with app.app_context():
        today, days = days_around(zone, school_today)
    assert today in days
