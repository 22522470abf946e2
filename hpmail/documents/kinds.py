"""Kinds of print job that a package above documents adds (letters: « Envoyer un courrier »).

The job runner (``printing``) and Imprimer / Mailer (``mailing``, the composer) are the same for
every kind; what differs is how a job's items are drawn and what the composer starts with. A
package registers that here when it is imported, and documents asks here without importing it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpmail.documents.models import DocumentJob, DocumentJobItem
    from hpmail.documents.render import RenderError


@dataclass(frozen=True)
class Drawn:
    """An item drawn by a registered kind: its PDF, and the content of its e-mail's body."""

    pdf: bytes
    png: bytes | None = None  # documents' Rendered has the same two first fields
    body_html: str | None = None


@dataclass(frozen=True)
class JobKind:
    """How a kind of job is drawn, and how its e-mail starts in the composer."""

    # (job, pending items) → (index into the items, what was drawn or why it failed), all items.
    draw: Callable[[DocumentJob, Sequence], Iterator[tuple[int, Drawn | RenderError]]]
    subject: Callable[[DocumentJob], str]
    introduction: Callable[[DocumentJob], str]  # HTML
    # The addresses one item's e-mail may be copied to (an internship's tutor), as
    # (name, address) pairs, and the composer's words offering them (under Autres).
    copies_of: Callable[[DocumentJob, DocumentJobItem], list[tuple[str, str]]] | None = None
    copies_label: Callable[[DocumentJob], str | None] | None = None


KINDS: dict[str, JobKind] = {}


def register(name: str, kind: JobKind) -> None:
    """Make jobs of kind ``name`` drawn and mailed by ``kind`` (at import of its package)."""
    KINDS[name] = kind


def kind_of(job: DocumentJob) -> JobKind | None:
    """Return the registered kind of this job, or None for documents' own (timetable, summary)."""
    return KINDS.get(job.kind)
