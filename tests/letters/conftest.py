"""Letters' fixtures: a letter template of any category, saved by the service's rules."""

from __future__ import annotations

import pytest

from hpmail.letters.service import save_letter


@pytest.fixture
def make_letter(db, make_user):
    """Return ``make_letter(category, body, subject="", title=...)``, checked and saved."""
    author = make_user("staff")

    def make(category: str, body: str, subject: str = "", title: str = "Lettre"):
        letter = save_letter(None, category, title, subject, body, author)
        db.session.commit()
        return letter

    return make
