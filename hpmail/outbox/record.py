"""Record what SMTP servers answered: e-mail and recipient states, written in batches.

A recipient refused because its mailbox does not exist (``smtp.mailbox_unknown``) is also handed
to the app's listeners (``MAILBOX_LISTENERS``), in the transaction that writes the refusal.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, lru_cache

from flask import current_app
from sqlalchemy import any_, bindparam, update
from sqlalchemy.exc import DBAPIError, OperationalError

from hpmail.core.database import retry_while_locked
from hpmail.core.text import one_line
from hpmail.extensions import db
from hpmail.outbox import clock
from hpmail.outbox.models import EmailRecipient, EmailState, OutboundEmail, RecipientState
from hpmail.outbox.retry import next_attempt
from hpmail.outbox.smtp import Failure, mailbox_unknown, server_answer

log = logging.getLogger(__name__)

# Answers are committed at least this often (seconds), however few e-mails were sent meanwhile.
RECORD_SECONDS = 0.25

# The app's listeners (``api.register_mailbox_listener``): fn(list[UnknownMailbox]) -> None.
MAILBOX_LISTENERS = "hpmail.mailbox_listeners"
# The server's words kept for a listener, at most (a multi-line answer can be long).
UNKNOWN_MAILBOX_REPLY_LIMIT = 300


@dataclass
class Delivery:
    """What happened to e-mails handed over: queued for the worker, or sent, deferred, failed."""

    queued: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    # Claimed but given back unsent: the worker was asked to stop (to enqueue for another one).
    given_back: list[int] = field(default_factory=list)
    # E-mails that waited for a server this delivery found back: due now, to enqueue.
    released: list[int] = field(default_factory=list)

    def add_error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)


@dataclass
class Pending:
    """A claimed e-mail and what its message needs."""

    id: int
    mailing_id: int
    message_id: str
    attempts: int
    created_at: datetime
    transport_id: int | None
    # (recipient id, field, name, address) of the recipients still pending
    recipients: list[tuple[int, str, str, str]] = field(default_factory=list)
    # (field, name, address) of every To and Cc recipient, for the headers
    shown: list[tuple[str, str, str]] = field(default_factory=list)
    # (file name, content type, Content-ID, SHA-256 of the stored file) of the e-mail's own files
    files: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    # recipient id -> the directory person it was written for (``EmailRecipient.person_id``)
    people: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class UnknownMailbox:
    """A person's address that a server refused for good because its mailbox does not exist."""

    person_id: int
    address: str
    refused_at: datetime
    reply: str  # the server's code and words, on one line, capped


# Statements built once: the worker writes after every e-mail.
_emails = OutboundEmail.__table__
_recipients = EmailRecipient.__table__
RENEW_LEASES = (
    update(_emails)
    .where(_emails.c.id.in_(bindparam("ids", expanding=True)))
    .where(_emails.c.state == EmailState.SENDING)
    .values(lease_until=bindparam("lease_until"))
)
REFUSE_RECIPIENT = (
    update(_recipients)
    .where(_recipients.c.id == bindparam("r_id"))
    .values(state=RecipientState.REFUSED, code=bindparam("r_code"), reply=bindparam("r_reply"))
)
ACCEPT_RECIPIENTS = (
    update(_recipients)
    .where(_recipients.c.id.in_(bindparam("ids", expanding=True)))
    .values(state=RecipientState.ACCEPTED, code=250)
)
# The same on PostgreSQL with the ids as one array: one text for any number of ids.
ACCEPT_RECIPIENTS_ARRAY = (
    update(_recipients)
    .where(_recipients.c.id == any_(bindparam("ids")))
    .values(state=RecipientState.ACCEPTED, code=250)
)


@lru_cache(maxsize=64)
def _compiled(statement, dialect) -> tuple[str, dict]:
    """Return the SQL of ``statement`` and the values it binds itself (compiled once)."""
    compiled = statement.compile(dialect=dialect)
    return str(compiled), compiled.params


@cache
def _email_update(columns: tuple[str, ...]):
    """Return the UPDATE of an e-mail's ``columns``, by id (one per set of columns)."""
    return (
        update(_emails)
        .where(_emails.c.id == bindparam("e_id"))
        .values({name: bindparam(f"v_{name}") for name in columns})
    )


class Recorder:
    """Writes each answer to the outbox in batches: a few statements and one commit per N e-mails.

    A crash before the commit only means those e-mails are sent again (at least once, bounded
    by ``DELIVERY_RECORD_EVERY``), never that one is lost. By default each answer is committed
    before the next e-mail goes, so a killed worker resends only the e-mail in flight.

    On PostgreSQL a commit is a round trip to another process, and sent one after the other an
    answer's ``BEGIN``, two ``UPDATE`` and ``COMMIT`` were four: recording took 42 % of a worker's
    time. There they go as one query (``_write_in_one_query``): the same guarantee for one round
    trip. SQLite writes in the worker's own process.
    """

    def __init__(self, now: datetime, final: bool, delivery: Delivery) -> None:
        self.now = now
        self.final = final  # in a request: no retry later, the user sees the outcome
        self.delivery = delivery
        self.every = current_app.config["DELIVERY_RECORD_EVERY"]
        self.flushed_at = time.monotonic()
        self.emails: list[tuple[int, dict]] = []
        self.refused: list[dict] = []
        self.unknown_mailboxes: list[UnknownMailbox] = []
        self.accepted: list[int] = []  # recipient ids
        self.renewals: list[int] = []
        self.recorded: set[int] = set()  # e-mails whose outcome is recorded (written or not yet)

    def sent(self, email: Pending, refused: dict[str, tuple[int, bytes]]) -> None:
        """Record a message the server took, with the recipients it refused one by one."""
        self._answers(email, refused, taken=True)

    def recipients_refused(self, email: Pending, refused: dict[str, tuple[int, bytes]]) -> None:
        """Record an e-mail whose every recipient was refused, each with its own answer.

        A mix of 5xx and 4xx is common (one address unknown, the others greylisted): the unknown
        one is refused for good, the others wait for the next try, so the e-mail fails only when
        no recipient is left to try.
        """
        self._answers(email, refused, taken=False)

    def _answers(self, email: Pending, refused: dict, *, taken: bool) -> None:
        """Record each recipient's answer, then the e-mail's state that follows from them.

        Recipients refused with a 4xx stay pending and the e-mail is deferred: the next try goes
        to them alone. A 5xx refusal is final for that recipient, and so is a 4xx after waiting
        long enough, or inside a request (``final``).
        """
        refused = {address.lower(): answer for address, answer in refused.items()}
        waiting, refusals = [], []
        for recipient_id, _field, _name, address in email.recipients:
            answer = refused.get(address.lower())
            if answer is None and taken:
                self.accepted.append(recipient_id)
                continue
            code, text = answer or (550, b"")
            if 400 <= code < 500 and not self.final:
                waiting.append((recipient_id, code, text))
            else:
                self._refuse(recipient_id, code, text)
                refusals.append((code, text))
                self._unknown_mailbox(email, recipient_id, address, code, text)
        retry_at = None
        if waiting:
            retry_at = next_attempt(email.created_at, email.attempts, self.now)
            if retry_at is None:  # waited long enough: those refusals are final
                for recipient_id, code, text in waiting:
                    self._refuse(recipient_id, code, text)
                    refusals.append((code, text))
        if retry_at is not None:
            values = {"state": EmailState.DEFERRED, "next_attempt_at": retry_at}
            self.delivery.deferred += 1
            reason = waiting[0][1:]
        elif taken:
            values = {"state": EmailState.SENT, "sent_at": self.now}
            self.delivery.sent += 1
            reason = refusals[0] if refusals else None
        else:
            values = {"state": EmailState.FAILED, "next_attempt_at": self.now}
            self.delivery.failed += 1
            reason = refusals[0]
        values.update(lease_until=None, claimed_by=None)
        if reason is not None:
            failure = server_answer(*reason)
            values.update(last_code=failure.code, last_error=failure.message)
            if not taken:
                self.delivery.add_error(failure.message)
        self._save(email, values)

    def _refuse(self, recipient_id: int, code: int, text) -> None:
        self.refused.append({"r_id": recipient_id, "r_code": code, "r_reply": one_line(text)})

    def _unknown_mailbox(self, email: Pending, recipient_id: int, address, code, text) -> None:
        """Keep a "no such user" refusal of a person's address for the listeners."""
        person_id = email.people.get(recipient_id)
        if person_id is None or not mailbox_unknown(code, text):
            return
        reply = f"{code} {one_line(text)}".strip()
        if len(reply) > UNKNOWN_MAILBOX_REPLY_LIMIT:
            reply = reply[: UNKNOWN_MAILBOX_REPLY_LIMIT - 1] + "…"
        self.unknown_mailboxes.append(UnknownMailbox(person_id, address, self.now, reply))

    def failed(self, email: Pending, failure: Failure) -> None:
        """Record a failure: permanent (or too old, or in a request) fails, transient defers.

        A failure of the server (``failure.server``) is the transport's: the e-mail waits for it
        (``waits_for_transport``) without counting the attempt, so its own backoff does not grow.
        """
        if failure.server and not failure.permanent and not self.final:
            give_up_at = email.created_at + timedelta(
                seconds=current_app.config["DELIVERY_GIVE_UP_AFTER_SECONDS"]
            )
            if self.now < give_up_at:
                self.waits_for_transport(email, failure, give_up_at)
                return
        retry_at = None
        if not failure.permanent and not self.final:
            retry_at = next_attempt(email.created_at, email.attempts, self.now)
        if retry_at is None:
            values = {"state": EmailState.FAILED, "next_attempt_at": self.now}
            self.delivery.failed += 1
            # Each recipient it did not reach is marked so, with the reason (shown in the archive).
            done = {row["r_id"] for row in self.refused}
            for recipient_id, _field, _name, _address in email.recipients:
                if recipient_id not in done:
                    self._refuse(recipient_id, failure.code, failure.message)
        else:
            values = {"state": EmailState.DEFERRED, "next_attempt_at": retry_at}
            self.delivery.deferred += 1
        values.update(
            lease_until=None, claimed_by=None, last_code=failure.code, last_error=failure.message
        )
        self.delivery.add_error(failure.message)
        self._save(email, values)

    def waits_for_transport(self, email: Pending, failure: Failure, give_up_at: datetime) -> None:
        """Defer an e-mail until its transport's server answers a probe (``outbox.health``).

        Due at its give-up time at the latest, when it fails if the server is still failing.
        """
        self.delivery.deferred += 1
        self.delivery.add_error(failure.message)
        self._save(
            email,
            {
                "state": EmailState.DEFERRED,
                "next_attempt_at": give_up_at,
                "waits_for_transport": True,
                "lease_until": None,
                "claimed_by": None,
                "attempts": max(email.attempts - 1, 0),
                "last_code": failure.code,
                "last_error": failure.message,
            },
        )

    def held_back(self, email: Pending, until: datetime, message: str) -> None:
        """Defer an e-mail held back by a sending limit to the next window (not an attempt)."""
        self.delivery.deferred += 1
        self._save(
            email,
            {
                "state": EmailState.DEFERRED,
                "next_attempt_at": until,
                "lease_until": None,
                "claimed_by": None,
                "attempts": max(email.attempts - 1, 0),
                "last_error": message,
            },
        )

    def _save(self, email: Pending, values: dict) -> None:
        values.setdefault("waits_for_transport", False)  # any other outcome is its own
        self.emails.append((email.id, values))
        self.recorded.add(email.id)
        # Commit every N e-mails, or sooner on a slow server, so that few are unrecorded at once.
        if len(self.emails) >= self.every or time.monotonic() - self.flushed_at > RECORD_SECONDS:
            self.flush()

    def renew_leases(self, email_ids: list[int]) -> None:
        """Extend the lease of e-mails still to send in a long batch, so none is taken twice."""
        self.renewals = list(email_ids)
        self.flush()

    def _write(self) -> None:
        """Write what was recorded, uncommitted: the caller commits (``flush``).

        The listeners (``_tell_listeners``) write in the same transaction, and on PostgreSQL in
        the same round trip as long as they read nothing back (a read costs a round trip more,
        still in the transaction).
        """
        connection = db.session.connection()  # Core statements: no ORM work per e-mail
        if self.renewals:
            lease = timedelta(seconds=current_app.config["DELIVERY_LEASE_SECONDS"])
            connection.execute(
                RENEW_LEASES, {"ids": self.renewals, "lease_until": clock.now() + lease}
            )
        if self.refused:
            connection.execute(REFUSE_RECIPIENT, self.refused)
        if self.unknown_mailboxes:
            self._tell_listeners()
        if self.accepted:
            connection.execute(ACCEPT_RECIPIENTS, {"ids": self.accepted})
        by_statement: dict = defaultdict(list)
        for statement, row in self._email_updates():
            by_statement[statement].append(row)
        for statement, rows in by_statement.items():
            connection.execute(statement, rows)

    def _email_updates(self):
        """Yield each recorded e-mail's UPDATE (one per set of columns) and its values."""
        for email_id, values in self.emails:
            columns = tuple(sorted(values))
            yield (
                _email_update(columns),
                {"e_id": email_id, **{f"v_{k}": values[k] for k in columns}},
            )

    def _tell_listeners(self) -> None:
        """Hand the "no such user" refusals to the app's listeners, in this transaction.

        The directory marks the address refused (``directory.refusals.mark_refused``, registered
        by ``create_app``): called here, between the refusals' write and the commit, the mark
        and the refusal land together or not at all, and a retry after a lock writes both again
        (a listener must be idempotent and must not commit). The engine stays generic: it knows
        a recipient's ``person_id``, not what a person is.
        """
        for listener in current_app.extensions.get(MAILBOX_LISTENERS, ()):
            listener(list(self.unknown_mailboxes))

    def _write_in_one_query(self) -> None:
        """Write and commit on PostgreSQL in one round trip: the statements as one query.

        The statements are bound here (psycopg's client-side binding, the same adaptation and
        quoting as on the server's side) and sent together as one simple query: PostgreSQL runs
        the statements of such a query as one transaction, committed when the last ends and
        undone whole when one fails. A value psycopg refuses (a NUL byte in a text) fails before
        anything is sent. The connection is in autocommit so that psycopg sends no ``BEGIN`` of
        its own first (a round trip more).

        Leases to renew and refusals for the listeners go the common way (``_write``): they come
        seldom, and the listeners write through the session.
        """
        import psycopg  # installed with PostgreSQL's extra (``.[postgres]``)

        if db.session().in_transaction():
            db.session.commit()  # what was read since the last answer (the batch's rows) ends apart
        connection = db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        driver = connection.connection.driver_connection
        binder = psycopg.ClientCursor(driver)

        def bound(statement, values: dict) -> str:
            text, own_values = _compiled(statement, connection.dialect)
            return binder.mogrify(text, {**own_values, **values})

        try:
            statements = [bound(REFUSE_RECIPIENT, row) for row in self.refused]
            if self.accepted:
                statements.append(bound(ACCEPT_RECIPIENTS_ARRAY, {"ids": self.accepted}))
            statements += [bound(statement, row) for statement, row in self._email_updates()]
            driver.execute(";\n".join(statements), prepare=False)
        except driver.Error as error:  # outside SQLAlchemy: wrapped as it would be
            raise DBAPIError.instance(None, None, error, driver.Error) from error
        db.session.commit()  # the session's end: the server committed the query

    def flush(self, attempts: int = 5) -> None:
        """Write and commit what was recorded, retrying while another connection holds the lock."""
        if not (self.emails or self.refused or self.accepted or self.renewals):
            return

        def write_and_commit() -> None:
            postgres = db.session.get_bind().dialect.name == "postgresql"
            if postgres and not (self.renewals or self.unknown_mailboxes):
                self._write_in_one_query()
            else:  # SQLite writes in this process; PostgreSQL too for renewals and listeners
                self._write()
                db.session.commit()

        retry_while_locked(write_and_commit, attempts=attempts, what="recording delivery")
        self.emails, self.refused, self.accepted, self.renewals = [], [], [], []
        self.unknown_mailboxes = []
        self.flushed_at = time.monotonic()


def commit_patiently(attempts: int = 5) -> None:
    """Commit, retrying a few times if the database is locked (SQLite busy timeout passed).

    Unlike ``core.database.retry_while_locked`` this keeps the session's changes between tries
    (no rollback): they were made by code that cannot simply run again.
    """
    for attempt in range(attempts):
        try:
            db.session.commit()
            return
        except OperationalError:
            if attempt == attempts - 1:
                raise
            log.warning("database busy while recording delivery; retrying")
            time.sleep(0.2 * (attempt + 1))
