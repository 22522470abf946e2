"""Documents drawn to PDF and PNG: each person's own name and courses, legible, on few pages."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from datetime import date, time

from PIL import Image, ImageChops, ImageStat
from pypdf import PdfReader

from hpmail.directory.models import CourseSlot
from hpmail.documents.content import person_documents
from hpmail.documents.layout import DocumentKind, Layout, LetterheadInfo, Period
from hpmail.documents.preview import PNG_WIDTH, PngBase
from hpmail.documents.print_html import PageGeometry
from hpmail.documents.render import (
    Rendered,
    RenderError,
    printed_copy,
    render_documents,
    render_pdf,
    render_png,
    zip_of,
)

WEEK = Period.week_of(date(2026, 12, 9))  # Monday 7 to Sunday 13 December 2026
LETTERHEAD = LetterheadInfo("Université « Œnologie » d’Ørsted", "1 rue de l’École", "Paris")


def _school(make_cohort, make_person, make_course):
    cohort = make_cohort("L2 Droit", groups=("TD1", "TD2"))
    td1, td2 = cohort.groups
    teacher = make_person("teacher", first_name="Œdipe", last_name="Ørsted")
    make_course("Droit civil", "CM", teachers=[teacher], cohorts=[cohort])
    make_course("Droit pénal", "TD", teachers=[teacher], groups=[td1], room="C12")
    make_course("Histoire du droit", "TD", groups=[td2], room="C14")
    alice = make_person(
        "student", first_name="Alice", last_name="Martin", cohort=cohort, groups=[td1]
    )
    bruno = make_person(
        "student", first_name="Bruno", last_name="Petit", cohort=cohort, groups=[td2]
    )
    return cohort, teacher, alice, bruno


def _rendered(documents, layout=None, *, png=True, processes=1) -> dict[int, Rendered]:
    results = dict(
        render_documents(documents, layout or Layout(), LETTERHEAD, png=png, processes=processes)
    )
    assert sorted(results) == list(range(len(documents)))
    return results


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _pages(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def test_a_students_pdf_holds_their_name_and_courses_and_not_another_groups(
    db, make_cohort, make_person, make_course
):
    _cohort, _teacher, alice, bruno = _school(make_cohort, make_person, make_course)
    documents = person_documents(DocumentKind.TIMETABLE, [alice.id, bruno.id], WEEK)

    results = _rendered([documents[alice.id], documents[bruno.id]])

    of_alice, of_bruno = _text(results[0].pdf), _text(results[1].pdf)
    assert "Alice Martin" in of_alice and "Bruno" not in of_alice
    assert "Droit pénal" in of_alice and "C12" in of_alice
    assert "Histoire du droit" not in of_alice and "C14" not in of_alice
    assert "Bruno Petit" in of_bruno and "Alice" not in of_bruno
    assert "Histoire du droit" in of_bruno and "Droit pénal" not in of_bruno
    assert "Semaine du 7 décembre 2026" in of_alice
    assert len(results[0].pdf) <= 100_000


def test_names_with_oe_o_slash_guillemets_and_apostrophe_extract_exactly(
    db, make_cohort, make_person, make_course
):
    cohort, teacher, _alice, _bruno = _school(make_cohort, make_person, make_course)
    zoe = make_person(
        "student", first_name="Zoé « Zaza »", last_name="d’Œttingen-Øberg", cohort=cohort
    )
    documents = person_documents(DocumentKind.TIMETABLE, [zoe.id, teacher.id], WEEK)

    results = _rendered([documents[zoe.id], documents[teacher.id]], png=False)

    assert "Zoé « Zaza » d’Œttingen-Øberg" in _text(results[0].pdf)
    assert "Université « Œnologie » d’Ørsted" in _text(results[0].pdf)
    of_teacher = _text(results[1].pdf)
    assert of_teacher.count("Œdipe Ørsted") >= 3  # stamped once, and in each of their courses
    assert results[0].png is None


def test_the_png_decodes_is_legibly_wide_and_not_blank(db, make_cohort, make_person, make_course):
    _cohort, _teacher, alice, _bruno = _school(make_cohort, make_person, make_course)
    document = person_documents(DocumentKind.TIMETABLE, [alice.id], WEEK)[alice.id]

    (result,) = _rendered([document]).values()

    image = Image.open(io.BytesIO(result.png))
    image.load()
    page = PageGeometry.of(Layout())
    assert image.format == "PNG"
    assert image.size == (PNG_WIDTH, round(PNG_WIDTH * page.height / page.width))
    assert ImageStat.Stat(image.convert("L")).stddev[0] > 20
    assert len(result.png) <= 200_000
    # The PNG of the stamped PDF, drawn from scratch, is the same picture.
    again = Image.open(io.BytesIO(render_png(result.pdf))).convert("L")
    assert again.size == image.size


def test_students_sharing_a_grid_each_get_their_own_name_on_pdf_and_png(
    db, make_cohort, make_person, make_course
):
    cohort, _teacher, alice, _bruno = _school(make_cohort, make_person, make_course)
    claire = make_person(
        "student", first_name="Claire", last_name="Dupont", cohort=cohort, groups=alice.groups
    )
    documents = person_documents(DocumentKind.TIMETABLE, [alice.id, claire.id], WEEK)
    assert documents[alice.id].shared_key() == documents[claire.id].shared_key()

    results = _rendered([documents[alice.id], documents[claire.id]], processes=2)

    of_alice, of_claire = _text(results[0].pdf), _text(results[1].pdf)
    assert "Alice Martin" in of_alice and "Claire" not in of_alice
    assert "Claire Dupont" in of_claire and "Alice" not in of_claire
    first = Image.open(io.BytesIO(results[0].png)).convert("RGB")
    second = Image.open(io.BytesIO(results[1].png)).convert("RGB")
    changed = ImageChops.difference(first, second).getbbox()
    assert changed is not None
    left, top, right, bottom = PngBase.name_box_pixels(PageGeometry.of(Layout()))
    assert left <= changed[0] and top <= changed[1]
    assert changed[2] <= right and changed[3] <= bottom


def test_an_empty_period_says_so_in_words(db, make_cohort, make_person, make_course):
    _cohort, _teacher, alice, _bruno = _school(make_cohort, make_person, make_course)
    summer = Period(date(2027, 7, 5), date(2027, 7, 18))
    for slot in db.session.query(CourseSlot):  # the courses are over: no slot left
        db.session.delete(slot)
    db.session.commit()
    timetable = person_documents(DocumentKind.TIMETABLE, [alice.id], summer)[alice.id]
    summary = person_documents(DocumentKind.SUMMARY, [alice.id], summer)[alice.id]
    assert timetable.is_empty and summary.is_empty

    results = _rendered([timetable, summary], png=False)

    for result in results.values():
        text = _text(result.pdf)
        assert "Aucun cours sur cette période." in text
        assert "Alice Martin" in text
        assert _pages(result.pdf) == 1


def test_a_teachers_40_courses_a_week_on_a3_landscape_stay_on_one_page_a_week(
    db, make_cohort, make_person, make_course
):
    cohort = make_cohort("L3 Chimie", groups=("TD1",))
    teacher = make_person("teacher", first_name="Héloïse", last_name="Meunier")
    for n in range(40):
        course = make_course(f"Matière {n:02d}", ("CM", "TD", "TP")[n % 3], teachers=[teacher])
        course.cohorts = [cohort]
        day, start = n % 6, 8 + (n // 6) * 1.5  # some overlap their neighbours
        course.slots = [
            CourseSlot(
                weekday=day,
                start_time=time(int(start), int(start % 1 * 60)),
                end_time=time(int(start) + 2, int(start % 1 * 60)),
            )
        ]
    db.session.commit()
    two_weeks = Period(date(2026, 12, 7), date(2026, 12, 20))
    document = person_documents(DocumentKind.TIMETABLE, [teacher.id], two_weeks)[teacher.id]
    assert len(document.weeks[0].occurrences) == 40

    (result,) = _rendered([document], Layout(paper="A3", orientation="landscape")).values()

    assert _pages(result.pdf) == 2
    text = _text(result.pdf)
    assert all(text.count(f"Matière {n:02d}") == 2 for n in range(40))
    page = PdfReader(io.BytesIO(result.pdf)).pages[0]
    assert round(float(page.mediabox.width)) == 1191  # A3 landscape, in points


def test_the_longest_name_the_directory_holds_is_cut_with_an_ellipsis_on_one_page(
    db, make_cohort, make_person, make_course
):
    cohort, _teacher, _alice, _bruno = _school(make_cohort, make_person, make_course)
    # 240 characters: a first and a last name of 120 each, the most the columns (and the import)
    # take; PostgreSQL refuses longer ones where SQLite would store them.
    long_name = "Marie-" + "Anne" * 58 + "xy"
    student = make_person(
        "student", first_name=long_name[:120], last_name=long_name[120:], cohort=cohort
    )
    documents = person_documents(DocumentKind.TIMETABLE, [student.id], WEEK)

    (result,) = _rendered([documents[student.id]]).values()

    assert len(long_name) == 240
    text = _text(result.pdf)
    assert "Marie-AnneAnne" in text and "…" in text
    assert long_name[-20:] not in text
    assert _pages(result.pdf) == 1
    assert Image.open(io.BytesIO(result.png)).size[0] == PNG_WIDTH


def test_a_failing_document_is_reported_for_its_index_while_the_others_render(
    db, make_cohort, make_person, make_course
):
    cohort, _teacher, alice, bruno = _school(make_cohort, make_person, make_course)
    claire = make_person("student", first_name="Claire", cohort=cohort, groups=alice.groups)
    documents = person_documents(DocumentKind.TIMETABLE, [alice.id, bruno.id, claire.id], WEEK)
    # A subject no PDF can hold (a lone surrogate, as a broken import could leave it).
    week = documents[bruno.id].weeks[0]
    first = week.occurrences[0]
    bad = replace(first, course=replace(first.course, subject="Histoire \ud800"))
    broken = replace(
        documents[bruno.id], weeks=(replace(week, occurrences=(bad, *week.occurrences[1:])),)
    )

    # And, on the grid Alice shares with Claire, an owner without a name (a broken object).
    nameless = replace(documents[claire.id], owner=replace(documents[claire.id].owner, name=None))
    group = [documents[alice.id], broken, documents[claire.id], nameless]

    results = _rendered(group, processes=2)

    assert isinstance(results[1], RenderError) and isinstance(results[3], RenderError)
    assert "Le document n'a pas pu être dessiné" in str(results[1])
    assert "Le document n'a pas pu être dessiné" in str(results[3])
    assert "Alice Martin" in _text(results[0].pdf)
    assert "Claire" in _text(results[2].pdf)


def test_an_unknown_layout_fails_every_document_with_a_french_message(
    db, make_cohort, make_person, make_course
):
    _cohort, _teacher, alice, bruno = _school(make_cohort, make_person, make_course)
    documents = person_documents(DocumentKind.TIMETABLE, [alice.id, bruno.id], WEEK)

    results = _rendered(list(documents.values()), Layout(paper="A5"))

    assert all(isinstance(result, RenderError) for result in results.values())
    assert "Mise en page inconnue" in str(results[0])


def test_one_pdf_alone_a_printed_copy_in_order_and_a_zip_of_safe_unique_names(
    db, make_cohort, make_person, make_course
):
    _cohort, _teacher, alice, bruno = _school(make_cohort, make_person, make_course)
    documents = person_documents(DocumentKind.SUMMARY, [alice.id, bruno.id], WEEK)

    of_alice = render_pdf(documents[alice.id], Layout(orientation="portrait"), LETTERHEAD)
    of_bruno = render_pdf(documents[bruno.id], Layout(orientation="portrait"), LETTERHEAD)
    copy = printed_copy([of_bruno, of_alice])
    archive = zip_of(
        [
            ("../Emploi du temps - MARTIN Alice.pdf", of_alice),
            ("Emploi du temps - MARTIN Alice", of_bruno),
            ("a\x00b/c\\d.pdf", of_bruno),
        ]
    )

    assert "Récapitulatif" in _text(of_alice) and "Droit civil" in _text(of_alice)
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(copy)).pages]
    assert "Bruno Petit" in pages[0] and "Alice Martin" in pages[-1]
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert names == [
        "Emploi du temps - MARTIN Alice.pdf",
        "Emploi du temps - MARTIN Alice (2).pdf",
        "a b c d.pdf",
    ]


def test_a_printed_copy_writes_a_shared_grid_once_and_each_name_on_its_page(
    db, make_cohort, make_person, make_course
):
    cohort, _teacher, alice, _bruno = _school(make_cohort, make_person, make_course)
    claire = make_person(
        "student", first_name="Claire", last_name="Dupont", cohort=cohort, groups=alice.groups
    )
    documents = person_documents(DocumentKind.TIMETABLE, [alice.id, claire.id], WEEK)
    results = _rendered([documents[alice.id], documents[claire.id]] * 3, png=False)
    pdfs = [results[index].pdf for index in range(6)]

    copy = printed_copy(pdfs)

    pages = [page.extract_text() for page in PdfReader(io.BytesIO(copy)).pages]
    assert len(pages) == 6
    assert ["Alice Martin" in text for text in pages] == [True, False] * 3
    assert ["Claire Dupont" in text for text in pages] == [False, True] * 3
    assert all("Droit pénal" in text for text in pages)
    assert len(copy) < len(pdfs[0]) * 1.5  # the grid and its fonts once, six names
