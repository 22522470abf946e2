"""The school's letterhead, printed at the top of every document: read it, and save the admin's."""

from __future__ import annotations

import logging

from flask_babel import gettext as _

from hpmail.core.forms import InputRefused
from hpmail.core.text import UNSAFE_CHARACTERS, is_header_safe, unsafe_message
from hpmail.documents.layout import LetterheadInfo
from hpmail.documents.models import Letterhead
from hpmail.extensions import db
from hpmail.outbox.attachments import read_attachment, sniffed_type, store_attachment
from hpmail.outbox.models import Attachment

log = logging.getLogger(__name__)

LETTERHEAD_ID = 1
LOGO_MAX_BYTES = 1024 * 1024
LOGO_TYPES = ("image/png", "image/jpeg")
NAME_MAX_LENGTH = 200  # Letterhead.school_name
TOWN_MAX_LENGTH = 120  # Letterhead.town
ADDRESS_MAX_LENGTH = 500
ADDRESS_MAX_LINES = 6


def current_letterhead() -> LetterheadInfo:
    """Return the letterhead as printed: the saved one, or an empty one when none is saved.

    A logo whose file cannot be read is left out (and logged): a document is still printed.
    """
    row = db.session.get(Letterhead, LETTERHEAD_ID)
    if row is None:
        return LetterheadInfo()
    return LetterheadInfo(
        school_name=row.school_name or "",
        address=row.address or "",
        town=row.town or "",
        logo=_logo_bytes(row),
    )


def _logo_bytes(row: Letterhead) -> bytes | None:
    if row.logo_id is None:
        return None
    attachment = db.session.get(Attachment, row.logo_id)
    if attachment is None:
        return None
    try:
        return read_attachment(attachment)
    except OSError:
        log.exception("the letterhead's logo (attachment %s) cannot be read", attachment.id)
        return None


def save_letterhead(
    school_name: str,
    address: str,
    town: str,
    *,
    logo: bytes | None = None,
    remove_logo: bool = False,
    actor: str = "",
) -> Letterhead:
    """Check and save the letterhead (flushed, not committed); raise ``InputRefused`` by field.

    ``logo`` replaces the saved logo; ``remove_logo`` takes it away; neither keeps it.
    """
    school_name, town = (school_name or "").strip(), (town or "").strip()
    address = _address_lines(address or "")
    errors: dict[str, str] = {}
    for field, value, label, limit in (
        ("school_name", school_name, _("School name"), NAME_MAX_LENGTH),
        ("town", town, _("Town"), TOWN_MAX_LENGTH),
    ):
        if not is_header_safe(value):
            errors[field] = unsafe_message(label)
        elif len(value) > limit:
            errors[field] = _("At most %(num)s characters.", num=limit)
    if UNSAFE_CHARACTERS.search(address.replace("\n", "")):
        errors["address"] = _("The address may hold line breaks, but no control character.")
    elif len(address) > ADDRESS_MAX_LENGTH or address.count("\n") >= ADDRESS_MAX_LINES:
        errors["address"] = _(
            "At most %(lines)s lines and %(num)s characters.",
            lines=ADDRESS_MAX_LINES,
            num=ADDRESS_MAX_LENGTH,
        )
    if logo is not None:
        problem = logo_problem(logo)
        if problem:
            errors["logo"] = problem
    if errors:
        raise InputRefused(errors)
    row = db.session.get(Letterhead, LETTERHEAD_ID) or Letterhead(id=LETTERHEAD_ID)
    row.school_name, row.address, row.town = school_name, address, town
    if logo is not None:
        row.logo_id = store_attachment(logo, sniffed_type(logo) or "").id
    elif remove_logo:
        row.logo_id = None
    db.session.add(row)
    db.session.flush()
    log.info("%s saved the letterhead (logo %s)", actor or "someone", row.logo_id)
    return row


def logo_problem(data: bytes) -> str | None:
    """Return why these bytes cannot be the logo (size, type found in the bytes), or None."""
    if not data:
        return _("The logo file is empty.")
    if len(data) > LOGO_MAX_BYTES:
        return _("The logo must weigh at most 1 MB.")
    if sniffed_type(data) not in LOGO_TYPES:
        return _("The logo must be a PNG or JPEG image.")
    return None


def _address_lines(address: str) -> str:
    """Return the address with one kind of line break and no blank line around it."""
    lines = address.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.strip() for line in lines).strip("\n")
