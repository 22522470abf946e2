"""Serveur › File d'envoi: what waits or failed, "Renvoyer maintenant", "Annuler", and the CLI."""

from __future__ import annotations

import html
import re
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest

from hpmail.core.time import utcnow
from hpmail.outbox.api import Address, EmailSpec, Sender, queue_mailing
from hpmail.outbox.models import EmailState, OutboundEmail

FR = {"Accept-Language": "fr"}
URL = "/serveur/file-envoi"


def text(response) -> str:
    return html.unescape(response.text)


@pytest.fixture
def outbox_emails(db, make_user, delivery_settings, smtp_server):
    """Return ``make(state, subject, error=None)``: one committed e-mail of the outbox."""
    delivery_settings(smtp_server)
    author = make_user("staff")

    def make(state="queued", subject="Conseil de classe", error=None, to="parent@exemple.fr"):
        mailing = queue_mailing(
            author_id=author.id,
            sender=Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo"),
            subject=subject,
            text_body="Bonjour",
            emails=[EmailSpec(to=[Address(to)])],
        )
        [email] = mailing.emails
        email.state = state
        email.last_error = error
        if state == EmailState.DEFERRED:
            email.attempts = 2
            email.next_attempt_at = utcnow() + timedelta(minutes=30)
        if state == EmailState.SENDING:
            email.lease_until = utcnow() + timedelta(minutes=5)
        db.session.commit()
        return email

    return make


def state_of(db, email_id: int) -> str:
    db.session.expire_all()
    return db.session.get(OutboundEmail, email_id).state


def test_admin_sees_waiting_and_failed_emails_with_their_last_error(
    client, login_as, outbox_emails
):
    outbox_emails("deferred", "Réunion parents", "Server busy (451): try later", to="a@exemple.fr")
    outbox_emails(
        "failed", "Bulletins", "Refused by the server (550): no such user", to="b@exemple.fr"
    )
    outbox_emails("sent", "Déjà parti")
    login_as("admin")
    response = client.get(URL, headers=FR)
    page = text(response)
    assert response.status_code == 200
    assert "File d'envoi" in page
    assert "Réunion parents" in page and "a@exemple.fr" in page and "Différé" in page
    assert "Server busy (451): try later" in page
    assert "Bulletins" in page and "no such user" in page and "Échec" in page
    assert "Déjà parti" not in page
    assert "Renvoyer maintenant" in page and "Annuler" in page
    assert "Envoyés : 1" in page


def test_filter_by_state_and_paging(client, login_as, outbox_emails, app):
    app.config["LIST_PAGE_SIZE"] = 2
    for n in range(3):
        outbox_emails("failed", f"Échec {n}")
    outbox_emails("deferred", "Différé 1")
    login_as("admin")
    failed = text(client.get(f"{URL}?etat=failed", headers=FR))
    assert "Différé 1" not in failed
    assert "Échec 2" in failed and "Échec 1" in failed and "Échec 0" not in failed
    assert "Page 1 sur 2" in failed
    second = text(client.get(f"{URL}?etat=failed&page=2", headers=FR))
    assert "Échec 0" in second
    odd = client.get(f"{URL}?etat=<script>&page=-4", headers=FR)
    assert odd.status_code == 200


def test_retry_now_sends_a_deferred_email_at_once(client, login_as, outbox_emails, smtp_server, db):
    email = outbox_emails("deferred", "Réunion parents", "Server busy (451)")
    login_as("admin")
    response = client.post(
        f"{URL}/action", data={"action": "retry", "email_id": [email.id]}, headers=FR
    )
    assert response.status_code == 302
    assert state_of(db, email.id) == EmailState.SENT
    [received] = smtp_server.received
    assert received.message["Subject"] == "Réunion parents"
    assert "1 e-mail va être renvoyé maintenant." in text(client.get(URL, headers=FR))


def test_cancel_several_emails_at_once_but_never_one_being_sent(
    client, login_as, outbox_emails, db
):
    queued = outbox_emails("queued", "A")
    deferred = outbox_emails("deferred", "B")
    sending = outbox_emails("sending", "C")
    login_as("admin")
    client.post(
        f"{URL}/action",
        data={"action": "cancel", "email_id": [queued.id, deferred.id, sending.id]},
        headers=FR,
    )
    assert state_of(db, queued.id) == EmailState.CANCELLED
    assert state_of(db, deferred.id) == EmailState.CANCELLED
    assert state_of(db, sending.id) == EmailState.SENDING
    assert "2 e-mails annulés." in text(client.get(URL, headers=FR))


def test_retry_leaves_a_row_being_sent_alone(client, login_as, outbox_emails, db, smtp_server):
    sending = outbox_emails("sending", "En cours")
    login_as("admin")
    client.post(f"{URL}/action", data={"action": "retry", "email_id": [sending.id]}, headers=FR)
    assert state_of(db, sending.id) == EmailState.SENDING
    assert smtp_server.received == []


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ({"action": "delete"}, "Action inconnue."),
        ({"action": None}, "Action inconnue."),
        ({"email_id": None}, "Cochez au moins un e-mail."),
        ({"email_id": "abc"}, "Cochez au moins un e-mail."),
        ({"email_id": str(10**30)}, "Cochez au moins un e-mail."),
        ({"etat": "<script>"}, "État inconnu."),
        ({"page": "abc"}, "Page inconnue."),
        ({"page": str(10**30)}, "Page inconnue."),
    ],
    ids=[
        "unknown action",
        "no action",
        "nothing ticked",
        "id not a number",
        "id too large",
        "unknown state",
        "page not a number",
        "page too large",
    ],
)
def test_a_hostile_outbox_action_is_refused_in_french_and_changes_nothing(
    client, login_as, outbox_emails, db, posted, message
):
    email = outbox_emails("queued", "Conseil de classe")
    login_as("admin")
    data = {"action": "cancel", "email_id": [email.id], "etat": "queued", "page": "1", **posted}
    data = {name: value for name, value in data.items() if value is not None}
    response = client.post(f"{URL}/action", data=data, headers=FR)
    assert response.status_code == 422
    page = text(response)
    assert message in page
    assert "Conseil de classe" in page  # the outbox is shown again, with the refusal
    assert state_of(db, email.id) == EmailState.QUEUED


def test_an_outbox_action_needs_the_csrf_token(client, login_as, outbox_emails, db):
    email = outbox_emails("queued", "A")
    login_as("admin")
    response = client.post(
        f"{URL}/action", data={"action": "cancel", "email_id": [email.id]}, csrf=False
    )
    assert response.status_code == 400
    assert state_of(db, email.id) == EmailState.QUEUED


def test_outbox_command_prints_counts_by_state(app, outbox_emails):
    outbox_emails("queued")
    outbox_emails("failed")
    outbox_emails("failed")
    result = app.test_cli_runner().invoke(args=["outbox"])
    assert result.exit_code == 0
    lines = dict(line.split() for line in result.output.strip().splitlines())
    assert lines["queued"] == "1"
    assert lines["failed"] == "2"
    assert lines["sent"] == "0"


def test_every_state_an_e_mail_can_be_in_has_its_name_on_the_outbox_page(
    client, login_as, outbox_emails
):
    from hpmail.delivery.views import OUTBOX_STATE_LABELS

    assert set(OUTBOX_STATE_LABELS) == set(EmailState)
    outbox_emails("queued", "Réunion")
    login_as("admin")
    page = text(client.get(URL, headers=FR))
    for name in ("En attente", "En cours d'envoi", "Différé", "Échec"):
        assert name in page, name


def test_the_outbox_page_says_in_french_since_when_a_server_fails_and_when_it_is_tried_next(
    client, login_as, outbox_emails, db
):
    email = outbox_emails("deferred", "Réunion parents", "Connexion au serveur impossible.")
    transport = email.mailing.transport
    login_as("admin")
    assert "injoignable" not in text(client.get(URL, headers=FR))  # a healthy server: no word

    since = utcnow() - timedelta(minutes=5)
    transport.failing_since = since
    transport.last_failure = "Connexion au serveur impossible (connexion refusée)."
    transport.next_probe_at = utcnow() + timedelta(seconds=35)
    email.waits_for_transport = True
    db.session.commit()
    page = text(client.get(URL, headers=FR))

    paris = since.replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    server = f"{transport.host}:{transport.port}"
    assert f"Serveur SMTP {server} injoignable depuis " in page
    assert f"{paris.hour} h {paris.minute:02d} — prochain essai dans 3" in page
    assert re.search(r"prochain essai dans 3[45] s", page)
    assert "Dernière erreur : Connexion au serveur impossible (connexion refusée)." in page
    assert "1 e-mail l'attend et partira dès qu'il répondra." in page
    assert "Au retour du serveur" in page  # the e-mail's next attempt
