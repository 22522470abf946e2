"""The one loop that writes again while another connection holds the database."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from hpmail.core.database import retry_while_locked
from hpmail.directory.models import Cohort
from tests.fixtures import backend


@pytest.fixture
def app_config(app_config):
    # SQLite's database-wide write lock, in both runs (see ``backend.on_sqlite``).
    return backend.on_sqlite({**app_config, "SQLITE_BUSY_TIMEOUT_MS": 50})


def _locked_for(db, tries: int):
    """Return a writer whose first ``tries`` runs meet a real lock held by another connection."""
    path = db.engine.url.database
    state = {"runs": 0}

    def write():
        state["runs"] += 1
        holder = None
        if state["runs"] <= tries:
            holder = sqlite3.connect(path)
            holder.execute("BEGIN EXCLUSIVE")
        try:
            db.session.add(Cohort(name=f"L{state['runs']}"))
            db.session.commit()
        finally:
            if holder is not None:
                holder.rollback()
                holder.close()
        return state["runs"]

    return write


def test_a_write_that_meets_a_lock_is_rolled_back_and_done_again(db):
    runs = retry_while_locked(_locked_for(db, tries=2), attempts=3, what="testing")

    assert runs == 3
    assert db.session.scalars(select(Cohort.name)).all() == ["L3"]


def test_the_last_error_goes_through_when_the_lock_outlasts_the_tries(db):
    with pytest.raises(OperationalError):
        retry_while_locked(_locked_for(db, tries=5), attempts=2, what="testing")

    assert db.session.scalars(select(Cohort.name)).all() == []
