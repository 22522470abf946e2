"""Pages of documents: timetables and summaries in the browser, the school's letterhead."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from hpmail.core.forms import InputRefused, form_again
from hpmail.core.web import admin_required, render
from hpmail.documents import letterhead, models
from hpmail.documents.forms import LetterheadForm
from hpmail.extensions import db
from hpmail.outbox.attachments import stored_file_response

bp = Blueprint("documents", __name__)


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
