"""Pages of documents: timetables and summaries in the browser, the school's letterhead."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user

from hpmail.core.forms import INVALID, InputRefused, form_again
from hpmail.core.web import admin_required, render, whole_number
from hpmail.directory import selection as selections
from hpmail.directory.lists import list_page_of, listing, register_list_page
from hpmail.directory.models import Cohort, Group, Person, PersonKind
from hpmail.directory.people import PeopleFilter
from hpmail.documents import letterhead, models
from hpmail.documents.content import cohort_document, group_document, person_documents
from hpmail.documents.forms import LetterheadForm
from hpmail.documents.layout import DOCUMENT_KIND_LABELS, DocumentKind, Period
from hpmail.documents.periods import PeriodRefused, period_from_query, week_from_query
from hpmail.extensions import db
from hpmail.outbox.attachments import stored_file_response

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
    today = date.today()
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
            "this": page_url(semaine=Period.week_of(date.today()).start),
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
            for k in DocumentKind
            for endpoint in [OWNER_PAGES[owner_kind, k]]
        ],
    }
    status = INVALID if context["period_errors"] else 200
    return render("documents/owner.html", "document", **context), status
