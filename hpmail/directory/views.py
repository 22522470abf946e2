"""Pages of the directory: people lists with a server-side selection, courses, cohorts, CSV import."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hpmail.directory import selection as selections
from hpmail.directory import service
from hpmail.directory.models import Cohort, Course, PersonKind
from hpmail.directory.people import PeopleFilter, cohort_choices, people_page, positive_int
from hpmail.directory.reach import reachability
from hpmail.extensions import db
from hpmail.web import is_htmx, render

bp = Blueprint("directory", __name__, cli_group=None)

KIND_TITLES = {
    PersonKind.TEACHER: _l("Teachers"),
    PersonKind.STUDENT: _l("Students"),
    PersonKind.STAFF: _l("Staff"),
}
COURSE_PAGE_SIZE = 50
MAX_IDS_PER_POST = 1000


def _kind_or_404(kind: str) -> str:
    if kind not in KIND_TITLES:
        abort(404)
    return kind


def _endpoint_url(endpoint: str, **values) -> str | None:
    """Return the URL of ``endpoint`` if that page exists yet, else None."""
    if endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


def _ids(values: list[str]) -> list[int]:
    ids = [positive_int(value) for value in values[:MAX_IDS_PER_POST]]
    return [pid for pid in ids if pid]


def _listing(flt: PeopleFilter, selection) -> dict:
    page = people_page(flt, current_app.config["LIST_PAGE_SIZE"])
    page.selected_ids = selections.selected_among(selection, [p.id for p in page.people])
    return {
        "kind": flt.kind,
        "title": KIND_TITLES[flt.kind],
        "flt": flt,
        "listing": page,
        "selection": selection,
        "selected_count": selections.selected_count(selection),
        "cohorts": cohort_choices() if flt.kind == PersonKind.STUDENT else [],
        "compose_url": _endpoint_url("compose.new", selection=selection.token),
    }


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
    return render("directory/people.html", fragment="results", **_listing(flt, selection))


@bp.route("/plannings/<kind>/selection/<token>", methods=["POST"])
def select(kind: str, token: str):
    kind = _kind_or_404(kind)
    selection = selections.selection_for(current_user, token)
    if selection.kind != kind:
        abort(404)
    flt = PeopleFilter.from_args(kind, request.form)
    action = request.form.get("action", "page")
    shown = _ids(request.form.getlist("shown"))
    if action == "all":
        selections.add_matching(selection, flt)
    elif action == "none":
        selections.clear(selection)
    elif action == "page_on":
        selections.add_people(selection, shown)
    else:
        action = "page"
        selections.set_page(selection, shown, _ids(request.form.getlist("person_id")))
    db.session.commit()
    if is_htmx() and action == "page":
        return render(
            "directory/people.html",
            fragment="counter",
            selected_count=selections.selected_count(selection),
        )
    if is_htmx():
        return render("directory/people.html", fragment="results", **_listing(flt, selection))
    args = flt.as_args()
    return redirect(url_for(".people", kind=kind, selection=selection.token, **args), 303)


@bp.route("/cours")
def courses():
    flt = service.CourseFilter.from_args(request.args)
    page = service.courses_page(flt, COURSE_PAGE_SIZE)
    return render(
        "directory/courses.html", fragment="results", flt=flt, listing=page, cohorts=cohort_choices()
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
        quick_url=_endpoint_url("compose.quick_course", course_id=course.id),
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
        quick_url=_endpoint_url("compose.quick_cohort", cohort_id=cohort.id),
    )
