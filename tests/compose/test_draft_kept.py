"""Saving a template or uploading the signature from the composer keeps the whole draft."""

from __future__ import annotations

import io

from sqlalchemy import select

from hpmail.compose.models import Signature, Template
from tests.compose.conftest import FR, PNG


def draft(token, other, **fields):
    values = {
        "selection": token,
        "kinds": ["student"],
        "other_ids": [str(other.id)],
        "cc": "parent@example.org",
        "subject": "Sortie au musée",
        "body": "<p>Rendez-vous à 9 h</p>",
        "one_per_recipient": "1",
        # "hide_recipients" unticked although the user's setting ticks it
    }
    values.update(fields)
    return values


def assert_draft_shown(page, other):
    assert 'name="subject" value="Sortie au musée"' in page.text
    assert "Rendez-vous à 9 h" in page.text
    assert 'value="parent@example.org"' in page.text
    assert f'name="other_ids" value="{other.id}" checked' in page.text
    assert 'name="kinds" value="student" checked' in page.text
    assert 'name="one_per_recipient" value="1" checked' in page.text
    assert 'name="hide_recipients" value="1" >' in page.text


def test_saving_a_template_keeps_the_people_picked_and_the_unticked_hide_option(
    client, login_as, personal_account, make_person, select_people, db
):
    user = login_as("staff")
    personal_account(user, hide_recipients=True)
    token = select_people(user, [make_person("student")])
    other = make_person("teacher", last_name="Autrepersonne")

    page = client.post(
        "/e-mail/modeles",
        data=draft(token, other, template_label="Sortie"),
        headers=FR,
        follow_redirects=True,
    )

    assert page.status_code == 200
    assert "Modèle « Sortie » enregistré" in page.text
    assert_draft_shown(page, other)
    assert db.session.scalar(select(Template)).label == "Sortie"


def test_uploading_the_signature_from_the_composer_keeps_the_draft_and_ticks_it(
    client, login_as, personal_account, make_person, select_people, db
):
    user = login_as("staff")
    personal_account(user, hide_recipients=True)
    token = select_people(user, [make_person("student")])
    other = make_person("teacher", last_name="Autrepersonne")

    page = client.post(
        "/e-mail/nouveau/signature",
        data=draft(
            token,
            other,
            signature=(io.BytesIO(PNG), "signature.png"),
            attachments=[(io.BytesIO(b"%PDF-1.4 programme"), "programme.pdf")],
        ),
        content_type="multipart/form-data",
        headers=FR,
        follow_redirects=True,
    )

    assert page.status_code == 200
    assert "Votre signature a été enregistrée" in page.text
    assert_draft_shown(page, other)
    assert 'name="insert_signature" value="1" checked' in page.text
    assert "programme.pdf" in page.text  # the file picked before is kept for the send
    assert db.session.get(Signature, user.id) is not None


def test_a_bad_signature_from_the_composer_is_refused_and_keeps_the_draft(
    client, login_as, personal_account, make_person, select_people, db
):
    user = login_as("staff")
    personal_account(user, hide_recipients=True)
    token = select_people(user, [make_person("student")])
    other = make_person("teacher", last_name="Autrepersonne")

    page = client.post(
        "/e-mail/nouveau/signature",
        data=draft(token, other, signature=(io.BytesIO(b"not an image"), "signature.png")),
        content_type="multipart/form-data",
        headers=FR,
    )

    assert page.status_code == 422
    assert "La signature doit être une image PNG ou JPEG" in page.text
    assert_draft_shown(page, other)
    assert db.session.get(Signature, user.id) is None
