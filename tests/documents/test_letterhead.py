"""The admin's letterhead of the documents: saved, read back for printing, bad values refused."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from hpmail import demo
from hpmail.documents.layout import LetterheadInfo
from hpmail.documents.letterhead import current_letterhead
from hpmail.documents.models import Letterhead
from hpmail.outbox.models import Attachment

FR = {"Accept-Language": "fr"}
ONE_LINE = "« Nom de l'établissement » doit tenir sur une seule ligne"
URL = "/configuration/en-tete-documents"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64 + b"PE\x00\x00"


def post(client, headers=FR, **fields):
    data = {"school_name": "Lycée Œuvre", "address": "1 rue des Écoles", "town": "Nantes"}
    data.update(fields)
    return client.post(URL, data=data, content_type="multipart/form-data", headers=headers)


def attachment_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(Attachment))


def test_without_a_saved_letterhead_the_documents_get_an_empty_one(db):
    assert current_letterhead() == LetterheadInfo()


def test_the_admin_saves_the_letterhead_with_its_logo_and_documents_read_it(client, login_as, db):
    login_as("admin")

    response = post(
        client,
        address="Lycée d'État\r\n1 rue des Écoles\r\n44000 Nantes",
        logo=(io.BytesIO(PNG), "logo.png"),
    )

    assert response.status_code == 303
    info = current_letterhead()
    assert info.school_name == "Lycée Œuvre"
    assert info.address == "Lycée d'État\n1 rue des Écoles\n44000 Nantes"
    assert info.town == "Nantes"
    assert info.logo == PNG
    page = client.get(URL, headers=FR)
    assert "Lycée Œuvre" in page.text and "Retirer le logo" in page.text
    assert client.get(URL + "/logo").data == PNG


def test_saving_without_a_new_file_keeps_the_logo_and_retirer_le_logo_removes_it(
    client, login_as, db
):
    login_as("admin")
    post(client, logo=(io.BytesIO(PNG), "logo.png"))

    post(client, school_name="Lycée Œuvre (nouveau nom)")
    assert current_letterhead().logo == PNG

    post(client, remove_logo="y")
    assert current_letterhead().logo is None
    assert current_letterhead().school_name == "Lycée Œuvre"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"school_name": "Lycée\x00Œuvre"}, ONE_LINE),
        ({"school_name": "Lycée\u2028Œuvre"}, ONE_LINE),
        ({"town": "Nantes\r\nBcc: x@y.fr"}, "« Ville » doit tenir sur une seule ligne"),
        ({"school_name": "L" * 201}, "200 caractères au plus"),
        ({"address": "1 rue\x1b[31m des Écoles"}, "aucun caractère de contrôle"),
        ({"logo": (io.BytesIO(GIF), "logo.png")}, "Le logo doit être une image PNG ou JPEG."),
        ({"logo": (io.BytesIO(EXE), "logo.png")}, "Le logo doit être une image PNG ou JPEG."),
        ({"logo": (io.BytesIO(PNG + b"\0" * 2**20), "logo.png")}, "1 Mo au plus"),
    ],
)
def test_hostile_values_are_refused_in_french_and_nothing_changes(
    client, login_as, db, fields, message
):
    login_as("admin")
    post(client, logo=(io.BytesIO(PNG), "logo.png"))
    before, files = current_letterhead(), attachment_count(db)

    response = post(client, **fields)

    assert response.status_code == 422
    assert message in response.text.replace("&#39;", "'")
    db.session.expire_all()
    assert current_letterhead() == before
    assert attachment_count(db) == files


def test_a_50_mb_logo_is_refused_before_it_is_read(client, login_as, db):
    login_as("admin")

    response = post(client, logo=(io.BytesIO(b"\x89PNG" + b"\0" * 50 * 2**20), "logo.png"))

    assert response.status_code == 413
    assert "dépasse la taille acceptée par le serveur" in response.text
    assert db.session.get(Letterhead, 1) is None
    assert attachment_count(db) == 0


def test_saving_the_letterhead_needs_the_csrf_token(client, login_as, db):
    login_as("admin")

    response = client.post(URL, data={"school_name": "Lycée Pirate"}, csrf=False)

    assert response.status_code == 400
    assert db.session.get(Letterhead, 1) is None


@pytest.mark.parametrize("role", ["staff", "teacher"])
def test_only_the_admin_sees_and_changes_the_letterhead(client, login_as, db, role):
    login_as(role)

    assert client.get(URL).status_code == 403
    assert post(client).status_code == 403
    assert db.session.get(Letterhead, 1) is None


def test_the_demo_school_prints_its_name_address_and_town(db):
    demo.load()
    db.session.commit()

    letterhead = current_letterhead()
    assert (letterhead.school_name, letterhead.address, letterhead.town) == demo.DEMO_LETTERHEAD
