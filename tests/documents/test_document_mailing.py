"""Imprimer / Mailer: the composer with the job's people as fixed recipients; each person gets
their own document in their own e-mail (PDF attached, PNG inline), delivered to a real SMTP
server; the printed copy holds exactly those who get no e-mail; a replayed send sends once."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from hpmail.directory.selection import create_selection
from hpmail.documents.models import DocumentJob
from hpmail.outbox.attachments import read_attachment
from hpmail.outbox.models import Mailing
from tests.documents.print_fixtures import FR, dialog, latest_job, pdf_text
from tests.fixtures.worker import wait_until, worker_app_config


def print_to_email(client, user, people, db, **fields) -> DocumentJob:
    selection = create_selection(user, [p.id for p in people])
    db.session.commit()
    values = {"output": "email", "inline_png": "y", "print_copy": "without_email", **fields}
    form = dialog(selection=selection.token, request_token=str(uuid.uuid4()), **values)
    response = client.post("/documents/imprimer", data=form)
    assert response.status_code == 303, response.text
    return latest_job(db)


def composer(**fields) -> dict:
    values = {
        "subject": "Emploi du temps — semaine du 7 décembre 2026",
        "body": "<p>Bonjour,</p><p>Voici votre emploi du temps.</p>",
        "request_token": str(uuid.uuid4()),
    }
    values.update(fields)
    return values


def parts_of(message):
    """Return the message's PDF attachments and inline images, and its HTML body."""
    pdfs, images, html = [], [], ""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "application/pdf":
            pdfs.append(part.get_content())
        elif kind == "image/png":
            images.append((part["Content-ID"], part.get_content()))
        elif kind == "text/html":
            html = part.get_content()
    return pdfs, images, html


def test_the_composer_shows_the_fixed_recipients_and_starts_with_a_subject(
    client, sender, school, db
):
    job = print_to_email(client, sender, school.students, db)

    page = client.get(f"/documents/impression/{job.id}/e-mail", headers=FR)

    assert page.status_code == 200
    assert "3 personnes sélectionnées" in page.text
    assert "2 peuvent recevoir l'e-mail" in page.text
    assert "SANSMAIL Chloé — Pas d&#39;adresse e-mail" in page.text
    assert 'value="Emploi du temps — semaine du 7 décembre 2026"' in page.text
    assert "Veuillez trouver votre document pour la semaine du 7 décembre 2026." in page.text
    assert 'name="kinds"' not in page.text  # the recipients are fixed by the print job
    assert "Autres" in page.text and "Cci" in page.text


def test_each_person_gets_their_own_pdf_and_preview_and_the_copy_holds_those_without_email(
    client, sender, school, db, smtp_server
):
    job = print_to_email(client, sender, school.students, db)

    response = client.post(f"/documents/impression/{job.id}/e-mail", data=composer())

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/documents/impression/{job.id}")
    wait_until(lambda: len(smtp_server.received) == 2, timeout=20, message="not delivered")
    by_address = {r.rcpt_tos[0]: r.message for r in smtp_server.received}
    for person, other in ((school.alice, school.bruno), (school.bruno, school.alice)):
        message = by_address[person.email]
        pdfs, images, html = parts_of(message)
        assert len(pdfs) == 1 and len(images) == 1
        text = pdf_text(pdfs[0])
        assert f"{person.first_name} {person.last_name}" in text
        assert other.last_name not in text
        content_id, png = images[0]
        assert f'src="cid:{content_id.strip(" <>")}"' in html
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.width > 100
        darkest, lightest = image.convert("L").getextrema()
        assert darkest < 128 < lightest  # text on a page, not a blank image
        assert message["Subject"] == "Emploi du temps — semaine du 7 décembre 2026"
        # Words say what the image is (an HTML part of little more than an image looks like spam)
        # and the text part, which has no image, where the document is.
        assert "Ci-dessus, la première page de votre emploi du temps." in html
        text = message.get_body(("plain",)).get_content()
        assert "Le document complet est joint au format PDF" in text
    job = latest_job(db)
    assert db.session.get(Mailing, job.mailing_id).kind == "document"
    copy = pdf_text(read_attachment(job.output_file))
    assert "Chloé Sansmail" in copy
    assert "Alice" not in copy and "Bruno" not in copy
    page = client.get(f"/documents/impression/{job.id}", headers=FR)
    assert "Télécharger l'exemplaire à imprimer (PDF)" in page.text
    assert "2 envoyés" in page.text
    archive = client.get(f"/e-mails/{job.mailing_id}", headers=FR)
    assert f'href="/documents/impression/{job.id}/fichier"' in archive.text


def test_a_printed_copy_for_everyone_holds_every_document(client, sender, school, db, smtp_server):
    job = print_to_email(client, sender, school.students, db, print_copy="all")

    client.post(f"/documents/impression/{job.id}/e-mail", data=composer())

    copy = pdf_text(read_attachment(latest_job(db).output_file))
    assert all(name in copy for name in ("Alice Martin", "Bruno Durand", "Chloé Sansmail"))


def test_a_replayed_send_sends_each_document_once(client, sender, school, db, smtp_server):
    job = print_to_email(client, sender, school.students, db, inline_png=None)
    form = composer()

    first = client.post(f"/documents/impression/{job.id}/e-mail", data=form)
    second = client.post(f"/documents/impression/{job.id}/e-mail", data=form)

    assert first.status_code == second.status_code == 303
    wait_until(lambda: len(smtp_server.received) == 2, timeout=20, message="not delivered")
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == sorted(
        [school.alice.email, school.bruno.email]
    )
    _pdfs, images, _html = parts_of(smtp_server.received[0].message)
    assert images == []  # no preview asked for


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"subject": "Emploi\r\nBcc: pirate@example.org"}, "Objet"),
        ({"cc": "pas-une-adresse"}, "« pas-une-adresse » n&#39;est pas une adresse e-mail valide."),
        ({"body": ""}, "Écrivez un message"),
    ],
)
def test_a_refused_email_is_shown_again_and_nothing_is_sent(
    client, sender, school, db, smtp_server, fields, message
):
    job = print_to_email(client, sender, school.students, db)

    response = client.post(
        f"/documents/impression/{job.id}/e-mail", data=composer(**fields), headers=FR
    )

    assert response.status_code == 422
    assert message in response.text
    assert latest_job(db).mail is None and latest_job(db).mailing_id is None
    assert smtp_server.received == []


def test_nobody_with_an_address_is_refused(client, sender, school, db, smtp_server):
    job = print_to_email(client, sender, [school.chloe], db)

    response = client.post(f"/documents/impression/{job.id}/e-mail", data=composer(), headers=FR)

    assert response.status_code == 422
    assert "Aucune des personnes sélectionnées ne peut recevoir d&#39;e-mail" in response.text
    assert latest_job(db).mail is None


@pytest.mark.worker
class TestWithAWorker:
    @pytest.fixture
    def app_config(self, tmp_path):
        return worker_app_config(tmp_path, DOCUMENT_JOB_CHUNK=1)

    def test_emails_sent_before_the_documents_are_ready_go_as_they_get_rendered(
        self, client, sender, school, db, smtp_server, worker
    ):
        job = print_to_email(client, sender, school.students, db)
        # Envoyer before any document is ready: no worker runs yet.
        response = client.post(f"/documents/impression/{job.id}/e-mail", data=composer())
        assert response.status_code == 303
        assert latest_job(db).mailing_id is None

        worker().wait_ready()

        wait_until(lambda: len(smtp_server.received) == 2, timeout=60, message="not delivered")
        for received in smtp_server.received:
            pdfs, images, _html = parts_of(received.message)
            person = school.alice if received.rcpt_tos == [school.alice.email] else school.bruno
            assert person.last_name in pdf_text(pdfs[0]) and len(images) == 1
        wait_until(lambda: latest_job(db).output_file_id, timeout=30, message="no printed copy")
        assert "Chloé Sansmail" in pdf_text(read_attachment(latest_job(db).output_file))


def test_a_summary_mailing_starts_with_its_period_in_the_subject(client, sender, school, db):
    job = print_to_email(
        client,
        sender,
        school.students,
        db,
        kind="summary",
        period="dates",
        start="2026-09-01",
        end="2027-01-31",
    )

    page = client.get(f"/documents/impression/{job.id}/e-mail", headers=FR)

    assert 'value="Récapitulatif — du 1 septembre 2026 au 31 janvier 2027"' in page.text
    assert "pour la période du 1 septembre 2026 au 31 janvier 2027." in page.text
