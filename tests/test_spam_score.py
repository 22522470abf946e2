"""Every kind of e-mail hpmail sends, made through its pages as a user would, scores below 1.0
with SpamAssassin (Debian's rules, local mode): what a filter would hold against it is fixed
where the message is built, not by a threshold. The tables of rules hit are printed at the end
of the run (``tests/fixtures/spamassassin.py``)."""

from __future__ import annotations

import html
import io
import re
import uuid
from datetime import date

import pytest
from PIL import Image, ImageDraw

from hpmail.directory.selection import create_selection
from hpmail.documents.models import DocumentJob
from hpmail.documents.render import html_to_pdf
from tests.accounts.conftest import mail_server  # noqa: F401 (the verification code)
from tests.documents.print_fixtures import dialog, school, sender  # noqa: F401 (fixtures)
from tests.fixtures.worker import wait_until
from tests.letters.conftest import make_letter  # noqa: F401 (the form letter)

SCORE_LIMIT = 1.0
FR = {"Accept-Language": "fr"}

# What a school writes: a few paragraphs, a list, a link to the school's site.
NEWS = (
    "<p>Madame, Monsieur,</p>"
    "<p>La réunion parents-professeurs du second trimestre aura lieu le <b>jeudi 14 janvier "
    "2027</b> de 17 h à 20 h, dans le bâtiment B. Chaque professeur principal recevra les "
    "familles de sa classe ; les autres enseignants seront présents dans leur salle.</p>"
    "<p>Merci de vous munir du bulletin du premier trimestre.</p>"
    "<p>Bien cordialement,</p><p>Sophie Martin<br>Secrétariat pédagogique</p>"
)
RICH = (
    "<p>Bonjour à tous,</p>"
    "<p>Vous trouverez ci-joint le <strong>programme de la sortie au musée</strong> du "
    "vendredi 22 janvier. Quelques points à retenir :</p>"
    "<ul><li>départ à 8 h 15 devant le lycée ;</li><li>retour vers 17 h ;</li>"
    "<li>prévoir un pique-nique.</li></ul>"
    "<p>L'autorisation de sortie est à rendre signée au professeur principal avant le "
    '15 janvier. Le détail est aussi sur <a href="https://www.lycee-demo.fr/sorties">le site '
    "du lycée</a>.</p><p>Bien cordialement,</p>"
)


def signature_png() -> bytes:
    """A scanned signature: a few dark strokes on white, as a secretary would upload it."""
    image = Image.new("L", (360, 110), 255)
    pen = ImageDraw.Draw(image)
    pen.line([(20, 80), (60, 25), (90, 85), (130, 30), (170, 75), (220, 40), (330, 60)], 30, 4)
    pen.text((20, 92), "S. Martin", fill=60)
    data = io.BytesIO()
    image.save(data, "PNG")
    return data.getvalue()


def composer(**fields) -> dict:
    values = {"kinds": ["student"], "subject": "Réunion parents-professeurs", "body": NEWS}
    values.update(fields)
    return {"request_token": str(uuid.uuid4()), **values}


def students_selection(db, user, students) -> str:
    selection = create_selection(user, [p.id for p in students])
    db.session.commit()
    return selection.token


def sent_to(server, address: str) -> bytes:
    """Return the bytes of the last message ``server`` received for ``address``."""
    wait_until(
        lambda: any(address in r.rcpt_tos for r in server.received),
        timeout=30,
        message=f"nothing arrived for {address}",
    )
    return next(r.data for r in reversed(server.received) if address in r.rcpt_tos)


# --- each kind, sent through its page ----------------------------------------------------------


@pytest.fixture
def plain_email(client, sender, school, smtp_server, db):  # noqa: F811
    """Communication › Envoyer un e-mail: a few paragraphs to a cohort's students."""
    token = students_selection(db, sender, school.students)
    response = client.post("/e-mail/nouveau", data=composer(selection=token), headers=FR)
    assert response.status_code == 303, response.text
    return sent_to(smtp_server, school.alice.email), school.alice.email


@pytest.fixture
def rich_email(client, sender, school, smtp_server, db):  # noqa: F811
    """Rich text, a PDF attached and the user's scanned signature under it."""
    saved = client.post(
        "/e-mail/signature",
        data={"signature": (io.BytesIO(signature_png()), "signature.png")},
        content_type="multipart/form-data",
    )
    assert saved.status_code == 302, saved.text
    programme = html_to_pdf(f"<html><body><h1>Sortie au musée</h1>{RICH}</body></html>")
    token = students_selection(db, sender, school.students)
    data = composer(
        selection=token,
        subject="Sortie au musée du 22 janvier",
        body=RICH,
        insert_signature="1",
        attachments=[(io.BytesIO(programme), "Programme de la sortie.pdf")],
    )
    response = client.post(
        "/e-mail/nouveau", data=data, headers=FR, content_type="multipart/form-data"
    )
    assert response.status_code == 303, response.text
    return sent_to(smtp_server, school.alice.email), school.alice.email


@pytest.fixture
def hidden_recipients(client, sender, school, smtp_server, db):  # noqa: F811
    """The same e-mail, the recipients hidden from one another (each in the envelope only)."""
    token = students_selection(db, sender, school.students)
    data = composer(selection=token, hide_recipients="1")
    response = client.post("/e-mail/nouveau", data=data, headers=FR)
    assert response.status_code == 303, response.text
    return sent_to(smtp_server, school.alice.email), school.alice.email


def as_written(page: str) -> dict:
    """Return the subject and body the composer's page starts with, as a user keeps them."""
    subject = re.search(r'name="subject" value="([^"]*)"', page)[1]
    body = re.search(r'<textarea[^>]*name="body"[^>]*>(.*?)</textarea>', page, re.S)[1]
    return {"subject": html.unescape(subject), "body": html.unescape(body)}


def document_job(client, db) -> DocumentJob:
    db.session.rollback()
    job = db.session.query(DocumentJob).order_by(DocumentJob.id.desc()).first()
    assert job is not None
    return job


@pytest.fixture
def document(client, sender, school, smtp_server, db):  # noqa: F811
    """Imprimer / Mailer: each student's timetable, the PDF attached and its PNG preview inline."""
    token = students_selection(db, sender, school.students)
    form = dialog(selection=token, output="email", inline_png="y", request_token=str(uuid.uuid4()))
    assert client.post("/documents/imprimer", data=form).status_code == 303
    job = document_job(client, db)
    page = client.get(f"/documents/impression/{job.id}/e-mail", headers=FR)
    data = {**as_written(page.text), "request_token": str(uuid.uuid4())}
    response = client.post(f"/documents/impression/{job.id}/e-mail", data=data)
    assert response.status_code == 303, response.text
    return sent_to(smtp_server, school.alice.email), school.alice.email


@pytest.fixture
def form_letter(client, sender, school, smtp_server, db, make_letter, make_absence):  # noqa: F811
    """Envoyer un courrier: the absences letter, in each student's own body and attached."""
    letter = make_letter(
        "absences",
        "<p>Madame, Monsieur {{ nom }},</p>"
        "<p>Votre enfant a été absent {{ nombre_absences }} fois, soit {{ total_heures }}, "
        "sans justificatif :</p>"
        "<ul>{% for absence in absences %}<li>{{ absence.date }} : {{ absence.cours }}</li>"
        "{% endfor %}</ul><p>Merci de nous faire parvenir un justificatif.</p>",
        subject="Absences non justifiées",
    )
    absences = [
        make_absence(school.alice, date(2026, 11, 2), course_label="Droit civil"),
        make_absence(school.alice, date(2026, 11, 9), (14, 0), (16, 0), course_label="Anglais"),
    ]
    selection = create_selection(sender, [a.id for a in absences], kind="absence")
    db.session.commit()
    form = {
        "selection": selection.token,
        "letter": str(letter.id),
        "output": "email",
        "attach_pdf": "y",
        "print_copy": "none",
        "request_token": str(uuid.uuid4()),
    }
    assert client.post("/courrier", data=form).status_code == 303
    job = document_job(client, db)
    body = "<p>Bonjour,</p><p>Veuillez trouver ci-dessous le courrier du lycée.</p>"
    data = {"subject": "Absences non justifiées", "body": body, "request_token": str(uuid.uuid4())}
    response = client.post(f"/documents/impression/{job.id}/e-mail", data=data)
    assert response.status_code == 303, response.text
    return sent_to(smtp_server, school.alice.email), school.alice.email


@pytest.fixture
def verification_code(client, login_as, mail_server):  # noqa: F811
    """Configuration › Envoi: a personal account set up, its code sent to prove the address."""
    login_as("teacher", display_name="Julien Petit")
    address = "julien.petit@lycee.example"
    response = client.post(
        "/configuration/envoi/compte-personnel",
        data={"display_name": "Julien Petit", "address": address},
        headers=FR,
    )
    assert response.status_code == 302, response.text
    return sent_to(mail_server, address), address


@pytest.fixture
def test_send(client, login_as, delivery_settings, smtp_server):
    """Serveur › Paramètres d'envoi › Tester l'envoi d'e-mails, by an admin."""
    address = "agnes.martin@lycee-demo.fr"
    login_as("admin", email=address)
    delivery_settings(smtp_server)
    response = client.post("/serveur/parametres-envoi/essai", headers=FR)
    assert response.status_code == 200, response.text
    return sent_to(smtp_server, address), address


KINDS = [
    "plain_email",
    "rich_email",
    "hidden_recipients",
    "document",
    "form_letter",
    "verification_code",
    "test_send",
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_email_scores_below_one_point(kind, request, spam_report):
    message, recipient = request.getfixturevalue(kind)

    report = spam_report(kind, message, recipient)

    assert report.score < SCORE_LIMIT, report.table()
