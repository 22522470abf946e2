"""Recording answers on PostgreSQL: one round trip to the server per answer, all or nothing.

The round trips are counted from libpq's own trace of every message the worker's connections send
and receive: a round trip is a run of messages to the server followed by the server's answers.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DataError, IntegrityError

from hpmail.outbox import api, clock
from hpmail.outbox.claim import claim
from hpmail.outbox.models import EmailRecipient, EmailState, OutboundEmail, RecipientState
from hpmail.outbox.record import Delivery, Recorder
from hpmail.outbox.send import _load, deliver
from tests.fixtures.backend import needs_postgres

pytestmark = [
    pytest.mark.usefixtures("no_sender_checks"),
    needs_postgres,
]

SENDER = api.Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo")


def queue(db, count: int) -> list[int]:
    mailing = api.queue_mailing(
        author_id=None,
        sender=SENDER,
        subject="Conseil de classe",
        text_body="Bonjour,\n\nle conseil de classe a lieu jeudi.\n",
        emails=[
            api.EmailSpec(to=[api.Address(f"parent{i}@example.org", f"Parent {i}")])
            for i in range(count)
        ],
    )
    db.session.commit()
    return sorted(
        db.session.scalars(select(OutboundEmail.id).where(OutboundEmail.mailing_id == mailing.id))
    )


@pytest.fixture
def round_trips(db, tmp_path):
    """Return ``round_trips(work)``: run ``work()`` and count its round trips to PostgreSQL."""
    engine = db.engine

    def count(work) -> int:
        db.session.remove()
        engine.dispose()  # every connection from now on is traced from its first message
        trace = (tmp_path / "libpq-trace.txt").open("w")

        def traced(dbapi_connection, _record, _proxy=None) -> None:
            dbapi_connection.pgconn.trace(trace.fileno())

        event.listen(engine, "checkout", traced)
        try:
            work()
        finally:
            event.remove(engine, "checkout", traced)
            db.session.remove()
            engine.dispose()
            trace.close()
        # A message is a line "time<TAB>F or B<TAB>…" (a statement's own lines follow it).
        lines = (tmp_path / "libpq-trace.txt").read_text().splitlines()
        directions = [
            fields[1] for fields in (line.split("\t") for line in lines) if len(fields) > 2
        ]
        turns = zip(["B", *directions], directions, strict=False)
        return sum(1 for before, after in turns if (before, after) == ("B", "F"))

    return count


def test_each_further_email_costs_one_round_trip_to_postgresql(
    db, smtp_server, delivery_settings, round_trips
):
    delivery_settings(smtp_server)
    few, more = queue(db, 2), queue(db, 8)

    few_trips = round_trips(lambda: deliver(few))
    more_trips = round_trips(lambda: deliver(more))

    assert len(smtp_server.received) == 10
    states = db.session.scalars(select(OutboundEmail.state)).all()
    assert states == [EmailState.SENT] * 10
    accepted = db.session.scalars(select(EmailRecipient.state)).all()
    assert accepted == [RecipientState.ACCEPTED] * 10
    # The batch's own statements (claim, reading the rows) cost the same for 2 e-mails as for 8;
    # each answer is then one round trip: its recipients and its e-mail written and committed.
    assert more_trips - few_trips == 6


def test_an_answer_is_written_whole_or_not_at_all(db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    ids = queue(db, 1)
    now = clock.now()
    (email,) = _load(claim(ids, now))
    recorder = Recorder(now, False, Delivery())
    recorder.accepted.append(email.recipients[0][0])

    # The recipient's UPDATE goes first and succeeds; the e-mail's breaks a check constraint.
    with pytest.raises(IntegrityError, match="state"):
        recorder._save(email, {"state": "lost"})

    db.session.rollback()
    assert db.session.scalar(select(EmailRecipient.state)) == RecipientState.PENDING
    assert db.session.scalar(select(OutboundEmail.state)) == EmailState.SENDING


def test_an_answer_refused_before_it_reaches_the_server_leaves_nothing(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    ids = queue(db, 1)
    now = clock.now()
    (email,) = _load(claim(ids, now))
    recorder = Recorder(now, False, Delivery())
    recorder.accepted.append(email.recipients[0][0])

    # The e-mail's UPDATE is refused by psycopg itself (PostgreSQL takes no NUL byte in text),
    # after the recipient's was bound: neither may reach the server alone.
    with pytest.raises(DataError):
        recorder._save(email, {"state": EmailState.SENT, "last_error": "\x00"})

    db.session.rollback()
    assert db.session.scalar(select(EmailRecipient.state)) == RecipientState.PENDING
    assert db.session.scalar(select(OutboundEmail.state)) == EmailState.SENDING


def test_a_refusal_whose_reply_holds_a_nul_byte_is_recorded(db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    ids = queue(db, 1)
    smtp_server.refuse("parent0@example.org", "550 5.1.1 User\x00unknown")

    delivery = deliver(ids)

    assert delivery.failed == 1
    recipient = db.session.scalar(select(EmailRecipient))
    assert (recipient.state, recipient.code) == (RecipientState.REFUSED, 550)
    assert recipient.reply == "5.1.1 User unknown"
