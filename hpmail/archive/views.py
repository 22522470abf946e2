"""Pages of archive: Communication › E-mails, the sent e-mails of the accounts a user may see."""

from __future__ import annotations

import click
import nh3
from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from hpmail.archive import search, service
from hpmail.core.web import is_htmx, page_number, render
from hpmail.extensions import db
from hpmail.outbox.api import dispatch_emails
from hpmail.outbox.attachments import read_attachment, stored_file_response

bp = Blueprint("archive", __name__, cli_group=None)

# What an archived body may show: nh3's defaults without images (remote ones track readers).
BODY_TAGS = set(nh3.ALLOWED_TAGS) - {"img"}


def _query() -> service.ArchiveQuery:
    args = request.args
    page = args.get("page", "1")
    sort = args.get("sort", "date")
    return service.ArchiveQuery(
        account=args.get("account", "")[:12],
        q=args.get("q", "")[:200],
        sort=sort if sort in service.SORTS else "date",
        descending=args.get("order", "desc") != "asc",
        page=page_number(page),
    )


def _list_context(query: service.ArchiveQuery) -> dict:
    page = service.archive_page(current_user, query, current_app.config["ARCHIVE_PAGE_SIZE"])
    return {
        "query": query,
        "page": page,
        "accounts": service.account_choices(current_user),
        "state_labels": service.STATE_LABELS,
    }


def _detail_context(mailing) -> dict:
    emails = service.emails_of(mailing)
    lines, total = service.recipient_lines(emails)
    body = None
    if mailing.html_body:
        body = nh3.clean(mailing.html_body, tags=BODY_TAGS, url_schemes={"http", "https", "mailto"})
    return {
        "mailing": mailing,
        "lines": lines,
        "total_recipients": total,
        "body_html": body,
        "headers": service.headers_as_sent(mailing, emails[0]) if emails else [],
        "failed_count": service.failed_recipient_count(mailing),
        "may_resend": service.may_resend(current_user, mailing),
        "account": service.account_of(mailing),
        "state_labels": service.STATE_LABELS,
    }


@bp.route("/e-mails")
def index():
    query = _query()
    return render("archive/index.html", fragment="results", selected=None, **_list_context(query))


@bp.route("/e-mails/<int:mailing_id>")
def detail(mailing_id: int):
    mailing = service.mailing_for(current_user, mailing_id)
    if is_htmx():
        return render(
            "archive/index.html", fragment="pane", selected=mailing, **_detail_context(mailing)
        )
    context = {**_list_context(_query()), **_detail_context(mailing)}
    return render("archive/index.html", selected=mailing, **context)


@bp.route("/e-mails/<int:mailing_id>/pieces-jointes/<int:item_id>")
def attachment(mailing_id: int, item_id: int):
    mailing = service.mailing_for(current_user, mailing_id)
    item = service.attachment_of(mailing, item_id)
    try:
        data = read_attachment(item.attachment)
    except OSError:
        abort(404)
    return stored_file_response(data, item.filename)


@bp.route("/e-mails/<int:mailing_id>/fichiers/<int:item_id>")
def email_file(mailing_id: int, item_id: int):
    """A file that one e-mail of the mailing carried alone (a recipient's own document)."""
    mailing = service.mailing_for(current_user, mailing_id)
    item = service.email_file_of(mailing, item_id)
    try:
        data = read_attachment(item.attachment)
    except OSError:
        abort(404)
    return stored_file_response(data, item.filename)


@bp.route("/e-mails/<int:mailing_id>/renvoyer", methods=["POST"])
def resend(mailing_id: int):
    mailing = service.mailing_for(current_user, mailing_id)
    if not service.may_resend(current_user, mailing):
        abort(403)
    ids = service.resend_failed(current_user, mailing)
    db.session.commit()
    if not ids:
        flash(_("No failed recipient to send this e-mail to again."), "info")
    else:
        result = dispatch_emails(ids)
        if result.queued:
            flash(_("%(num)d e-mails queued again.", num=result.queued), "success")
        else:
            flash(
                _(
                    "Sent again: %(sent)d sent, %(failed)d failed.",
                    sent=result.sent,
                    failed=result.failed + result.deferred,
                ),
                "success",
            )
    return redirect(url_for("archive.detail", mailing_id=mailing.id))


@bp.cli.command("archive-reindex")
def reindex() -> None:
    """Rebuild the archive's search index from the stored e-mails."""
    count = search.rebuild_index()
    click.echo(f"{count} envois indexés.")
