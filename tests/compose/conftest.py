"""Fixtures of the compose and archive tests: delivery to a real SMTP server, a ready account."""

from __future__ import annotations

import pytest

from hpmail.accounts.models import Account, AccountKind, MailSettings
from hpmail.core.time import utcnow

FR = {"Accept-Language": "fr"}
HTMX = {"HX-Request": "true", "Accept-Language": "fr"}
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def personal_account(db):
    """Return ``personal_account(user, address=None, reply_to=None)``: a verified account."""

    def make(user, address=None, reply_to=None, hide_recipients=False):
        account = Account(
            kind=AccountKind.PERSONAL,
            label=user.display_name,
            display_name=user.display_name,
            address=address or f"{user.login}@lycee-demo.fr",
            owner_id=user.id,
            verified_at=utcnow(),
        )
        db.session.add(account)
        db.session.flush()
        settings = db.session.get(MailSettings, user.id) or MailSettings(user_id=user.id)
        settings.account_id = account.id
        settings.reply_to = reply_to
        settings.hide_recipients = hide_recipients
        db.session.add(settings)
        db.session.commit()
        return account

    return make


@pytest.fixture
def sender(login_as, personal_account, delivery_settings, smtp_server):
    """A signed-in staff user with a verified personal account, delivery to ``smtp_server``."""
    delivery_settings(smtp_server)
    user = login_as("staff", display_name="Sophie Martin")
    personal_account(user)
    return user


@pytest.fixture
def select_people(db):
    """Return ``select_people(user, people)``: the token of a selection holding them."""
    from hpmail.directory.selection import create_selection

    def make(user, people):
        selection = create_selection(user, [p.id for p in people])
        db.session.commit()
        return selection.token

    return make
