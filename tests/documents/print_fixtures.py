"""Fixtures of the print dialog's tests: a small school, a signed-in user who may send, the
dialog's form, and what reads the jobs and their PDFs back. Test modules import the fixtures they
use from here."""

from __future__ import annotations

from dataclasses import dataclass

import pypdfium2 as pdfium
import pytest
from sqlalchemy import func, select

from hpmail.directory.models import Person
from hpmail.documents.models import DocumentJob, DocumentJobItem

WEEK_DAY = "2026-12-09"  # the week of Monday 7 December 2026
FR = {"Accept-Language": "fr"}


def pdf_text(data: bytes) -> str:
    """The text of every page, read by pdfium (pypdf takes seconds for a job of 120 pages)."""
    pdf = pdfium.PdfDocument(data)
    try:
        return "\n".join(page.get_textpage().get_text_bounded() for page in pdf)
    finally:
        pdf.close()


def latest_job(db) -> DocumentJob | None:
    db.session.rollback()  # a new snapshot: the worker writes from another process
    return db.session.scalars(select(DocumentJob).order_by(DocumentJob.id.desc())).first()


@dataclass
class School:
    teacher: Person
    alice: Person
    bruno: Person
    chloe: Person  # no e-mail address

    @property
    def students(self) -> list[Person]:
        return [self.alice, self.bruno, self.chloe]


@pytest.fixture
def school(make_cohort, make_person, make_course) -> School:
    """A cohort, two groups, a teacher, three students (Chloé has no address), three courses."""
    cohort = make_cohort("L2 Droit", groups=("TD1", "TD2"))
    td1, td2 = cohort.groups
    teacher = make_person("teacher", first_name="Œdipe", last_name="Ørsted")
    make_course("Droit civil", "CM", teachers=[teacher], cohorts=[cohort], room="Amphi A")
    make_course("Histoire du droit", "TD", teachers=[teacher], groups=[td1], room="C12")
    make_course("Droit pénal", "TD", groups=[td2], room="C14")
    alice = make_person(
        "student", first_name="Alice", last_name="Martin", cohort=cohort, groups=[td1]
    )
    bruno = make_person(
        "student", first_name="Bruno", last_name="Durand", cohort=cohort, groups=[td2]
    )
    chloe = make_person(
        "student", email=None, first_name="Chloé", last_name="Sansmail", cohort=cohort, groups=[td1]
    )
    return School(teacher, alice, bruno, chloe)


def dialog(**fields) -> dict:
    """Return the print dialog's fields as the page posts them, with ``fields`` changed."""
    values = {
        "kind": "timetable",
        "output": "printer",
        "paper": "A4",
        "orientation": "landscape",
        "colour": "colour",
        "show_room": "y",
        "show_teachers": "y",
        "show_groups": "y",
        "period": "week",
        "week": WEEK_DAY,
        "start": "",
        "end": "",
        "attach_pdf": "y",
        "print_copy": "none",
    }
    values.update(fields)
    return {name: value for name, value in values.items() if value is not None}


def job_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(DocumentJob))


def item_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(DocumentJobItem))


@pytest.fixture
def sender(login_as, delivery_settings, smtp_server, db):
    """A signed-in staff user with a verified personal account, delivery to ``smtp_server``."""
    from hpmail.accounts.models import Account, AccountKind, MailSettings
    from hpmail.core.time import utcnow

    delivery_settings(smtp_server)
    user = login_as("staff", display_name="Sophie Martin")
    account = Account(
        kind=AccountKind.PERSONAL,
        label=user.display_name,
        display_name=user.display_name,
        address=f"{user.login}@lycee-demo.fr",
        owner_id=user.id,
        verified_at=utcnow(),
    )
    db.session.add(account)
    db.session.flush()
    db.session.add(MailSettings(user_id=user.id, account_id=account.id))
    db.session.commit()
    return user


@pytest.fixture
def selection_of(db):
    """Return ``selection_of(user, people)``: the token of a list's selection holding them."""
    from hpmail.directory.selection import create_selection

    def make(user, people):
        selection = create_selection(user, [p.id for p in people])
        db.session.commit()
        return selection.token

    return make
