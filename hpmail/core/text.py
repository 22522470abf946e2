"""The one rule for text that can reach an e-mail header: a single line, no control character.

A header line ends wherever a mail parser sees a line break, and Python's ``str.splitlines()``
(used by the ``email`` package when it folds a header) breaks on far more than CR and LF: vertical
tab, form feed, the file/group/record separators, NEL (U+0085) and the Unicode line and paragraph
separators. Every value that may end up in a header (subject, display names, addresses, file names,
content types) is checked here, at input and again in the MIME builder.
"""

from __future__ import annotations

import re

from flask_babel import gettext as _
from wtforms.validators import ValidationError

from hpmail.core.forms import InputRefused

# C0 controls (TAB included: a single-line field never needs one), DEL, C1 controls, and the
# Unicode line and paragraph separators: every character ``str.splitlines()`` splits on and more.
UNSAFE_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class InvalidHeader(InputRefused):
    """A value hpmail refuses to put in an e-mail header."""


def is_header_safe(text: str | None) -> bool:
    """Tell whether ``text`` can go in a header line: no line break, no control character."""
    return not text or UNSAFE_CHARACTERS.search(text) is None


def refuse_unsafe(text: str | None, field: str) -> None:
    """Raise ``InvalidHeader`` naming ``field`` if ``text`` is not header-safe."""
    if not is_header_safe(text):
        raise InvalidHeader(unsafe_message(field))


def unsafe_message(field: str) -> str:
    """Return the translated message that refuses a line break or control character in ``field``."""
    return _(
        "« %(field)s » must fit on one line, without line breaks or control characters.",
        field=field,
    )


def header_safe(form, field) -> None:
    """WTForms validator: refuse a line break or control character in a single-line field."""
    if isinstance(field.data, str) and not is_header_safe(field.data):
        raise ValidationError(unsafe_message(str(field.label.text)))


def without_unsafe_characters(text: str) -> str:
    """Return ``text`` with its line breaks and control characters removed (imported names)."""
    return UNSAFE_CHARACTERS.sub("", text)


# type "/" subtype, each an RFC 2045 token; parameters are never taken from the browser.
CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+/[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def is_content_type(text: str | None) -> bool:
    """Tell whether ``text`` is a bare content type (``type/subtype``, no parameter)."""
    return bool(text) and CONTENT_TYPE.fullmatch(text) is not None
