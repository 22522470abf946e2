"""A letter written for a record: its subject and body (sandbox), its print HTML and its PDF.

The PDF goes through documents' pipeline (``documents.render``: xhtml2pdf, the DejaVu fonts, the
same processes). Every letter differs, so each is drawn; but xhtml2pdf costs most per run, not
per page: a batch draws several letters in one run and cuts the PDF where each letter starts
(its addressee is an outline entry), and falls back to one run a letter if the cut is unsure.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from markupsafe import Markup

from hpmail.core.time import school_today
from hpmail.documents.layout import Layout, LetterheadInfo
from hpmail.documents.print_html import french_date, page_context
from hpmail.documents.render import RenderError, html_to_pdf, in_processes
from hpmail.letters import sandbox
from hpmail.letters.fields import Record, list_fields, recipient_of, values_of
from hpmail.letters.models import LetterTemplate

LETTER_LAYOUT = Layout(paper="A4", orientation="portrait")
BATCH = 16  # letters drawn in one xhtml2pdf run

# Imported by the drawing processes (documents' fork server) to draw a batch.
__all__ = [
    "draw_batch",
    "each_alone",
    "letter_html",
    "letter_pdf",
    "render_letters",
    "write_letter",
]


@dataclass(frozen=True)
class Written:
    """A letter written for one record: the e-mail's subject and the letter's body (HTML)."""

    subject: str
    body_html: str


def write_letter(template: LetterTemplate, record: Record, letterhead, today: date) -> Written:
    """Fill the fields for ``record``; raise ``sandbox.RenderLimit`` or ``LetterRefused``."""
    values = values_of(record, letterhead, today)
    lists = list_fields(template.category)
    body = sandbox.render(sandbox.jinja_source(template.body_html), values, lists)
    subject = sandbox.render(template.subject, values, lists, autoescape=False)
    return Written(" ".join(subject.split()), body)


def _printed(written: Written, record: Record) -> dict:
    person = recipient_of(record)
    return {
        "subject": written.subject,
        # Sanitised when saved, its fields escaped when written.
        "body": Markup(written.body_html),  # noqa: S704
        "addressee": f"{person.first_name} {person.last_name}".strip(),
        "detail": person.cohort.name if person.cohort else "",
    }


def letters_html(letters: Sequence[dict], letterhead: LetterheadInfo, today: date) -> str:
    """Return the print HTML of letters (``_printed``), each from a new page."""
    with force_locale("fr"):
        context = {
            **page_context(LETTER_LAYOUT, letterhead),
            "title": letters[0]["subject"] if letters else "",
            "letters": letters,
            "today": french_date(today),
        }
        return current_app.jinja_env.get_template("letters/print/letter.html").render(context)


def letter_html(
    template: LetterTemplate, record: Record, letterhead: LetterheadInfo, today: date | None = None
) -> str:
    """Return the print HTML of the letter for ``record``, on the school's letterhead."""
    today = today or school_today()
    written = write_letter(template, record, letterhead, today)
    return letters_html([_printed(written, record)], letterhead, today)


def letter_pdf(
    template: LetterTemplate, record: Record, letterhead: LetterheadInfo, today: date | None = None
) -> bytes:
    """Return the letter's PDF for ``record``; raise ``RenderError`` (in French) when it fails."""
    try:
        html = letter_html(template, record, letterhead, today)
    except (sandbox.RenderLimit, sandbox.LetterRefused) as error:
        raise RenderError(str(error)) from error
    return html_to_pdf(html)


# Many letters.


@dataclass(frozen=True)
class Batch:
    """Letters for a drawing process: their indexes, and their print HTML one after the other."""

    indexes: tuple[int, ...]
    html: str


LETTER_MARK, END_MARK, NEXT_PAGE = "<!--letter-->", "<!--letters-end-->", "<pdf:nextpage />"


def each_alone(html: str) -> list[str]:
    """Return the print HTML of each letter of a batch's HTML, alone on its pages.

    The template marks each letter with a comment; a letter's body holds none (the composer's
    rules strip comments, fields are escaped).
    """
    start, end = html.index(LETTER_MARK), html.rindex(END_MARK)
    head, tail = html[:start], html[end:]
    parts = html[start + len(LETTER_MARK) : end].split(LETTER_MARK)
    return [head + part.replace(NEXT_PAGE, "") + tail for part in parts]


def _cut(pdf: bytes, count: int) -> list[bytes] | None:
    """Cut a PDF of ``count`` letters where each starts; None when the outline does not say."""
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(io.BytesIO(pdf))
    starts = [reader.get_destination_page_number(entry) for entry in reader.outline]
    if len(starts) != count or starts != sorted(set(starts)) or (starts and starts[0] != 0):
        return None
    letters = []
    for start, end in zip(starts, [*starts[1:], len(reader.pages)], strict=True):
        writer = PdfWriter()
        writer.append(reader, pages=(start, end), import_outline=False)
        out = io.BytesIO()
        writer.write(out)
        letters.append(out.getvalue())
    return letters


def draw_batch(batch: Batch) -> list[tuple[int, bytes | RenderError]]:
    """Draw a batch's letters in one run and cut them apart; else each alone (in a process)."""
    try:
        letters = _cut(html_to_pdf(batch.html), len(batch.indexes))
    except Exception:  # one letter cannot be drawn, or the PDF cannot be cut: each alone
        letters = None
    if letters is not None:
        return list(zip(batch.indexes, letters, strict=True))
    results: list[tuple[int, bytes | RenderError]] = []
    for index, html in zip(batch.indexes, each_alone(batch.html), strict=True):
        try:
            results.append((index, html_to_pdf(html)))
        except RenderError as error:
            results.append((index, error))
    return results


def render_letters(
    template: LetterTemplate,
    records: Sequence[Record],
    letterhead: LetterheadInfo,
    *,
    today: date | None = None,
    processes: int = 2,
    batch: int = BATCH,
) -> Iterator[tuple[int, bytes | RenderError]]:
    """Yield (index into ``records``, its PDF or why it failed) as the letters are drawn.

    The letters are written here (the sandbox needs the app context), a batch at a time while the
    processes draw the previous ones; a letter that cannot be written or drawn fails alone.
    """
    today = today or school_today()
    failed: list[tuple[int, RenderError]] = []

    def batches() -> Iterator[Batch]:
        for start in range(0, len(records), batch):
            indexes, letters = [], []
            for index in range(start, min(start + batch, len(records))):
                try:
                    written = write_letter(template, records[index], letterhead, today)
                except (sandbox.RenderLimit, sandbox.LetterRefused) as error:
                    failed.append((index, RenderError(str(error))))
                    continue
                indexes.append(index)
                letters.append(_printed(written, records[index]))
            if indexes:
                yield Batch(tuple(indexes), letters_html(letters, letterhead, today))

    for task, drawn in in_processes(draw_batch, batches(), processes=processes):
        yield from failed
        failed.clear()
        if isinstance(drawn, RenderError):
            drawn = [(index, drawn) for index in task.indexes]
        for index, result in drawn:
            if isinstance(result, RenderError):  # told in French here: processes have no app
                result = RenderError(_("The letter could not be drawn: %(reason)s", reason=result))
            yield index, result
    yield from failed
