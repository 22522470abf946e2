"""Walk EVERY URL of the app with every role: sign-in required, roles enforced, CSRF, no 500.

A new route whose URL has an argument this file does not know makes the walk fail: add the argument
to ``ARGUMENTS`` below (a function that creates the object with the factories and returns its id).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from flask import url_for
from werkzeug.security import generate_password_hash

from hpmail.auth.models import User
from hpmail.core.time import utcnow
from hpmail.core.web import MENUS
from tests.conftest import PASSWORD

ROLES = ("anonymous", "teacher", "staff", "admin")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SIGN_IN_PATH = "/connexion"
_unique = itertools.count(1)


class Walk:
    """What the walk needs to fill URL arguments: the walking user, factories, values made so far.

    Objects are made for (and owned by) the walking user where ownership applies, so that the
    views run their real code; for the anonymous walk they belong to the admin.
    """

    def __init__(self, app, user: User, users: dict[str, User], db, factories: dict[str, Callable]):
        self.app = app
        self.user = user
        self.users = users
        self.db = db
        self.make = factories
        self.values: dict[str, object] = {}

    def get(self, name: str):
        """Return the value of a URL argument, made once per walk."""
        if name not in self.values:
            if name not in ARGUMENTS:
                raise UnknownArgument(name)
            self.values[name] = ARGUMENTS[name](self)
        return self.values[name]

    def add(self, *objects):
        self.db.session.add_all(objects)
        self.db.session.commit()
        return objects[0]


class UnknownArgument(LookupError):
    pass


# --- how to fill each URL argument -----------------------------------------------------------


def _person(walk: Walk):
    return walk.make["person"]("teacher", last_name="Walker", first_name="Paul")


def _cohort(walk: Walk):
    return walk.make["cohort"](f"Promotion {next(_unique)}", groups=("TD1", "TD2"))


def _course(walk: Walk):
    cohort = walk.db.session.get(_model("hpmail.directory.models", "Cohort"), walk.get("cohort_id"))
    teacher = walk.db.session.get(
        _model("hpmail.directory.models", "Person"), walk.get("person_id")
    )
    return walk.make["course"](teachers=[teacher], cohorts=[cohort])


def _selection_token(walk: Walk) -> str:
    from hpmail.directory.selection import create_selection

    student = walk.make["person"]("student")
    selection = create_selection(walk.user, [student.id], kind="student")
    walk.db.session.commit()
    return selection.token


def _account(walk: Walk):
    from hpmail.accounts.models import Account

    account = Account(
        kind="school",
        label=f"Secrétariat {next(_unique)}",
        address=f"secretariat{next(_unique)}@lycee.example",
        verified_at=utcnow(),
        secret_question="Ville de naissance de la directrice ?",
        secret_answer_hash=generate_password_hash("Nantes"),
        members=[walk.user],
    )
    return walk.add(account)


def _profile(walk: Walk):
    from hpmail.outbox.models import SendingProfile, Transport

    transport = Transport(host="127.0.0.1", port=2525, security="none")
    return walk.add(SendingProfile(name=f"Profil {next(_unique)}", transport=transport))


def _mailing(walk: Walk):
    from hpmail.outbox.attachments import store_attachment
    from hpmail.outbox.models import EmailRecipient, Mailing, MailingAttachment, OutboundEmail

    n = next(_unique)
    mailing = Mailing(
        author_id=walk.user.id,
        account_id=walk.get("account_id"),
        kind="email",
        subject="Conseil de classe",
        text_body="Bonjour,",
        sender_name="Secrétariat",
        sender_address="secretariat@lycee.example",
    )
    mailing.emails = [
        OutboundEmail(
            message_id=f"<walk-{n}@lycee.example>",
            recipients=[EmailRecipient(address="parent@exemple.fr", name="Parent")],
        )
    ]
    attachment = store_attachment(b"Ordre du jour\n", "text/plain")
    mailing.attachments = [MailingAttachment(attachment=attachment, filename="ordre-du-jour.txt")]
    return walk.add(mailing)


def _template(walk: Walk):
    from hpmail.compose.models import Template

    return walk.add(
        Template(owner_id=walk.user.id, label=f"Modèle {next(_unique)}", subject="Réunion")
    )


def _print_job(walk: Walk):
    from hpmail.documents.models import DocumentJob, DocumentJobItem

    person = walk.get("person_id")
    job = DocumentJob(
        user_id=walk.user.id,
        kind="timetable",
        output="email",
        period_start=utcnow(),
        period_end=utcnow(),
        items=[DocumentJobItem(position=0, owner_id=person, name="Paul Walker")],
    )
    return walk.add(job)


def _letter(walk: Walk):
    from hpmail.letters.models import LetterTemplate

    letter = LetterTemplate(category="students", title="Convocation", body_html="<p>{{ nom }}</p>")
    return walk.add(letter)


def _allowed_domain(walk: Walk) -> str:
    from hpmail.outbox.settings import server_settings

    server_settings().allowed_domains = "lycee.example"
    walk.db.session.commit()
    return "lycee.example"


def _model(module: str, name: str):
    from importlib import import_module

    return getattr(import_module(module), name)


ARGUMENTS: dict[str, Callable[[Walk], object]] = {
    "filename": lambda walk: "app.css",
    "kind": lambda walk: "student",
    "user_id": lambda walk: walk.users["teacher"].id,
    "person_id": lambda walk: _person(walk).id,
    "cohort_id": lambda walk: _cohort(walk).id,
    "group_id": lambda walk: _cohort_group_id(walk),
    "course_id": lambda walk: _course(walk).id,
    "token": _selection_token,
    "account_id": lambda walk: _account(walk).id,
    "profile_id": lambda walk: _profile(walk).id,
    "transport_id": lambda walk: _profile(walk).transport_id,
    "template_id": lambda walk: _template(walk).id,
    "letter_id": lambda walk: _letter(walk).id,
    "category": lambda walk: "students",
    "mailing_id": lambda walk: _mailing(walk).id,
    "email_id": lambda walk: _mailing_part(walk, "emails"),
    "item_id": lambda walk: _mailing_part(walk, "attachments"),
    "job_id": lambda walk: _print_job(walk).id,
    "domain": _allowed_domain,
}


def _cohort_group_id(walk: Walk) -> int:
    cohort = walk.db.session.get(_model("hpmail.directory.models", "Cohort"), walk.get("cohort_id"))
    return cohort.groups[0].id


def _mailing_part(walk: Walk, relation: str) -> int:
    mailing = walk.db.session.get(_model("hpmail.outbox.models", "Mailing"), walk.get("mailing_id"))
    return getattr(mailing, relation)[0].id


# --- the walk --------------------------------------------------------------------------------


def all_rules(app):
    return sorted(app.url_map.iter_rules(), key=lambda rule: (rule.rule, rule.endpoint))


@pytest.fixture
def users(make_user) -> dict[str, User]:
    return {role: make_user(role, login=f"walk-{role}") for role in ("teacher", "staff", "admin")}


@pytest.fixture
def walk_for(app, users, db, make_person, make_cohort, make_course):
    factories = {"person": make_person, "cohort": make_cohort, "course": make_course}

    def make(role: str) -> Walk:
        return Walk(app, users.get(role, users["admin"]), users, db, factories)

    return make


def build_url(rule, walk: Walk) -> str:
    values = {}
    for name in sorted(rule.arguments):
        try:
            values[name] = walk.get(name)
        except UnknownArgument:
            pytest.fail(
                f"The URL rule {rule.rule} ({rule.endpoint}) has the argument '{name}' that "
                f"tests/test_authorization.py does not know: add '{name}' to ARGUMENTS there "
                f"(a function that creates the object with the factories and returns its id).",
                pytrace=False,
            )
    with walk.app.test_request_context():
        return url_for(rule.endpoint, **values)


def fetch(client, method: str, url: str, **kwargs):
    """Return the response, or the exception the view raised (the app runs with TESTING=True)."""
    from hpmail.extensions import db

    try:
        response = client.open(url, method=method, **kwargs)
    except Exception as error:  # noqa: BLE001 - every failure is reported, the walk goes on
        db.session.rollback()
        return error
    response.close()
    return response


def sign_in(client, user: User) -> None:
    response = client.post("/connexion", data={"login": user.login, "password": PASSWORD})
    assert response.status_code == 302, f"{user.login} could not sign in: {response.status_code}"


def is_sign_in_redirect(response) -> bool:
    location = urlsplit(response.headers.get("Location", ""))
    return response.status_code in (301, 302, 303, 307) and location.path == SIGN_IN_PATH


@pytest.mark.parametrize("role", ROLES)
def test_every_page_checks_sign_in_and_role_and_never_fails(app, client, walk_for, role):
    walk = walk_for(role)
    if role != "anonymous":
        sign_in(client, walk.user)
    problems: list[str] = []
    for rule in all_rules(app):
        if "GET" not in rule.methods:
            continue
        url = build_url(rule, walk)
        view = app.view_functions[rule.endpoint]
        public = getattr(view, "is_public", False) or rule.endpoint == "static"
        roles = getattr(view, "roles", None)
        variants = [{}] if role == "anonymous" else [{}, {"HX-Request": "true"}]
        for headers in variants:
            where = f"GET {url} ({rule.endpoint}){' htmx' if headers else ''} as {role}"
            response = fetch(client, "GET", url, headers={"Accept-Language": "fr", **headers})
            if isinstance(response, Exception):
                problems.append(f"{where}: raised {type(response).__name__}: {response}")
                continue
            if response.status_code >= 500:
                problems.append(f"{where}: {response.status_code}")
            elif role == "anonymous" and not public and not is_sign_in_redirect(response):
                problems.append(f"{where}: {response.status_code}, not sent to the sign-in page")
            elif role != "anonymous" and is_sign_in_redirect(response):
                problems.append(f"{where}: sent to the sign-in page although signed in")
            elif (
                roles is not None
                and role != "anonymous"
                and role not in roles
                and response.status_code != 403
            ):
                problems.append(f"{where}: {response.status_code}, expected 403 (roles {roles})")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.mark.parametrize("role", ROLES)
def test_every_state_change_without_csrf_token_is_refused(app, client, walk_for, role):
    walk = walk_for(role)
    if role != "anonymous":
        sign_in(client, walk.user)
    problems = []
    for rule in all_rules(app):
        for method in sorted(rule.methods & WRITE_METHODS):
            url = build_url(rule, walk)
            response = fetch(client, method, url, data={"x": "1"}, csrf=False)
            if isinstance(response, Exception):
                problems.append(f"{method} {url} ({rule.endpoint}) as {role}: raised {response!r}")
            elif response.status_code != 400:
                problems.append(
                    f"{method} {url} ({rule.endpoint}) as {role} without CSRF token: "
                    f"{response.status_code}, expected 400"
                )
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.mark.parametrize("role", ("anonymous", "teacher", "staff"))
def test_every_state_change_is_refused_before_the_view_when_not_allowed(
    app, client, walk_for, role
):
    """With a valid CSRF token: anonymous → sign-in page, a role not in ``view.roles`` → 403.

    Only requests refused before the view runs are sent, so the walk changes nothing.
    """
    walk = walk_for(role)
    if role != "anonymous":
        sign_in(client, walk.user)
    problems = []
    for rule in all_rules(app):
        view = app.view_functions[rule.endpoint]
        roles = getattr(view, "roles", None)
        public = getattr(view, "is_public", False)
        if role == "anonymous" and public:
            continue
        if role != "anonymous" and (roles is None or role in roles):
            continue
        for method in sorted(rule.methods & WRITE_METHODS):
            url = build_url(rule, walk)
            where = f"{method} {url} ({rule.endpoint}) as {role}"
            response = fetch(client, method, url, data={"x": "1"})
            if isinstance(response, Exception):
                problems.append(f"{where}: raised {response!r}")
            elif role == "anonymous" and not is_sign_in_redirect(response):
                problems.append(f"{where}: {response.status_code}, not sent to the sign-in page")
            elif role != "anonymous" and response.status_code != 403:
                problems.append(f"{where}: {response.status_code}, expected 403 (roles {roles})")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_the_sign_in_page_is_where_the_walk_expects_it(app):
    with app.test_request_context():
        assert url_for("auth.login") == SIGN_IN_PATH


def test_admin_menu_items_lead_to_admin_only_pages(app):
    problems = []
    for _title, items in MENUS:
        for _label, endpoint, _args, role in items:
            view = app.view_functions.get(endpoint)
            roles = (role,) if isinstance(role, str) else role
            if view is not None and role is not None and getattr(view, "roles", None) != roles:
                problems.append(f"{endpoint} is in the menu for {role} only, but its view allows "
                                f"{getattr(view, 'roles', 'every signed-in user')}")  # fmt: skip
    assert not problems, "\n".join(problems)


def test_an_unknown_url_argument_is_reported_clearly(app, walk_for):
    from werkzeug.routing import Map, Rule

    rule = Rule("/nouveau/<int:widget_id>", endpoint="auth.home")
    Map([rule])
    with pytest.raises(pytest.fail.Exception, match="widget_id.*ARGUMENTS"):
        build_url(rule, walk_for("admin"))
