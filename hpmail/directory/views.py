"""Pages of the directory: people lists and their selection, courses, cohorts, CSV import."""

from __future__ import annotations

import click
from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from hpmail.core.forms import INVALID
from hpmail.core.web import admin_required, is_htmx, render
from hpmail.directory import (
    absences,
    importer,
    internships,
    record_import,
    refusals,
    service,
    uploads,
)
from hpmail.directory import selection as selections
from hpmail.directory.forms import (
    AbsenceImportForm,
    ClearRefusalForm,
    ImportForm,
    InternshipImportForm,
    RecordSelectionForm,
    SelectionForm,
)
from hpmail.directory.lists import list_page_of, listing
from hpmail.directory.models import (
    EMAIL_STATUS_LABELS,
    KIND_NAMES,
    KIND_PLURALS,
    Cohort,
    Course,
    Person,
    SelectionKind,
)
from hpmail.directory.people import PeopleFilter, checked_filter, cohort_choices, matching_ids
from hpmail.directory.reach import reachability
from hpmail.extensions import db

bp = Blueprint("directory", __name__, cli_group=None)
bp.add_app_template_global(KIND_PLURALS, "kind_plurals")
bp.add_app_template_global(KIND_NAMES, "kind_names")
bp.add_app_template_global(EMAIL_STATUS_LABELS, "email_status_labels")
bp.add_app_template_global(refusals.refusal_note, "email_refusal_note")


def _kind_or_404(kind: str) -> str:
    if kind not in KIND_PLURALS:
        abort(404)
    return kind


@bp.route("/plannings/<kind>")
def people(kind: str):
    kind = _kind_or_404(kind)
    flt = PeopleFilter.from_args(kind, request.args)
    token = request.args.get("selection")
    if not token:
        selection = selections.current_selection(current_user, kind)
        db.session.commit()
        return redirect(url_for(".people", kind=kind, selection=selection.token, **flt.as_args()))
    selection = selections.selection_for(current_user, token)
    if selection.kind != kind:
        abort(404)
    page_size = current_app.config["LIST_PAGE_SIZE"]
    return render(
        "directory/people.html",
        fragment="results",
        **listing(flt, selection, page_size, whole_page=not is_htmx()),
    )


@bp.route("/plannings/<kind>/selection/<token>", methods=["POST"])
def select(kind: str, token: str):
    kind = _kind_or_404(kind)
    selection = selections.selection_for(current_user, token)
    if selection.kind != kind:
        abort(404)
    form = SelectionForm()
    flt = checked_filter(PeopleFilter.from_args(kind, request.form))
    # The page the list is on (its own, or one showing a person's document beside it).
    list_page, kept = list_page_of(form.list_page.data, request.form)
    action = form.action.data
    shown = form.shown.data
    if action == "all":
        selections.add_matching(selection, matching_ids(flt))
    elif action == "none":
        selections.clear(selection)
    elif action == "page_on":
        selections.add_items(selection, shown)
    else:
        action = "page"
        selections.set_page(selection, shown, form.person_id.data)
    db.session.commit()
    if is_htmx() and action == "page":
        return render(
            "directory/people.html",
            fragment="counter",
            selected_count=selections.selected_count(selection),
        )
    if is_htmx():
        page_size = current_app.config["LIST_PAGE_SIZE"]
        return render(
            "directory/people.html",
            fragment="results",
            **listing(
                flt,
                selection,
                page_size,
                whole_page=False,
                endpoint=list_page.endpoint,
                kept=kept,
            ),
        )
    args = {**flt.as_args(), **kept}
    back = url_for(list_page.endpoint, kind=kind, selection=selection.token, **args)
    return redirect(back, 303)


@bp.route("/personnes/<int:person_id>/adresse-valide", methods=["POST"])
@admin_required
def clear_refusal(person_id: int):
    """« The address is valid again »: take off the mark a server's refusal put on it.

    Posted from a people list (its form carries the CSRF token and the filter): htmx gets the
    address cell again, a plain POST goes back to the list. Only the mark the admin saw is
    cleared: a replay, or a POST naming an older refusal, changes nothing and says so.
    """
    person = db.session.get(Person, person_id) or abort(404)
    form = ClearRefusalForm()
    seen = form.refused_at.data if form.validate_on_submit() else None
    cleared = seen is not None and seen == person.email_refused_at
    if cleared:
        refusals.clear_refusal(person, current_user.login)
        db.session.commit()
        message = _("The address of %(name)s is valid again.", name=person.full_name)
    else:
        message = _(
            "The address of %(name)s was not changed: it is no longer marked as the page "
            "showed it. Reload the page.",
            name=person.full_name,
        )
    if is_htmx():
        response = render(
            "directory/people.html", fragment="address_cell", person=person, message=message
        )
        response.status_code = 200 if cleared else INVALID
        return response
    flash(message, "success" if cleared else "error")
    flt = PeopleFilter.from_args(person.kind, request.form)
    return redirect(url_for(".people", kind=person.kind, **flt.as_args()), 303)


# The students' absences and internships: each list is its filter, its page and its template.
RECORD_LISTS = {
    SelectionKind.ABSENCE: (
        absences.AbsenceFilter,
        absences.absences_page,
        absences.matching_ids,
        "directory/absences.html",
    ),
    SelectionKind.INTERNSHIP: (
        internships.InternshipFilter,
        internships.internships_page,
        internships.matching_ids,
        "directory/internships.html",
    ),
}


def _records(kind: str, flt, selection) -> dict:
    _filter, page_of, _matching, _template = RECORD_LISTS[kind]
    page = page_of(flt, current_app.config["LIST_PAGE_SIZE"])
    page.selected_ids = selections.selected_among(selection, [item.id for item in page.items])
    return {
        "flt": flt,
        "listing": page,
        "selection": selection,
        "selected_count": selections.selected_count(selection),
        "cohorts": cohort_choices(),
    }


def _record_list(kind: str):
    filter_class, _page, _matching, template = RECORD_LISTS[kind]
    flt = filter_class.from_args(request.args)
    token = request.args.get("selection")
    if not token:
        selection = selections.current_selection(current_user, kind)
        db.session.commit()
        return redirect(url_for(request.endpoint, selection=selection.token, **flt.as_args()))
    selection = selections.selection_for(current_user, token)
    if selection.kind != kind:
        abort(404)
    return render(template, fragment="results", **_records(kind, flt, selection))


def _record_select(kind: str, token: str, list_endpoint: str):
    filter_class, _page, matching_ids_of, template = RECORD_LISTS[kind]
    selection = selections.selection_for(current_user, token)
    if selection.kind != kind:
        abort(404)
    form = RecordSelectionForm()
    flt = filter_class.from_args(request.form)
    action = form.action.data
    if action == "all":
        selections.add_matching(selection, matching_ids_of(flt))
    elif action == "none":
        selections.clear(selection)
    elif action == "page_on":
        selections.add_items(selection, form.shown.data)
    else:
        action = "page"
        selections.set_page(selection, form.shown.data, form.item_id.data)
    db.session.commit()
    if is_htmx() and action == "page":
        count = selections.selected_count(selection)
        return render(template, fragment="counter", selected_count=count)
    if is_htmx():
        return render(template, fragment="results", **_records(kind, flt, selection))
    return redirect(url_for(list_endpoint, selection=selection.token, **flt.as_args()), 303)


@bp.route("/plannings/etudiants/absences")
def absence_list():
    return _record_list(SelectionKind.ABSENCE)


@bp.route("/plannings/etudiants/absences/selection/<token>", methods=["POST"])
def select_absences(token: str):
    return _record_select(SelectionKind.ABSENCE, token, ".absence_list")


@bp.route("/plannings/etudiants/stages")
def internship_list():
    return _record_list(SelectionKind.INTERNSHIP)


@bp.route("/plannings/etudiants/stages/selection/<token>", methods=["POST"])
def select_internships(token: str):
    return _record_select(SelectionKind.INTERNSHIP, token, ".internship_list")


@bp.route("/cours")
def courses():
    flt = service.CourseFilter.from_args(request.args)
    page = service.courses_page(flt, current_app.config["LIST_PAGE_SIZE"])
    return render(
        "directory/courses.html",
        fragment="results",
        flt=flt,
        listing=page,
        cohorts=cohort_choices(),
    )


@bp.route("/cours/<int:course_id>")
def course(course_id: int):
    course = db.session.get(Course, course_id) or abort(404)
    teachers, students = service.course_audience(course)
    return render(
        "directory/course.html",
        course=course,
        teachers=teachers,
        students=students,
        reach=reachability([*teachers, *students]),
    )


@bp.route("/promotions")
def cohorts():
    return render("directory/cohorts.html", rows=service.cohorts_with_counts())


@bp.route("/promotions/<int:cohort_id>")
def cohort(cohort_id: int):
    cohort = db.session.get(Cohort, cohort_id) or abort(404)
    team = service.teaching_team(cohort)
    return render(
        "directory/cohort.html",
        cohort=cohort,
        team=team,
        reach=reachability(team),
        student_count=service.student_count(cohort),
        group_sizes=service.group_sizes(cohort),
    )


# What each import page reads: its form, its importer and its title.
IMPORTS = {
    "people": (ImportForm, importer.import_people, lambda: _("Import people")),
    "absences": (AbsenceImportForm, record_import.import_absences, lambda: _("Import absences")),
    "internships": (
        InternshipImportForm,
        record_import.import_internships,
        lambda: _("Import internships"),
    ),
}


@bp.route("/import", methods=["GET", "POST"])
@admin_required
def import_people():
    return _import_page("people")


@bp.route("/import/absences", methods=["GET", "POST"])
@admin_required
def import_absences():
    return _import_page("absences")


@bp.route("/import/stages", methods=["GET", "POST"])
@admin_required
def import_internships():
    return _import_page("internships")


def _import_page(what: str):
    form_class, run_import, title = IMPORTS[what]
    form = form_class()
    report, token = None, None
    max_bytes = current_app.config["IMPORT_MAX_BYTES"]
    if request.method == "POST" and form.token.data:
        token = form.token.data
        data = uploads.read_upload(current_user.id, token)
        if data is None:
            flash(_("The file is no longer available: send it again."), "error")
            return redirect(url_for(request.endpoint))
        report = run_import(data, valid_only=True, max_bytes=max_bytes, actor=current_user.login)
        db.session.commit()
        uploads.discard_upload(current_user.id, token)
        token = None
    elif form.validate_on_submit():
        data = form.file.data.read(max_bytes + 1)
        report = run_import(data, max_bytes=max_bytes, actor=current_user.login)
        if report.applied:
            db.session.commit()
        else:
            db.session.rollback()
            if report.rejected and not report.errors:
                token = uploads.keep_upload(current_user.id, data)
    shown_rows, hidden_rows = importer.rows_to_show(report) if report else ([], 0)
    return render(
        "directory/import.html",
        title=title(),
        form=form,
        report=report,
        token=token,
        summary=importer.summary,
        shown_rows=shown_rows,
        hidden_rows=hidden_rows,
        labels={status: label() for status, label in importer.STATUS_LABELS.items()},
    )


def _import_command(what: str, path: str, valid_only: bool) -> None:
    _form, run_import, _title = IMPORTS[what]
    with open(path, "rb") as stream:
        data = stream.read(current_app.config["IMPORT_MAX_BYTES"] + 1)
    report = run_import(
        data,
        valid_only=valid_only,
        max_bytes=current_app.config["IMPORT_MAX_BYTES"],
        actor=f"cli:{path}",
    )
    for line in importer.report_lines(report):
        click.echo(line)
    if not report.applied:
        db.session.rollback()
        raise SystemExit(1)
    db.session.commit()


VALID_ONLY = click.option(
    "--valid-only", is_flag=True, help="Import the valid rows even if others are rejected."
)
CSV_PATH = click.argument("path", type=click.Path(exists=True, dir_okay=False))


@bp.cli.command("import-people")
@CSV_PATH
@VALID_ONLY
def import_people_command(path: str, valid_only: bool) -> None:
    """Import people from a CSV file (nom, prénom, e-mail, type, promotion, groupes…)."""
    _import_command("people", path, valid_only)


@bp.cli.command("import-absences")
@CSV_PATH
@VALID_ONLY
def import_absences_command(path: str, valid_only: bool) -> None:
    """Import absences from a CSV file (étudiant, date, début, fin, cours, motif, justifiée…)."""
    _import_command("absences", path, valid_only)


@bp.cli.command("import-internships")
@CSV_PATH
@VALID_ONLY
def import_internships_command(path: str, valid_only: bool) -> None:
    """Import internships from a CSV file (étudiant, entreprise, tuteur, début, fin…)."""
    _import_command("internships", path, valid_only)
