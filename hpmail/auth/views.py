"""Sign-in, sign-out, one's own password, the home page, and user management (admin)."""

from __future__ import annotations

from urllib.parse import urlsplit

import click
from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from hpmail.auth import service
from hpmail.auth.forms import (
    LiftSlowdownForm,
    LinkPersonForm,
    NewUserForm,
    OwnPasswordForm,
    ResetPasswordForm,
    SignInForm,
    UserDetailsForm,
    role_choices,
    role_label,
)
from hpmail.auth.models import Role, User
from hpmail.core.forms import InputRefused, form_again
from hpmail.core.web import admin_required, public, render, whole_number
from hpmail.extensions import db, login_manager

bp = Blueprint("auth", __name__, cli_group=None)


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """Return the signed-in user, or None (signed out) if deactivated or signed out everywhere."""
    user_id, _sep, token = session_id.partition(":")
    user_id = whole_number(user_id)
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.active or not token or token != user.session_token:
        return None
    return user


def _safe_next(target: str | None) -> str:
    """Return ``target`` if it stays on this site, else the home page.

    Browsers read ``///host``, ``/\\host`` and paths with tabs or line breaks as another site.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and target.isprintable()
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("auth.home")


@bp.route("/connexion", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("auth.home"))
    form = SignInForm()
    error, status = None, 200
    if form.validate_on_submit():
        address = request.remote_addr or ""
        try:
            user = service.authenticate(form.login.data, form.password.data, address)
        except service.SignInRefused as refused:
            db.session.commit()  # keep the failed attempt: it counts towards the throttle
            if refused.throttled:
                error = refused.message()
                status = 429
            else:
                error = _("Wrong login or password, or this account is deactivated.")
                status = 401
        else:
            db.session.commit()
            target = _safe_next(request.args.get("next"))
            session.clear()  # a fresh session at sign-in: nothing planted before survives
            login_user(user)
            return redirect(target)
    return render_template("auth/login.html", form=form, error=error), status


@bp.route("/deconnexion", methods=["POST"])
def logout():
    service.sign_out(current_user)
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/")
def home():
    return render_template("auth/home.html")


@bp.route("/mot-de-passe", methods=["GET", "POST"])
def password():
    form = OwnPasswordForm()
    if form.validate_on_submit():
        try:
            service.change_own_password(
                current_user,
                form.current_password.data,
                form.new_password.data,
                request.remote_addr or "",
            )
        except service.UserChangeRefused as refused:
            db.session.commit()  # keep the failed try: it counts towards the throttle
            return form_again("auth/password.html", form=form, refused=refused)
        db.session.commit()
        login_user(current_user._get_current_object())  # this browser stays signed in
        flash(_("Your password has been changed."), "success")
        return redirect(url_for("auth.home"))
    if form.errors:
        return form_again("auth/password.html", form=form)
    return render_template("auth/password.html", form=form)


# --- user management (admin) -----------------------------------------------------------------


@bp.route("/utilisateurs")
@admin_required
def users():
    text = request.args.get("q", "")[:100]
    role = request.args.get("role", "")
    if role not in {r.value for r in Role}:
        role = ""
    return render(
        "auth/users.html",
        fragment="rows",
        users=service.list_users(text, role or None),
        text=text,
        role=role,
        roles=role_choices(),
        role_label=role_label,
        slowdowns=service.current_slowdowns(),
    )


@bp.route("/utilisateurs/connexions-ralenties/lever", methods=["POST"])
@admin_required
def lift_slowdown():
    """Forget the failures that slow down a login from an address (or a whole address)."""
    form = LiftSlowdownForm()
    if form.validate_on_submit():
        service.lift_slowdown(current_user, form.login.data or None, form.address.data)
        db.session.commit()
        flash(
            _("Sign-ins from %(address)s are no longer slowed down.", address=form.address.data),
            "success",
        )
    else:
        flash(_("This slowdown is not known."), "error")
    return redirect(url_for("auth.users"))


@bp.route("/utilisateurs/nouveau", methods=["GET", "POST"])
@admin_required
def new_user():
    form = NewUserForm()
    if request.method == "GET":
        form.role.data = Role.STAFF.value
    if form.validate_on_submit():
        password = form.password.data or service.generate_password()
        try:
            user = service.create_user(
                form.login.data,
                form.display_name.data,
                password,
                form.role.data,
                form.email.data,
                actor=current_user,
            )
        except service.UserChangeRefused as refused:
            return form_again(
                "auth/new_user.html", form=form, refused=refused, roles=role_choices()
            )
        db.session.commit()
        if not form.password.data:
            return _password_shown(user, password)
        flash(_("User %(login)s created.", login=user.login), "success")
        return redirect(url_for("auth.user", user_id=user.id))
    if form.errors:
        return form_again("auth/new_user.html", form=form, roles=role_choices())
    return render_template("auth/new_user.html", form=form, roles=role_choices())


@bp.route("/utilisateurs/<int:user_id>", methods=["GET", "POST"])
@admin_required
def user(user_id: int):
    """Show a user; a POST changes their name, e-mail and role."""
    user = _user_or_404(user_id)
    if request.method == "GET":
        return _user_page(user)
    form = UserDetailsForm()
    if form.validate_on_submit():
        try:
            service.update_user(
                current_user,
                user,
                display_name=form.display_name.data,
                email=form.email.data,
                role=form.role.data,
            )
        except service.UserChangeRefused as refused:
            db.session.rollback()
            return _user_page(user, refused=refused, details_form=form)
        db.session.commit()
        flash(_("Changes saved."), "success")
        if not current_user.is_admin:  # an admin who gave up the role can no longer manage
            return redirect(url_for("auth.home"))
        return redirect(url_for("auth.user", user_id=user.id))
    return _user_page(user, invalid=True, details_form=form)


@bp.route("/utilisateurs/<int:user_id>/desactiver", methods=["POST"])
@admin_required
def deactivate_user(user_id: int):
    return _set_active(_user_or_404(user_id), False)


@bp.route("/utilisateurs/<int:user_id>/reactiver", methods=["POST"])
@admin_required
def reactivate_user(user_id: int):
    return _set_active(_user_or_404(user_id), True)


@bp.route("/utilisateurs/<int:user_id>/mot-de-passe", methods=["POST"])
@admin_required
def reset_password(user_id: int):
    user = _user_or_404(user_id)
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        return _user_page(user, invalid=True, reset_form=form)
    password = service.reset_password(current_user, user, form.new_password.data or None)
    db.session.commit()
    if user.id == current_user.id:
        login_user(user)  # the admin's other sessions end, not this one
    if not form.new_password.data:
        return _password_shown(user, password)
    flash(_("The password of %(login)s has been changed.", login=user.login), "success")
    return redirect(url_for("auth.user", user_id=user.id))


@bp.route("/utilisateurs/<int:user_id>/personne", methods=["POST"])
@admin_required
def link_person(user_id: int):
    user = _user_or_404(user_id)
    form = LinkPersonForm()
    if form.validate_on_submit():
        try:
            service.link_person(current_user, user, form.person_id.data)
        except service.UserChangeRefused as refused:
            db.session.rollback()
            return _user_page(user, refused=refused, link_form=form, on_field="person_id")
        db.session.commit()
        flash(_("Link to the directory saved."), "success")
        return redirect(url_for("auth.user", user_id=user.id))
    return _user_page(user, invalid=True, link_form=form)


@bp.route("/utilisateurs/<int:user_id>/personne/retirer", methods=["POST"])
@admin_required
def unlink_person(user_id: int):
    user = _user_or_404(user_id)
    service.link_person(current_user, user, None)
    db.session.commit()
    flash(_("The user is no longer linked to a directory person."), "success")
    return redirect(url_for("auth.user", user_id=user.id))


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _set_active(user: User, active: bool):
    try:
        service.set_active(current_user, user, active)
    except service.UserChangeRefused as refused:
        db.session.rollback()
        return _user_page(user, refused=refused, status_error=str(refused))
    db.session.commit()
    if active:
        flash(_("%(login)s can sign in again.", login=user.login), "success")
    else:
        flash(_("%(login)s is deactivated and signed out.", login=user.login), "success")
    return redirect(url_for("auth.user", user_id=user.id))


def _user_page(
    user: User,
    *,
    invalid: bool = False,
    refused: InputRefused | None = None,
    on_field: str | None = None,
    details_form=None,
    reset_form=None,
    link_form=None,
    status_error: str | None = None,
):
    """Render a user's page; forms not given start from the stored values, not from the request.

    ``invalid`` (or ``refused``, whose messages go beside its fields) shows the form given again
    with its errors (422).
    """
    refused_form = details_form or reset_form or link_form
    if details_form is None:
        details_form = UserDetailsForm(formdata=None, obj=user)
    person_text = request.args.get("person_q", "")[:100]
    context = dict(
        user=user,
        details_form=details_form,
        reset_form=reset_form or ResetPasswordForm(formdata=None),
        link_form=link_form or LinkPersonForm(formdata=None),
        status_error=status_error,
        person_text=person_text,
        suggestions=service.suggest_people(person_text) if person_text else [],
        role_label=role_label,
    )
    if not invalid and refused is None:
        return render("auth/user.html", "person_suggestions", **context)
    return form_again(
        "auth/user.html",
        "person_suggestions",
        form=refused_form,
        refused=refused,
        on_field=on_field,
        **context,
    )


def _password_shown(user: User, password: str):
    """Show a provisional password once; never cached, never put in the session."""
    response = make_response(
        render_template("auth/password_shown.html", user=user, password=password)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.cli.command("reset-password")
@click.argument("login")
def reset_password_command(login: str) -> None:
    """Give a user a new provisional password (printed once) and sign them out everywhere."""
    user = service.find_user_by_login(login)
    if user is None:
        raise click.ClickException(f"Aucun utilisateur « {login} ».")
    password = service.reset_password(None, user)
    db.session.commit()
    click.echo(f"Mot de passe provisoire de « {user.login} » : {password}")
