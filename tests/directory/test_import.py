"""CSV import of people: encodings, separators, French or English columns, all or nothing."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hpmail.directory.importer import import_people
from hpmail.directory.models import Cohort, Group, Person

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}

FRENCH_FILE = (
    "nom;prénom;e-mail;type;promotion;groupes;identifiant\n"
    "Dupont;Élodie;elodie.dupont@exemple.fr;étudiant;L1 Informatique;TD1, TP2;E001\n"
    "Martin;Hugo;;Étudiante;L1 Informatique;TD1;E002\n"
    "Lefèvre;Anne;anne.lefevre@exemple.fr;enseignant;;;P001\n"
    "Roux;Paul;paul.roux@@exemple;personnel;;;\n"
)


def people(db) -> dict[str, Person]:
    return {p.last_name: p for p in db.session.scalars(select(Person))}


def count(db, model=Person) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def run(data, **kwargs):
    report = import_people(data, **kwargs)
    from hpmail.extensions import db

    if report.applied:
        db.session.commit()
    else:
        db.session.rollback()
    return report


def test_french_file_with_bom_and_semicolons_creates_people_cohorts_and_groups(app, db):
    report = run(("\ufeff" + FRENCH_FILE).encode("utf-8"))
    assert report.errors == []
    assert report.applied
    assert [row.status for row in report.rows] == ["created"] * 4
    assert report.encoding == "UTF-8" and report.delimiter == ";"
    assert report.new_cohorts == ["L1 Informatique"]
    assert report.new_groups == ["L1 Informatique · TD1", "L1 Informatique · TP2"]
    assert "Nouvelle promotion « L1 Informatique »." in report.rows[0].messages
    found = people(db)
    assert found["Dupont"].first_name == "Élodie"
    assert sorted(g.name for g in found["Dupont"].groups) == ["TD1", "TP2"]
    assert found["Dupont"].cohort.name == "L1 Informatique"
    assert found["Dupont"].search_text == "dupont elodie elodie.dupont@exemple.fr"
    assert found["Martin"].email is None and found["Martin"].email_status == "missing"
    assert found["Lefèvre"].kind == "teacher" and found["Lefèvre"].external_id == "P001"
    # The malformed address is kept, marked invalid, and the report says so.
    assert found["Roux"].email == "paul.roux@@exemple"
    assert found["Roux"].email_status == "invalid"
    assert "Adresse e-mail invalide, conservée telle quelle." in report.rows[3].messages


def test_english_columns_commas_and_windows_1252(app, db):
    text = (
        "last_name,first_name,email,kind,cohort,groups\n"
        'Bézier,Noël,noel.bezier@exemple.fr,student,BTS SIO 1,"G1,G2"\n'
        "Ørsted,Hans,hans@exemple.fr,teacher,,\n"
    )
    report = run(text.encode("cp1252"))
    assert report.applied and report.encoding == "Windows-1252" and report.delimiter == ","
    found = people(db)
    assert found["Bézier"].first_name == "Noël"
    assert sorted(g.name for g in found["Bézier"].groups) == ["G1", "G2"]
    assert found["Ørsted"].kind == "teacher"


def test_reimporting_the_same_file_updates_instead_of_duplicating(app, db):
    run(FRENCH_FILE.encode())
    again = run(FRENCH_FILE.encode())
    assert [row.status for row in again.rows] == ["unchanged"] * 4
    assert count(db) == 4 and count(db, Cohort) == 1 and count(db, Group) == 2
    changed = FRENCH_FILE.replace("elodie.dupont@exemple.fr", "e.dupont@exemple.fr").replace(
        "L1 Informatique;TD1;E002", "L1 Informatique;TP2;E002"
    )
    report = run(changed.encode())
    assert [row.status for row in report.rows] == ["updated", "updated", "unchanged", "unchanged"]
    found = people(db)
    assert found["Dupont"].email == "e.dupont@exemple.fr"
    assert [g.name for g in found["Martin"].groups] == ["TP2"]
    assert count(db) == 4


def test_without_id_column_people_are_matched_on_kind_names_and_email(app, db):
    text = "nom;prénom;e-mail;type\nGarcia;Inès;ines@exemple.fr;étudiant\n"
    run(text.encode())
    report = run(text.replace("Inès", "INÈS ").encode())
    assert report.rows[0].status == "updated"
    assert count(db) == 1
    assert people(db)["Garcia"].first_name == "INÈS"
    other = run(text.replace("étudiant", "personnel").encode())
    assert other.rows[0].status == "created"
    assert count(db) == 2


def test_file_with_rejected_rows_imports_nothing_until_valid_rows_only(app, db):
    text = (
        "nom;prénom;type;promotion;groupes\n"
        "Dupont;Léa;étudiant;L1;TD1\n"
        ";Sans nom;étudiant;L1;\n"
        "Martin;Tom;parent;;\n"
        "Petit;Zoé;étudiant;;TD3\n"
    )
    report = run(text.encode())
    assert not report.applied
    assert [row.status for row in report.rows] == ["created", "rejected", "rejected", "rejected"]
    assert report.rows[1].messages == ["Le nom est manquant."]
    assert "Type « parent » inconnu" in report.rows[2].messages[0]
    assert report.rows[3].messages == ["Des groupes sont indiqués sans promotion."]
    assert count(db) == 0 and count(db, Cohort) == 0
    report = run(text.encode(), valid_only=True)
    assert report.applied
    assert count(db) == 1 and count(db, Cohort) == 1
    assert people(db)["Dupont"].groups[0].name == "TD1"


def test_duplicated_rows_in_the_file_are_rejected(app, db):
    text = (
        "nom;prénom;e-mail;type;identifiant\n"
        "Dupont;Léa;lea@exemple.fr;étudiant;\n"
        "DUPONT;Léa;LEA@exemple.fr;étudiant;\n"
        "Martin;Tom;;enseignant;T1\n"
        "Martinez;Tomas;;enseignant;T1\n"
    )
    report = run(text.encode())
    assert [row.status for row in report.rows] == ["created", "rejected", "created", "rejected"]
    assert report.rows[1].messages == ["Doublon de la ligne 2."]
    assert report.rows[3].messages == ["Doublon de la ligne 4."]
    assert count(db) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Le fichier est vide."),
        ("nom;prénom;type\n".encode(), "aucune personne"),
        (b"nom;e-mail\nDupont;a@b.fr\n", "Colonnes obligatoires manquantes : prénom, type"),
        (
            "nom\tprénom\ttype\nDupont\tLéa\tétudiant\n".encode(),
            "Séparateur de colonnes non reconnu",
        ),
        ("nom|prénom|type\nDupont|Léa|étudiant\n".encode(), "Séparateur de colonnes non reconnu"),
        (b"nom;pr\x81nom;type\nDupont;L\x8fa;x\n", "Encodage du fichier non reconnu"),
        ("nom;prénom;type\n".encode("utf-16"), "UTF-16"),
        (b"PK\x03\x04rest-of-a-zip", "tableur"),
        ('nom;prénom;type\nDupont;"Léa;étudiant\n'.encode(), "CSV mal formé"),
        ("nom;nom;prénom;type\nA;B;C;étudiant\n".encode(), "disent deux fois la même chose"),
    ],
)
def test_bad_files_get_a_clear_french_report_and_import_nothing(app, db, data, message):
    with app.test_request_context(headers=FR):
        report = run(data)
    assert not report.applied
    assert report.errors and message in report.errors[0], report.errors
    assert count(db) == 0


def test_a_file_over_the_import_limit_is_refused(app, db):
    data = FRENCH_FILE.encode() + b"x" * (20 * 1024 * 1024)
    report = run(data, max_bytes=app.config["IMPORT_MAX_BYTES"])
    assert "Le fichier est trop volumineux" in report.errors[0]
    assert "la limite est de 20.0 Mo" in report.errors[0]
    assert count(db) == 0


def test_extra_cells_and_hostile_values_reject_the_row(app, db):
    text = (
        "nom;prénom;type\n"
        "Dupont;Léa;étudiant;en trop\n"
        f"{'x' * 121};Léa;étudiant\n"
        "Martin;<script>alert(1)</script>;étudiant\n"
    )
    report = run(text.encode())
    statuses = [row.status for row in report.rows]
    assert statuses == ["rejected", "rejected", "created"]
    assert "4 colonnes au lieu de 3" in report.rows[0].messages[0]
    assert report.rows[1].messages == ["La valeur de « nom » dépasse 120 caractères."]
    assert count(db) == 0


@pytest.mark.parametrize(
    "character", ["\n", "\t", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]
)
def test_a_line_break_or_control_character_in_a_name_is_removed_and_the_row_says_so(
    app, db, character
):
    text = f'nom;prénom;type\n"Du{character}pont";"Lé{character}a";étudiant\n'
    report = run(text.encode(), valid_only=True)
    (row,) = report.rows
    assert row.status == "created"
    assert row.messages == [
        "Un retour à la ligne ou un caractère de contrôle a été retiré de cette ligne."
    ]
    (person,) = people(db).values()
    assert (person.last_name, person.first_name) == ("Dupont", "Léa")


def test_import_page_is_for_the_admin_only(client, login_as):
    login_as("staff")
    assert client.get("/import", headers=FR).status_code == 403


def test_admin_imports_a_file_through_the_page(client, login_as, db):
    login_as("admin")
    page = client.get("/import", headers=FR)
    assert "<h1>Importer des personnes</h1>" in page.text
    response = client.post(
        "/import",
        data={"file": (io.BytesIO(FRENCH_FILE.encode()), "eleves.csv")},
        headers=FR,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert "4 créé(s), 0 mis à jour, 0 inchangé(s), 0 rejeté(s)." in response.text
    assert "Import terminé." in response.text
    assert "Nouvelles promotions : L1 Informatique." in response.text
    assert count(db) == 4


def test_page_keeps_a_file_with_rejections_until_the_admin_imports_the_valid_rows(
    client, login_as, db, app, make_user
):
    admin = login_as("admin")
    text = "nom;prénom;type\nDupont;Léa;étudiant\nMartin;Tom;parent\n"
    response = client.post(
        "/import",
        data={"file": (io.BytesIO(text.encode()), "eleves.csv")},
        headers=FR,
        content_type="multipart/form-data",
    )
    assert "rien n'a été importé" in response.text
    assert "Importer les lignes valides (1)" in response.text
    assert count(db) == 0
    token = re.search(r'name="token" value="([^"]+)"', response.text).group(1)
    stored = list((Path(app.instance_path) / "imports").glob("*.csv"))
    assert len(stored) == 1 and stored[0].name.startswith(f"{admin.id}-")
    response = client.post("/import", data={"token": token}, headers=FR)
    assert "1 créé(s), 0 mis à jour, 0 inchangé(s), 1 rejeté(s)." in response.text
    assert count(db) == 1
    assert not stored[0].exists()
    # The token is used up.
    again = client.post("/import", data={"token": token}, headers=FR, follow_redirects=True)
    assert (
        "Le fichier n'est plus disponible" in again.text
        or "Le fichier n&#39;est plus disponible" in again.text
    )
    assert count(db) == 1


def test_page_refuses_a_missing_file_and_a_post_without_csrf(client, login_as, db):
    login_as("admin")
    response = client.post("/import", data={}, headers=FR, content_type="multipart/form-data")
    assert "Choisissez un fichier CSV." in response.text
    response = client.post(
        "/import",
        data={"file": (io.BytesIO(FRENCH_FILE.encode()), "eleves.csv")},
        content_type="multipart/form-data",
        csrf=False,
    )
    assert response.status_code == 400
    assert count(db) == 0


def test_page_reports_a_20_mb_file(client, login_as, db):
    login_as("admin")
    data = FRENCH_FILE.encode() + b"x" * (20 * 1024 * 1024)
    response = client.post(
        "/import",
        data={"file": (io.BytesIO(data), "gros.csv")},
        headers=FR,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert "Le fichier est trop volumineux" in response.text
    assert count(db) == 0


def test_cli_imports_a_file_and_refuses_rejections_without_valid_only(app, db, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(FRENCH_FILE, encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import-people", str(good)])
    assert result.exit_code == 0, result.output
    assert "4 créé(s)" in result.output and "Import terminé." in result.output
    assert count(db) == 4
    bad = tmp_path / "bad.csv"
    bad.write_text("nom;prénom;type\nNouveau;Léa;étudiant\nX;Y;parent\n", encoding="utf-8")
    result = runner.invoke(args=["import-people", str(bad)])
    assert result.exit_code == 1
    assert "Ligne 3 (X Y) : rejetée" in result.output
    assert "Rien n'a été importé" in result.output
    assert count(db) == 4
    result = runner.invoke(args=["import-people", str(bad), "--valid-only"])
    assert result.exit_code == 0
    assert count(db) == 5
