"""Forms of the documents: the school's letterhead."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, StringField, TextAreaField

from hpmail.documents.letterhead import (
    ADDRESS_MAX_LENGTH,
    LOGO_MAX_BYTES,
    NAME_MAX_LENGTH,
    TOWN_MAX_LENGTH,
)


class LetterheadForm(FlaskForm):
    """Configuration › En-tête des documents; ``letterhead.save_letterhead`` checks the values."""

    school_name = StringField(
        _l("School name"), render_kw={"maxlength": NAME_MAX_LENGTH, "autocomplete": "off"}
    )
    address = TextAreaField(
        _l("Address"),
        render_kw={"maxlength": ADDRESS_MAX_LENGTH, "rows": 4},
        description=_l("A few lines, printed under the name."),
    )
    town = StringField(
        _l("Town"),
        render_kw={"maxlength": TOWN_MAX_LENGTH},
        description=_l("Printed in « Fait à …, le … »."),
    )
    logo = FileField(
        _l("Logo"),
        render_kw={"accept": "image/png,image/jpeg"},
        description=_l("PNG or JPEG image, at most %(num)s MB.", num=LOGO_MAX_BYTES // 2**20),
    )
    remove_logo = BooleanField(_l("Remove the logo"))

    def logo_bytes(self) -> bytes | None:
        """Return the uploaded logo's bytes (one byte past the limit at most), or None."""
        upload = self.logo.data
        if upload is None or not getattr(upload, "filename", ""):
            return None
        return upload.read(LOGO_MAX_BYTES + 1)
