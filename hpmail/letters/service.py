"""Saving letter templates: the body sanitised like the composer's, every field checked."""

from __future__ import annotations

import logging
import re

from flask_babel import gettext as _
from sqlalchemy import select

from hpmail.compose.richtext import sanitize_html
from hpmail.core.forms import InputRefused
from hpmail.core.text import is_header_safe, unsafe_message
from hpmail.core.time import utcnow
from hpmail.extensions import db
from hpmail.letters import sandbox
from hpmail.letters.fields import field_names, list_fields
from hpmail.letters.models import (
    BODY_MAX_LENGTH,
    SUBJECT_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Category,
    LetterTemplate,
)

log = logging.getLogger(__name__)

# Each paragraph, item or heading on its own line, so that a message's line is one of them.
_BLOCK_END = re.compile(r"(</(?:p|div|h1|h2|h3|li|ul|ol|blockquote|pre)>|<br>|<hr>)(?!\n)")


def clean_body(body: str) -> str:
    """Return the body sanitised by the composer's rules, one block a line."""
    return _BLOCK_END.sub(r"\1\n", sanitize_html(body or "")).strip()


def checked_letter(category: str, title: str, subject: str, body: str) -> tuple[str, str, str]:
    """Return (title, subject, body) cleaned; raise ``InputRefused`` by field (``LetterRefused``
    for the fields' place in the subject and body)."""
    title, subject = (title or "").strip(), " ".join((subject or "").split())
    body = clean_body(body)
    errors: dict[str, list[str]] = {}
    if not title:
        errors["title"] = [_("Give the letter a title.")]
    elif len(title) > TITLE_MAX_LENGTH:
        errors["title"] = [_("At most %(num)s characters.", num=TITLE_MAX_LENGTH)]
    elif not is_header_safe(title):
        errors["title"] = [unsafe_message(_("Title"))]
    if len(subject) > SUBJECT_MAX_LENGTH:
        errors["subject"] = [_("At most %(num)s characters.", num=SUBJECT_MAX_LENGTH)]
    elif not is_header_safe(subject):
        errors["subject"] = [unsafe_message(_("Subject"))]
    if not body:
        errors["body"] = [_("The letter is empty.")]
    elif len(body) > BODY_MAX_LENGTH:
        errors["body"] = [
            _("The letter is too long (at most %(num)s characters).", num=BODY_MAX_LENGTH)
        ]
    try:
        sandbox.check(body, subject, field_names(category), list_fields(category))
    except sandbox.LetterRefused as refused:
        for name, messages in refused.errors.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise sandbox.LetterRefused(errors)
    return title, subject, body


def save_letter(
    letter: LetterTemplate | None, category: str, title: str, subject: str, body: str, user
) -> LetterTemplate:
    """Create (``letter`` None) or change a letter template (flushed); raise ``InputRefused``."""
    if category not in set(Category):
        raise InputRefused(_("Unknown category of letter."))
    title, subject, body = checked_letter(category, title, subject, body)
    now = utcnow()
    if letter is None:
        letter = LetterTemplate(category=category, created_at=now, created_by_id=user.id)
        db.session.add(letter)
    letter.title, letter.subject, letter.body_html = title, subject, body
    letter.updated_at, letter.updated_by_id = now, user.id
    db.session.flush()
    log.info("%s saved the letter %s (%s)", user.login, letter.id, letter.title)
    return letter


def delete_letter(letter: LetterTemplate, user) -> None:
    """Delete a letter template (flushed)."""
    db.session.delete(letter)
    db.session.flush()
    log.info("%s deleted the letter %s (%s)", user.login, letter.id, letter.title)


def letters_by_category() -> list[tuple[Category, list[LetterTemplate]]]:
    """Return every category with its letters, by title."""
    letters = db.session.scalars(
        select(LetterTemplate).order_by(LetterTemplate.title, LetterTemplate.id)
    ).all()
    return [(c, [letter for letter in letters if letter.category == c]) for c in Category]
