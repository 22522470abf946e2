"""The accent- and case-free text the directory's filter searches for a person."""

from __future__ import annotations

from hpmail.core.text import fold


def search_text_for(last_name: str | None, first_name: str | None, email: str | None) -> str:
    """Return what the text filter searches for a person: "last first email", folded."""
    return fold(f"{last_name or ''} {first_name or ''} {email or ''}")[:500]
