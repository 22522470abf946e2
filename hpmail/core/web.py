"""Request glue shared by all features: sign-in by default, roles, menus, htmx fragments."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from flask import (
    Flask,
    abort,
    current_app,
    g,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from jinja2_fragments.flask import render_block
from sqlalchemy.exc import OperationalError, PendingRollbackError
from werkzeug.routing import IntegerConverter

log = logging.getLogger(__name__)

# The largest integer a database column holds (signed 64 bits in SQLite and PostgreSQL).
MAX_ID = 2**63 - 1
# No list has more pages than this: the page number times the page size stays a database integer.
MAX_PAGE = 10**9

# Scripts and styles come from /static only: an injected <script>, on…= handler or style cannot
# run. Pages drive their behaviours with data- attributes read by static/app.js; htmx is told
# (meta htmx-config in base.html) not to inject its indicator style nor to eval anything.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    )
)
# Strict-Transport-Security, sent when the session cookie is Secure (the site is on HTTPS).
HSTS_SECONDS = 365 * 24 * 3600

# Endpoints reachable without signing in.
PUBLIC_ENDPOINTS = {"static", "auth.login"}


class IdConverter(IntegerConverter):
    """``<int:…>`` in every route: a number no database row can have is a 404, not a 500."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits, min, max, signed)


def whole_number(raw: str | None, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """Return the text of a form field or query parameter as an integer in bounds, else None.

    Every id or number read from a request goes through here, so that a number too large for
    the database is treated like any wrong value (the form's message, or a 404) and not a 500.
    """
    text = (raw or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(maximum)):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def page_number(raw: str | None) -> int:
    """Return a list's page number from the query string: 1 when missing or malformed."""
    return whole_number(raw, minimum=1, maximum=MAX_PAGE) or 1


def public(view: Callable) -> Callable:
    """Mark a view as reachable without signing in."""
    view.is_public = True
    return view


def roles_required(*roles: str) -> Callable:
    """Refuse (403) a signed-in user whose role is not one of ``roles``."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def checked(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        checked.roles = roles
        return checked

    return decorate


admin_required = roles_required("admin")


def is_htmx() -> bool:
    """Tell whether this request wants a fragment.

    Not for a boosted navigation, nor for htmx restoring a page from history: both want the page.
    """
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def render(template: str, fragment: str | None = None, **context):
    """Render the whole page, or only the block ``fragment`` when htmx asks for it.

    One view serves both, so the page works without JavaScript and htmx swaps just the part.
    """
    if fragment and is_htmx():
        body = render_block(template, fragment, **context)
    else:
        body = render_template(template, **context)
    response = current_app.make_response(body)
    response.vary.add("HX-Request")
    return response


# The menus of the original product. An item whose endpoint is not registered (the test mailbox
# outside demo mode) is left out, so it never shows as a dead link.
MENUS = (
    (
        _l("Schedules"),
        (
            (_l("Teachers"), "directory.people", {"kind": "teacher"}, None),
            (_l("Teachers' timetables"), "documents.person_timetable", {"kind": "teacher"}, None),
            (_l("Teachers' summaries"), "documents.person_summary", {"kind": "teacher"}, None),
            (_l("Students"), "directory.people", {"kind": "student"}, None),
            (_l("Students' timetables"), "documents.person_timetable", {"kind": "student"}, None),
            (_l("Students' summaries"), "documents.person_summary", {"kind": "student"}, None),
            (_l("Students › Absences"), "directory.absence_list", {}, None),
            (_l("Students › Internships"), "directory.internship_list", {}, None),
            (_l("Staff"), "directory.people", {"kind": "staff"}, None),
            (_l("Cohorts"), "directory.cohorts", {}, None),
        ),
    ),
    ((_l("Courses"), ((_l("Course list"), "directory.courses", {}, None),))),
    (
        _l("Communication"),
        (
            (_l("Write an e-mail"), "compose.new", {}, None),
            (_l("E-mails"), "archive.index", {}, None),
        ),
    ),
    (
        _l("Configuration"),
        (
            (_l("Set up e-mail sending for this workstation"), "accounts.mail_settings", {}, None),
            (_l("Manage the school's e-mail accounts"), "accounts.school_accounts", {}, "admin"),
            (_l("Manage e-mail sending profiles"), "delivery.profiles", {}, "admin"),
            (_l("Users"), "auth.users", {}, "admin"),
            (_l("Import people"), "directory.import_people", {}, "admin"),
            (_l("Letterhead of the documents"), "documents.letterhead_settings", {}, "admin"),
            (_l("Import absences"), "directory.import_absences", {}, "admin"),
            (_l("Import internships"), "directory.import_internships", {}, "admin"),
            (_l("Form letters"), "letters.index", {}, ("admin", "staff")),
        ),
    ),
    (
        _l("Server"),
        (
            (_l("E-mail sending settings"), "delivery.server_settings", {}, "admin"),
            (_l("Allowed domains: SPF, DKIM, DMARC"), "delivery.domains", {}, "admin"),
            (_l("Outbox"), "delivery.outbox", {}, "admin"),
            (_l("Test mailbox"), "delivery.demo_mailbox", {}, "admin"),
        ),
    ),
)


def _roles(role: str | tuple[str, ...]) -> tuple[str, ...]:
    """A menu item's roles: one role, or several."""
    return (role,) if isinstance(role, str) else role


def visible_menus() -> list[tuple[str, list[tuple[str, str]]]]:
    """Return the menus the signed-in user may open, each as (title, [(label, url)])."""
    menus = []
    for title, items in MENUS:
        links = [
            (label, url_for(endpoint, **args))
            for label, endpoint, args, role in items
            if endpoint in current_app.view_functions
            and (role is None or current_user.role in _roles(role))
        ]
        if links:
            menus.append((title, links))
    return menus


def init_app(app: Flask) -> None:
    from hpmail.extensions import login_manager

    # Before any blueprint adds its routes: the rules take their converter when added.
    app.url_map.converters["int"] = IdConverter
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to open this page.")
    login_manager.login_message_category = "info"

    @app.before_request
    def require_sign_in():
        if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
            return None
        view = current_app.view_functions.get(request.endpoint)
        if getattr(view, "is_public", False):
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        headers.setdefault("Referrer-Policy", "same-origin")
        if current_app.config["SESSION_COOKIE_SECURE"]:
            headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_SECONDS}")
        user = g.get("_login_user")  # only when the request loaded it: this must not query
        if request.endpoint != "static" and user is not None and user.is_authenticated:
            # A signed-in page holds someone's mail: no copy on disk, in a proxy or in history.
            headers["Cache-Control"] = "no-store"
        return response

    @app.context_processor
    def layout():
        return {
            "visible_menus": visible_menus if current_user.is_authenticated else list,
            "get_locale": get_locale,
        }

    @app.route("/favicon.ico")
    @public
    def favicon():
        """Serve the icon where browsers ask for it, for responses that are not pages too."""
        return send_from_directory(
            current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon"
        )

    for code in (400, 403, 404, 405, 413, 500):
        app.register_error_handler(code, _error_page)
    # The database stayed locked (or is unreachable): the "busy" page, not a server error.
    for database_error in (OperationalError, PendingRollbackError):
        app.register_error_handler(database_error, _busy_page)


def _error_page(error):
    code = getattr(error, "code", 500) or 500
    try:
        return render_template("errors/error.html", code=code, error=error), code
    except (OperationalError, PendingRollbackError) as database_error:
        # The layout needed the database (the signed-in user) and it cannot answer.
        return _busy_page(database_error)


def _busy_page(error):
    """Answer 503 with a page that renders without the database, after rolling the session back."""
    from hpmail.extensions import db

    try:
        db.session.rollback()
    except Exception:  # the connection itself may be gone; the page needs none
        log.exception("rolling back after a database error failed")
    log.warning("database unavailable for %s %s: %s", request.method, request.path, error)
    return render_template("errors/busy.html"), 503, {"Retry-After": "5"}
