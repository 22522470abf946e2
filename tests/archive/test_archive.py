"""Communication › E-mails: the sent e-mails of one's accounts, sorted, searched, in detail."""

from __future__ import annotations

from sqlalchemy import select

from hpmail.archive import search
from hpmail.outbox.api import (
    Address,
    AttachmentSpec,
    EmailSpec,
    Sender,
    dispatch,
    queue_mailing,
)
from hpmail.outbox.attachments import store_attachment
from hpmail.outbox.models import Mailing
from tests.compose.conftest import FR, HTMX


def send(db, user, account, subject, body="Bonjour", to=("eleve@example.org",), attachments=()):
    mailing = queue_mailing(
        author_id=user.id if user else None,
        sender=Sender(
            account.address if account else "hpmail@lycee-demo.fr",
            account.label if account else "Serveur",
            account_id=account.id if account else None,
        ),
        subject=subject,
        text_body=body,
        html_body=f"<p>{body}</p>",
        emails=[EmailSpec(to=[Address(a, a.split("@")[0].title()) for a in to])],
        attachments=attachments,
    )
    db.session.commit()
    dispatch(mailing)
    return mailing


def test_archive_lists_ones_mailings_with_their_state(client, sender, personal_account, db):
    account = personal_account.__self__ if False else None  # noqa: F841
    from hpmail.accounts.service import default_account

    mine = default_account(sender)
    send(db, sender, mine, "Réunion parents-professeurs", to=("a@example.org", "b@example.org"))
    page = client.get("/e-mails", headers=FR)
    assert page.status_code == 200
    assert "Réunion parents-professeurs" in page.text
    assert "Envoyé" in page.text and "Sophie Martin" in page.text


def test_columns_sort_by_subject_both_ways(client, sender, db):
    from hpmail.accounts.service import default_account

    mine = default_account(sender)
    for subject in ("Bravo", "Alpha", "Charlie"):
        send(db, sender, mine, subject)
    ascending = client.get("/e-mails?sort=subject&order=asc", headers=HTMX).text
    assert ascending.index("Alpha") < ascending.index("Bravo") < ascending.index("Charlie")
    descending = client.get("/e-mails?sort=subject&order=desc", headers=HTMX).text
    assert descending.index("Charlie") < descending.index("Bravo") < descending.index("Alpha")
    for column in ("date", "from", "recipients", "state"):
        assert client.get(f"/e-mails?sort={column}&order=asc").status_code == 200


def test_search_finds_words_of_subject_body_and_recipients(client, sender, db):
    from hpmail.accounts.service import default_account

    mine = default_account(sender)
    send(
        db,
        sender,
        mine,
        "Sortie au théâtre",
        body="Rendez-vous devant le lycée",
        to=("jules.verne@example.org",),
    )
    send(db, sender, mine, "Conseil de classe", body="Salle B204", to=("marie.curie@example.org",))
    assert "Sortie au théâtre" in client.get("/e-mails?q=theatre", headers=HTMX).text
    found = client.get("/e-mails?q=rendez-vous lyc", headers=HTMX).text
    assert "Sortie au théâtre" in found and "Conseil de classe" not in found
    found = client.get("/e-mails?q=curie", headers=HTMX).text
    assert "Conseil de classe" in found and "Sortie au théâtre" not in found
    assert "Aucun e-mail trouvé" in client.get("/e-mails?q=inexistant", headers=HTMX).text
    # the fragment is the table only
    assert "<html" not in client.get("/e-mails?q=curie", headers=HTMX).text


def test_detail_shows_headers_body_attachments_and_each_recipients_state(
    client, sender, db, smtp_server
):
    from hpmail.accounts.service import default_account

    mine = default_account(sender)
    smtp_server.refuse("inconnu@example.org", "550 5.1.1 Boite inconnue")
    pdf = store_attachment(b"%PDF-1.4 emploi du temps", "application/pdf")
    mailing = send(
        db,
        sender,
        mine,
        "Emploi du temps",
        body="Voici <script>alert(1)</script>le planning",
        to=("connu@example.org", "inconnu@example.org"),
        attachments=[AttachmentSpec(pdf, "edt.pdf")],
    )
    pane = client.get(f"/e-mails/{mailing.id}", headers=HTMX)
    assert pane.status_code == 200 and "<html" not in pane.text
    assert "Message-ID" in pane.text and mailing.emails[0].message_id.strip("<>") in pane.text
    assert "<dt>De</dt>" in pane.text and mine.address in pane.text
    assert 'sandbox=""' in pane.text and "le planning" in pane.text
    assert "alert(1)" not in pane.text
    assert "550" in pane.text and "Boite inconnue" in pane.text
    table = pane.text.split('class="list recipients"')[1]
    assert table.index("&lt;inconnu@") < table.index("&lt;connu@")  # problems first
    assert "Renvoyer aux destinataires en échec (1)" in pane.text
    (item,) = mailing.attachments
    download = client.get(f"/e-mails/{mailing.id}/pieces-jointes/{item.id}")
    assert download.data == b"%PDF-1.4 emploi du temps"
    assert "attachment" in download.headers["Content-Disposition"]
    assert client.get(f"/e-mails/{mailing.id}", headers=FR).text.count("<html") == 1


def test_failed_recipients_are_sent_again_once(client, sender, db, smtp_server):
    from hpmail.accounts.service import default_account

    mine = default_account(sender)
    smtp_server.refuse("absent@example.org", "550 5.1.1 Absent")
    mailing = send(db, sender, mine, "Rappel", to=("present@example.org", "absent@example.org"))
    assert smtp_server.received[0].rcpt_tos == ["present@example.org"]
    assert "state-failed" in client.get("/e-mails", headers=HTMX).text
    smtp_server.recorder.refused_recipients.clear()

    response = client.post(f"/e-mails/{mailing.id}/renvoyer", headers=FR, follow_redirects=True)

    assert response.status_code == 200
    assert smtp_server.received[-1].rcpt_tos == ["absent@example.org"]
    assert "Renvoyer aux destinataires en échec" not in response.text
    assert "state-sent" in client.get("/e-mails", headers=HTMX).text
    again = client.post(f"/e-mails/{mailing.id}/renvoyer", headers=FR, follow_redirects=True)
    assert "Aucun destinataire en échec" in again.text
    assert len(smtp_server.received) == 2


def test_resend_without_csrf_is_refused(client, sender, db, smtp_server):
    from hpmail.accounts.service import default_account

    smtp_server.refuse("absent@example.org")
    mailing = send(db, sender, default_account(sender), "Rappel", to=("absent@example.org",))
    assert client.post(f"/e-mails/{mailing.id}/renvoyer", csrf=False).status_code == 400


def test_index_is_filled_for_mailings_inserted_by_any_feature(
    app, db, make_user, personal_account, delivery_settings, smtp_server
):
    delivery_settings(smtp_server)
    user = make_user("staff")
    account = personal_account(user)
    send(db, user, account, "Relevé de notes", body="Votre relevé du semestre")
    assert search.refresh_index() == 1
    assert search.refresh_index() == 0
    ids = list(
        db.session.scalars(
            select(Mailing.id).where(Mailing.id.in_(search.matching_ids("releve sem")))
        )
    )
    assert len(ids) == 1
    assert search.rebuild_index() == 1


def test_a_deferred_email_shows_as_deferred_with_the_servers_words(client, sender, db, smtp_server):
    from hpmail.accounts.service import default_account

    smtp_server.recorder.data_reply = "451 4.3.0 Serveur surchargé, réessayez"
    mailing = send(db, sender, default_account(sender), "Convocation")
    assert "Différé" in client.get("/e-mails", headers=FR).text
    pane = client.get(f"/e-mails/{mailing.id}", headers=HTMX).text
    assert "451" in pane and "Serveur surchargé" in pane


def test_detail_labels_the_headers_in_french_and_shows_a_french_date(client, sender, db):
    from hpmail.accounts.service import default_account

    mine = default_account(sender)
    mailing = send(db, sender, mine, "Conseil de classe", to=("parent@example.org",))
    pane = client.get(f"/e-mails/{mailing.id}", headers=HTMX).text
    headers = pane.split('<dl class="headers">')[1].split("</dl>")[0]
    labels = [part.split("</dt>")[0] for part in headers.split("<dt>")[1:]]
    assert labels[:4] == ["De", "À", "Objet", "Date"]
    months = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août")
    months += ("septembre", "octobre", "novembre", "décembre")
    date = headers.split("<dt>Date</dt><dd>")[1].split("</dd>")[0]
    assert any(month in date for month in months), date
    assert mailing.created_at.strftime("%a, ") not in date  # not the raw RFC 2822 date
