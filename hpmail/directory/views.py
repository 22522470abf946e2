"""Pages of the directory: people lists and their selection, courses, cohorts, CSV import."""

from __future__ import annotations

import click
from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from hpmail.core.web import admin_required, is_htmx, render
from hpmail.directory import importer, service, uploads
from hpmail.directory import selection as selections
from hpmail.directory.forms import ImportForm, SelectionForm
from hpmail.directory.lists import list_page_of, listing
from hpmail.directory.models import (
    EMAIL_STATUS_LABELS,
    KIND_NAMES,
    KIND_PLURALS,
    Cohort,
    Course,
)
from hpmail.directory.people import PeopleFilter, checked_filter, cohort_choices
from hpmail.directory.reach import reachability
from hpmail.extensions import db

bp = Blueprint("directory", __name__, cli_group=None)
bp.add_app_template_global(KIND_PLURALS, "kind_plurals")
bp.add_app_template_global(KIND_NAMES, "kind_names")
bp.add_app_template_global(EMAIL_STATUS_LABELS, "email_status_labels")


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
        selections.add_matching(selection, flt)
    elif action == "none":
        selections.clear(selection)
    elif action == "page_on":
        selections.add_people(selection, shown)
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


@bp.route("/import", methods=["GET", "POST"])
@admin_required
def import_people():
    form = ImportForm()
    report, token = None, None
    max_bytes = current_app.config["IMPORT_MAX_BYTES"]
    if request.method == "POST" and form.token.data:
        token = form.token.data
        data = uploads.read_upload(current_user.id, token)
        if data is None:
            flash(_("The file is no longer available: send it again."), "error")
            return redirect(url_for(".import_people"))
        report = importer.import_people(
            data, valid_only=True, max_bytes=max_bytes, actor=current_user.login
        )
        db.session.commit()
        uploads.discard_upload(current_user.id, token)
        token = None
    elif form.validate_on_submit():
        data = form.file.data.read(max_bytes + 1)
        report = importer.import_people(data, max_bytes=max_bytes, actor=current_user.login)
        if report.applied:
            db.session.commit()
        else:
            db.session.rollback()
            if report.rejected and not report.errors:
                token = uploads.keep_upload(current_user.id, data)
    shown_rows, hidden_rows = importer.rows_to_show(report) if report else ([], 0)
    return render(
        "directory/import.html",
        form=form,
        report=report,
        token=token,
        summary=importer.summary,
        shown_rows=shown_rows,
        hidden_rows=hidden_rows,
        labels={status: label() for status, label in importer.STATUS_LABELS.items()},
    )


@bp.cli.command("import-people")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--valid-only", is_flag=True, help="Import the valid rows even if others are rejected."
)
def import_people_command(path: str, valid_only: bool) -> None:
    """Import people from a CSV file (nom, prénom, e-mail, type, promotion, groupes…)."""
    with open(path, "rb") as stream:
        data = stream.read(current_app.config["IMPORT_MAX_BYTES"] + 1)
    report = importer.import_people(
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
