"""CSV import of absences and internships: French or English columns, a report per row,
re-importing updates, hostile files refused in French with nothing written."""

from __future__ import annotations

import io
from datetime import date, time

import pytest
from sqlalchemy import func, select

from hpmail.directory.models import Absence, Internship
from hpmail.directory.record_import import import_absences, import_internships
from hpmail.extensions import db as _db

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}

ABSENCES_FR = (
    "Étudiant;Date;Début;Fin;Cours;Motif;Justifiée\n"
    "E001;05/01/2026;08:00;10:00;Réseaux;Maladie;oui\n"
    "ZOLA Zoé;2026-01-06;14h;17h30;Anglais;Transport;non\n"
    "Éluard Élodie;12/01/2026;8h30;9h30;;Rendez-vous médical;1\n"
)


@pytest.fixture
def school(make_person, make_cohort, make_course):
    l1 = make_cohort("L1 Informatique")
    zoe = make_person(last_name="Zola", first_name="Zoé", cohort=l1, external_id="E001")
    elodie = make_person(last_name="Éluard", first_name="Élodie", cohort=l1, external_id="E002")
    # Monday 08:30–10:30 (the factory's slot), given to the cohort.
    reseaux = make_course(subject="Réseaux", cohorts=[l1])
    return {"l1": l1, "zoe": zoe, "elodie": elodie, "reseaux": reseaux}


def run(importer, text: str | bytes, **kwargs):
    data = text.encode() if isinstance(text, str) else text
    report = importer(data, **kwargs)
    if report.applied:
        _db.session.commit()
    else:
        _db.session.rollback()
    return report


def count(model) -> int:
    return _db.session.scalar(select(func.count()).select_from(model))


def test_french_absences_are_created_and_linked_to_the_students_course(app, db, school):
    with app.test_request_context(headers=FR):
        report = run(import_absences, ABSENCES_FR)
    assert report.errors == [] and report.applied
    assert [row.status for row in report.rows] == ["created"] * 3
    absences = db.session.scalars(select(Absence).order_by(Absence.day)).all()
    first, second, third = absences
    assert (first.person_id, first.day, first.start_time) == (
        school["zoe"].id,
        date(2026, 1, 5),
        time(8),
    )
    assert first.course_id == school["reseaux"].id and first.course_label == "Réseaux"
    assert first.justified and first.reason == "Maladie" and first.minutes == 120
    assert second.person_id == school["zoe"].id and second.course_id is None
    assert second.end_time == time(17, 30) and not second.justified
    assert third.person_id == school["elodie"].id and third.justified


def test_english_headers_and_commas_are_read_too(app, db, school):
    text = (
        "student_id,date,start,end,course,reason,justified,reference\n"
        "E002,2026-02-02,10:00,11:00,Anglais,Sick,yes,ABS-1\n"
    )
    report = run(import_absences, text)
    assert report.applied and report.delimiter == ","
    (absence,) = db.session.scalars(select(Absence)).all()
    assert absence.external_id == "ABS-1" and absence.justified and absence.reason == "Sick"


def test_each_bad_row_is_reported_in_french_and_nothing_is_written(app, db, school):
    text = (
        "Étudiant;Date;Début;Fin;Cours;Motif;Justifiée\n"
        "E001;05/01/2026;08:00;10:00;Réseaux;Maladie;oui\n"
        "Inconnu Personne;05/01/2026;08:00;10:00;;;non\n"
        "E001;31/02/2026;08:00;10:00;;;non\n"
        "E002;06/01/2026;10:00;09:00;;;non\n"
        "E002;07/01/2026;25:00;26:00;;;non\n"
        "E002;08/01/2026;08:00;09:00;;;peut-être\n"
        "E001;05/01/2026;08:00;10:00;Réseaux;Maladie;oui\n"
    )
    with app.test_request_context(headers=FR):
        report = run(import_absences, text)
    assert not report.applied
    statuses = [row.status for row in report.rows]
    assert statuses == ["created"] + ["rejected"] * 6
    messages = [" ".join(row.messages) for row in report.rows]
    assert "Étudiant inconnu « Inconnu Personne »." in messages[1]
    assert "Date illisible « 31/02/2026 »" in messages[2]
    assert "La fin (09:00) n'est pas après le début." in messages[3]
    assert "Heure illisible « 25:00 »" in messages[4]
    assert "« peut-être » n'est ni oui ni non" in messages[5]
    assert "Doublon de la ligne 2." in messages[6]
    assert count(Absence) == 0


def test_valid_rows_only_writes_the_good_rows(app, db, school):
    text = "Étudiant;Date;Début;Fin\nE001;05/01/2026;08:00;10:00\nPersonne;05/01/2026;8h;9h\n"
    report = run(import_absences, text, valid_only=True)
    assert report.applied and count(Absence) == 1


def test_reimporting_updates_by_student_day_and_start_or_by_reference(app, db, school):
    run(import_absences, ABSENCES_FR)
    changed = ABSENCES_FR.replace("Transport;non", "Transport;oui")
    with app.test_request_context(headers=FR):
        report = run(import_absences, changed)
    assert [row.status for row in report.rows] == ["unchanged", "updated", "unchanged"]
    assert count(Absence) == 3
    second = db.session.scalar(select(Absence).where(Absence.day == date(2026, 1, 6)))
    assert second.justified

    with_ref = "Étudiant;Date;Début;Fin;Référence\nE001;10/03/2026;08:00;09:00;R1\n"
    run(import_absences, with_ref)
    moved = with_ref.replace("10/03/2026;08:00", "11/03/2026;09:00").replace("09:00;R1", "10:00;R1")
    report = run(import_absences, moved)
    assert [row.status for row in report.rows] == ["updated"]
    absence = db.session.scalar(select(Absence).where(Absence.external_id == "R1"))
    assert (absence.day, absence.start_time) == (date(2026, 3, 11), time(9))
    assert count(Absence) == 4


INTERNSHIPS_FR = (
    "Étudiant;Entreprise;Adresse;Tuteur;E-mail du tuteur;Début;Fin;Sujet\n"
    "E001;Airbus;2 rond-point Dewoitine, 31700 Blagnac;M. Durand;durand@airbus.example;"
    "06/04/2026;12/06/2026;Tests de logiciels embarqués\n"
    "E002;Boulangerie Paul;;Mme Roux;;01/07/2026;31/07/2026;Vente\n"
)


def test_internships_are_imported_with_the_tutors_address_checked(app, db, school):
    report = run(import_internships, INTERNSHIPS_FR)
    assert report.applied and [r.status for r in report.rows] == ["created", "created"]
    airbus, paul = db.session.scalars(select(Internship).order_by(Internship.start_date)).all()
    assert airbus.person_id == school["zoe"].id and airbus.tutor_email_status == "valid"
    assert airbus.company_address.startswith("2 rond-point") and airbus.company_key == "airbus"
    assert paul.tutor_email is None and paul.tutor_email_status == "missing"
    again = run(import_internships, INTERNSHIPS_FR.replace("Vente", "Vente et caisse"))
    assert [r.status for r in again.rows] == ["unchanged", "updated"]
    assert count(Internship) == 2


def test_internship_rows_with_end_before_start_or_bad_address_are_reported(app, db, school):
    text = (
        "student;company;tutor_email;start;end\n"
        "E001;Airbus;pas-une-adresse;2026-04-06;2026-04-01\n"
        "E002;;x@y.example;2026-04-06;2026-05-01\n"
        "E002;Thales;tuteur@@thales;2026-04-06;2026-05-01\n"
    )
    with app.test_request_context(headers=FR):
        report = run(import_internships, text)
    assert [r.status for r in report.rows] == ["rejected", "rejected", "created"]
    assert "La fin (2026-04-01) est avant le début." in report.rows[0].messages
    assert "L'entreprise est manquante." in report.rows[1].messages
    assert "Adresse e-mail invalide, conservée telle quelle." in report.rows[2].messages
    assert count(Internship) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Le fichier est vide."),
        ("Étudiant;Date;Début;Fin\n".encode(), "aucune absence"),
        ("Étudiant;Date\nE001;05/01/2026\n".encode(), "Colonnes obligatoires manquantes"),
        (b"\x00\x01\x02binary\xff\xfe", "binaire"),
        ("Étudiant;Date;Début;Fin\n".encode("utf-16"), "UTF-16"),
        (b"PK\x03\x04rest-of-a-zip", "tableur"),
        (b"Etudiant;Date;D\x81but;Fin\nE001;x;y;z\n", "Encodage du fichier non reconnu"),
        (b"E001;05/01/2026;08:00;10:00\n", "Colonnes obligatoires manquantes"),
    ],
)
def test_hostile_absence_files_are_refused_in_french(app, db, school, data, message):
    with app.test_request_context(headers=FR):
        report = run(import_absences, data)
    assert not report.applied
    assert report.errors and message in report.errors[0], report.errors
    assert count(Absence) == 0


def test_a_50_mb_file_is_refused_before_reading(app, db, school):
    data = ABSENCES_FR.encode() + b"x" * (50 * 1024 * 1024)
    with app.test_request_context(headers=FR):
        report = run(import_absences, data, max_bytes=app.config["IMPORT_MAX_BYTES"])
    assert "Le fichier est trop volumineux (50.0 Mo)" in report.errors[0]
    assert count(Absence) == 0


def test_import_pages_are_for_the_admin_only(client, login_as):
    login_as("staff")
    assert client.get("/import/absences").status_code == 403
    assert client.get("/import/stages").status_code == 403


def test_admin_imports_absences_through_the_page(client, login_as, db, school):
    login_as("admin")
    page = client.get("/import/absences", headers=FR)
    assert "<h1>Importer des absences</h1>" in page.text and "justifiée" in page.text
    response = client.post(
        "/import/absences",
        data={"file": (io.BytesIO(ABSENCES_FR.encode()), "absences.csv")},
        headers=FR,
        content_type="multipart/form-data",
    )
    assert "3 créé(s), 0 mis à jour, 0 inchangé(s), 0 rejeté(s)." in response.text
    assert count(Absence) == 3


def test_import_page_keeps_a_file_with_rejections_for_the_valid_rows(client, login_as, school):
    login_as("admin")
    text = "Étudiant;Entreprise;Début;Fin\nE001;Airbus;06/04/2026;12/06/2026\nX;Y;1;2\n"
    response = client.post(
        "/import/stages",
        data={"file": (io.BytesIO(text.encode()), "stages.csv")},
        headers=FR,
        content_type="multipart/form-data",
    )
    assert "Importer les lignes valides (1)" in response.text
    assert count(Internship) == 0
    token = response.text.split('name="token" value="')[1].split('"')[0]
    done = client.post("/import/stages", data={"token": token}, headers=FR)
    assert "1 créé(s), 0 mis à jour, 0 inchangé(s), 1 rejeté(s)." in done.text
    assert count(Internship) == 1


def test_cli_imports_absences_and_internships(app, db, school, tmp_path):
    absences = tmp_path / "absences.csv"
    absences.write_text(ABSENCES_FR, encoding="utf-8")
    internships = tmp_path / "stages.csv"
    internships.write_text(INTERNSHIPS_FR, encoding="cp1252")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import-absences", str(absences)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["import-internships", str(internships)])
    assert result.exit_code == 0, result.output
    assert count(Absence) == 3 and count(Internship) == 2
