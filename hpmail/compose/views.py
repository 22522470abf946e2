"""Pages of compose: the composer, templates (modèles), quick e-mails, the scanned signature."""

from __future__ import annotations

import logging
import uuid

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from jinja2_fragments.flask import render_block
from sqlalchemy.exc import IntegrityError, OperationalError

from hpmail.accounts.service import (
    NotAuthorised,
    default_account,
    saved_settings,
    usable_accounts,
)
from hpmail.compose import saved, service
from hpmail.compose.forms import DraftForm, SignatureForm, TemplateNameForm
from hpmail.compose.richtext import sanitize_html
from hpmail.compose.uploads import (
    KeptFile,
    keep_token,
    kept_files,
    read_uploads,
    store_uploads,
    upload_errors,
)
from hpmail.core.database import retry_while_locked
from hpmail.core.forms import InputRefused, form_again
from hpmail.core.web import render, whole_number
from hpmail.directory.models import Cohort, Course
from hpmail.directory.selection import create_selection, selected_people, selection_for
from hpmail.directory.service import course_audience, teaching_team
from hpmail.extensions import db
from hpmail.outbox.api import NoTransport, OutboxBusy, dispatch
from hpmail.outbox.attachments import read_attachment, stored_file_response
from hpmail.outbox.models import Mailing
from hpmail.outbox.policy import InvalidHeader

bp = Blueprint("compose", __name__, cli_group=None)
log = logging.getLogger(__name__)


def _selection_people(token: str | None):
    """Return the selection of this token (404 for another user's) and its people."""
    if not token:
        return None, []
    selection = selection_for(current_user, token)
    return selection, selected_people(selection)


def _composer(draft, people, token, *, refused=None, kept=(), status=200):
    """Render the composer on ``draft``; with ``refused``, its errors and warnings beside their
    fields (422 when there are errors, or ``status``)."""
    # The editor puts the body back into the page's DOM: never hand it unsanitised HTML.
    draft.body = sanitize_html(draft.body)
    draft.request_token = draft.request_token or str(uuid.uuid4())
    types = service.recipient_types(people)
    context = dict(
        draft=draft,
        types=types,
        other_kinds=[k for k in service.KIND_ORDER if k not in {t.kind for t in types}],
        others=service.others_by_id(draft.other_ids),
        token=token or "",
        accounts=usable_accounts(current_user),
        signature=service.signature_of(current_user.id),
        templates=saved.templates_of(current_user),
        kept=[(keep_token(current_user.id, k.attachment.id, k.filename), k) for k in kept],
        errors=refused.errors if refused is not None else {},
        warnings=getattr(refused, "warnings", {}),
        limits={
            "file": current_app.config["ATTACHMENT_MAX_FILE_BYTES"] // 1024 // 1024,
            "email": current_app.config["ATTACHMENT_MAX_EMAIL_BYTES"] // 1024 // 1024,
        },
    )
    if refused is not None and refused.errors and status == 200:
        return form_again("compose/new.html", **context)
    response = render("compose/new.html", **context)
    response.status_code = status
    return response


@bp.route("/e-mail/nouveau", methods=["GET", "POST"])
def new():
    token = request.values.get("selection")
    _selection, people = _selection_people(token)
    if request.method == "GET":
        return _new_draft(people, token)
    return _send(people, token)


def _new_draft(people, token):
    draft = service.Draft(kinds=[t for t in service.KIND_ORDER], kind="email")
    if request.args.get("kind") == "quick":
        draft.kind = "quick"
        draft.about = service.about_text(request.args.get("about"))
        draft.subject = draft.about
    kept = []
    template_id = whole_number(request.args.get("template"))
    if template_id:
        template = saved.template_for(current_user, template_id)
        draft = saved.draft_of(template)
        draft.kind = "quick" if request.args.get("kind") == "quick" else "email"
        draft.about = service.about_text(request.args.get("about")) if draft.kind == "quick" else ""
        kept = [KeptFile(a.attachment, a.filename, a.content_type) for a in template.attachments]
    account = default_account(current_user)
    draft.account_id = account.id if account else None
    draft.hide_recipients = bool(saved_settings(current_user).hide_recipients)
    return _composer(draft, people, token, kept=kept)


def _send(people, token):
    form = DraftForm()
    draft = form.draft()
    replayed = _replayed(draft, people, token)
    if replayed is not None:
        return replayed
    if draft.account_id is None:
        account = default_account(current_user)
        draft.account_id = account.id if account else None
    uploads = read_uploads(form.uploads())
    kept = kept_files(current_user.id, form.kept.data)
    try:
        if draft.account_id is None:
            # Nobody to send as: the page's one message says how to set an account up.
            raise service.ComposeRefused(
                {"account_id": [_("You have no account to send from yet.")]}
            )
        recipients, html, text = service.prepare_email(draft, people, uploads, kept)
        mailing = _queue(draft, recipients, html, text, uploads, kept)
    except service.ComposeRefused as refused:
        db.session.rollback()
        if not upload_errors(uploads, kept) and uploads:
            # Valid files are kept for the next try, so that the user does not pick them again.
            kept = kept + store_uploads(uploads)
            db.session.commit()
        return _composer(draft, people, token, refused=refused, kept=kept)
    except NotAuthorised as refused:
        db.session.rollback()
        account_refused = InputRefused(str(refused), field="account_id")
        return _composer(draft, people, token, refused=account_refused, kept=kept, status=403)
    except (InvalidHeader, NoTransport) as refused:
        db.session.rollback()
        recipients_refused = InputRefused(str(refused), field="recipients")
        return _composer(draft, people, token, refused=recipients_refused, kept=kept)
    except (OutboxBusy, OperationalError) as busy:
        return _busy(draft, people, token, kept, busy)
    except IntegrityError:
        mailing = None
    if mailing is None:
        # Another request of the same form committed first: show what it queued.
        return _replayed(draft, people, token) or _busy(draft, people, token, kept, "conflict")
    result = dispatch(mailing)
    session[SENT_NOTES] = {
        "mailing": mailing.id,
        "errors": [str(message) for message in result.errors],
        "refused": [[str(name), str(reason)] for name, reason in recipients.refused],
    }
    return redirect(url_for("compose.sent", mailing_id=mailing.id), 303)


SENT_NOTES = "compose_sent"


def _queue(draft, recipients, html, text, uploads, kept):
    """Queue and commit the mailing, trying again while the database is locked.

    Return None when another request of the same form committed first (the caller shows its
    mailing). Any other IntegrityError is another request storing the same file at the same
    moment: the next try finds the file.
    """

    def queue_and_commit():
        try:
            mailing = service.queue_email(
                current_user, draft, recipients, html, text, uploads, kept
            )
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            if service.mailing_of_request(draft.request_token):
                return None
            raise
        return mailing

    return retry_while_locked(
        queue_and_commit,
        attempts=current_app.config["OUTBOX_COMMIT_ATTEMPTS"],
        what="queueing a mailing",
        busy=(OutboxBusy, OperationalError, IntegrityError),
    )


def _replayed(draft, people, token):
    """Answer a composer form that was already sent: its mailing's page, never a second one."""
    existing = service.mailing_of_request(draft.request_token)
    if existing is None:
        return None
    if existing.author_id != current_user.id:
        log.warning("user %s replayed another user's composer token", current_user.login)
        draft.request_token = ""
        expired = InputRefused(
            _("This form has expired: check it and send it again."), field="recipients"
        )
        return _composer(draft, people, token, refused=expired, status=409)
    flash(_("This e-mail has already been sent: it was not sent a second time."), "info")
    return redirect(url_for("compose.sent", mailing_id=existing.id), 303)


@bp.route("/e-mail/envoye/<int:mailing_id>")
def sent(mailing_id: int):
    """Show where a sent mailing's e-mails stand (the send's redirect); reloading sends nothing."""
    mailing = db.session.get(Mailing, mailing_id)
    if mailing is None or mailing.author_id != current_user.id:
        abort(404)
    notes = session.get(SENT_NOTES) or {}
    if notes.get("mailing") != mailing.id:
        notes = {}
    result = service.outcome_of(mailing)
    result.errors = notes.get("errors", [])
    refused = [tuple(pair) for pair in notes.get("refused", [])]
    return render("compose/sent.html", mailing=mailing, result=result, refused=refused)


def _busy(draft, people, token, kept, error):
    """Say that nothing was sent because the database was busy, keeping what the user wrote."""
    db.session.rollback()
    log.warning("user %s could not queue a mailing: %s", current_user.login, error)
    busy = InputRefused(
        _("The server is busy: nothing was sent. Please try again in a moment."), field="recipients"
    )
    return _composer(draft, people, token, refused=busy, kept=kept, status=503)


@bp.route("/e-mail/personnes")
def people():
    """Return checkable people matching the search (htmx), for "Autres"."""
    found = service.search_people(request.args.get("q", ""), request.args.get("kind"))
    if not request.args.get("q") and request.args.get("kind"):
        found = service.people_of_kind(request.args["kind"])
    return render_block("compose/new.html", "people_found", people=found)


def _posted_draft():
    """Read the composer's form: the form, its selection and people, the draft, the files."""
    form = DraftForm()
    token = form.selection.data
    _selection, people = _selection_people(token)
    uploads = read_uploads(form.uploads())
    return form, token, people, form.draft(), uploads, kept_files(current_user.id, form.kept.data)


@bp.route("/e-mail/modeles", methods=["POST"])
def save_template():
    form, token, people, draft, uploads, kept = _posted_draft()
    problems = upload_errors(uploads, kept)
    try:
        if problems:
            raise saved.TemplateRefused(problems[0], field="template_label")
        template = saved.save_template(
            current_user, form.template_label.data or "", draft, uploads, kept
        )
    except saved.TemplateRefused as refused:
        db.session.rollback()
        return _composer(draft, people, token, refused=refused, kept=kept)
    db.session.commit()
    flash(_("Template « %(label)s » saved.", label=template.label), "success")
    # Back to the draft as it is on screen (people under "Autres", options), with the files kept.
    kept = [KeptFile(a.attachment, a.filename, a.content_type) for a in template.attachments]
    return _composer(draft, people, token, kept=kept)


@bp.route("/e-mail/nouveau/signature", methods=["POST"])
def composer_signature():
    """Save the scanned signature sent with the composer's form, and come back to the draft."""
    form, token, people, draft, uploads, kept = _posted_draft()
    if not upload_errors(uploads, kept) and uploads:
        kept = kept + store_uploads(uploads)  # the files picked are not lost on the way
    signature_upload = read_uploads([form.signature.data] if form.signature.data else [])
    try:
        if not signature_upload:
            raise saved.TemplateRefused(_("Choose an image file."))
        saved.save_signature(current_user, signature_upload[0])
    except saved.TemplateRefused as refused:
        db.session.commit()  # the attachments kept above, not the signature
        on_signature = InputRefused(str(refused), field="signature")
        return _composer(draft, people, token, refused=on_signature, kept=kept)
    db.session.commit()
    flash(_("Your signature was saved."), "success")
    draft.insert_signature = True
    return _composer(draft, people, token, kept=kept)


@bp.route("/e-mail/modeles/<int:template_id>/renommer", methods=["POST"])
def rename_template(template_id: int):
    template = saved.template_for(current_user, template_id)
    form = TemplateNameForm()
    try:
        saved.rename_template(current_user, template, form.label.data or "")
    except saved.TemplateRefused as refused:
        db.session.rollback()
        flash(str(refused), "error")
    else:
        db.session.commit()
        flash(_("Template renamed."), "success")
    return redirect(_back_to_composer(form))


@bp.route("/e-mail/modeles/<int:template_id>/supprimer", methods=["POST"])
def delete_template(template_id: int):
    template = saved.template_for(current_user, template_id)
    form = TemplateNameForm()
    label = template.label
    saved.delete_template(current_user, template)
    db.session.commit()
    flash(_("Template « %(label)s » deleted.", label=label), "success")
    return redirect(_back_to_composer(form))


def _back_to_composer(form: TemplateNameForm) -> str:
    return url_for("compose.new", selection=form.selection.data or None)


@bp.route("/e-mail/cours/<int:course_id>", methods=["POST"])
def quick_course(course_id: int):
    course = db.get_or_404(Course, course_id)
    teachers, students = course_audience(course)
    return _quick(teachers + students, service.course_about(course))


@bp.route("/e-mail/promotion/<int:cohort_id>/equipe", methods=["POST"])
def quick_cohort(cohort_id: int):
    cohort = db.get_or_404(Cohort, cohort_id)
    return _quick(teaching_team(cohort), service.cohort_about(cohort))


def _quick(people, about: str):
    """Open the composer on these people, its subject naming what they were chosen for.

    A POST (a button on the course sheet or the cohort page): it writes the selection, and no
    GET may write.
    """
    selection = create_selection(current_user, [p.id for p in people])
    db.session.commit()
    return redirect(url_for("compose.new", selection=selection.token, kind="quick", about=about))


@bp.route("/e-mail/signature", methods=["GET", "POST"])
def signature():
    current = service.signature_of(current_user.id)
    if request.method == "GET":
        return render("compose/signature.html", signature=current, error=None)
    form = SignatureForm()
    if form.action.data == "delete":
        saved.delete_signature(current_user)
        db.session.commit()
        flash(_("Your signature was removed."), "success")
        return redirect(url_for("compose.signature"))
    uploads = read_uploads([form.signature.data] if form.signature.data else [])
    try:
        if not uploads:
            raise saved.TemplateRefused(_("Choose an image file."))
        saved.save_signature(current_user, uploads[0])
    except saved.TemplateRefused as refused:
        db.session.rollback()
        return form_again("compose/signature.html", signature=current, error=str(refused))
    db.session.commit()
    flash(_("Your signature was saved."), "success")
    return redirect(url_for("compose.signature"))


@bp.route("/e-mail/signature/image")
def signature_image():
    current = service.signature_of(current_user.id)
    if current is None:
        abort(404)
    return stored_file_response(read_attachment(current.attachment), current.filename, inline=True)
