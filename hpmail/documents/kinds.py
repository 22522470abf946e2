"""Kinds of print job that a package above documents adds (letters: « Envoyer un courrier »).

The job runner (``printing``) and Imprimer / Mailer (``mailing``, the composer) are the same for
every kind; what differs is how a job's items are drawn and what the composer starts with.
``create_app`` hands each kind in with ``register_job_kind`` (kept on the app, so that the worker
knows it however it was started, never by importing a views module); documents asks here without
importing the package above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

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


JOB_KINDS = "hpmail.documents.job_kinds"  # the key of ``app.extensions``


def register_job_kind(app: Flask, name: str, kind: JobKind) -> None:
    """Make ``app``'s jobs of kind ``name`` drawn and mailed by ``kind`` (from ``create_app``)."""
    app.extensions.setdefault(JOB_KINDS, {})[name] = kind


def kind_of(job: DocumentJob) -> JobKind | None:
    """Return the registered kind of this job, or None for documents' own (timetable, summary)."""
    return current_app.extensions.get(JOB_KINDS, {}).get(job.kind)
