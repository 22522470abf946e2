"""Documents as PDF (xhtml2pdf) and PNG (pypdfium2): each distinct page drawn once, names stamped.

Documents with the same ``shared_key`` differ only by their owner: their pages are drawn once
without the owner's name, then the name and detail line are stamped for each person (appended
to the PDF by ``stamp``, drawn on the PNG by ``preview`` in the same DejaVu font). The drawing
runs in worker processes (from a fork server: the caller is a threaded Huey worker, and
pypdfium2 is not thread-safe), each document's failure reported for its index alone.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import TYPE_CHECKING, TypeVar

from flask_babel import gettext as _

from hpmail.documents.content import Document
from hpmail.documents.layout import Layout, LetterheadInfo
from hpmail.documents.preview import PngBase, render_png
from hpmail.documents.print_html import (
    FONT_FOLDER,
    LayoutInvalid,
    PageGeometry,
    RenderError,
    print_html,
)

__all__ = [
    "RenderError",
    "Rendered",
    "in_processes",
    "html_to_pdf",
    "printed_copy",
    "render_documents",
    "render_pdf",
    "render_png",
    "safe_filename",
    "zip_of",
]
if TYPE_CHECKING:
    from hpmail.documents.stamp import SheetPages

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

# Imported here only when needed (the web pages and a starting worker do not), and once by the
# fork server: pypdf alone costs each process ~50 ms to import.
DRAWING_MODULES = [
    "hpmail.documents.render",
    "hpmail.documents.stamp",
    "xhtml2pdf.pisa",
    "pypdfium2",
    "pypdf",
    "PIL.Image",
    "reportlab.pdfgen.canvas",
]
CHUNK = 64  # people per task: a sheet is mostly drawn once, results still stream back


@dataclass(frozen=True)
class Rendered:
    pdf: bytes
    png: bytes | None


@dataclass(frozen=True)
class Sheet:
    """What a worker process needs to draw a group of documents: no database, no Flask."""

    key: str  # the same for documents that share their pages (a hash of the HTML)
    html: str
    geometry: PageGeometry
    png: bool


# Drawing: print HTML to PDF pages.


def _draw_pdf(html: str) -> bytes:
    from xhtml2pdf import pisa
    from xhtml2pdf.config.resources import ResourceAccessPolicy

    out = io.BytesIO()
    try:
        # Print HTML reads the fonts and nothing else: no network, no other file.
        policy = ResourceAccessPolicy.server(FONT_FOLDER, allow_remote=False)
        result = pisa.CreatePDF(html, dest=out, resource_policy=policy)
    except Exception as error:  # xhtml2pdf raises many kinds; each means this page failed
        raise RenderError(f"xhtml2pdf: {error}") from error
    if result.err:
        raise RenderError(f"xhtml2pdf: {result.err} erreur(s)")
    return out.getvalue()


def html_to_pdf(html: str) -> bytes:
    """Return the PDF of print HTML, drawn like every document (DejaVu fonts, no other file).

    Raise ``RenderError``. For pages made elsewhere than here (letters).
    """
    return _draw_pdf(html)


def in_processes(
    work: Callable[[T], R], tasks: Iterable[T], *, processes: int = 2
) -> Iterator[tuple[T, R | RenderError]]:
    """Yield (task, ``work(task)``) for each task as it finishes, in ``processes`` processes.

    The processes come from the fork server documents are drawn in (``_process_context``); tasks
    are read a few ahead of the processes, so that the caller makes them as they are drawn and
    memory stays low. ``work`` is a module-level function; with one process it runs here. A task
    whose process died gives a ``RenderError``, for the caller to report on its items.
    """
    if processes <= 1:
        yield from ((task, work(task)) for task in tasks)
        return
    with ProcessPoolExecutor(processes, mp_context=_process_context()) as pool:
        running: dict[Future, T] = {}
        pending = iter(tasks)
        exhausted = False
        while running or not exhausted:
            while not exhausted and len(running) < processes * 3:
                task = next(pending, None)
                if task is None:
                    exhausted = True
                    break
                running[pool.submit(work, task)] = task
            if not running:
                continue
            done, _still = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                try:
                    yield task, future.result()
                except Exception as error:  # the process died
                    yield task, RenderError(str(error) or type(error).__name__)


# One document, in this process.


def render_pdf(document: Document, layout: Layout, letterhead: LetterheadInfo) -> bytes:
    """Return the document's PDF, its owner's name on every page (needs the app context)."""
    from hpmail.documents.stamp import SheetPages, fitted_stamp, owner_objects

    geometry, html = _sheet_parts(document, layout, letterhead)
    try:
        sheet = SheetPages(_draw_pdf(html), geometry)
        stamp = fitted_stamp(document.owner.name, document.owner.detail, geometry)
        return sheet.stamped(owner_objects([stamp], sheet)[0])
    except Exception as error:  # xhtml2pdf, pypdf, reportlab: each means no PDF
        raise _failure(error) from error


def _sheet_parts(document: Document, layout, letterhead) -> tuple[PageGeometry, str]:
    try:
        return PageGeometry.of(layout), print_html(document, layout, letterhead)
    except LayoutInvalid:
        raise  # already said in French
    except Exception as error:  # text or a template that cannot be drawn
        raise _failure(error) from error


def _failure(reason: object) -> RenderError:
    return RenderError(_("The document could not be drawn: %(reason)s") % {"reason": reason})


# Many documents: grouped by shared key, drawn in worker processes.

_drawn: OrderedDict[str, tuple[SheetPages, PngBase | None]] = OrderedDict()


def _drawn_sheet(sheet: Sheet) -> tuple[SheetPages, PngBase | None]:
    """The sheet's pages (and page 1 as a PNG base), kept for the next chunk of the same sheet."""
    if sheet.key in _drawn:
        _drawn.move_to_end(sheet.key)
        return _drawn[sheet.key]
    from hpmail.documents.stamp import SheetPages

    pdf = _draw_pdf(sheet.html)
    try:
        pages = SheetPages(pdf, sheet.geometry)
        base = PngBase.of_sheet(pdf, sheet.geometry) if sheet.png else None
    except Exception as error:
        raise RenderError(f"pypdf, pypdfium2: {error}") from error
    _drawn[sheet.key] = (pages, base)
    while len(_drawn) > 2:  # a chunk of a sheet may follow another sheet's; no more is kept
        _drawn.popitem(last=False)
    return pages, base


def _stamped(
    pages: SheetPages, base: PngBase | None, people: Sequence[tuple[int, str, str]]
) -> list[Rendered]:
    from hpmail.documents.stamp import fitted_stamp, owner_objects

    stamps = [fitted_stamp(name, detail, pages.geometry) for _i, name, detail in people]
    objects = owner_objects(stamps, pages)
    return [
        Rendered(pages.stamped(own), base.stamped(stamp) if base is not None else None)
        for stamp, own in zip(stamps, objects, strict=True)
    ]


def draw_group(
    sheet: Sheet, people: Sequence[tuple[int, str, str]]
) -> list[tuple[int, Rendered | RenderError]]:
    """Draw the sheet once and stamp each person's (index, name, detail) on it."""
    try:
        pages, base = _drawn_sheet(sheet)
    except RenderError as error:
        return [(index, error) for index, _name, _detail in people]
    try:
        rendered = _stamped(pages, base, people)
        return [(index, done) for (index, _n, _d), done in zip(people, rendered, strict=True)]
    except Exception:  # then each person alone, so that a failure is theirs only
        log.warning("Stamping a group of %d failed; stamping one by one", len(people))
    results: list[tuple[int, Rendered | RenderError]] = []
    for person in people:
        try:
            results.append((person[0], _stamped(pages, base, [person])[0]))
        except Exception as error:
            results.append((person[0], RenderError(str(error) or type(error).__name__)))
    return results


def _tasks(documents: Sequence[Document], layout, letterhead, png: bool):
    """Yield (sheet or error, people) per chunk, people of one sheet together."""
    groups: dict[tuple, list[int]] = {}
    for index, document in enumerate(documents):
        groups.setdefault(document.shared_key(), []).append(index)
    for indexes in groups.values():
        first = documents[indexes[0]]
        try:
            geometry, html = _sheet_parts(first, layout, letterhead)
            key = hashlib.sha256(f"{png}{html}".encode()).hexdigest()
            sheet: Sheet | RenderError = Sheet(key, html, geometry, png)
        except RenderError as error:
            sheet = error
        except UnicodeError as error:  # text no PDF can hold (a lone surrogate)
            sheet = _failure(error)
        for start in range(0, len(indexes), CHUNK):
            people = [
                (i, documents[i].owner.name, documents[i].owner.detail)
                for i in indexes[start : start + CHUNK]
            ]
            yield sheet, people


def _in_french(drawn: list[tuple[int, Rendered | RenderError]]):
    """The drawing processes have no app context: their errors are told in French here."""
    for index, result in drawn:
        if isinstance(result, RenderError):
            result = _failure(result)
        yield index, result


def _process_context():
    """Processes forked from a clean server that imported the drawing libraries once.

    Not plain fork: the caller is a threaded Huey worker. The server starts with the first pool
    (about a second); later pools start at once.
    """
    context = get_context("forkserver")
    context.set_forkserver_preload(DRAWING_MODULES)
    return context


def render_documents(
    documents: Sequence[Document],
    layout: Layout,
    letterhead: LetterheadInfo,
    *,
    png: bool,
    processes: int = 2,
) -> Iterator[tuple[int, Rendered | RenderError]]:
    """Yield (index into ``documents``, its files or why it failed) as each is ready.

    The HTML is made here (it needs the app context for the French text); the drawing runs in
    ``processes`` processes (``_process_context``), or here when ``processes`` is 1.
    """
    tasks = _tasks(documents, layout, letterhead, png)
    if processes <= 1:
        for sheet, people in tasks:
            if isinstance(sheet, RenderError):
                yield from ((index, sheet) for index, _n, _d in people)
            else:
                yield from _in_french(draw_group(sheet, people))
        return
    context = _process_context()
    pool = ProcessPoolExecutor(processes, mp_context=context)
    try:
        running: dict[Future, list[tuple[int, str, str]]] = {}
        pending = iter(tasks)
        exhausted = False
        while running or not exhausted:
            # A few tasks ahead of the processes: the HTML is made as they draw, memory stays low.
            while not exhausted and len(running) < processes * 2:
                task = next(pending, None)
                if task is None:
                    exhausted = True
                    break
                sheet, people = task
                if isinstance(sheet, RenderError):
                    yield from ((index, sheet) for index, _n, _d in people)
                    continue
                running[pool.submit(draw_group, sheet, people)] = people
            if not running:
                continue
            done, _still = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                people = running.pop(future)
                try:
                    drawn = future.result()
                except Exception as error:  # the process died: these documents failed
                    failure = RenderError(str(error) or type(error).__name__)
                    drawn = [(index, failure) for index, _n, _d in people]
                yield from _in_french(drawn)
    finally:
        # A caller that stops reading (an error, a cancelled job) waits for no more drawing.
        pool.shutdown(wait=True, cancel_futures=True)


# Putting files together.


def printed_copy(pdfs: Iterable[bytes]) -> bytes:
    """Return one PDF holding ``pdfs`` one after the other, to print (``bundle``)."""
    from hpmail.documents.bundle import bundled

    return bundled(pdfs)


_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f/\\:*?\"<>|\u2028\u2029]+")


def safe_filename(name: str, suffix: str = ".pdf") -> str:
    """A file name any system accepts: no path separator, no control character, not too long."""
    stem = name[: -len(suffix)] if name.lower().endswith(suffix) else name
    stem = " ".join(_UNSAFE.sub(" ", stem).split()).strip(". ")
    return (stem[:150] or "document") + suffix


def zip_of(named: Iterable[tuple[str, bytes]]) -> bytes:
    """Return a ZIP of the files, their names made safe and unique."""
    out = io.BytesIO()
    used: set[str] = set()
    # Stored, not deflated: a PDF is compressed already (deflating again saves 8 % in 30× the time).
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in named:
            filename = safe_filename(name)
            stem, number = filename[:-4], 2
            while filename.lower() in used:
                filename = f"{stem} ({number}).pdf"
                number += 1
            used.add(filename.lower())
            archive.writestr(filename, data)
    return out.getvalue()
