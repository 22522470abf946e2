"""A send answers with a redirect, and a replayed composer form never queues the mailing twice."""

from __future__ import annotations

import re
import threading

from sqlalchemy import func, select

from hpmail.outbox.models import Mailing, OutboundEmail
from tests.compose.conftest import FR


def count(db, model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def request_token_of(page) -> str:
    found = re.search(r'name="request_token" value="([0-9a-f-]{36})"', page.text)
    assert found, "the composer carries a one-time token"
    return found.group(1)


def composed(client, sender, make_person, select_people, people=3):
    token = select_people(sender, [make_person("student") for _ in range(people)])
    page = client.get(f"/e-mail/nouveau?selection={token}", headers=FR)
    return {
        "selection": token,
        "kinds": ["student"],
        "subject": "Conseil de classe",
        "body": "<p>Bonjour</p>",
        "request_token": request_token_of(page),
    }


def test_a_send_answers_with_a_redirect_and_reloading_the_confirmation_sends_nothing(
    client, sender, make_person, select_people, smtp_server, db
):
    data = composed(client, sender, make_person, select_people)

    response = client.post("/e-mail/nouveau", data=data, headers=FR)

    assert response.status_code == 303
    mailing = db.session.scalar(select(Mailing))
    assert response.headers["Location"].endswith(f"/e-mail/envoye/{mailing.id}")
    for _reload in range(2):
        page = client.get(response.headers["Location"], headers=FR)
        assert page.status_code == 200
        assert "Conseil de classe" in page.text
        assert "1 e-mail envoyé" in page.text
    assert count(db, Mailing) == 1
    assert len(smtp_server.received) == 1


def test_the_same_form_posted_twice_queues_one_mailing_and_delivers_once(
    client, sender, make_person, select_people, smtp_server, db
):
    data = composed(client, sender, make_person, select_people)

    first = client.post("/e-mail/nouveau", data=data, headers=FR)
    again = client.post("/e-mail/nouveau", data=data, headers=FR, follow_redirects=True)

    assert first.status_code == 303
    assert again.status_code == 200
    assert "déjà été envoyé" in again.text
    assert "Conseil de classe" in again.text
    assert count(db, Mailing) == 1
    assert count(db, OutboundEmail) == 1
    (received,) = smtp_server.received
    assert len(received.rcpt_tos) == 3


def test_the_same_form_posted_at_once_from_two_connections_queues_one_mailing(
    app, client, sender, make_person, select_people, smtp_server, db
):
    data = composed(client, sender, make_person, select_people)
    cookie = client.get_cookie("session").value
    headers = {**FR, "X-CSRFToken": client.csrf_token()}
    start, answers = threading.Barrier(2), []

    def post():
        other = app.test_client()
        other.set_cookie("session", cookie)
        start.wait()
        answers.append(other.post("/e-mail/nouveau", data=data, headers=headers).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [303, 303]
    assert count(db, Mailing) == 1
    assert len(smtp_server.received) == 1


def test_a_form_replayed_after_the_answer_was_lost_does_not_send_again(
    client, sender, make_person, select_people, smtp_server, db
):
    """The web process died after the commit: the user sends the same form again."""
    data = composed(client, sender, make_person, select_people)
    client.post("/e-mail/nouveau", data=data, headers=FR)  # the answer never reached the user

    replay = client.post("/e-mail/nouveau", data=data, headers=FR)

    assert replay.status_code == 303
    assert count(db, Mailing) == 1
    assert len(smtp_server.received) == 1


def test_the_confirmation_of_another_users_mailing_is_not_found(
    client, sender, make_person, select_people, login_as, db
):
    data = composed(client, sender, make_person, select_people)
    sent = client.post("/e-mail/nouveau", data=data, headers=FR)
    client.post("/deconnexion")
    login_as("staff")

    assert client.get(sent.headers["Location"], headers=FR).status_code == 404


def test_another_users_token_does_not_reveal_their_mailing(
    client, sender, make_person, select_people, login_as, personal_account, db
):
    data = composed(client, sender, make_person, select_people)
    client.post("/e-mail/nouveau", data=data, headers=FR)
    client.post("/deconnexion")
    other = login_as("staff")
    personal_account(other)

    data = {**data, "selection": "", "cc": "parent@example.org"}

    replay = client.post("/e-mail/nouveau", data=data, headers=FR)

    assert replay.status_code == 409
    assert "Ce formulaire a expiré" in replay.text
    assert count(db, Mailing) == 1


def test_the_confirmation_page_names_the_addresses_that_were_left_out(
    client, sender, make_person, select_people, smtp_server, db
):
    good = make_person("student")
    broken = make_person("student", last_name="Ligne\ncassée")
    token = select_people(sender, [good, broken])

    sent = client.post(
        "/e-mail/nouveau",
        data={"selection": token, "kinds": ["student"], "subject": "Sortie", "body": "Bonjour"},
        headers=FR,
    )
    page = client.get(sent.headers["Location"], headers=FR)

    assert "Ces adresses ne sont pas utilisables et ont été écartées" in page.text
    assert "cassée" in page.text
    (received,) = smtp_server.received
    assert received.rcpt_tos == [good.email]
