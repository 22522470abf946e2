"""Accent- and case-free text for the directory's filters and sort keys."""

from __future__ import annotations

import unicodedata


def fold(text: str | None) -> str:
    """Return ``text`` lower-cased, without accents, with single spaces."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().replace("œ", "oe").replace("æ", "ae").split())


def search_text_for(last_name: str | None, first_name: str | None, email: str | None) -> str:
    """Return what the text filter searches for a person: "last first email", folded."""
    return fold(f"{last_name or ''} {first_name or ''} {email or ''}")[:500]
