"""Envoyer un courrier: the print dialog in its letter mode, a print job of letters (one per
student with their selected absences, one per internship), each person's own letter as a PDF and
in the body of their own e-mail, delivered to a real SMTP server; the printed copy for those
without e-mail; the dialog's refusals."""

from __future__ import annotations

import io
import uuid
from datetime import date

import pytest
from pypdf import PdfReader

from hpmail.directory.selection import create_selection
from hpmail.outbox.attachments import read_attachment
from hpmail.outbox.models import Mailing
from tests.documents.print_fixtures import FR, latest_job, pdf_text
from tests.fixtures.worker import wait_until, worker_app_config

ABSENCES_LETTER = (
    "<p>Madame, Monsieur {{ nom }},</p>"
    "<p>Absences : {{ nombre_absences }}, total {{ total_heures }}.</p>"
    "<ul>{% for absence in absences %}<li>{{ absence.date }} {{ absence.cours }}</li>"
    "{% endfor %}</ul>"
)


def letter_dialog(**fields) -> dict:
    """The dialog's fields in its letter mode, as the page posts them."""
    values = {
        "output": "email",
        "attach_pdf": "y",
        "inline_png": "y",
        "print_copy": "without_email",
        "request_token": str(uuid.uuid4()),
    }
    values.update(fields)
    return {name: value for name, value in values.items() if value is not None}


def composer(**fields) -> dict:
    values = {
        "subject": "Vos absences",
        "body": "<p>Bonjour,</p><p>Voici votre courrier.</p>",
        "request_token": str(uuid.uuid4()),
    }
    values.update(fields)
    return values


def parts_of(message):
    pdfs, html, text = [], "", ""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "application/pdf":
            pdfs.append(part.get_content())
        elif kind == "text/html":
            html = part.get_content()
        elif kind == "text/plain" and part.get_content_disposition() is None:
            text = part.get_content()
    return pdfs, html, text


@pytest.fixture
def absences(school, make_absence):
    """Two absences of Alice, one of Bruno, one of Chloé (no address), one of Alice not selected."""
    return {
        "alice": [
            make_absence(school.alice, date(2026, 11, 2), course_label="Droit civil"),
            make_absence(school.alice, date(2026, 11, 9), (14, 0), (16, 0), course_label="Anglais"),
        ],
        "bruno": [make_absence(school.bruno, date(2026, 11, 3), course_label="Droit pénal")],
        "chloe": [make_absence(school.chloe, date(2026, 11, 4), course_label="Économie")],
        "unselected": make_absence(school.alice, date(2026, 11, 20), course_label="Histoire"),
    }


def absence_selection(db, user, absences) -> str:
    ids = [a.id for key in ("alice", "bruno", "chloe") for a in absences[key]]
    selection = create_selection(user, ids, kind="absence")
    db.session.commit()
    return selection.token


def test_the_absences_list_offers_envoyer_un_courrier_with_its_selection(client, sender):
    page = client.get("/plannings/etudiants/absences", headers=FR, follow_redirects=True)

    assert page.status_code == 200
    assert "Envoyer un courrier" in page.text
    assert "/courrier?selection=" in page.text


def test_the_dialog_offers_only_the_letters_of_the_list_s_category(
    client,
    sender,
    absences,
    make_letter,
    db,
):
    make_letter("absences", ABSENCES_LETTER, title="Absences non justifiées")
    make_letter("students", "<p>{{ nom }}</p>", title="Convocation")
    token = absence_selection(db, sender, absences)

    page = client.get(f"/courrier?selection={token}", headers=FR)

    assert page.status_code == 200
    assert "Envoyer un courrier" in page.text
    assert "Absences non justifiées" in page.text
    assert "Convocation" not in page.text
    assert "3 personnes sélectionnées" in page.text  # three students, four absences
    assert "Insérer le courrier dans le corps de l'e-mail" in page.text
    assert 'name="paper"' not in page.text  # a letter has no layout to choose


@pytest.mark.parametrize(
    ("letter", "message"),
    [
        (None, "Choisissez le courrier à envoyer."),
        ("students", "Choisissez l&#39;un des courriers de cette liste."),
        ("unknown", "Choisissez l&#39;un des courriers de cette liste."),
    ],
)
def test_no_letter_or_a_letter_of_another_category_is_refused_and_makes_no_job(
    client,
    sender,
    absences,
    make_letter,
    db,
    letter,
    message,
):
    other = make_letter("students", "<p>{{ nom }}</p>", title="Convocation")
    token = absence_selection(db, sender, absences)
    chosen = {None: None, "students": str(other.id), "unknown": "999999"}[letter]

    response = client.post(
        "/courrier", data=letter_dialog(selection=token, letter=chosen), headers=FR
    )

    assert response.status_code == 422
    assert message in response.text
    assert latest_job(db) is None


def test_an_empty_selection_is_refused_in_french(client, sender, make_letter, db):
    letter = make_letter("absences", ABSENCES_LETTER)
    token = create_selection(sender, [], kind="absence").token
    db.session.commit()

    for selection in (token, ""):
        form = letter_dialog(selection=selection, letter=str(letter.id))
        response = client.post("/courrier", data=form, headers=FR)
        assert response.status_code == 422
        assert "Personne n&#39;est sélectionné" in response.text
    assert latest_job(db) is None


def test_absences_of_two_students_make_one_letter_each_with_their_own_absences(
    client,
    sender,
    absences,
    make_letter,
    db,
):
    letter = make_letter("absences", ABSENCES_LETTER)
    token = absence_selection(db, sender, absences)

    form = letter_dialog(selection=token, letter=str(letter.id), output="pdf")
    response = client.post("/courrier", data=form)

    assert response.status_code == 303
    job = latest_job(db)
    assert (job.kind, job.letter_id, job.state) == ("letter", letter.id, "done")
    by_name = {item.name: item for item in job.items}
    assert sorted(by_name) == ["Alice Martin", "Bruno Durand", "Chloé Sansmail"]
    alice = pdf_text(read_attachment(by_name["Alice Martin"].pdf))
    assert "Madame, Monsieur Martin" in alice
    assert "Absences : 2, total 4 h" in alice
    assert "Droit civil" in alice and "Anglais" in alice
    assert "Histoire" not in alice  # not in the selection
    assert "Droit pénal" not in alice and "Durand" not in alice
    bruno = pdf_text(read_attachment(by_name["Bruno Durand"].pdf))
    assert "Droit pénal" in bruno and "Absences : 1" in bruno
    assert "Droit civil" not in bruno and "Martin" not in bruno


def test_each_student_gets_their_letter_attached_and_in_the_body_and_the_copy_holds_chloe(
    client,
    sender,
    absences,
    make_letter,
    db,
    smtp_server,
):
    letter = make_letter("absences", ABSENCES_LETTER, subject="Vos absences")
    token = absence_selection(db, sender, absences)
    client.post("/courrier", data=letter_dialog(selection=token, letter=str(letter.id)))
    job = latest_job(db)

    page = client.get(f"/documents/impression/{job.id}/e-mail", headers=FR)
    assert 'value="Vos absences"' in page.text
    assert "2 peuvent recevoir l'e-mail" in page.text
    response = client.post(f"/documents/impression/{job.id}/e-mail", data=composer())

    assert response.status_code == 303
    wait_until(lambda: len(smtp_server.received) == 2, timeout=20, message="not delivered")
    by_address = {r.rcpt_tos[0]: r.message for r in smtp_server.received}
    alice_pdfs, alice_html, alice_text = parts_of(by_address[school_alice_email(absences)])
    assert len(alice_pdfs) == 1 and "Droit civil" in pdf_text(alice_pdfs[0])
    assert "Voici votre courrier." in alice_html
    assert "Madame, Monsieur Martin" in alice_html and "Anglais" in alice_html
    assert "Droit pénal" not in alice_html
    assert "Madame, Monsieur Martin" in alice_text
    assert alice_html.index("Voici votre courrier.") < alice_html.index("Madame, Monsieur")
    bruno_message = by_address[absences["bruno"][0].person.email]
    _pdfs, bruno_html, _text = parts_of(bruno_message)
    assert "Droit pénal" in bruno_html and "Martin" not in bruno_html
    assert bruno_message["Subject"] == "Vos absences"
    job = latest_job(db)
    assert db.session.get(Mailing, job.mailing_id).kind == "document"
    copy = pdf_text(read_attachment(job.output_file))
    assert "Sansmail" in copy and "Économie" in copy
    assert "Martin" not in copy and "Durand" not in copy


def school_alice_email(absences) -> str:
    return absences["alice"][0].person.email


def test_an_internship_letter_goes_to_the_student_with_the_tutor_offered_under_autres(
    client,
    sender,
    school,
    make_internship,
    make_letter,
    db,
    smtp_server,
):
    internship = make_internship(
        school.alice,
        "Mairie de Lyon",
        date(2027, 1, 4),
        date(2027, 2, 26),
        tutor_name="Jeanne Tutrice",
        tutor_email="jeanne.tutrice@mairie-lyon.fr",
    )
    letter = make_letter("internships", "<p>{{ prenom }} chez {{ entreprise }}, {{ tuteur }}</p>")
    selection = create_selection(sender, [internship.id], kind="internship")
    db.session.commit()
    client.post(
        "/courrier",
        data=letter_dialog(selection=selection.token, letter=str(letter.id), print_copy="none"),
    )
    job = latest_job(db)

    page = client.get(f"/documents/impression/{job.id}/e-mail", headers=FR)
    assert "Envoyer une copie de chaque courrier au tuteur du stage" in page.text
    response = client.post(
        f"/documents/impression/{job.id}/e-mail", data={**composer(), "item_copies": "y"}
    )

    assert response.status_code == 303
    wait_until(lambda: len(smtp_server.received) == 1, timeout=20, message="not delivered")
    received = smtp_server.received[0]
    assert sorted(received.rcpt_tos) == sorted([school.alice.email, internship.tutor_email])
    assert received.message["To"].addresses[0].addr_spec == school.alice.email
    assert "jeanne.tutrice@mairie-lyon.fr" in received.message["Cc"]
    pdfs, html, _text = parts_of(received.message)
    assert "Alice chez Mairie de Lyon, Jeanne Tutrice" in pdf_text(pdfs[0])
    assert "Alice chez Mairie de Lyon" in html


@pytest.mark.worker
class TestWithAWorker:
    @pytest.fixture
    def app_config(self, tmp_path):
        return worker_app_config(tmp_path, DOCUMENT_JOB_CHUNK=1)

    def test_a_real_worker_delivers_each_student_s_letter(
        self,
        client,
        sender,
        absences,
        make_letter,
        db,
        smtp_server,
        worker,
    ):
        letter = make_letter("absences", ABSENCES_LETTER, subject="Vos absences")
        token = absence_selection(db, sender, absences)
        client.post("/courrier", data=letter_dialog(selection=token, letter=str(letter.id)))
        job = latest_job(db)
        client.post(f"/documents/impression/{job.id}/e-mail", data=composer())

        worker().wait_ready()

        wait_until(lambda: len(smtp_server.received) == 2, timeout=60, message="not delivered")
        for received in smtp_server.received:
            pdfs, html, _text = parts_of(received.message)
            mine, other = (
                ("Droit civil", "Droit pénal")
                if received.rcpt_tos == [school_alice_email(absences)]
                else ("Droit pénal", "Droit civil")
            )
            assert mine in pdf_text(pdfs[0]) and other not in pdf_text(pdfs[0])
            assert mine in html and other not in html
        wait_until(lambda: latest_job(db).output_file_id, timeout=30, message="no printed copy")
        assert "Sansmail" in pdf_text(read_attachment(latest_job(db).output_file))


def test_a_letter_to_the_students_of_their_list_prints_one_letter_each_in_one_pdf(
    client, sender, school, make_letter, db
):
    page = client.get("/plannings/student", headers=FR, follow_redirects=True)
    assert "Envoyer un courrier" in page.text
    letter = make_letter("students", "<p>Convocation de {{ prenom }} {{ nom }}</p>")
    selection = create_selection(sender, [school.alice.id, school.bruno.id], kind="student")
    db.session.commit()

    form = letter_dialog(selection=selection.token, letter=str(letter.id), output="printer")
    response = client.post("/courrier", data=form)

    assert response.status_code == 303
    job = latest_job(db)
    assert job.state == "done" and job.output_filename.endswith(".pdf")
    pages = [
        p.extract_text() for p in PdfReader(io.BytesIO(read_attachment(job.output_file))).pages
    ]
    assert len(pages) == 2
    assert "Convocation de Bruno Durand" in pages[0]  # the list's order: by last name
    assert "Convocation de Alice Martin" in pages[1]


def test_a_list_of_people_of_every_kind_cannot_send_a_letter(
    client, sender, school, make_letter, db
):
    letter = make_letter("students", "<p>{{ nom }}</p>")
    selection = create_selection(sender, [school.alice.id, school.teacher.id])
    db.session.commit()

    form = letter_dialog(selection=selection.token, letter=str(letter.id))
    response = client.post("/courrier", data=form, headers=FR)

    assert response.status_code == 422
    assert "Envoyez un courrier depuis la liste des étudiants" in response.text
    assert latest_job(db) is None


def test_a_letter_that_cannot_be_made_fails_alone_and_is_named_on_the_progress_page(
    app, client, sender, absences, make_letter, db
):
    from hpmail.directory.models import Person
    from hpmail.documents import jobs, tasks
    from hpmail.documents.jobs import PrintRequest
    from hpmail.letters import courrier

    letter = make_letter("absences", ABSENCES_LETTER)
    token = absence_selection(db, sender, absences)
    request = PrintRequest(output="pdf", attach_pdf=True)
    choices = jobs.checked_request(request, letter_id=letter.id)
    owners = courrier.owners_of_letters(sender, token, courrier.category_of(sender, token))
    job = jobs.create_job(sender, choices, owners, "")
    db.session.commit()
    # Bruno leaves the directory between the click and the drawing (his absences with him).
    db.session.delete(db.session.get(Person, absences["bruno"][0].person_id))
    db.session.commit()

    tasks.run_job(job.id)

    job = latest_job(db)
    assert job.state == "done"
    assert jobs.progress_of(job).failed == [("Bruno Durand", "Ne figure plus dans l'annuaire.")]
    assert jobs.progress_of(job).ready == 2
    page = client.get(f"/documents/impression/{job.id}", headers=FR)
    assert "Bruno Durand" in page.text and "Ne figure plus dans l&#39;annuaire." in page.text
