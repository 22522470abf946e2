"""Sign-in, sign-out and the home page."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from hpmail.auth import service
from hpmail.auth.forms import SignInForm
from hpmail.auth.models import User
from hpmail.extensions import db, login_manager
from hpmail.web import public

bp = Blueprint("auth", __name__, cli_group=None)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def _safe_next(target: str | None) -> str:
    """Return ``target`` if it stays on this site, else the home page."""
    if target and not urlsplit(target).netloc and target.startswith("/") and "\\" not in target:
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
        try:
            user = service.authenticate(form.login.data, form.password.data, request.remote_addr or "")
        except service.SignInRefused as refused:
            db.session.commit()  # keep the failed attempt: it counts towards the throttle
            if refused.throttled:
                error = _("Too many failed attempts. Wait 15 minutes before trying again.")
                status = 429
            else:
                error = _("Wrong login or password, or this account is deactivated.")
                status = 401
        else:
            db.session.commit()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form, error=error), status


@bp.route("/deconnexion", methods=["POST"])
def logout():
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/")
def home():
    return render_template("auth/home.html")
