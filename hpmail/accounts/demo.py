"""Demo accounts: two verified school accounts shared by the demo users, and personal accounts."""

from __future__ import annotations

import logging

from sqlalchemy import select

from hpmail.accounts.models import Account, AccountKind, MailSettings
from hpmail.accounts.verification import hash_answer
from hpmail.auth.models import User
from hpmail.core.time import utcnow
from hpmail.extensions import db

log = logging.getLogger(__name__)

# (label, address, logins of the authorised users); the secret answer of both is below.
DEMO_SCHOOL_ACCOUNTS = (
    ("Secrétariat du lycée", "secretariat@lycee-demo.fr", ("admin", "secretariat")),
    ("Vie scolaire", "vie-scolaire@lycee-demo.fr", ("secretariat", "prof")),
)
# Demo data, public on purpose (like the demo password): not a secret of a real installation.
DEMO_SECRET_QUESTION = "Nom du lycée de démonstration ?"  # noqa: S105
DEMO_SECRET_ANSWER = "demonstration"  # noqa: S105


def load_demo_accounts() -> None:
    """Add the demo accounts (verified) for the demo users that exist (the caller commits)."""
    users = {user.login: user for user in db.session.scalars(select(User))}
    answer = hash_answer(DEMO_SECRET_ANSWER)
    now = utcnow()
    for label, address, logins in DEMO_SCHOOL_ACCOUNTS:
        account = Account(
            kind=AccountKind.SCHOOL,
            label=label,
            display_name=label,
            address=address,
            verified_at=now,
            secret_question=DEMO_SECRET_QUESTION,
            secret_answer_hash=answer,
        )
        account.members = [users[login] for login in logins if login in users]
        db.session.add(account)
    for user in users.values():
        if user.email and user.email.endswith("@lycee-demo.fr"):
            own = Account(
                kind=AccountKind.PERSONAL,
                label=user.display_name,
                display_name=user.display_name,
                address=user.email,
                owner_id=user.id,
                verified_at=now,
            )
            db.session.add(own)
    db.session.flush()
    # Julien (teacher) sends from his own address by default; the others from a school account.
    prof = users.get("prof")
    if prof is not None:
        mine = db.session.scalar(select(Account).where(Account.owner_id == prof.id))
        db.session.add(MailSettings(user_id=prof.id, account_id=mine.id, hide_recipients=False))
    db.session.flush()
    log.info("demo accounts loaded")
