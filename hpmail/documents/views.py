"""Pages of documents: timetables and summaries in the browser, the school's letterhead, the
print dialog (Imprimer), a print job's progress and file, and Imprimer / Mailer's composer."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hpmail.accounts.service import (
    NotAuthorised,
    default_account,
    saved_settings,
    usable_accounts,
)
from hpmail.compose import service as compose_service
from hpmail.compose.forms import DraftForm
from hpmail.compose.richtext import sanitize_html
from hpmail.core.forms import INVALID, InputRefused, form_again
from hpmail.core.time import school_today
from hpmail.core.web import admin_required, render, whole_number
from hpmail.directory import selection as selections
from hpmail.directory.lists import list_page_of, listing, register_list_page
from hpmail.directory.models import Cohort, Group, Person, PersonKind
from hpmail.directory.people import PeopleFilter
from hpmail.documents import jobs, letterhead, mailing, models, tasks
from hpmail.documents.content import cohort_document, group_document, person_documents
from hpmail.documents.forms import LetterheadForm, PrintForm
from hpmail.documents.kinds import kind_of
from hpmail.documents.layout import (
    DOCUMENT_KIND_LABELS,
    OUTPUT_LABELS,
    PAPERS,
    PRINT_COPY_LABELS,
    PRINTED_KINDS,
    DocumentKind,
    Output,
    Period,
)
from hpmail.documents.models import JobState
from hpmail.documents.periods import PeriodRefused, period_from_query, week_from_query
from hpmail.extensions import db
from hpmail.outbox.attachments import read_attachment, stored_file_response
from hpmail.outbox.models import Mailing

bp = Blueprint("documents", __name__)

# The query values of a document page: the person shown, the week or the period.
PERSON_ARG = "personne"
PERIOD_ARGS = {DocumentKind.TIMETABLE: ("semaine",), DocumentKind.SUMMARY: ("du", "au")}
PERSON_PAGES = {
    DocumentKind.TIMETABLE: "documents.person_timetable",
    DocumentKind.SUMMARY: "documents.person_summary",
}
OWNER_PAGES = {
    ("cohort", DocumentKind.TIMETABLE): "documents.cohort_timetable",
    ("cohort", DocumentKind.SUMMARY): "documents.cohort_summary",
    ("group", DocumentKind.TIMETABLE): "documents.group_timetable",
    ("group", DocumentKind.SUMMARY): "documents.group_summary",
}
# Only teachers and students have courses.
PEOPLE_WITH_DOCUMENTS = (PersonKind.TEACHER, PersonKind.STUDENT)
# The people list beside a document keeps the person shown and the week or the period.
for doc_kind, endpoint in PERSON_PAGES.items():
    register_list_page(endpoint, keeps=PERIOD_ARGS[doc_kind], person_arg=PERSON_ARG)
del doc_kind, endpoint


@bp.app_template_filter("hours")
def format_hours(value: float) -> str:
    """Return hours as people write them: « 1,5 h », « 12 h »."""
    return _("%(num)s h", num=format_decimal(value, "#,##0.##"))


@bp.app_template_filter("school_days")
def school_days(monday: date) -> list[tuple[int, date]]:
    """Return the days a timetable shows, Monday to Saturday, with their weekday number."""
    return [(weekday, monday + timedelta(days=weekday)) for weekday in range(6)]


def _period(doc_kind: DocumentKind, args) -> Period:
    """Return the week or the period asked by the query; raise ``PeriodRefused``."""
    today = school_today()
    if doc_kind == DocumentKind.TIMETABLE:
        return week_from_query(args.get("semaine"), today)
    return period_from_query(args.get("du"), args.get("au"), today)


def _period_values(doc_kind: DocumentKind, period: Period | None, args) -> dict[str, str]:
    """Return the period's query values as the page's inputs show them (as typed if refused)."""
    if period is None:
        return {name: (args.get(name) or "")[:40] for name in PERIOD_ARGS[doc_kind]}
    if doc_kind == DocumentKind.TIMETABLE:
        return {"semaine": period.start.isoformat()}
    return {"du": period.start.isoformat(), "au": period.end.isoformat()}


def _document_context(
    doc_kind: DocumentKind, endpoint: str, path: dict, state: dict, make_document
) -> dict:
    """Read the period of the query and make the document; what every document page shows.

    ``path`` holds the values of the page's URL rule, ``state`` its other query values (kept by
    its links and forms); a refused period gives no document and its messages (answered 422).
    """
    try:
        period = _period(doc_kind, request.args)
    except PeriodRefused as refused:
        period, errors = None, refused.messages()
    else:
        errors = []
    document = make_document(period) if period is not None else None

    def page_url(**period_values) -> str:
        return url_for(endpoint, **path, **state, **period_values)

    weeks = {}
    if period is not None and doc_kind == DocumentKind.TIMETABLE:
        weeks = {
            "previous": page_url(semaine=period.start - timedelta(weeks=1)),
            "next": page_url(semaine=period.start + timedelta(weeks=1)),
            "this": page_url(semaine=Period.week_of(school_today()).start),
        }
    return {
        "doc_kind": doc_kind,
        "doc_title": DOCUMENT_KIND_LABELS[doc_kind],
        "document": document,
        "period": period,
        "period_values": _period_values(doc_kind, period, request.args),
        "period_errors": errors,
        "page_action": url_for(endpoint, **path),
        "page_state": state,
        "weeks": weeks,
    }


# --- Configuration › En-tête des documents ------------------------------------------------------


@bp.route("/configuration/en-tete-documents", methods=["GET", "POST"])
@admin_required
def letterhead_settings():
    saved = db.session.get(models.Letterhead, letterhead.LETTERHEAD_ID)
    form = LetterheadForm(obj=saved)
    context = {"form": form, "has_logo": bool(saved and saved.logo_id)}
    if request.method == "GET":
        return render("documents/letterhead.html", **context)
    if not form.validate_on_submit():
        return form_again("documents/letterhead.html", **context)
    try:
        letterhead.save_letterhead(
            form.school_name.data,
            form.address.data,
            form.town.data,
            logo=form.logo_bytes(),
            remove_logo=form.remove_logo.data,
            actor=current_user.login,
        )
    except InputRefused as refused:
        db.session.rollback()
        return form_again("documents/letterhead.html", refused=refused, **context)
    db.session.commit()
    flash(_("The letterhead of the documents is saved."), "success")
    return redirect(url_for(".letterhead_settings"), 303)


@bp.route("/configuration/en-tete-documents/logo")
@admin_required
def letterhead_logo():
    logo = letterhead.current_letterhead().logo or abort(404)
    return stored_file_response(logo, "logo", inline=True)


# --- Plannings › Enseignants / Étudiants › Emploi du temps, Récapitulatif ---------------------


@bp.route("/plannings/<kind>/emploi-du-temps")
def person_timetable(kind: str):
    return _person_page(kind, DocumentKind.TIMETABLE)


@bp.route("/plannings/<kind>/recapitulatif")
def person_summary(kind: str):
    return _person_page(kind, DocumentKind.SUMMARY)


def _person_page(kind: str, doc_kind: DocumentKind):
    """The people list on the left (filters, selection), the chosen person's document beside it.

    A name or a week swaps the list and the document together (``#documents-view``, picked from
    the page); the list's filters, sort and pages swap the list alone (the ``results`` block).
    """
    if kind not in PEOPLE_WITH_DOCUMENTS:
        abort(404)
    endpoint = PERSON_PAGES[doc_kind]
    flt = PeopleFilter.from_args(kind, request.args)
    _page, kept = list_page_of(endpoint, request.args)
    token = request.args.get("selection")
    if not token:
        selection = selections.current_selection(current_user, kind)
        db.session.commit()
        args = {**flt.as_args(), **kept}
        return redirect(url_for(endpoint, kind=kind, selection=selection.token, **args))
    selection = selections.selection_for(current_user, token)
    if selection.kind != kind:
        abort(404)
    person = _person_or_404(kind, request.args.get(PERSON_ARG))
    page_size = current_app.config["LIST_PAGE_SIZE"]
    if request.headers.get("HX-Target") == "results":
        context = listing(flt, selection, page_size, whole_page=False, endpoint=endpoint, kept=kept)
        return render("directory/people.html", "results", **context)
    context = listing(flt, selection, page_size, endpoint=endpoint, kept=kept)
    state = {"selection": selection.token, **flt.as_args()}
    if person is not None:
        state[PERSON_ARG] = person.id

    def make_document(period: Period):
        return person_documents(doc_kind, [person.id], period)[person.id]

    context |= _document_context(
        doc_kind,
        endpoint,
        {"kind": kind},
        state,
        make_document if person is not None else lambda _period: None,
    )
    context |= {
        "shown_person_id": person.id if person is not None else None,
        "person": person,
        "tabs": _person_tabs(kind, selection.token, flt, person),
    }
    status = INVALID if context["period_errors"] else 200
    return render("documents/person.html", **context), status


def _person_or_404(kind: str, raw: str | None) -> Person | None:
    """Return the person named by the query, of this list's kind; None when none is named."""
    if raw is None or raw == "":
        return None
    person_id = whole_number(raw, minimum=1)
    person = db.session.get(Person, person_id) if person_id else None
    if person is None or person.kind != kind:
        abort(404)
    return person


def _person_tabs(kind: str, token: str, flt: PeopleFilter, person: Person | None) -> list:
    """The list, the timetable and the summary of the same people, as (label, url, endpoint)."""
    chosen = {PERSON_ARG: person.id} if person is not None else {}
    args = {"kind": kind, "selection": token, **flt.as_args()}
    return [
        (_("List"), url_for("directory.people", **args), "directory.people"),
        *(
            (DOCUMENT_KIND_LABELS[k], url_for(endpoint, **args, **chosen), endpoint)
            for k, endpoint in PERSON_PAGES.items()
        ),
    ]


# --- Promotions › a cohort or a group: Emploi du temps, Récapitulatif -------------------------


@bp.route("/promotions/<int:cohort_id>/emploi-du-temps")
def cohort_timetable(cohort_id: int):
    return _owner_page("cohort", cohort_id, DocumentKind.TIMETABLE)


@bp.route("/promotions/<int:cohort_id>/recapitulatif")
def cohort_summary(cohort_id: int):
    return _owner_page("cohort", cohort_id, DocumentKind.SUMMARY)


@bp.route("/groupes/<int:group_id>/emploi-du-temps")
def group_timetable(group_id: int):
    return _owner_page("group", group_id, DocumentKind.TIMETABLE)


@bp.route("/groupes/<int:group_id>/recapitulatif")
def group_summary(group_id: int):
    return _owner_page("group", group_id, DocumentKind.SUMMARY)


def _owner_page(owner_kind: str, owner_id: int, doc_kind: DocumentKind):
    """A cohort's or a group's document; its week picker and period swap the document alone."""
    if owner_kind == "cohort":
        owner = db.session.get(Cohort, owner_id) or abort(404)
        cohort, make = owner, cohort_document
        id_arg = {"cohort_id": owner.id}
    else:
        owner = db.session.get(Group, owner_id) or abort(404)
        cohort, make = owner.cohort, group_document
        id_arg = {"group_id": owner.id}
    context = _document_context(
        doc_kind,
        OWNER_PAGES[owner_kind, doc_kind],
        id_arg,
        {},
        lambda period: make(doc_kind, owner, period),
    )
    context |= {
        "owner_kind": owner_kind,
        "owner": owner,
        "owner_name": owner.name if owner is cohort else f"{cohort.name} — {owner.name}",
        "cohort": cohort,
        "tabs": [
            (DOCUMENT_KIND_LABELS[k], url_for(OWNER_PAGES[owner_kind, k], **id_arg), endpoint)
            for k in PRINTED_KINDS
            for endpoint in [OWNER_PAGES[owner_kind, k]]
        ],
    }
    status = INVALID if context["period_errors"] else 200
    return render("documents/owner.html", "document", **context), status


# --- Imprimer: the print dialog, print jobs, Imprimer / Mailer ---------------------------------


@bp.app_template_global()
def printed_copy_of(mailing) -> str | None:
    """Return the address of a document mailing's printed copy, for its author; else None.

    The archive's detail shows it, without importing documents (a layer above it).
    """
    job = db.session.scalar(
        select(models.DocumentJob).where(
            models.DocumentJob.mailing_id == mailing.id,
            models.DocumentJob.user_id == current_user.id,
            models.DocumentJob.output_file_id.is_not(None),
        )
    )
    return url_for("documents.job_file", job_id=job.id) if job is not None else None


# What a page's Imprimer button may give the dialog to start with.
DIALOG_ARGS = ("selection", "person", "cohort", "group", "kind", "period", "week", "start", "end")


def _dialog(form: PrintForm, whose: jobs.Whose, refused: InputRefused | None = None):
    """Render the print dialog for these people (422 with the refusal's messages)."""
    return print_dialog_page(form, jobs.owners_of(current_user, whose), refused)


def print_dialog_page(
    form: PrintForm, owners: jobs.Owners, refused: InputRefused | None = None, **mode
):
    """Render the print dialog for ``owners`` (422 with the refusal's messages).

    ``mode`` changes what it prints: « Envoyer un courrier » (hpmail.letters) gives its
    ``form_action`` and ``letters`` (the letter templates to choose from) instead of the kinds
    and the layout of documents.
    """
    form.request_token.data = form.request_token.data or str(uuid.uuid4())
    context = {
        "form": form,
        "owners_count": owners.count,
        "first_owner": owners.first_name,
        "kinds": {k: DOCUMENT_KIND_LABELS[k] for k in PRINTED_KINDS},
        "outputs": OUTPUT_LABELS,
        "print_copies": PRINT_COPY_LABELS,
        "papers": PAPERS,
        "general_errors": [],
        "form_action": url_for("documents.print_dialog"),
        "letters": None,
        **mode,
    }
    if refused is not None:
        return form_again(
            "documents/print_dialog.html", refused=refused, errors_key="general_errors", **context
        )
    return render("documents/print_dialog.html", **context)


@bp.route("/documents/imprimer", methods=["GET", "POST"])
def print_dialog():
    """The print dialog (Imprimer): a GET shows it for the list's selection or the page's owner;
    the POST writes the job, tells the worker, and goes on to the composer or the progress."""
    if request.method == "GET":
        # Whose documents, which kind and period come from the page's Imprimer button; the rest
        # starts from the form's defaults.
        given = {name: request.args[name] for name in DIALOG_ARGS if request.args.get(name)}
        form = PrintForm(formdata=None, data=given)
        today = school_today()
        if not form.week.data:
            form.week.data = today.isoformat()
        if not form.start.data:
            period = Period.week_of(today)
            form.start.data, form.end.data = period.start.isoformat(), period.end.isoformat()
        return _dialog(form, form.whose())
    form = PrintForm()
    whose = form.whose()
    token = form.request_token.data
    replayed = jobs.job_of_request(token)
    if replayed is not None:
        return after_dialog(replayed)
    try:
        if not form.validate_on_submit():
            raise jobs.PrintRefused(_("This form has expired: check it and send it again."))
        choices = jobs.checked_request(form.print_request())
        job = jobs.create_job(current_user, choices, jobs.owners_of(current_user, whose), token)
        db.session.commit()
    except jobs.PrintRefused as refused:
        db.session.rollback()
        return _dialog(form, whose, refused)
    except IntegrityError:
        # The same form was committed by another request (a double click): show that job.
        db.session.rollback()
        return after_dialog(jobs.job_of_request(token) or abort(409))
    tasks.enqueue_job(job.id)
    return after_dialog(job)


def after_dialog(job):
    """Where the dialog's POST goes: the composer for an e-mail, else the job's progress."""
    if job.user_id != current_user.id:
        abort(404)
    if job.output == Output.EMAIL and not job.mail:
        return redirect(url_for("documents.mail", job_id=job.id), 303)
    return redirect(url_for("documents.job_progress", job_id=job.id), 303)


@bp.route("/documents/impression/<int:job_id>")
def job_progress(job_id: int):
    """How far the job is (htmx polls the fragment), then its file or its mailing's state."""
    job = jobs.job_for(current_user, job_id)
    mailing_ = db.session.get(Mailing, job.mailing_id) if job.mailing_id else None
    outcome = compose_service.outcome_of(mailing_) if mailing_ else None
    progress = jobs.progress_of(job)
    finished = job.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
    waiting = len(mailing.waiting_emails(job)) if job.mail else 0
    return render(
        "documents/progress.html",
        fragment="progress",
        job=job,
        progress=progress,
        mailing=mailing_,
        outcome=outcome,
        waiting=waiting,
        finished=finished,
        polling=not finished or waiting > 0 or bool(outcome and outcome.queued),
        kind_label=DOCUMENT_KIND_LABELS[DocumentKind(job.kind)],
        output_label=OUTPUT_LABELS[Output(job.output)],
    )


@bp.route("/documents/impression/<int:job_id>/fichier")
def job_file(job_id: int):
    """The job's file: the PDF to print, the ZIP of PDFs, or the printed copy (owner only)."""
    job = jobs.job_for(current_user, job_id)
    if job.output_file is None:
        abort(404)
    try:
        data = read_attachment(job.output_file)
    except OSError:
        abort(404)
    return stored_file_response(data, job.output_filename or "documents.pdf")


def _document_composer(job, draft, refused=None, status=200):
    """Render the composer with the job's people as its fixed recipients."""
    reach = mailing.recipients_summary(job)
    draft.body = sanitize_html(draft.body)
    draft.request_token = draft.request_token or str(uuid.uuid4())
    registered = kind_of(job)
    context = dict(
        job=job,
        reach=reach,
        # Each e-mail's own copies offered under Autres (an internship's tutor).
        copies_label=registered.copies_label(job)
        if registered and registered.copies_label
        else None,
        item_copies=request.method == "GET" or request.form.get("item_copies") == "y",
        kind_label=DOCUMENT_KIND_LABELS[DocumentKind(job.kind)],
        form_action=url_for(".mail", job_id=job.id),
        draft=draft,
        types=[],
        other_kinds=list(compose_service.KIND_ORDER),
        others=compose_service.others_by_id(draft.other_ids),
        token="",
        accounts=usable_accounts(current_user),
        signature=compose_service.signature_of(current_user.id),
        templates=[],
        kept=[],
        errors=refused.errors if refused is not None else {},
        warnings=getattr(refused, "warnings", {}),
        limits={},
    )
    if refused is not None and refused.errors and status == 200:
        return form_again("documents/mail.html", **context)
    response = render("documents/mail.html", **context)
    response.status_code = status
    return response


@bp.route("/documents/impression/<int:job_id>/e-mail", methods=["GET", "POST"])
def mail(job_id: int):
    """Imprimer / Mailer: the composer on the job's people; Envoyer keeps the e-mail on the job,
    whose worker queues each person's e-mail as soon as their document is ready."""
    job = jobs.job_for(current_user, job_id)
    if job.output != Output.EMAIL:
        abort(404)
    if job.mail:
        flash(_("This e-mail has already been sent: it was not sent a second time."), "info")
        return redirect(url_for(".job_progress", job_id=job.id), 303)
    if request.method == "GET":
        account = default_account(current_user)
        draft = compose_service.Draft(
            subject=mailing.default_subject(job),
            body=mailing.default_introduction(job),
            insert_signature=compose_service.signature_of(current_user.id) is not None,
            account_id=account.id if account else None,
            hide_recipients=bool(saved_settings(current_user).hide_recipients),
            kind="document",
        )
        return _document_composer(job, draft)
    draft = DraftForm().draft()
    if draft.account_id is None:
        account = default_account(current_user)
        draft.account_id = account.id if account else None
    try:
        if draft.account_id is None:
            raise compose_service.ComposeRefused(
                {"account_id": [_("You have no account to send from yet.")]}
            )
        copies = request.form.get("item_copies") == "y"
        mail_draft = mailing.prepare_mail(current_user, job, draft, item_copies=copies)
    except compose_service.ComposeRefused as refused:
        db.session.rollback()
        return _document_composer(job, draft, refused)
    except NotAuthorised as refused:
        db.session.rollback()
        on_account = InputRefused(str(refused), field="account_id")
        return _document_composer(job, draft, on_account, status=403)
    if not mailing.save_mail(job, mail_draft):
        db.session.rollback()
        flash(_("This e-mail has already been sent: it was not sent a second time."), "info")
        return redirect(url_for(".job_progress", job_id=job.id), 303)
    db.session.commit()
    tasks.enqueue_job(job.id)
    return redirect(url_for(".job_progress", job_id=job.id), 303)
