"""The admin's view of the outbox: list the e-mails still waiting or failed, resend now, cancel.

The changes are the engine's (``api.retry_now`` and ``api.cancel``: conditional UPDATEs
that leave rows in state ``sending`` alone, so the page never fights a worker); this module lists
the rows and records who asked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from math import ceil

from flask_babel import format_date, format_time, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from hpmail.auth.models import User
from hpmail.core.time import utcnow
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


@dataclass
class ServerNotice:
    """What the outbox page says of one failing SMTP server."""

    transport_id: int
    headline: str  # « Serveur SMTP … injoignable depuis 10 h 42 — prochain essai dans 35 s »
    reason: str
    waiting: str


def since_label(moment: datetime) -> str:
    """Return when a failure began in the school's time: « 10 h 42 », with its date if not today."""
    time = format_time(moment, "H' h 'mm")
    if format_date(moment, "yyyy-MM-dd") == format_date(utcnow(), "yyyy-MM-dd"):
        return time
    return _("%(date)s at %(time)s", date=format_date(moment, "d MMMM"), time=time)


def server_notices() -> list[ServerNotice]:
    """Return what to say of each failing SMTP server (healthy ones say nothing)."""
    notices = []
    for server in api.failing_servers():
        name = f"{server.host}:{server.port}"
        since = since_label(server.failing_since)
        if server.next_probe_in:
            headline = _(
                "SMTP server %(server)s unreachable since %(since)s — next try in %(seconds)d s",
                server=name,
                since=since,
                seconds=server.next_probe_in,
            )
        else:
            headline = _(
                "SMTP server %(server)s unreachable since %(since)s — next try in a moment",
                server=name,
                since=since,
            )
        waiting = ngettext(
            "%(num)d e-mail waits for it and leaves as soon as it answers.",
            "%(num)d e-mails wait for it and leave as soon as it answers.",
            server.waiting,
        )
        reason = _("Last error: %(reason)s", reason=server.last_failure)
        notices.append(ServerNotice(server.transport_id, headline, reason, waiting))
    return notices
