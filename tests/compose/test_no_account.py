"""A user with no account to send from gets one French message with the link to set one up."""

from __future__ import annotations

from sqlalchemy import func, select

from hpmail.outbox.models import Mailing
from tests.compose.conftest import FR


def test_sending_without_an_account_says_once_how_to_set_one_up(
    client, login_as, delivery_settings, smtp_server, make_person, select_people, db
):
    delivery_settings(smtp_server)
    user = login_as("staff")
    token = select_people(user, [make_person("student")])

    response = client.post(
        "/e-mail/nouveau",
        data={"selection": token, "kinds": ["student"], "subject": "Sortie", "body": "Bonjour"},
        headers=FR,
    )

    assert response.status_code == 422
    assert response.text.count('class="field-error"') == 1
    assert "Vous n'avez encore aucun compte d'envoi" in response.text.replace("&#39;", "'")
    assert "autorisé" not in response.text  # no second, contradicting message
    assert 'href="/configuration/envoi"' in response.text
    assert db.session.scalar(select(func.count()).select_from(Mailing)) == 0
    assert smtp_server.received == []
