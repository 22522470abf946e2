"""What a printed document looks like and where it goes: the print dialog's choices as values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from flask_babel import lazy_gettext as _l


class DocumentKind(StrEnum):
    TIMETABLE = "timetable"
    SUMMARY = "summary"


class Output(StrEnum):
    """The print dialog's "Type de sortie"."""

    PRINTER = "printer"  # one PDF, one document per person, to print
    PDF = "pdf"  # a ZIP of one PDF per person, named by person
    EMAIL = "email"  # each person gets their own document by e-mail


class PrintCopy(StrEnum):
    """For an e-mail output: "Imprimer un exemplaire"."""

    NONE = "none"
    ALL = "all"
    WITHOUT_EMAIL = "without_email"  # only those who do not receive an e-mail


DOCUMENT_KIND_LABELS = {
    DocumentKind.TIMETABLE: _l("Timetable"),
    DocumentKind.SUMMARY: _l("Summary"),
}
OUTPUT_LABELS = {
    Output.PRINTER: _l("Printer"),
    Output.PDF: _l("PDF"),
    Output.EMAIL: _l("E-mail"),
}
PRINT_COPY_LABELS = {
    PrintCopy.NONE: _l("No printed copy"),
    PrintCopy.ALL: _l("For everyone"),
    PrintCopy.WITHOUT_EMAIL: _l("Only for those who do not receive an e-mail"),
}

PAPERS = ("A4", "A3")
ORIENTATIONS = ("portrait", "landscape")


@dataclass(frozen=True)
class Period:
    """Days from ``start`` to ``end``, both included."""

    start: date
    end: date

    @classmethod
    def week_of(cls, day: date) -> Period:
        """Return the week (Monday to Sunday) holding ``day``."""
        monday = day - timedelta(days=day.weekday())
        return cls(monday, monday + timedelta(days=6))

    @classmethod
    def term_of(cls, day: date) -> Period:
        """Return the half of the school year holding ``day``: September–January or February–June.

        July and August belong to the term that starts in September.
        """
        if day.month >= 7:
            return cls(date(day.year, 9, 1), date(day.year + 1, 1, 31))
        if day.month == 1:
            return cls(date(day.year - 1, 9, 1), date(day.year, 1, 31))
        return cls(date(day.year, 2, 1), date(day.year, 6, 30))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def mondays(self) -> list[date]:
        """Return the Monday of each week the period touches, in order."""
        monday = self.start - timedelta(days=self.start.weekday())
        weeks = []
        while monday <= self.end:
            weeks.append(monday)
            monday += timedelta(weeks=1)
        return weeks

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Layout:
    """The print dialog's "Mise en page" and what each course block shows."""

    paper: str = "A4"
    orientation: str = "landscape"
    colour: bool = True  # colours by subject, or black and white
    show_room: bool = True
    show_teachers: bool = True
    show_groups: bool = True


@dataclass(frozen=True)
class LetterheadInfo:
    """The school's header as printed on every document (``letterhead.current_letterhead``)."""

    school_name: str = ""
    address: str = ""  # a few lines
    town: str = ""
    logo: bytes | None = None  # PNG or JPEG
