"""Refusals fed back: a server's "no such user" marks the person's address in the directory.

What servers really answer is sorted first (``smtp.mailbox_unknown``); then a real worker and an
aiosmtpd server that refuses some recipients show which people get marked, and that the mark and
the refusal land in the same transaction.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hpmail.directory.models import Person
from hpmail.outbox import send
from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.models import EmailRecipient, EmailState, OutboundEmail, RecipientState
from hpmail.outbox.record import MAILBOX_LISTENERS
from hpmail.outbox.smtp import mailbox_unknown
from tests.fixtures.worker import wait_until, worker_app_config

SENDER = Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo")
UNKNOWN = "550 5.1.1 <{}>: Recipient address rejected: User unknown"
POLICY = "550 5.7.1 <{}>: Recipient address rejected: Access denied"

# (code, text) as smtplib gives them: the code apart, a multi-line answer's lines joined by \n.
NO_SUCH_USER = {
    "Postfix, local": (550, "5.1.1 <x@lycee.fr>: Recipient address rejected: User unknown in "
                       "local recipient table"),
    "Postfix, relay": (550, "5.1.1 <x@lycee.fr>: Recipient address rejected: User unknown in "
                       "relay recipient table"),
    "Gmail": (550, "5.1.1 The email account that you tried to reach does not exist. Please try\n"
                   "5.1.1 double-checking the recipient's email address for typos or\n"
                   "5.1.1 unnecessary spaces. Learn more at\n"
                   "5.1.1  https://support.google.com/mail/?p=NoSuchUser a1-20020a.1 - gsmtp"),
    "Office 365": (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient x@lycee.fr not found "
                        "by SMTP address lookup"),
    "Exchange": (550, "5.1.1 RESOLVER.ADR.RecipNotFound; not found"),
    "Orange": (550, "5.1.1 Adresse d au moins un destinataire invalide. Invalid recipient. "
                    "OFR_416 [416]"),
    "Sendmail": (550, "5.1.1 <x@lycee.fr>... User unknown"),
    "qmail": (550, "sorry, no mailbox here by that name. (#5.1.1)"),
    "no enhanced code": (550, "<x@lycee.fr>: No such user here"),
    "5.0.0 and the words": (550, "5.0.0 <x@lycee.fr>: User unknown"),
    "French": (550, "Utilisateur inconnu"),
    "551": (551, "User not local; no such user"),
    "553": (553, "5.1.1 <x@lycee.fr>: Recipient unknown"),
    "Yahoo": (554, "delivery error: dd This user doesn't have a yahoo.fr account "
                   "(x@yahoo.fr) [0] - mta1003.mail.ir2.yahoo.com"),
    "bytes": (550, b"5.1.1 <x@lycee.fr>: Recipient address rejected: User unknown"),
    "no such domain": (550, "5.1.2 <x@lycee-inexistant.fr>: Recipient address rejected: Domain "
                            "not found"),
}  # fmt: skip

NOT_A_MISSING_MAILBOX = {
    "greylisting": (450, "4.2.0 <x@lycee.fr>: Recipient address rejected: Greylisted"),
    "a 4xx saying user unknown": (450, "4.1.1 <x@lycee.fr>: Recipient address rejected: "
                                       "User unknown in local recipient table"),
    "a domain not found for now": (450, "4.1.2 <x@lycee.fr>: Recipient address rejected: "
                                        "Domain not found"),
    "Postfix access": (550, "5.7.1 <x@lycee.fr>: Recipient address rejected: Access denied"),
    "Gmail spam": (550, "5.7.1 [192.0.2.1] Our system has detected that this message is likely "
                        "unsolicited mail. To reduce the amount of spam sent to Gmail, this "
                        "message has been blocked."),
    "Exchange not authorised": (550, "5.7.1 RESOLVER.RST.NotAuthorized; not authorized"),
    "Spamhaus": (554, "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using "
                      "zen.spamhaus.org"),
    "mailbox full, 552": (552, "5.2.2 <x@lycee.fr>: Mailbox full"),
    "mailbox full, 550": (550, "5.2.2 The email account that you tried to reach is over quota"),
    "disabled account": (550, "5.2.1 The email account that you tried to reach is disabled."),
    "bad sender": (550, "5.1.8 <ne-pas-repondre@lycee.fr>: Sender address rejected: Domain "
                        "not found"),
    "RFC 5321's generic words": (550, "Requested action not taken: mailbox unavailable"),
    "Outlook.com's generic words": (550, "5.5.0 Requested action not taken: mailbox unavailable"),
    "relay denied": (554, "5.7.1 <x@ailleurs.fr>: Relay access denied"),
    "relay denied without code": (550, "Relaying denied"),
    "policy but user-like words": (550, "User unknown or blocked by policy"),
    "a remote policy quoted": (550, "5.1.1 <x@lycee.fr>: Recipient address rejected: "
                                    "undeliverable address: host mx.lycee.fr[192.0.2.1] said: "
                                    "554 5.7.1 Service unavailable"),
    "a French policy": (550, "Message refusé : indésirable"),
    "an address that looks like a rule": (550, "5.7.1 <unknown-user@lycee.fr>: blocked"),
    "no words": (550, ""),
    "a data refusal": (554, "5.6.0 Message content rejected"),
}  # fmt: skip


@pytest.mark.parametrize("answer", NO_SUCH_USER.values(), ids=NO_SUCH_USER.keys())
def test_a_server_saying_the_mailbox_does_not_exist_is_recognised(answer):
    assert mailbox_unknown(*answer)


@pytest.mark.parametrize("answer", NOT_A_MISSING_MAILBOX.values(), ids=NOT_A_MISSING_MAILBOX)
def test_a_refusal_for_any_other_reason_is_never_taken_for_a_missing_mailbox(answer):
    assert not mailbox_unknown(*answer)


def queue_to(db, people, *others: str):
    """Queue one e-mail per person (and per other address, for nobody), as the composer does."""
    emails = [EmailSpec(to=[Address(p.email, p.full_name, p.id)]) for p in people]
    emails += [EmailSpec(to=[Address(address)]) for address in others]
    mailing = queue_mailing(
        author_id=None, sender=SENDER, subject="Rentrée", text_body="Bonjour", emails=emails
    )
    db.session.commit()
    return mailing


def person(db, someone) -> Person:
    db.session.rollback()  # a new snapshot: the worker writes from another process
    return db.session.get(Person, someone.id)


def mark_of(db, someone) -> tuple:
    found = person(db, someone)
    return found.email_status, found.email_refused_reply


def states(db, mailing) -> dict[str, str]:
    db.session.rollback()
    rows = db.session.execute(
        select(EmailRecipient.address, EmailRecipient.state)
        .join(OutboundEmail)
        .where(OutboundEmail.mailing_id == mailing.id)
    )
    return dict(rows.all())


class TestWithAWorker:
    pytestmark = pytest.mark.worker

    @pytest.fixture
    def app_config(self, tmp_path):
        return worker_app_config(tmp_path)

    def test_only_the_person_whose_mailbox_is_unknown_is_marked(
        self, db, make_person, smtp_server, delivery_settings, worker
    ):
        delivery_settings(smtp_server)
        gone, policy, greylisted, fine, namesake = (
            make_person("student", email=f"{name}@example.org", last_name=name.title())
            for name in ("parti", "bloque", "grise", "present", "autre")
        )
        smtp_server.refuse(gone.email, UNKNOWN.format(gone.email))
        smtp_server.refuse(policy.email, POLICY.format(policy.email))
        smtp_server.refuse(greylisted.email, "451 4.7.1 Greylisted, try again later")
        # A typed address is nobody's: refused, it marks no one, not even a namesake's.
        smtp_server.refuse("tape@example.org", UNKNOWN.format("tape@example.org"))
        namesake.email = "Tape@Example.org"
        db.session.commit()
        mailing = queue_to(db, [gone, policy, greylisted, fine], "tape@example.org")

        dispatch(mailing)
        worker()
        wait_until(
            lambda: (
                states(db, mailing)[gone.email] == RecipientState.REFUSED
                and states(db, mailing)[fine.email] == RecipientState.ACCEPTED
                and states(db, mailing)[policy.email] == RecipientState.REFUSED
            ),
            message="the answers were not recorded",
        )

        marked = person(db, gone)
        assert marked.email_status == "refused"
        assert marked.email_refused_reply == UNKNOWN.format(gone.email)
        assert marked.email_refused_at is not None
        assert mark_of(db, policy) == ("valid", None)
        assert mark_of(db, greylisted) == ("valid", None)  # still to try: deferred
        assert states(db, mailing)[greylisted.email] == RecipientState.PENDING
        assert mark_of(db, fine) == ("valid", None)
        assert mark_of(db, namesake) == ("valid", None)
        assert [r.rcpt_tos for r in smtp_server.received] == [[fine.email]]


def test_an_address_changed_since_the_email_was_written_is_not_marked(
    db, make_person, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    moved = make_person("staff", email="ancienne@example.org")
    smtp_server.refuse(moved.email, UNKNOWN.format(moved.email))
    mailing = queue_to(db, [moved])
    moved.email = "nouvelle@example.org"  # the import ran meanwhile
    db.session.commit()

    send.deliver(ids_of(db, mailing))

    assert states(db, mailing) == {"ancienne@example.org": RecipientState.REFUSED}
    assert mark_of(db, moved) == ("valid", None)


def test_the_same_address_in_other_letters_is_marked_once_whatever_its_case(
    db, make_person, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    gone = make_person("student", email="Parti@Example.org")
    smtp_server.refuse("parti@example.org", UNKNOWN.format("parti@example.org"))
    mailing = queue_to(db, [gone, gone, gone])  # three documents to the same person

    send.deliver(ids_of(db, mailing))
    first = person(db, gone).email_refused_at
    send.deliver(ids_of(db, queue_to(db, [gone])))  # written before the mark, refused again

    assert mark_of(db, gone) == ("refused", UNKNOWN.format("parti@example.org"))
    assert person(db, gone).email_refused_at >= first


def test_a_refusal_inside_a_request_marks_the_address_too(
    db, make_person, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    gone = make_person("teacher", email="parti@example.org")
    smtp_server.refuse(gone.email, "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found")

    outcome = send.deliver(ids_of(db, queue_to(db, [gone])), final=True)  # as ``dispatch`` does

    assert outcome.failed == 1
    assert mark_of(db, gone) == (
        "refused",
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found",
    )


def test_a_4xx_refused_for_good_inside_a_request_marks_nothing(
    db, make_person, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    busy = make_person("teacher", email="occupe@example.org")
    smtp_server.refuse(busy.email, "450 4.1.1 <occupe@example.org>: User unknown, try later")

    assert send.deliver(ids_of(db, queue_to(db, [busy])), final=True).failed == 1
    assert mark_of(db, busy) == ("valid", None)


def test_the_mark_and_the_refusal_land_together_or_not_at_all(
    app, db, make_person, smtp_server, delivery_settings, later, monkeypatch
):
    delivery_settings(smtp_server)
    gone = make_person("student", email="parti@example.org")
    smtp_server.refuse(gone.email, UNKNOWN.format(gone.email))
    mailing = queue_to(db, [gone])

    def breaks(_refusals):
        raise RuntimeError("the database went away")

    listeners = [*app.extensions[MAILBOX_LISTENERS], breaks]
    monkeypatch.setitem(app.extensions, MAILBOX_LISTENERS, listeners)
    with pytest.raises(RuntimeError):
        send.deliver(ids_of(db, mailing))

    assert states(db, mailing) == {gone.email: RecipientState.PENDING}  # neither landed
    assert mark_of(db, gone) == ("valid", None)

    listeners.remove(breaks)
    later(app.config["DELIVERY_LEASE_SECONDS"] + 1)  # its lease ends: the sweeper's next try
    send.deliver(ids_of(db, mailing))

    assert states(db, mailing) == {gone.email: RecipientState.REFUSED}  # both landed
    assert mark_of(db, gone) == ("refused", UNKNOWN.format(gone.email))


def ids_of(db, mailing) -> list[int]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(OutboundEmail.id).where(
                OutboundEmail.mailing_id == mailing.id,
                OutboundEmail.state.in_([EmailState.QUEUED, EmailState.SENDING]),
            )
        )
    )


def test_the_demo_mailbox_refuses_closed_student_mailboxes_and_the_directory_marks_them(
    db, tmp_path, make_person, make_transport, delivery_settings
):
    from aiosmtpd.controller import Controller

    from hpmail.delivery.mailbox import MailboxHandler, list_messages, mailbox_closed
    from tests.fixtures.smtp import free_port

    addresses = [f"eleve{n}@etu.lycee-demo.fr" for n in range(200)]
    closed = [a for a in addresses if mailbox_closed(a)]
    assert 1 <= len(closed) <= 12  # about one in fifty
    assert not mailbox_closed("admin.demo@lycee-demo.fr")  # the staff's mailboxes all exist
    gone = make_person("student", email=closed[0])
    here = make_person("student", email=next(a for a in addresses if not mailbox_closed(a)))
    controller = Controller(MailboxHandler(tmp_path), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        delivery_settings(transport=make_transport(port=controller.port))
        send.deliver(ids_of(db, queue_to(db, [gone, here])))
    finally:
        controller.stop()

    (arrived,) = list_messages(tmp_path)
    assert here.email in arrived.recipients and gone.email not in arrived.recipients
    assert mark_of(db, gone) == (
        "refused",
        f"550 5.1.1 <{gone.email}>: Recipient address rejected: User unknown",
    )
    assert mark_of(db, here) == ("valid", None)
