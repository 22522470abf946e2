"""Text rules every feature shares: the one rule for header text, and accent-free folding.

The header rule: a single line, no control character.

A header line ends wherever a mail parser sees a line break, and Python's ``str.splitlines()``
(used by the ``email`` package when it folds a header) breaks on far more than CR and LF: vertical
tab, form feed, the file/group/record separators, NEL (U+0085) and the Unicode line and paragraph
separators. Every value that may end up in a header (subject, display names, addresses, file names,
content types) is checked here, at input and again in the MIME builder.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

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


def one_line(text: str | bytes) -> str:
    """Return ``text`` (bytes decoded as UTF-8) on one line with single spaces: a server's words.

    Control characters become spaces too: PostgreSQL refuses a NUL byte in text, and a server's
    reply holding one must still be recorded.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(UNSAFE_CHARACTERS.sub(" ", str(text)).split())


def fold(text: str | None) -> str:
    """Return ``text`` lower-cased, without accents, with single spaces (filters, sort keys)."""
    if not text:
        return ""
    if text.isascii():
        return " ".join(text.lower().split())
    return _fold_unicode(text)


@lru_cache(maxsize=32_768)
def _fold_unicode(text: str) -> str:
    # Names repeat a lot (first names, cohorts, groups): the cache pays for itself on imports.
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().replace("œ", "oe").replace("æ", "ae").split())
