"""The admin's view of the outbox: list the e-mails still waiting or failed, resend now, cancel.

The changes are the engine's (``api.retry_now`` and ``api.cancel``: conditional UPDATEs
that leave rows in state ``sending`` alone, so the page never fights a worker); this module lists
the rows and records who asked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from math import ceil

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from hpmail.auth.models import User
from hpmail.extensions import db
from hpmail.outbox import api
from hpmail.outbox.models import EmailState, Mailing, OutboundEmail, Transport

log = logging.getLogger(__name__)

LISTED_STATES = (EmailState.QUEUED, EmailState.SENDING, EmailState.DEFERRED, EmailState.FAILED)
counts_by_state = api.counts_by_state


@dataclass
class OutboxPage:
    """One page of the outbox list."""

    emails: list[OutboundEmail]
    page: int
    pages: int
    total: int


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
    changed = api.retry_now(email_ids)
    log.info("%s asked to resend now e-mails %s", actor.login, changed)
    return changed


def cancel(email_ids: list[int], actor: User) -> int:
    """Cancel e-mails not yet sent; return how many (never a row being sent)."""
    count = api.cancel(email_ids)
    log.info("%s cancelled %s of the e-mails %s", actor.login, count, sorted(email_ids))
    return count


wake_worker = api.wake_worker


def deferred_through(transport: Transport) -> list[int]:
    """Return the ids of the e-mails waiting to be tried again through ``transport``."""
    return list(
        db.session.scalars(
            select(OutboundEmail.id)
            .join(Mailing, Mailing.id == OutboundEmail.mailing_id)
            .where(Mailing.transport_id == transport.id, OutboundEmail.state == EmailState.DEFERRED)
        )
    )


def refused_sign_ins() -> list[Transport]:
    """Return the servers whose provider refused the last token: their mail waits for a sign-in."""
    return list(
        db.session.scalars(
            select(Transport).where(Transport.oauth_error.is_not(None)).order_by(Transport.id)
        )
    )
