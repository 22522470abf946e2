"""Files people upload: an allow-list checked on the bytes, types kept per use, safe serving."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import func, select

from hpmail.compose.models import TemplateAttachment
from hpmail.compose.uploads import Upload, upload_errors
from hpmail.outbox.models import Attachment, Mailing
from tests.compose.conftest import FR, PNG

PDF = b"%PDF-1.4 convocation"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56


def zipped(*members: tuple[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


DOCX = zipped(
    ("[Content_Types].xml", "<Types/>"),
    ("word/document.xml", "<w:document/>"),
)
DOCM = zipped(
    ("[Content_Types].xml", "<Types/>"),
    ("word/document.xml", "<w:document/>"),
    ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0 macro"),
)
ODT = zipped(("mimetype", "application/vnd.oasis.opendocument.text"), ("content.xml", "<x/>"))


def errors_for(app, name: str, data: bytes) -> list[str]:
    with app.test_request_context(headers=FR):
        return upload_errors([Upload(name, "application/pdf", data)])


@pytest.mark.parametrize(
    ("name", "data"),
    [
        *[
            (f"lettre{extension}", PDF)
            for extension in (
                ".hta",
                ".lnk",
                ".vbe",
                ".wsf",
                ".jse",
                ".pif",
                ".cpl",
                ".msc",
                ".reg",
                ".iso",
                ".docm",
                ".appx",
            )
        ],  # fmt: skip
        ("emploi du temps.pdf", ELF),
        ("photos.zip", zipped(("photo.jpg", PNG), ("setup.exe", b"MZ\x90\x00"))),
        ("cours.zip", zipped(("cours.pdf", ELF))),
        ("rapport.docx", DOCM),
        ("page.html", b"<html><script>alert(1)</script></html>"),
        ("notes.txt", b"\x00\x01binary"),
        ("lettre.pdf", b"juste du texte"),
        ("archive.zip", zipped(("inner.zip", zipped(("a.pdf", PDF))))),
    ],
)
def test_programs_macros_and_files_outside_the_allow_list_are_refused(app, name, data):
    errors = errors_for(app, name, data)
    assert len(errors) == 1 and name in errors[0]
    assert "programme" in errors[0] or "ne peut pas être envoyé" in errors[0]


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("convocation.pdf", PDF, "application/pdf"),
        ("photo.PNG", PNG, "image/png"),
        (
            "rapport.docx",
            DOCX,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("compte rendu.odt", ODT, "application/vnd.oasis.opendocument.text"),
        ("notes.txt", "Réunion à 8 h".encode(), "text/plain"),
        ("eleves.csv", "nom;prénom\nDupont;Léa\n".encode("cp1252"), "text/csv"),
        ("dossier.zip", zipped(("a.pdf", PDF), ("b/notes.txt", "ok"), ("c.png", PNG)), None),
    ],
)
def test_documents_images_text_and_zips_of_them_are_accepted_with_the_type_of_their_bytes(
    app, name, data, content_type
):
    assert errors_for(app, name, data) == []
    with app.test_request_context():
        found = Upload(name, "text/html", data).accepted_type
    assert found == (content_type or "application/zip")


def test_a_zip_holding_a_program_is_refused_by_the_composer_and_nothing_is_stored(
    client, db, sender, make_person, select_people
):
    token = select_people(sender, [make_person("student")])
    data = {
        "selection": token,
        "kinds": ["student"],
        "subject": "Photos",
        "body": "Bonjour",
        "attachments": [(io.BytesIO(zipped(("lisez-moi.exe", b"MZ\x90\x00"))), "photos.zip")],
    }
    response = client.post(
        "/e-mail/nouveau", data=data, headers=FR, content_type="multipart/form-data"
    )
    assert response.status_code == 422
    assert "photos.zip ne peut pas être envoyé" in response.text
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert db.session.scalar(select(func.count()).select_from(Mailing)) == 0


def test_a_hostile_content_type_is_never_stored_and_each_use_keeps_the_type_of_the_bytes(
    client, db, sender, make_person, select_people
):
    token = select_people(sender, [make_person("student")])
    data = {
        "selection": token,
        "template_label": "Convocation",
        "subject": "Convocation",
        "body": "Bonjour",
        "attachments": [(io.BytesIO(PDF), "convocation.pdf", "application/pdf\x0bx-a: b")],
    }
    response = client.post(
        "/e-mail/modeles", data=data, headers=FR, content_type="multipart/form-data"
    )
    assert response.status_code == 200  # the draft is shown again, template saved
    (use,) = db.session.scalars(select(TemplateAttachment)).all()
    assert use.content_type == "application/pdf"
    assert use.attachment.content_type == "application/pdf"


def test_another_users_declared_type_does_not_change_how_my_identical_file_is_sent(
    client, db, sender, make_person, select_people, smtp_server
):
    token = select_people(sender, [make_person("student")])

    def send(declared: str, subject: str):
        data = {
            "selection": token,
            "kinds": ["student"],
            "subject": subject,
            "body": "Bonjour",
            "attachments": [(io.BytesIO(PDF), "convocation.pdf", declared)],
        }
        client.post("/e-mail/nouveau", data=data, headers=FR, content_type="multipart/form-data")

    send("text/html", "Premier envoi")
    send("application/pdf", "Second envoi")

    assert len(smtp_server.received) == 2
    for received in smtp_server.received:
        (part,) = received.message.iter_attachments()
        assert part.get_content_type() == "application/pdf"
        assert part.get_content() == PDF


def test_the_signature_image_is_served_as_the_image_its_bytes_are_never_as_a_page(
    client, db, sender, make_person, select_people
):
    # A PNG that an HTML parser would also read as a page, first stored as text/html.
    polyglot = PNG + b"<html><script>alert(document.cookie)</script></html>"
    token = select_people(sender, [make_person("student")])
    client.post(
        "/e-mail/modeles",
        data={
            "selection": token,
            "template_label": "Piège",
            "attachments": [(io.BytesIO(polyglot), "image.png", "text/html")],
        },
        headers=FR,
        content_type="multipart/form-data",
    )
    client.post(
        "/e-mail/signature",
        data={"signature": (io.BytesIO(polyglot), "signature.png", "text/html")},
        content_type="multipart/form-data",
    )

    image = client.get("/e-mail/signature/image")

    assert image.status_code == 200 and image.data == polyglot
    assert image.mimetype == "image/png"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert image.headers["Content-Disposition"].startswith("inline")
