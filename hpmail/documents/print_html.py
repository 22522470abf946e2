"""A document as print HTML for xhtml2pdf: the page's geometry, the week grid, colours by subject.

The owner's name and detail line are left out of the HTML: ``render`` stamps them on the PDF and
the PNG afterwards, so that documents with the same ``shared_key`` are drawn once. Tables only
(xhtml2pdf knows no flex or grid); DejaVu fonts so that every name of the school prints.
"""

from __future__ import annotations

import base64
import colorsys
import math
import zlib
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path

from flask import current_app
from flask_babel import force_locale, format_date
from flask_babel import gettext as _

from hpmail.documents.content import Document, Summary, Timetable, WeekGrid
from hpmail.documents.layout import Layout, LetterheadInfo
from hpmail.documents.schedule import Occurrence

FONT_FOLDER = Path("/usr/share/fonts/truetype/dejavu")  # Debian's fonts-dejavu-core
FONT_REGULAR = FONT_FOLDER / "DejaVuSans.ttf"
FONT_BOLD = FONT_FOLDER / "DejaVuSans-Bold.ttf"

POINTS_PER_MM = 72 / 25.4
PAPER_SIZES = {
    "A4": (210 * POINTS_PER_MM, 297 * POINTS_PER_MM),
    "A3": (297 * POINTS_PER_MM, 420 * POINTS_PER_MM),
}
MARGIN = 24.0  # points, on every side
HEADER_HEIGHT = 52.0  # the letterhead on the left, the owner's name on the right
HEADER_GAP = 8.0


class RenderError(Exception):
    """A document could not be drawn; the message says why, in French."""


class LayoutInvalid(RenderError):
    """A layout value the printer does not know (paper, orientation)."""


@dataclass(frozen=True)
class PageGeometry:
    """Where things go on a page, in PDF points (origin at the top left, y downwards)."""

    paper: str
    orientation: str
    width: float
    height: float

    @classmethod
    def of(cls, layout: Layout) -> PageGeometry:
        if layout.paper not in PAPER_SIZES or layout.orientation not in ("portrait", "landscape"):
            raise LayoutInvalid(
                _("Unknown page layout: %(paper)s %(orientation)s.")
                % {"paper": layout.paper, "orientation": layout.orientation}
            )
        short, long = PAPER_SIZES[layout.paper]
        if layout.orientation == "landscape":
            return cls(layout.paper, layout.orientation, long, short)
        return cls(layout.paper, layout.orientation, short, long)

    @property
    def inner_width(self) -> float:
        return self.width - 2 * MARGIN

    @property
    def content_top(self) -> float:
        return MARGIN + HEADER_HEIGHT + HEADER_GAP

    @property
    def content_height(self) -> float:
        return self.height - self.content_top - MARGIN

    @property
    def letterhead_width(self) -> float:
        return self.inner_width * 0.55

    @property
    def name_box(self) -> tuple[float, float, float]:
        """Left, top and width of the owner's name, right of the letterhead."""
        left = MARGIN + self.letterhead_width + 8
        return left, MARGIN, self.width - MARGIN - left


def pastel(subject: str) -> str:
    """A light colour for a subject, the same on every run and machine."""
    hue = (zlib.crc32(subject.encode()) % 360) / 360
    red, green, blue = colorsys.hls_to_rgb(hue, 0.87, 0.55)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


def french_date(day: date) -> str:
    """``7 décembre 2026``, ``1er septembre 2026``."""
    with force_locale("fr"):
        text = format_date(day, "d MMMM y")
    return "1er" + text[1:] if day.day == 1 else text


def hours_text(value: float) -> str:
    """``1,5 h`` — hours as the French write them."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") + " h"


# The week grid: one row per step of time, one column per day; the courses of a day that overlap
# share one cell spanning their rows, side by side.

DAYS = range(6)  # Monday to Saturday


@dataclass(frozen=True)
class Block:
    """One cell of the grid: the courses starting in it (none for an empty cell) and its rows."""

    occurrences: tuple[Occurrence, ...]
    rowspan: int = 1
    font_size: float = 6.5  # points: smaller when courses at the same time share the height
    compact: bool = False  # each course on one wrapped line, when even small type does not fit


@dataclass(frozen=True)
class WeekTable:
    monday: date
    times: tuple[str, ...]  # the label of each row ("08:00", "" for a half hour)
    rows: tuple[tuple[Block | None, ...], ...]  # None where a cell above spans this row
    row_height: float


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute


def _step(timetable: Timetable) -> int:
    minutes = {
        _minutes(t) % 60 for w in timetable.weeks for o in w.occurrences for t in (o.start, o.end)
    }
    return 30 if all(m % 30 == 0 for m in minutes) else 15


def _clusters(occurrences: list[Occurrence], first: int, step: int, rows: int):
    """Group the day's courses whose rows overlap: (first row, end row, courses)."""
    found: list[tuple[int, int, list[Occurrence]]] = []
    for occurrence in sorted(occurrences, key=lambda o: (o.start, o.end)):
        top = max(0, (_minutes(occurrence.start) - first) // step)
        bottom = min(rows, max(top + 1, math.ceil((_minutes(occurrence.end) - first) / step)))
        if found and top < found[-1][1]:
            start, end, courses = found[-1]
            found[-1] = (start, max(end, bottom), [*courses, occurrence])
        else:
            found.append((top, bottom, [occurrence]))
    return found


def _block(courses: list[Occurrence], rows: int, row_height: float, layout: Layout, scale: float):
    """A cell of stacked courses, its type as large as their height lets it be.

    xhtml2pdf does not grow spanned rows to fit their cell: what does not fit would be drawn
    over the next courses.
    """
    height = rows * row_height

    def largest(lines: int, smallest: float) -> float:
        size = 6.5 * scale
        while size > smallest and len(courses) * (lines * size * 1.45 + 5) > height:
            size -= 0.25
        return size

    # Each course on its lines down to 5.5 points, else all on one line that wraps (about 3).
    size = largest(2 + layout.show_teachers + layout.show_groups, 5.5 * scale)
    if len(courses) * ((2 + layout.show_teachers + layout.show_groups) * size * 1.45 + 5) <= height:
        return Block(tuple(courses), rows, round(size, 2), compact=False)
    return Block(tuple(courses), rows, round(largest(3, 4.5 * scale), 2), compact=True)


def week_table(
    timetable: Timetable, week: WeekGrid, available_height: float, layout: Layout, scale: float
) -> WeekTable:
    """Lay one week out as table rows (HTML semantics: spanned cells are left out)."""
    opening, closing = timetable.first_and_last_hours()
    first, step = _minutes(opening), _step(timetable)
    count = max(1, (_minutes(closing) - first) // step)
    row_height = available_height / count
    cells: list[list[Block | None]] = [[Block(()) for _day in DAYS] for _row in range(count)]
    for day in DAYS:
        taken = 0  # the first row not yet in a cell of this day
        for top, bottom, courses in [*_clusters(week.on(day), first, step, count), (count, 0, [])]:
            # Empty time is one cell: fewer cells for xhtml2pdf to lay out, nothing less to read.
            if top > taken:
                cells[taken][day] = Block((), top - taken)
                for row in range(taken + 1, top):
                    cells[row][day] = None
            if courses:
                cells[top][day] = _block(courses, bottom - top, row_height, layout, scale)
                for row in range(top + 1, bottom):
                    cells[row][day] = None
                taken = bottom
    times = tuple(
        f"{(first + n * step) // 60:02d}:{(first + n * step) % 60:02d}"
        if (first + n * step) % 60 == 0
        else ""
        for n in range(count)
    )
    return WeekTable(week.monday, times, tuple(tuple(r) for r in cells), row_height)


# The HTML.


def _logo_uri(logo: bytes | None) -> str | None:
    if not logo:
        return None
    kind = "image/png" if logo.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{kind};base64,{base64.b64encode(logo).decode()}"


def document_title(document: Document) -> str:
    if isinstance(document, Timetable):
        return _("Timetable")
    return _("Summary of courses")


def page_context(layout: Layout, letterhead: LetterheadInfo) -> dict:
    """What ``templates/documents/print/base.html`` needs: the page, fonts and letterhead."""
    page = PageGeometry.of(layout)
    return {
        "layout": layout,
        "letterhead": letterhead,
        "logo": _logo_uri(letterhead.logo),
        "page": page,
        "margin": MARGIN,
        "header_height": HEADER_HEIGHT,
        "font_regular": str(FONT_REGULAR),
        "font_bold": str(FONT_BOLD),
        "scale": page.width / PAPER_SIZES["A4"][1],  # type sizes grow with the paper
    }


def print_html(document: Document, layout: Layout, letterhead: LetterheadInfo) -> str:
    """Return the HTML xhtml2pdf turns into the document's pages, without the owner's name."""
    with force_locale("fr"):
        context = {
            **page_context(layout, letterhead),
            "document": document,
            "title": document_title(document),
            "french_date": french_date,
            "hours_text": hours_text,
            "pastel": pastel,
            "timedelta": timedelta,
            "subject_classes": _subject_classes(document),
        }
        page = context["page"]
        if isinstance(document, Summary):
            return _render("documents/print/summary.html", context)
        # The week title and the day names take about 40 points of the page.
        scale = context["scale"]
        tables = [
            week_table(document, week, page.content_height - 48 * scale, layout, scale)
            for week in document.weeks
        ]
        sizes = sorted(
            {block.font_size for t in tables for row in t.rows for block in row if block}
        )
        day_names = [format_date(date(2026, 12, 7 + day), "EEEE").capitalize() for day in DAYS]
        return _render(
            "documents/print/timetable.html",
            {
                **context,
                "tables": tables,
                "day_names": day_names,
                "size_classes": {size: f"size{n}" for n, size in enumerate(sizes)},
            },
        )


def _subject_classes(document: Document) -> dict[str, str]:
    """A CSS class per subject (its colour): the templates, like pages, carry no style attribute."""
    if isinstance(document, Summary):
        subjects = {line.course.subject for line in document.lines}
    else:
        subjects = {o.course.subject for week in document.weeks for o in week.occurrences}
    return {subject: f"subject{n}" for n, subject in enumerate(sorted(subjects))}


def _render(template: str, context: dict) -> str:
    # The page context processors (menus, the signed-in user) need a request: print HTML does not.
    return current_app.jinja_env.get_template(template).render(context)
