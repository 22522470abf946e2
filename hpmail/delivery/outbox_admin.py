"""The admin's view of the outbox: list the e-mails still waiting or failed, resend now, cancel.

Every change is one conditional UPDATE that leaves rows in state ``sending`` alone, so the page
never fights a worker that has claimed a row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from math import ceil

from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from hpmail.auth.models import User
from hpmail.delivery import clock
from hpmail.delivery.models import (
    EmailRecipient,
    EmailState,
    OutboundEmail,
    RecipientState,
)
from hpmail.extensions import db

log = logging.getLogger(__name__)

LISTED_STATES = (EmailState.QUEUED, EmailState.SENDING, EmailState.DEFERRED, EmailState.FAILED)
RETRYABLE_STATES = (EmailState.QUEUED, EmailState.DEFERRED, EmailState.FAILED)
CANCELLABLE_STATES = (EmailState.QUEUED, EmailState.DEFERRED)


@dataclass
class OutboxPage:
    """One page of the outbox list."""

    emails: list[OutboundEmail]
    page: int
    pages: int
    total: int


def counts_by_state() -> dict[str, int]:
    """Return how many e-mails are in each state (every state, zero included)."""
    rows = db.session.execute(
        select(OutboundEmail.state, func.count()).group_by(OutboundEmail.state)
    ).all()
    found = dict(rows)
    return {state.value: found.get(state.value, 0) for state in EmailState}


def outbox_page(state: str | None, page: int, size: int) -> OutboxPage:
    """Return the e-mails waiting or failed (or only those in ``state``), newest first."""
    states = (state,) if state else LISTED_STATES
    where = OutboundEmail.state.in_(states)
    total = db.session.scalar(select(func.count()).select_from(OutboundEmail).where(where))
    pages = max(1, ceil(total / size))
    page = min(max(page, 1), pages)
    emails = db.session.scalars(
        select(OutboundEmail)
        .where(where)
        .options(selectinload(OutboundEmail.recipients), selectinload(OutboundEmail.mailing))
        .order_by(OutboundEmail.id.desc())
        .limit(size)
        .offset((page - 1) * size)
    ).all()
    return OutboxPage(list(emails), page, pages, total)


def retry_now(email_ids: list[int], actor: User) -> list[int]:
    """Make waiting or failed e-mails due now; return the ids changed (never a row being sent)."""
    if not email_ids:
        return []
    now = clock.now()
    failed = db.session.scalars(
        select(OutboundEmail.id).where(
            OutboundEmail.id.in_(email_ids), OutboundEmail.state == EmailState.FAILED
        )
    ).all()
    changed = db.session.scalars(
        update(OutboundEmail)
        .where(OutboundEmail.id.in_(email_ids), OutboundEmail.state.in_(RETRYABLE_STATES))
        .values(state=EmailState.QUEUED, next_attempt_at=now, lease_until=None)
        .returning(OutboundEmail.id)
        .execution_options(synchronize_session=False)
    ).all()
    retried_failures = sorted(set(failed) & set(changed))
    if retried_failures:
        # The recipients a final failure refused get their chance again.
        db.session.execute(
            update(EmailRecipient)
            .where(
                EmailRecipient.email_id.in_(retried_failures),
                EmailRecipient.state == RecipientState.REFUSED,
            )
            .values(state=RecipientState.PENDING, code=None, reply=None)
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    db.session.expire_all()
    log.info("%s asked to resend now e-mails %s", actor.login, sorted(changed))
    return sorted(changed)


def cancel(email_ids: list[int], actor: User) -> list[int]:
    """Cancel e-mails not yet sent; return the ids changed (never a row being sent)."""
    if not email_ids:
        return []
    changed = db.session.scalars(
        update(OutboundEmail)
        .where(OutboundEmail.id.in_(email_ids), OutboundEmail.state.in_(CANCELLABLE_STATES))
        .values(state=EmailState.CANCELLED, lease_until=None)
        .returning(OutboundEmail.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.flush()
    db.session.expire_all()
    log.info("%s cancelled e-mails %s", actor.login, sorted(changed))
    return sorted(changed)


def wake_worker(email_ids: list[int]) -> None:
    """Tell the worker to look at these rows now (after the commit; the sweeper is the net)."""
    if email_ids:
        from hpmail.delivery.tasks import enqueue_delivery

        enqueue_delivery(email_ids)
