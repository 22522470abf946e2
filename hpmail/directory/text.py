"""Accent- and case-free text for the directory's filters and sort keys."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


def fold(text: str | None) -> str:
    """Return ``text`` lower-cased, without accents, with single spaces."""
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


def search_text_for(last_name: str | None, first_name: str | None, email: str | None) -> str:
    """Return what the text filter searches for a person: "last first email", folded."""
    return fold(f"{last_name or ''} {first_name or ''} {email or ''}")[:500]
