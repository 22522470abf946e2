"""Forms of the documents: the school's letterhead, and the print dialog (Imprimer), whose choices
``documents.jobs.checked_request`` checks."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, StringField, TextAreaField

from hpmail.compose.service import request_token
from hpmail.core.web import whole_number
from hpmail.documents.jobs import PrintRequest, Whose
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


def _short(value):
    """Keep a posted choice short: every real value is a word or an ISO date."""
    return value.strip()[:20] if isinstance(value, str) else value


class PrintForm(FlaskForm):
    """The print dialog: whose documents, which, where they go, and how they look."""

    # Whose documents: a list's selection, or the owner of the page printed from.
    selection = HiddenField(filters=[lambda value: (value or "")[:64]])
    person = HiddenField(filters=[whole_number])
    cohort = HiddenField(filters=[whole_number])
    group = HiddenField(filters=[whole_number])
    request_token = HiddenField(filters=[request_token])
    kind = StringField(default="timetable", filters=[_short])
    output = StringField(default="printer", filters=[_short])
    paper = StringField(default="A4", filters=[_short])
    orientation = StringField(default="landscape", filters=[_short])
    colour = StringField(default="colour", filters=[_short])
    show_room = BooleanField(default=True)
    show_teachers = BooleanField(default=True)
    show_groups = BooleanField(default=True)
    period = StringField(default="week", filters=[_short])  # "week" or "dates"
    week = StringField(filters=[_short])
    start = StringField(filters=[_short])
    end = StringField(filters=[_short])
    attach_pdf = BooleanField(default=True)
    inline_png = BooleanField(default=False)
    print_copy = StringField(default="none", filters=[_short])

    def whose(self) -> Whose:
        """Return whose documents the dialog prints, as posted (checked by the service)."""
        return Whose(
            selection=self.selection.data or "",
            person_id=self.person.data,
            cohort_id=self.cohort.data,
            group_id=self.group.data,
        )

    def print_request(self) -> PrintRequest:
        """Return the dialog's choices as posted (checked by ``jobs.checked_request``)."""
        return PrintRequest(
            kind=self.kind.data or "",
            output=self.output.data or "",
            paper=self.paper.data or "",
            orientation=self.orientation.data or "",
            colour=self.colour.data or "",
            show_room=self.show_room.data,
            show_teachers=self.show_teachers.data,
            show_groups=self.show_groups.data,
            period=self.period.data or "",
            week=self.week.data or "",
            start=self.start.data or "",
            end=self.end.data or "",
            attach_pdf=self.attach_pdf.data,
            inline_png=self.inline_png.data,
            print_copy=self.print_copy.data or "",
            request_token=self.request_token.data or "",
        )
