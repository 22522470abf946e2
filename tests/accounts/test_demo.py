"""The demo school comes with accounts each demo user can send from at once."""

from __future__ import annotations

from hpmail.accounts import service
from hpmail.accounts.demo import load_demo_accounts
from hpmail.demo import DEMO_USERS


def test_every_demo_user_can_send_from_the_demo_accounts(db, make_user):
    users = {
        login: make_user(role, login=login, display_name=name, email=email)
        for login, name, role, email in DEMO_USERS
    }
    load_demo_accounts()
    db.session.commit()
    secretariat = [a.address for a in service.usable_accounts(users["secretariat"])]
    assert secretariat == [
        "secretariat@lycee-demo.fr",
        "vie-scolaire@lycee-demo.fr",
        "sophie.bernard@lycee-demo.fr",
    ]
    assert service.default_account(users["admin"]).address == "secretariat@lycee-demo.fr"
    assert service.default_account(users["prof"]).address == "julien.petit@lycee-demo.fr"
