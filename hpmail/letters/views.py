"""Pages of the letters: Configuration › Lettres types, the editor and its live preview."""

from __future__ import annotations

import io

from flask import Blueprint, abort, flash, redirect, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import literal, select
from sqlalchemy.exc import IntegrityError

from hpmail.core.forms import INVALID, InputRefused, form_again
from hpmail.core.time import school_today
from hpmail.core.web import render, roles_required
from hpmail.documents import jobs, tasks
from hpmail.documents.forms import PrintForm
from hpmail.documents.letterhead import current_letterhead
from hpmail.documents.print_html import french_date
from hpmail.documents.render import RenderError, safe_filename
from hpmail.documents.views import after_dialog, print_dialog_page
from hpmail.extensions import db
from hpmail.letters import courrier, sandbox, service
from hpmail.letters.fields import FIELDS, recipient_of, sample_choices, sample_record
from hpmail.letters.forms import LetterForm
from hpmail.letters.models import CATEGORY_LABELS, Category, LetterTemplate
from hpmail.letters.render import letter_pdf, write_letter

bp = Blueprint("letters", __name__)
bp.add_app_template_global(CATEGORY_LABELS, "letter_category_labels")

EDITORS = ("admin", "staff")
editors_only = roles_required(*EDITORS)


def _category_or_404(raw: str | None) -> Category:
    if raw not in set(Category):
        abort(404)
    return Category(raw)


def _letter_or_404(letter_id: int) -> LetterTemplate:
    return db.session.get(LetterTemplate, letter_id) or abort(404)


def _editor_context(category: Category, form: LetterForm, letter=None) -> dict:
    return {
        "category": category,
        "form": form,
        "letter": letter,
        "fields": [(str(field.label), field.inserted) for field in FIELDS[category]],
        "records": sample_choices(category),
    }


@bp.route("/configuration/lettres-types")
@editors_only
def index():
    return render("letters/index.html", letters=service.letters_by_category())


@bp.route("/configuration/lettres-types/nouvelle/<category>", methods=["GET", "POST"])
@editors_only
def new(category: str):
    category = _category_or_404(category)
    form = LetterForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            letter = service.save_letter(
                None, category, form.title.data, form.subject.data, form.body.data, current_user
            )
        except InputRefused as refused:
            db.session.rollback()
            return form_again(
                "letters/edit.html", refused=refused, **_editor_context(category, form)
            )
        db.session.commit()
        flash(_("The letter « %(title)s » is saved.", title=letter.title), "success")
        return redirect(url_for(".edit", letter_id=letter.id), 303)
    return render("letters/edit.html", **_editor_context(category, form))


@bp.route("/configuration/lettres-types/<int:letter_id>", methods=["GET", "POST"])
@editors_only
def edit(letter_id: int):
    letter = _letter_or_404(letter_id)
    category = Category(letter.category)
    if request.method == "GET":
        form = LetterForm(
            formdata=None, title=letter.title, subject=letter.subject, body=letter.body_html
        )
        return render("letters/edit.html", **_editor_context(category, form, letter))
    form = LetterForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        service.save_letter(
            letter, category, form.title.data, form.subject.data, form.body.data, current_user
        )
    except InputRefused as refused:
        db.session.rollback()
        letter = _letter_or_404(letter_id)
        return form_again(
            "letters/edit.html", refused=refused, **_editor_context(category, form, letter)
        )
    db.session.commit()
    flash(_("The letter « %(title)s » is saved.", title=letter.title), "success")
    return redirect(url_for(".edit", letter_id=letter.id), 303)


@bp.route("/configuration/lettres-types/<int:letter_id>/supprimer", methods=["POST"])
@editors_only
def delete(letter_id: int):
    letter = _letter_or_404(letter_id)
    form = LetterForm()
    if not form.validate_on_submit():
        abort(400)
    service.delete_letter(letter, current_user)
    db.session.commit()
    flash(_("The letter « %(title)s » is deleted.", title=letter.title), "success")
    return redirect(url_for(".index"), 303)


def _draft(category: Category, form: LetterForm) -> LetterTemplate:
    """The letter as posted by the editor, checked, not saved."""
    title, subject, body = service.checked_letter(
        category, form.title.data or "-", form.subject.data, form.body.data
    )
    return LetterTemplate(category=category, title=title, subject=subject, body_html=body)


@bp.route("/configuration/lettres-types/apercu/<category>", methods=["POST"])
@editors_only
def preview(category: str):
    """The letter being edited, written for a real record of the directory (htmx)."""
    category = _category_or_404(category)
    form = LetterForm()
    if not form.validate_on_submit():
        abort(400)
    record = sample_record(category, form.record.data)
    context = {"category": category, "record": record}
    if record is None:
        return render("letters/edit.html", "preview", **context)
    letterhead, today = current_letterhead(), school_today()
    try:
        draft = _draft(category, form)
        written = write_letter(draft, record, letterhead, today)
    except (InputRefused, sandbox.RenderLimit) as refused:
        problems = refused.messages() if isinstance(refused, InputRefused) else [str(refused)]
        response = render("letters/edit.html", "preview", problems=problems, **context)
        response.status_code = INVALID
        return response
    person = recipient_of(record)
    return render(
        "letters/edit.html",
        "preview",
        written=written,
        letterhead=letterhead,
        addressee=f"{person.first_name} {person.last_name}".strip(),
        today=french_date(today),
        **context,
    )


@bp.route("/configuration/lettres-types/apercu/<category>/pdf", methods=["POST"])
@editors_only
def preview_pdf(category: str):
    """The letter being edited as the PDF it prints to, for the record of the preview."""
    category = _category_or_404(category)
    form = LetterForm()
    if not form.validate_on_submit():
        abort(400)
    record = sample_record(category, form.record.data)
    try:
        draft = _draft(category, form)
        if record is None:
            raise InputRefused(_("The directory has no record of this category to preview."))
        pdf = letter_pdf(draft, record, current_letterhead())
    except (InputRefused, RenderError) as refused:
        if not isinstance(refused, InputRefused):
            refused = InputRefused(str(refused), field="body")
        return form_again("letters/edit.html", refused=refused, **_editor_context(category, form))
    name = safe_filename(form.title.data or _("Letter"))
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=name)


# « Envoyer un courrier »: documents' print dialog in its letter mode, then its print job.


def _letter_dialog(form: PrintForm, refused: InputRefused | None = None):
    """Render the print dialog in its letter mode for the form's selection (422 when refused)."""
    token = form.selection.data or ""
    try:
        category = courrier.category_of(current_user, token) if token else None
    except InputRefused as wrong_list:
        category, refused = None, refused or wrong_list
    if category is not None:
        owners = courrier.owners_of_letters(current_user, token, category)
    else:
        owners = jobs.Owners(select(literal(0)), 0, "", True)
    return print_dialog_page(
        form,
        owners,
        refused,
        letters=courrier.letters_of(category) if category else [],
        form_action=url_for("letters.send_letter"),
    )


@bp.route("/courrier", methods=["GET", "POST"])
def send_letter():
    """Envoyer un courrier: a GET shows the dialog for the list's selection; the POST checks the
    letter (chosen, of the list's category), writes the job, tells the worker, and goes on to
    the composer or the progress, as Imprimer does."""
    if request.method == "GET":
        form = PrintForm(formdata=None, data={"selection": request.args.get("selection", "")})
        return _letter_dialog(form)
    form = PrintForm()
    token = form.request_token.data
    replayed = jobs.job_of_request(token)
    if replayed is not None:
        return after_dialog(replayed)
    try:
        if not form.validate_on_submit():
            raise jobs.PrintRefused(_("This form has expired: check it and send it again."))
        if not form.selection.data:
            raise jobs.PrintRefused(_("Nobody is selected: tick people in the list first."))
        category = courrier.category_of(current_user, form.selection.data)
        letter = courrier.checked_letter(form.letter.data, category)
        choices = jobs.checked_request(form.print_request(), letter_id=letter.id)
        owners = courrier.owners_of_letters(current_user, form.selection.data, category)
        job = jobs.create_job(current_user, choices, owners, token)
        db.session.commit()
    except InputRefused as refused:
        db.session.rollback()
        return _letter_dialog(form, refused)
    except IntegrityError:
        db.session.rollback()
        return after_dialog(jobs.job_of_request(token) or abort(409))
    tasks.enqueue_job(job.id)
    return after_dialog(job)
