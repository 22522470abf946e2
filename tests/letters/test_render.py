"""Letters written for real records of the directory and printed: the PDF's text by pypdf."""

from __future__ import annotations

import io
from datetime import date

import pytest
from pypdf import PdfReader

from hpmail.documents.layout import LetterheadInfo
from hpmail.documents.render import RenderError, html_to_pdf
from hpmail.letters.fields import FIELDS, absence_records, records_for
from hpmail.letters.models import Category
from hpmail.letters.render import letter_pdf, render_letters
from tests.documents.print_fixtures import pdf_text

TODAY = date(2026, 12, 2)
LETTERHEAD = LetterheadInfo(
    school_name="Lycée Œuvre « Démo »", address="1 rue des Écoles\n75005 Paris", town="Paris"
)


def pdf_words(pdf: bytes) -> str:
    """The words of every page, one space apart."""
    return " ".join(pdf_text(pdf).split())


def every_field(category: str) -> str:
    """A body that prints every field of the category, each after its French name."""
    parts = []
    for field in FIELDS[category]:
        if field.name == "absences":
            parts.append(f"<p>{field.label}: {{{{ absences }}}}</p>")
            parts.append(
                "<ul>{% for absence in absences %}<li>[{{ absence.date }} | {{ absence.horaire }}"
                " | {{ absence.cours }} | {{ absence.motif }} | {{ absence.justifiee }}"
                " | {{ absence.heures }}]</li>{% endfor %}</ul>"
            )
        else:
            parts.append(f"<p>{field.label}: {{{{ {field.name} }}}}</p>")
    return "".join(parts)


@pytest.fixture
def student(make_cohort, make_person):
    cohort = make_cohort("L2 Droit", groups=("TD1", "TP2"))
    return make_person(
        "student",
        last_name="Øster-Cœur",
        first_name="Zoë",
        email="zoe.oster@exemple.fr",
        cohort=cohort,
        groups=cohort.groups,
    )


@pytest.mark.parametrize("category", [Category.STUDENTS, Category.TEACHERS, Category.STAFF])
def test_a_person_letter_prints_every_field_of_its_category(
    app, make_letter, make_person, make_cohort, category
):
    kind = {"students": "student", "teachers": "teacher", "staff": "staff"}[category]
    cohort = make_cohort("M1 Histoire", groups=("TD3",)) if kind == "student" else None
    person = make_person(
        kind,
        last_name="N’Diaye",
        first_name="Aïssatou",
        email="a.ndiaye@exemple.fr",
        cohort=cohort,
        groups=cohort.groups if cohort else (),
    )
    make_person(kind, last_name="Autre", first_name="Personne")
    letter = make_letter(category, every_field(category), subject="Pour {{ prenom }} {{ nom }}")
    with app.test_request_context():
        text = pdf_words(letter_pdf(letter, person, LETTERHEAD, TODAY))
    for expected in (
        "Nom: N’Diaye",
        "Prénom: Aïssatou",
        "E-mail: a.ndiaye@exemple.fr",
        "Date du jour: 2 décembre 2026",
        "Établissement: Lycée Œuvre « Démo »",
        "Fait à Paris, le 2 décembre 2026",
        "Objet : Pour Aïssatou N’Diaye",
    ):
        assert expected in text, text
    if kind == "student":
        assert "Promotion: M1 Histoire" in text and "Groupes: TD3" in text, text
    assert "Autre" not in text


def test_an_absences_letter_prints_the_student_s_absences_and_their_total(
    app, make_letter, make_absence, make_person, student
):
    other = make_person("student", last_name="Voisin", first_name="Paul")
    first = make_absence(
        student, date(2026, 11, 2), (8, 0), (10, 0), course_label="Droit civil", reason="Maladie"
    )
    second = make_absence(
        student,
        date(2026, 11, 9),
        (14, 0),
        (15, 30),
        course_label="Histoire du droit",
        reason="Transport",
        justified=True,
    )
    make_absence(other, date(2026, 11, 3), course_label="Économie", reason="Inconnu")
    letter = make_letter(Category.ABSENCES, every_field(Category.ABSENCES))
    record = absence_records([second, first])[0]
    with app.test_request_context():
        text = pdf_words(letter_pdf(letter, record, LETTERHEAD, TODAY))
    for expected in (
        "Nom: Øster-Cœur",
        "Promotion: L2 Droit",
        "Groupes: TD1, TP2",
        "Date: 2 novembre 2026",
        "Horaire: 8 h 00 – 10 h 00",
        "Cours: Droit civil",
        "Motif: Maladie",
        "Justifiée: Non",
        "[2 novembre 2026 | 8 h 00 – 10 h 00 | Droit civil | Maladie | Non | 2 h]",
        "[9 novembre 2026 | 14 h 00 – 15 h 30 | Histoire du droit | Transport | Oui | 1,5 h]",
        "Nombre d'absences: 2",
        "Total des heures: 3,5 h",
        "Liste des absences: 2 novembre 2026, 8 h 00 – 10 h 00 : Droit civil (2 h); "
        "9 novembre 2026, 14 h 00 – 15 h 30 : Histoire du droit (1,5 h)",
    ):
        assert expected in text, text
    assert "Économie" not in text and "Voisin" not in text


def test_two_students_absences_in_one_selection_give_two_letters_each_with_their_own(
    app, make_absence, make_person, student
):
    other = make_person("student", last_name="Voisin", first_name="Paul")
    mine = make_absence(student, date(2026, 11, 2), course_label="Droit civil")
    theirs = make_absence(other, date(2026, 11, 3), course_label="Économie")
    mine_later = make_absence(student, date(2026, 11, 4), course_label="Droit pénal")
    records = records_for(Category.ABSENCES, [mine_later.id, theirs.id, mine.id])
    assert [(r.student.last_name, [a.course_label for a in r.absences]) for r in records] == [
        ("Øster-Cœur", ["Droit civil", "Droit pénal"]),
        ("Voisin", ["Économie"]),
    ]


def test_an_internship_letter_prints_every_field_of_the_internship(
    app, make_letter, make_internship, student
):
    internship = make_internship(
        student,
        "Cabinet Lefèvre & Associés",
        date(2027, 1, 11),
        date(2027, 3, 19),
        company_address="12 quai d’Orsay, 75007 Paris",
        tutor_name="Mme Hélène Dubœuf",
        tutor_email="h.duboeuf@cabinet.fr",
        subject="Veille juridique « droit des contrats »",
    )
    letter = make_letter(Category.INTERNSHIPS, every_field(Category.INTERNSHIPS))
    with app.test_request_context():
        text = pdf_words(letter_pdf(letter, internship, LETTERHEAD, TODAY))
    for expected in (
        "Nom: Øster-Cœur",
        "Promotion: L2 Droit",
        "Entreprise: Cabinet Lefèvre & Associés",
        "Adresse de l'entreprise: 12 quai d’Orsay, 75007 Paris",
        "Tuteur: Mme Hélène Dubœuf",
        "E-mail du tuteur: h.duboeuf@cabinet.fr",
        "Début: 11 janvier 2027",
        "Fin: 19 mars 2027",
        "Sujet: Veille juridique « droit des contrats »",
    ):
        assert expected in text, text


def test_many_letters_are_drawn_together_and_each_pdf_holds_its_own_person_only(
    app, make_letter, make_person
):
    people = [make_person("teacher", last_name=f"Enseignant{n:02d}") for n in range(21)]
    # A long letter for one of them: their letter takes several pages, the others' one.
    body = "<p>Madame, Monsieur {{ nom }},</p>" + "".join(
        f"{{% if nom == 'Enseignant07' %}}<p>Paragraphe {n} " + "texte " * 40 + "</p>{% endif %}"
        for n in range(30)
    )
    letter = make_letter(Category.TEACHERS, body, subject="Réunion — {{ nom }}")
    with app.test_request_context():
        results = dict(render_letters(letter, people, LETTERHEAD, today=TODAY, processes=2))
    assert sorted(results) == list(range(21))
    for index, pdf in results.items():
        text = pdf_words(pdf)
        assert f"Madame, Monsieur Enseignant{index:02d}" in text
        others = [p.last_name for n, p in enumerate(people) if n != index]
        assert not any(name in text for name in others), (index, text[:200])
    with app.test_request_context():
        alone = letter_pdf(letter, people[7], LETTERHEAD, TODAY)
    long_pages = len(PdfReader(io.BytesIO(results[7])).pages)
    assert long_pages == len(PdfReader(io.BytesIO(alone)).pages) > 1
    assert len(PdfReader(io.BytesIO(results[8])).pages) == 1


def test_a_letter_too_long_for_one_record_fails_alone_among_the_others(
    app, make_letter, make_person, make_absence
):
    students = [make_person("student", last_name=f"Élève{n}") for n in range(3)]
    for day in range(1, 29):
        make_absence(students[1], date(2026, 11, day))
    make_absence(students[0], date(2026, 11, 2))
    make_absence(students[2], date(2026, 11, 3))
    # Each absence's line for each absence: fine for one absence, too much for 28.
    body = (
        "<p>{{ nom }}</p>{% for a in absences %}{% for b in absences %}{% for c in absences %}"
        "{% for d in absences %}<p>{{ d.date }} {{ d.horaire }} {{ d.cours }}</p>"
        "{% endfor %}{% endfor %}{% endfor %}{% endfor %}"
    )
    letter = make_letter(Category.ABSENCES, body)
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        records = absence_records(
            a for s in students for a in sorted(s_absences(app, s), key=lambda a: a.day)
        )
        results = dict(render_letters(letter, records, LETTERHEAD, today=TODAY, processes=1))
    assert isinstance(results[1], RenderError)
    assert "trop longue" in str(results[1])
    assert "Élève0" in pdf_words(results[0]) and "Élève2" in pdf_words(results[2])


def s_absences(app, student):
    from sqlalchemy import select

    from hpmail.directory.models import Absence
    from hpmail.extensions import db

    return db.session.scalars(select(Absence).where(Absence.person_id == student.id)).all()


def test_a_batch_s_html_gives_each_letter_alone_when_the_batch_cannot_be_cut(
    app, make_letter, make_person
):
    from hpmail.letters.render import _printed, each_alone, letters_html, write_letter

    people = [make_person("staff", last_name=name) for name in ("Alpha", "Bravo", "Charlie")]
    letter = make_letter(Category.STAFF, "<p>Bonjour {{ nom }}</p><h1>Titre</h1>")
    with app.test_request_context():
        printed = [_printed(write_letter(letter, p, LETTERHEAD, TODAY), p) for p in people]
        alone = each_alone(letters_html(printed, LETTERHEAD, TODAY))
        texts = [pdf_words(html_to_pdf(html)) for html in alone]
    assert len(texts) == 3
    for text, name in zip(texts, ("Alpha", "Bravo", "Charlie"), strict=True):
        assert f"Bonjour {name}" in text
        assert [other for other in ("Alpha", "Bravo", "Charlie") if other in text] == [name]
