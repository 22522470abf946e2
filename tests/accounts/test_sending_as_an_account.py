"""Sending as an account: who may, and what the receiving server sees (From, To, Bcc, Reply-To)."""

from __future__ import annotations

import pytest

from hpmail.accounts import service
from hpmail.accounts.models import AccountKind
from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.models import Mailing
from tests.accounts.conftest import SERVER_ADDRESS


def send(user, account_id, to=("parent@example.org",), hide=None):
    """Queue and dispatch an e-mail as the composer does: sender_for, then the outbox."""
    sender = service.sender_for(user, account_id)
    hide = service.settings_for(user).hide_recipients if hide is None else hide
    from hpmail.extensions import db

    mailing = queue_mailing(
        author_id=user.id,
        sender=sender,
        subject="Conseil de classe",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address(a) for a in to])],
        hide_recipients=hide,
    )
    db.session.commit()
    dispatch(mailing)
    return mailing


def test_only_an_authorised_user_may_send_as_a_school_account(db, make_user, make_account):
    sophie, julien = make_user("staff"), make_user("teacher")
    account = make_account(members=[sophie])
    assert service.may_send_as(sophie.id, account.id)
    assert not service.may_send_as(julien.id, account.id)
    sender = service.sender_for(sophie, account.id)
    assert sender == Sender("secretariat@lycee.example", "Secrétariat", None, account.id)
    with pytest.raises(service.NotAuthorised) as refused:
        service.sender_for(julien, account.id)
    with pytest.raises(service.NotAuthorised):
        service.sender_for(julien, 999_999)
    assert str(refused.value) == "Vous n'êtes pas (ou plus) autorisé à envoyer avec ce compte."


def test_an_unfinished_or_deactivated_account_cannot_send(db, make_user, make_account):
    sophie = make_user("staff")
    account = make_account(members=[sophie])
    account.secret_answer_hash = None  # creation not finished
    db.session.commit()
    assert not service.may_send_as(sophie.id, account.id)
    account = make_account("accueil@lycee.example", members=[sophie])
    sophie.active = False
    db.session.commit()
    assert not service.may_send_as(sophie.id, account.id)


def test_the_contract_lists_usable_and_visible_accounts(db, make_user, make_account):
    admin, sophie, julien = make_user("admin"), make_user("staff"), make_user("teacher")
    shared = make_account(members=[sophie, julien])
    other = make_account("direction@lycee.example", label="Direction")
    own = make_account(
        "sophie@lycee.example", kind=AccountKind.PERSONAL, owner=sophie, label="Sophie"
    )
    assert service.usable_accounts(sophie) == [shared, own]
    assert service.usable_accounts(julien) == [shared]
    assert set(service.visible_accounts(sophie)) == {shared, own}
    assert service.visible_accounts(admin) == []  # nobody reads the mail of others, admin included
    assert service.default_account(julien) == shared
    assert service.default_account(admin) is None
    other.members.append(admin)
    assert service.visible_accounts(admin) == [other]


def test_reply_to_and_hidden_recipients_reach_the_e_mail(db, make_user, make_account, mail_server):
    sophie = make_user("staff")
    account = make_account(members=[sophie])
    service.save_options(sophie, "sophie.bernard@lycee.example", True)
    db.session.commit()
    send(sophie, account.id, to=("parent1@example.org", "parent2@example.org"))
    [received] = mail_server.received
    message = received.message
    assert sorted(received.rcpt_tos) == ["parent1@example.org", "parent2@example.org"]
    assert message["From"].addresses[0].addr_spec == "secretariat@lycee.example"
    assert message["Reply-To"].addresses[0].addr_spec == "sophie.bernard@lycee.example"
    assert str(message["To"]) == "undisclosed-recipients:;"  # no address, To = From is spam-like
    assert message["Bcc"] is None
    assert b"parent1@example.org" not in received.data


def test_by_default_recipients_are_hidden_and_replies_go_to_the_account(
    db, make_user, make_account, mail_server
):
    sophie = make_user("staff")
    account = make_account(members=[sophie])
    send(sophie, account.id, to=("parent1@example.org", "parent2@example.org"))
    [received] = mail_server.received
    assert sorted(received.rcpt_tos) == ["parent1@example.org", "parent2@example.org"]
    assert str(received.message["To"]) == "undisclosed-recipients:;"
    assert received.message["From"].addresses[0].addr_spec == account.address
    assert received.message["Reply-To"] is None
    assert b"parent1@example.org" not in received.data


def test_with_hiding_switched_off_recipients_are_visible(db, make_user, make_account, mail_server):
    sophie = make_user("staff")
    account = make_account(members=[sophie])
    send(sophie, account.id, to=("parent1@example.org", "parent2@example.org"), hide=False)
    message = mail_server.received[0].message
    assert sorted(a.addr_spec for a in message["To"].addresses) == [
        "parent1@example.org",
        "parent2@example.org",
    ]
    assert message["Reply-To"] is None
    assert message["Bcc"] is None


def test_a_display_name_with_quotes_and_commas_is_encoded_safely(
    db, make_user, make_account, mail_server
):
    sophie = make_user("staff")
    account = make_account(members=[sophie], label='Vie scolaire, "bâtiment A"')
    send(sophie, account.id)
    received = mail_server.received[0]
    [sender] = received.message["From"].addresses
    assert sender.display_name == 'Vie scolaire, "bâtiment A"'
    assert sender.addr_spec == "secretariat@lycee.example"
    assert len(received.message["From"].addresses) == 1


def test_line_breaks_in_a_display_name_are_refused_before_anything_is_stored(
    db, make_user, mail_server
):
    from hpmail.accounts.models import Account

    sophie = make_user("staff")
    with pytest.raises(service.AccountInvalid):
        service.save_personal_account(sophie, "Sophie\r\nBcc: x@evil.example", "s@lycee.example")
    db.session.rollback()
    assert db.session.query(Account).count() == 0


def test_the_worker_check_lets_the_server_s_own_e_mails_through(
    db, make_user, make_account, mail_server
):
    sophie = make_user("staff")
    for kind in ("test", "verification"):
        assert service.sender_check(Mailing(kind=kind, sender_address=SERVER_ADDRESS)) is None
    assert service.sender_check(Mailing(kind="document", sender_address=SERVER_ADDRESS)) is None
    orphan = Mailing(kind="email", author_id=sophie.id, sender_address="secretariat@lycee.example")
    assert "a été supprimé" in service.sender_check(orphan)
