"""Forms of the letters: a letter template, and the record its preview is written for."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField

from hpmail.core.web import whole_number
from hpmail.letters.models import SUBJECT_MAX_LENGTH, TITLE_MAX_LENGTH


class LetterForm(FlaskForm):
    """Configuration › Lettres types; ``service.save_letter`` checks the values."""

    title = StringField(_l("Title"), render_kw={"maxlength": TITLE_MAX_LENGTH})
    subject = StringField(
        _l("Subject"),
        render_kw={"maxlength": SUBJECT_MAX_LENGTH},
        description=_l("The e-mail's subject; it may hold fields."),
    )
    body = TextAreaField(_l("Letter"))
    # The record the preview is written for (a person, a student with absences, an internship).
    record = HiddenField(filters=[whole_number])
