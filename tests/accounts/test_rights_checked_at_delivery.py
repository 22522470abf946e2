"""The worker checks the right to send again: a user removed or an account deleted meanwhile."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hpmail.accounts import service
from hpmail.accounts.models import Account
from hpmail.outbox import send
from hpmail.outbox.api import Address, EmailSpec, dispatch, queue_mailing
from hpmail.outbox.models import EmailState, OutboundEmail
from hpmail.queue import huey


@pytest.fixture
def app_config(app_config):
    """The queue keeps its tasks (no immediate mode), so the test acts between queue and worker."""
    return {**app_config, "HUEY_IMMEDIATE": False}


def queue(db, user, account):
    mailing = queue_mailing(
        author_id=user.id,
        sender=service.sender_for(user, account.id),
        subject="Sortie scolaire",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address("parent@example.org")])],
    )
    db.session.commit()
    assert dispatch(mailing).queued == 1
    return mailing


def run_worker() -> None:
    """Run the tasks waiting in the queue, as a huey consumer would."""
    while (task := huey.dequeue()) is not None:
        huey.execute(task)


def emails_of(db, mailing) -> list[OutboundEmail]:
    db.session.expire_all()
    return db.session.scalars(
        select(OutboundEmail).where(OutboundEmail.mailing_id == mailing.id)
    ).all()


def test_a_user_removed_after_queueing_has_the_e_mail_failed_not_sent(
    db, make_user, make_account, mail_server
):
    sophie = make_user("staff")
    account = make_account(members=[sophie])
    mailing = queue(db, sophie, account)
    account.members.remove(sophie)  # as the admin's checklist does
    db.session.commit()
    run_worker()
    [email] = emails_of(db, mailing)
    assert email.state == EmailState.FAILED
    assert "plus autorisé à envoyer avec secretariat@lycee.example" in email.last_error
    assert mail_server.received == []


def test_an_account_deleted_after_queueing_has_the_e_mail_failed_not_sent(
    db, make_user, make_account, mail_server
):
    sophie = make_user("staff")
    account = make_account(members=[sophie])
    mailing = queue(db, sophie, account)
    # A delete racing the queueing (the page refuses while e-mails wait; the worker must too).
    db.session.delete(db.session.get(Account, account.id))
    db.session.commit()
    db.session.expire_all()
    [email] = emails_of(db, mailing)
    assert email.mailing.account_id is None
    send.deliver([email.id])
    [email] = emails_of(db, mailing)
    assert email.state == EmailState.FAILED
    assert "a été supprimé" in email.last_error
    assert mail_server.received == []


def test_an_authorised_user_s_e_mail_is_delivered_by_the_worker(
    db, make_user, make_account, mail_server
):
    sophie = make_user("staff")
    account = make_account(members=[sophie])
    mailing = queue(db, sophie, account)
    run_worker()
    [email] = emails_of(db, mailing)
    assert email.state == EmailState.SENT
    assert [r.rcpt_tos for r in mail_server.received] == [["parent@example.org"]]
